"""Schema evolution: events stored by an older class version are read through upcasters,
by the write model and by the projections alike."""

from __future__ import annotations

import json

from eventsourcing.persistence import StoredEvent

from events.development import Development
from timeline.projector import Projector
from timeline.queries import Reader

DEVELOPMENT = {
    "title": "Ein Ereignis", "category": "statement", "when": "2023-09-19", "certainty": "reported",
    "actors": [{"actor": "armenia", "role": "speaker"}], "sources": [{"citation": "Artikel"}],
}


def test_a_version_1_retraction_is_read_through_its_upcaster(chronicle):
    chronicle.register_actor({"id": "armenia", "name": "Armenia", "kind": "state"}, recorded_by="t")
    receipt = chronicle.record_development(DEVELOPMENT, recorded_by="t")
    ident = chronicle.development(receipt.id).id
    # A retraction as version 1 of the event class stored it: no superseded_by, no class_version.
    state = {"timestamp": {"_type_": "datetime_iso", "_data_": "2024-01-02T03:04:05.000006+00:00"},
             "originator_topic": "timeline:Development", "reason": "duplicate", "recorded_by": "old-client"}
    chronicle.recorder.insert_events([StoredEvent(
        originator_id=ident, originator_version=2, topic="timeline:Development.Retracted",
        state=json.dumps(state, separators=(",", ":")).encode())])

    development = chronicle.development(ident)
    assert development.retracted and development.version == 2
    (old, ) = list(chronicle.events.get(ident, gt=1))
    assert isinstance(old, Development.Retracted) and old.superseded_by is None and old.reason == "duplicate"

    projector = Projector(chronicle)
    projector.catch_up()
    history = Reader(projector).history(str(ident))
    projector.close()
    assert [entry["type"] for entry in history] == ["recorded", "retracted"]
    assert history[1]["recorded_by"] == "old-client" and "superseded_by" not in history[1]


def test_new_retractions_are_stored_as_version_2_with_their_replacement(chronicle):
    chronicle.register_actor({"id": "armenia", "name": "Armenia", "kind": "state"}, recorded_by="t")
    first = chronicle.record_development(DEVELOPMENT, recorded_by="t")
    second = chronicle.record_development({**DEVELOPMENT, "title": "Besser belegt"}, recorded_by="t")
    chronicle.retract_development(first.id, reason="duplicate", superseded_by=second.id, recorded_by="t")
    stored = chronicle.recorder.select_notifications(chronicle.recorder.max_notification_id(), 1)[0]
    state = json.loads(stored.state)
    assert state["class_version"] == 2 and state["superseded_by"] == second.id


def test_a_retraction_can_only_name_an_existing_other_development(chronicle):
    import pytest

    from events.errors import InvalidInput

    chronicle.register_actor({"id": "armenia", "name": "Armenia", "kind": "state"}, recorded_by="t")
    first = chronicle.record_development(DEVELOPMENT, recorded_by="t")
    before = chronicle.recorder.max_notification_id()
    for replacement, message in [("0b1c6a3e-6f5e-4c1e-9d1e-2a6f4b0c9d11", "no development with id"),
                                 ("not-an-id", "is not a development id"),
                                 (first.id, "cannot supersede itself")]:
        with pytest.raises(InvalidInput) as refused:
            chronicle.retract_development(first.id, reason="r", superseded_by=replacement, recorded_by="t")
        assert message in refused.value.errors["superseded_by"][0]
    assert chronicle.recorder.max_notification_id() == before
