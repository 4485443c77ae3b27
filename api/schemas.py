"""Request and response shapes for the OpenAPI document (marshmallow, via flask-smorest).

They check the shape of what comes in; the rules of the record (dates, registered
actors, sources) are the write model's, in :mod:`events.rules`, and their errors come
back in the same problem format.
"""

from __future__ import annotations

from datetime import date

import marshmallow as ma
from marshmallow import fields, validate

from events import vocabulary
from events.chronicle import EVENT_TYPES
from events.dates import parse_when
from events.errors import InvalidInput

Str = fields.String
OneOf = validate.OneOf


class Schema(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class SourceSchema(Schema):
    citation = Str(validate=validate.Length(max=500), metadata={"description": "Citation; or give a url"})
    url = fields.Url(validate=validate.Length(max=2000))
    title = Str(validate=validate.Length(max=500))
    publisher = Str(validate=validate.Length(max=200))
    author = Str(validate=validate.Length(max=200))
    published = Str(validate=validate.Length(max=100), metadata={"description": "EDTF date"})
    retrieved = fields.Date(metadata={"description": "Required with a url"})
    language = Str(validate=validate.Length(max=35))
    quote = Str(validate=validate.Length(max=1000))
    locator = Str(validate=validate.Length(max=200))
    archive_url = fields.Url(validate=validate.Length(max=2000))


class ParticipationSchema(Schema):
    actor = Str(required=True, metadata={"description": "A registered actor's id"})
    role = Str(required=True, validate=OneOf(vocabulary.ROLES))


class EffectSchema(Schema):
    actor = Str(required=True)
    attribute = Str(required=True, metadata={"description": "Dotted name, e.g. membership.csto"})
    value = fields.Raw(required=True, allow_none=True, metadata={"description": "null ends the attribute"})


class CodingSchema(Schema):
    scheme = Str(required=True)
    code = Str(required=True)
    version = Str()
    label = Str()


class LocationSchema(Schema):
    name = Str(required=True)
    country = Str(metadata={"description": "ISO 3166-1 alpha-3"})
    lat = fields.Float(validate=validate.Range(-90, 90))
    lon = fields.Float(validate=validate.Range(-180, 180))


class LinkSchema(Schema):
    type = Str(required=True, validate=OneOf(vocabulary.LINK_TYPES))
    development = fields.UUID(required=True)


class DevelopmentFields(Schema):
    title = Str(validate=validate.Length(1, 300))
    summary = Str(allow_none=True, validate=validate.Length(max=5000))
    language = Str(allow_none=True)
    category = Str(validate=OneOf(list(vocabulary.CATEGORIES)))
    codings = fields.List(fields.Nested(CodingSchema))
    when = Str(metadata={"description": "EDTF: 2023-09-19, 2023-09, 2023-09-05~, [2023-09-01..2023-09-10], "
                                        "2023-09-11/2023-09-20"})
    certainty = Str(validate=OneOf(vocabulary.CERTAINTIES))
    actors = fields.List(fields.Nested(ParticipationSchema), validate=validate.Length(min=1))
    effects = fields.List(fields.Nested(EffectSchema))
    location = fields.Nested(LocationSchema, allow_none=True)
    tags = fields.List(Str(validate=validate.Length(1, 64)))
    links = fields.List(fields.Nested(LinkSchema))


class NewDevelopment(DevelopmentFields):
    id = fields.UUID(metadata={"description": "Optional client-chosen id; repeating a recording is a no-op"})
    title = Str(required=True, validate=validate.Length(1, 300))
    category = Str(required=True, validate=OneOf(list(vocabulary.CATEGORIES)))
    when = Str(required=True)
    certainty = Str(required=True, validate=OneOf(vocabulary.CERTAINTIES))
    actors = fields.List(fields.Nested(ParticipationSchema), required=True, validate=validate.Length(min=1))
    sources = fields.List(fields.Nested(SourceSchema), required=True, validate=validate.Length(min=1))


class Correction(Schema):
    changes = fields.Nested(DevelopmentFields, required=True)
    reason = Str(required=True, validate=validate.Length(1, 2000))
    sources = fields.List(fields.Nested(SourceSchema))


class Reason(Schema):
    reason = Str(required=True, validate=validate.Length(1, 2000))


class Retraction(Reason):
    superseded_by = fields.UUID(allow_none=True,
                                metadata={"description": "The development that replaces this one, if any"})


class ActorFields(Schema):
    name = Str(validate=validate.Length(1, 200))
    kind = Str(validate=OneOf(vocabulary.ACTOR_KINDS))
    names = fields.Dict(keys=Str(), values=Str())
    aliases = fields.List(Str())
    description = Str(allow_none=True)
    wikidata = Str(allow_none=True)


class NewActor(ActorFields):
    id = Str(required=True, metadata={"description": "Slug such as 'armenia'; claimed once"})
    name = Str(required=True, validate=validate.Length(1, 200))
    kind = Str(required=True, validate=OneOf(vocabulary.ACTOR_KINDS))


class ActorCorrection(Schema):
    changes = fields.Nested(ActorFields, required=True)
    reason = Str(required=True, validate=validate.Length(1, 2000))


class AsOf(Schema):
    as_of = Str(validate=validate.Length(max=64),
                metadata={"description": "Record time: a log position or an RFC 3339 timestamp"})
    min_position = fields.Integer(validate=validate.Range(min=0, max=2**63 - 1),
                                  metadata={"description": "Wait (bounded) until the read model has this position"})


class DateBound(fields.String):
    """One end of a range of days, written as the record writes a date: a day, or any
    date a development's ``when`` may be (``2023-09``, ``2023``, ``2023-21`` for spring,
    ``202X``). A range starts on the first day of its ``from`` and ends on the last day
    of its ``to``, so ``from=2023-09&to=2023-09`` is September 2023."""

    def __init__(self, end: str, **kwargs):
        super().__init__(**kwargs)
        self.end = end
        """``earliest`` or ``latest``: which day of the date bounds the range."""

    def _deserialize(self, value, attr, data, **kwargs) -> date:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return date.fromisoformat(getattr(parse_when(text), self.end))
        except InvalidInput as error:
            raise ma.ValidationError([m for messages in error.errors.values() for m in messages]) from None


class TimelineArgs(AsOf):
    actor = fields.List(Str(), metadata={"description": "One or several actor ids (any of them)"})
    role = Str(validate=OneOf(vocabulary.ROLES))
    category = fields.List(Str(validate=OneOf(list(vocabulary.CATEGORIES))))
    tag = fields.List(Str())
    certainty = fields.List(Str(validate=OneOf(vocabulary.CERTAINTIES)))
    from_ = DateBound("earliest", data_key="from", metadata={
        "description": "Valid-time range start: a day, or a month, year, season or decade (EDTF, as a "
                       "development's `when`: 2023-09, 2023), from its first day", "example": "2023-09"})
    to = DateBound("latest", metadata={
        "description": "Valid-time range end, not before from: a day, or a month, year, season or decade "
                       "(EDTF), to its last day", "example": "2023"})
    match = Str(load_default="overlaps", validate=OneOf(["overlaps", "within"]))
    q = Str(validate=validate.Length(1, 200), metadata={"description": "Free text over title, summary and actor names"})
    order = Str(load_default="asc", validate=OneOf(["asc", "desc"]))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    cursor = Str(validate=validate.Length(max=256))
    format = Str(load_default="json", validate=OneOf(["json", "csv", "jsonl", "timelinejs"]),
                 metadata={"description": "csv: a cell that a spreadsheet would run as a formula "
                                          "(starting with = + - @) is written after a '"})

    @ma.validates_schema
    def range_in_order(self, data, **_kwargs):
        """A range that ends before it starts is a mistake to name, not an empty timeline."""
        if data.get("from_") and data.get("to") and data["to"] < data["from_"]:
            raise ma.ValidationError("must not be before from", "to")


class ActorTimelineArgs(TimelineArgs):
    pass


class StateArgs(AsOf):
    at = fields.Date(error_messages={"invalid": "must be a day like 2023-09-15"},
                     metadata={"description": "Valid date (a day); default today"})


class ActorSearch(Schema):
    q = Str(validate=validate.Length(1, 200))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 500))


