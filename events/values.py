"""The shapes of what historians write: developments, actors, sources and the rest.

``msgspec`` checks types, lengths, vocabularies and unknown fields in one fast pass
(bulk imports validate tens of thousands of developments a second); the rules that
span fields or need the record (dates, registered actors) live in :mod:`events.rules`.
"""

from __future__ import annotations

import sys
from datetime import date
from typing import Annotated, Union
from uuid import UUID

from msgspec import Meta, Struct

from events.vocabulary import ActorKind, Category, Certainty, LinkType, Role

_CLEAN = r"^[^\x00\ud800-\udfff]*$"
"""No NUL characters and no unpaired surrogates: text must survive storage as UTF-8."""


def text(max_length: int, min_length: int = 0) -> object:
    return Annotated[str, Meta(min_length=min_length, max_length=max_length, pattern=_CLEAN)]


Title = text(300, 1)
Name = text(200, 1)
ShortText = text(500)
LongText = text(5000)
Tag = text(64, 1)
# The formats end with \Z, not $: Python's $ also matches before a final newline, and
# "armenia\n" would be an actor id that no later command could name.
SLUG = r"^[a-z0-9]+(?:[-_.][a-z0-9]+)*\Z"
LANGUAGE_TAG = r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*\Z"
URL = r"^https?://[^\s\x00\ud800-\udfff]+\Z"
ATTRIBUTE = r"^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\Z"
COUNTRY_CODE = r"^[A-Z]{3}\Z"
WIKIDATA_ID = r"^Q[1-9][0-9]*\Z"

Slug = Annotated[str, Meta(pattern=SLUG, max_length=64)]
"""An actor's id: lower-case letters, digits and single ``-``, ``_`` or ``.`` between them."""
LanguageTag = Annotated[str, Meta(pattern=LANGUAGE_TAG, max_length=35)]
"""A BCP 47 language tag such as ``de``, ``hy`` or ``az-Latn``."""
Url = Annotated[str, Meta(pattern=URL, max_length=2000)]
EdtfText = text(100, 1)
Attribute = Annotated[str, Meta(pattern=ATTRIBUTE, max_length=200)]
"""A dotted attribute name such as ``membership.csto``."""
CountryCode = Annotated[str, Meta(pattern=COUNTRY_CODE)]
WikidataId = Annotated[str, Meta(pattern=WIKIDATA_ID)]
Finite = Annotated[float, Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
"""A float that JSON can carry: Python's parser reads ``NaN``, ``Infinity`` and ``1e400``,
which no JSON reader of the record could read back."""
EffectValue = Union[text(500), int, Finite, bool, None]


class Value(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Base for value objects: unknown fields are errors, absent fields stay absent."""


class Source(Value):
    """Where a development is documented: a citation or a URL, ideally with a quote."""

    citation: ShortText | None = None
    url: Url | None = None
    title: ShortText | None = None
    publisher: Name | None = None
    author: Name | None = None
    published: EdtfText | None = None
    retrieved: date | None = None
    language: LanguageTag | None = None
    quote: text(1000) | None = None
    locator: text(200) | None = None
    archive_url: Url | None = None


class Participation(Value):
    """An actor taking part in a development, in a role."""

    actor: Slug
    role: Role


class Effect(Value):
    """A statement about an actor's state that a development makes true from its date on;
    ``value: null`` ends the attribute."""

    actor: Slug
    attribute: Attribute
    value: EffectValue


class Coding(Value):
    """The development's code in an external scheme such as CAMEO, kept as given."""

    scheme: Name
    code: text(64, 1)
    version: text(64) | None = None
    label: ShortText | None = None


class Location(Value):
    name: Name
    country: CountryCode | None = None
    lat: Annotated[float, Meta(ge=-90, le=90)] | None = None
    lon: Annotated[float, Meta(ge=-180, le=180)] | None = None


class Link(Value):
    """A typed link from one development to another."""

    type: LinkType
    development: UUID


class DevelopmentDetails(Value, omit_defaults=False):
    """Everything a historian states about a development."""

    title: Title
    category: Category
    when: EdtfText
    certainty: Certainty
    actors: Annotated[list[Participation], Meta(min_length=1, max_length=100)]
    sources: Annotated[list[Source], Meta(min_length=1, max_length=100)]
    id: UUID | None = None
    summary: LongText | None = None
    language: LanguageTag | None = None
    codings: Annotated[list[Coding], Meta(max_length=20)] = []
    effects: Annotated[list[Effect], Meta(max_length=100)] = []
    location: Location | None = None
    tags: Annotated[list[Tag], Meta(max_length=50)] = []
    links: Annotated[list[Link], Meta(max_length=100)] = []


class ActorDetails(Value, omit_defaults=False):
    """Everything the record states about an actor."""

    id: Slug
    name: Name
    kind: ActorKind
    names: dict[LanguageTag, Name] = {}
    aliases: Annotated[list[Name], Meta(max_length=100)] = []
    description: LongText | None = None
    wikidata: WikidataId | None = None
