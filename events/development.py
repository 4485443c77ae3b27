"""A development of contemporary history, as one event-sourced aggregate.

Its ``Recorded`` event IS the development as first recorded and is never edited:
corrections, further sources, retractions and restorations are later events on the
same stream, so the record keeps every version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from events.errors import InvalidInput


@dataclass
class Development(Aggregate):
    TOPIC = "timeline:Development"

    title: str
    """What happened, in one line."""
    category: str
    """Kind of development, from :data:`events.vocabulary.CATEGORIES`."""
    when: str
    """The date as stated, in EDTF (``2023-09-19``, ``2023-09``, ``[2023-09-01..2023-09-10]``)."""
    earliest: str
    """First day the date may stand for."""
    latest: str
    """Last day the date may stand for."""
    precision: str
    """Granularity of the date (``day``, ``month``, ``range``, ``interval``, ...)."""
    qualified: bool
    """Whether the date is marked approximate or uncertain."""
    certainty: str
    """How well the sources establish it: confirmed, reported, claimed, disputed, denied."""
    actors: list[dict[str, Any]]
    """Who took part, each ``{actor, role}``."""
    sources: list[dict[str, Any]]
    """Where it is documented; at least one."""
    summary: str | None
    """A few sentences on what happened; inferred dates are explained here."""
    language: str | None
    """BCP 47 tag of the language of title and summary."""
    codings: list[dict[str, Any]]
    """Codes in external schemes (CAMEO, PLOVER), kept as given."""
    effects: list[dict[str, Any]]
    """Actor attributes this development makes true from its date on."""
    location: dict[str, Any] | None
    """Where it happened."""
    tags: list[str]
    """Short free labels."""
    links: list[dict[str, Any]]
    """Typed links to other developments."""
    recorded_by: str
    """Who first recorded it."""
    retracted: bool = field(default=False, init=False)
    """Whether it is withdrawn from current timelines (it stays in history)."""

    class Event(Aggregate.Event):
        TOPIC = "timeline:Development.Event"

    class Recorded(Aggregate.Created, Event):
        TOPIC = "timeline:Development.Recorded"
        title: str
        category: str
        when: str
        earliest: str
        latest: str
        precision: str
        qualified: bool
        certainty: str
        actors: list[dict[str, Any]]
        sources: list[dict[str, Any]]
        summary: str | None
        language: str | None
        codings: list[dict[str, Any]]
        effects: list[dict[str, Any]]
        location: dict[str, Any] | None
        tags: list[str]
        links: list[dict[str, Any]]
        recorded_by: str

    class Corrected(Event):
        TOPIC = "timeline:Development.Corrected"
        changes: dict[str, Any]
        reason: str
        sources: list[dict[str, Any]]
        recorded_by: str

    class SourceAdded(Event):
        TOPIC = "timeline:Development.SourceAdded"
        source: dict[str, Any]
        recorded_by: str

    class Retracted(Event):
        TOPIC = "timeline:Development.Retracted"
        class_version = 2
        reason: str
        superseded_by: str | None
        """The development that replaces this one (a duplicate, a better record), if any."""
        recorded_by: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Version 1 retractions could not name a replacement."""
            state["superseded_by"] = None

    class Restored(Event):
        TOPIC = "timeline:Development.Restored"
        reason: str
        recorded_by: str

    @classmethod
    def record(cls, id: UUID, **stated: Any) -> Development:  # noqa: A002
        """Records a new development under a given (possibly client-chosen) id."""
        return cls._create(cls.Recorded, id=id, **stated)

    @event(Corrected)
    def correct(self, changes: dict[str, Any], reason: str, sources: list[dict[str, Any]], recorded_by: str) -> None:
        for name, value in changes.items():
            setattr(self, name, value)
        self.sources = [*self.sources, *sources]

    @event(SourceAdded)
    def add_source(self, source: dict[str, Any], recorded_by: str) -> None:
        self.sources = [*self.sources, source]

    def retract(self, reason: str, recorded_by: str, superseded_by: str | None = None) -> None:
        if self.retracted:
            raise InvalidInput.of("retraction", "the development is already retracted")
        if superseded_by == str(self.id):
            raise InvalidInput.of("superseded_by", "a development cannot supersede itself")
        self._retract(reason, superseded_by, recorded_by)

    @event(Retracted)
    def _retract(self, reason: str, superseded_by: str | None, recorded_by: str) -> None:
        self.retracted = True

    def restore(self, reason: str, recorded_by: str) -> None:
        if not self.retracted:
            raise InvalidInput.of("restoration", "the development is not retracted")
        self._restore(reason, recorded_by)

    @event(Restored)
    def _restore(self, reason: str, recorded_by: str) -> None:
        self.retracted = False

    def stated(self) -> dict[str, Any]:
        """The development as the record states it now, as plain data."""
        return {name: getattr(self, name) for name in self.Recorded.__annotations__}