POSITION = validate.Range(min=0, max=2**63 - 1)
"""A log position: what the store's signed 64-bit integers hold."""


class StreamArgs(Schema):
    after = fields.Integer(load_default=0, validate=POSITION)


class StreamHeaders(Schema):
    last_event_id = fields.Integer(data_key="Last-Event-ID", validate=POSITION,
                                   metadata={"description": "The last id received; wins over after"})


class EventArgs(StreamArgs):
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))
    type = fields.List(Str(validate=OneOf(EVENT_TYPES)),
                       metadata={"description": "Event types, e.g. timeline:Development.Retracted"})


class NewToken(Schema):
    name = Str(required=True)
    role = Str(required=True, validate=OneOf(["reader", "historian", "admin"]))


# Responses (documentation of what the endpoints answer).

class DevelopmentOut(Schema):
    class Meta:
        unknown = ma.INCLUDE

    id = fields.UUID()
    version = fields.Integer()
    retracted = fields.Boolean()
    title = Str()
    when = Str()
    earliest = fields.Date()
    latest = fields.Date()
    precision = Str()
    qualified = fields.Boolean()
    category = Str()
    certainty = Str()
    actors = fields.List(fields.Nested(ParticipationSchema))
    sources = fields.List(fields.Nested(SourceSchema))
    effects = fields.List(fields.Nested(EffectSchema))
    recorded_at = fields.DateTime()
    recorded_by = Str()


