"""An actor of contemporary history: a state, an organization, a person, a medium."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event


@dataclass
class Actor(Aggregate):
    TOPIC = "timeline:Actor"

    slug: str
    """The actor's public id (``armenia``, ``csto``); it can be claimed only once."""
    name: str
    """Name in English, used where no other language is asked for."""
    kind: str
    """state, organization, person, media, armed_group or other."""
    names: dict[str, str]
    """Names by BCP 47 language tag (``{"de": "Armenien", "hy": "Հայաստան"}``)."""
    aliases: list[str]
    """Other names and spellings it is known by."""
    description: str | None
    """A line on who this is."""
    wikidata: str | None
    """Wikidata item id, for linking out."""
    recorded_by: str
    """Who registered it."""

    @staticmethod
    def create_id(slug: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/actors/{slug}")

    class Event(Aggregate.Event):
        TOPIC = "timeline:Actor.Event"

    class Registered(Aggregate.Created, Event):
        TOPIC = "timeline:Actor.Registered"
        slug: str
        name: str
        kind: str
        names: dict[str, str]
        aliases: list[str]
        description: str | None
        wikidata: str | None
        recorded_by: str

    class Corrected(Event):
        TOPIC = "timeline:Actor.Corrected"
        changes: dict[str, Any]
        reason: str
        recorded_by: str

    @event(Corrected)
    def correct(self, changes: dict[str, Any], reason: str, recorded_by: str) -> None:
        for name, value in changes.items():
            setattr(self, name, value)

    def stated(self) -> dict[str, Any]:
        """The actor as the record states it now, as plain data (``id`` is the slug)."""
        details = {name: getattr(self, name) for name in self.Registered.__annotations__}
        details["id"] = details.pop("slug")
        return details