class WriteReceipt(Schema):
    class Meta:
        unknown = ma.INCLUDE

    id = Str(metadata={"description": "The development's UUID or the actor's id"})
    version = fields.Integer(metadata={"description": "The stream's version: the ETag for If-Match"})
    position = fields.Integer(allow_none=True, metadata={"description": "Log position of the write (null: no-op)"})
    created = fields.Boolean()
    development = fields.Dict(allow_none=True, metadata={
        "description": "The development as now recorded (null: stored, but the read model is behind)"})
    actor = fields.Dict(allow_none=True, metadata={
        "description": "The actor as now recorded (null: stored, but the read model is behind)"})


class Problem(Schema):
    """RFC 9457 problem details."""

    class Meta:
        unknown = ma.INCLUDE

    type = Str(required=True)
    title = Str(required=True)
    status = fields.Integer(required=True)
    detail = Str(required=True)
    errors = fields.Dict(keys=Str(), values=fields.List(Str()), metadata={"description": "Each bad field"})
    current_version = fields.Integer(metadata={"description": "On 412: the stream's current version"})


IF_MATCH = {"in": "header", "name": "If-Match", "required": True, "schema": {"type": "string"},
            "description": 'The ETag (stream version) last read, e.g. "3"; * for any'}
TIMELINE_RESPONSES = {"200": {
    "description": "A page of the timeline: JSON (default), or CSV, JSON Lines or TimelineJS by `format`",
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/TimelinePage"}},
        "text/csv": {"schema": {"type": "string"}},
        "application/x-ndjson": {"schema": {"type": "string"}},
    },
}}


class TimelinePage(Schema):
    """A JSON page (``format=timelinejs`` answers TimelineJS's ``{"events": [...]}`` instead)."""

    class Meta:
        unknown = ma.INCLUDE

    items = fields.List(fields.Nested(DevelopmentOut))
    next_cursor = Str(allow_none=True)
    as_of = fields.Raw()
    events = fields.List(fields.Dict(), metadata={"description": "format=timelinejs: TimelineJS events"})


class NoArgs(Schema):
    """No query parameters."""
