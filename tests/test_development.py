"""Developments as event-sourced aggregates: the events they produce, directly and through
the Chronicle, corrections, idempotent recording, optimistic concurrency and batches."""

from __future__ import annotations

import time
import uuid
from typing import Any
from uuid import UUID

import pytest

from events.actor import Actor
from events.chronicle import BatchRejected, Chronicle, Receipt
from events.development import Development
from events.errors import Conflict, InvalidInput, NotFound, StaleVersion
from events.rules import check_development

DROP = object()
URL = "https://www.reuters.com/world/asia-pacific/azerbaijan-launches-operation-2023-09-19/"
ACTORS = [
    {"id": "armenia", "name": "Armenia", "kind": "state"},
    {"id": "azerbaijan", "name": "Azerbaijan", "kind": "state"},
    {"id": "russia", "name": "Russia", "kind": "state"},
]
TOPIC = "timeline:Development."


def development(**overrides: Any) -> dict[str, Any]:
    """A valid development; each keyword replaces a field (``DROP`` removes it)."""
    data = {
        "title": "Azerbaijan launches a military operation in Karabakh",
        "category": "assault",
        "when": "2023-09-19",
        "certainty": "confirmed",
        "actors": [{"actor": "azerbaijan", "role": "initiator"}, {"actor": "armenia", "role": "target"}],
        "sources": [{"citation": "Reuters, 19 September 2023"}],
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not DROP}


@pytest.fixture
def timeline(memory_chronicle: Chronicle) -> Chronicle:
    """An in-memory timeline with Armenia, Azerbaijan and Russia registered."""
    memory_chronicle.execute([("register_actor", actor) for actor in ACTORS], recorded_by="setup")
    return memory_chronicle


@pytest.fixture
def recorded(timeline: Chronicle) -> str:
    """The id of a development recorded by alice."""
    return timeline.record_development(development(), recorded_by="alice").id


def log_length(timeline: Chronicle) -> int:
    return timeline.recorder.max_notification_id() or 0


def stored_events(timeline: Chronicle, ident: str) -> list[Any]:
    return list(timeline.events.get(UUID(ident)))


def stored_topics(timeline: Chronicle, ident: str) -> list[str]:
    return [stored.topic for stored in timeline.recorder.select_events(UUID(ident))]


def refusal(call, *args: Any, **kwargs: Any) -> dict[str, list[str]]:
    with pytest.raises(InvalidInput) as caught:
        call(*args, **kwargs)
    return caught.value.errors


# --- the aggregate on its own ---------------------------------------------------------


def new_development(**overrides: Any) -> Development:
    payload = check_development(development(**overrides), lambda slug: True)
    del payload["id"]
    return Development.record(uuid.uuid4(), recorded_by="alice", **payload)


def test_record_produces_a_recorded_event_carrying_the_development():
    dev = new_development(when="2023-09")
    (event,) = dev.collect_events()
    assert isinstance(event, Development.Recorded)
    assert event.TOPIC == "timeline:Development.Recorded"
    assert event.originator_id == dev.id and event.originator_version == 1
    assert event.recorded_by == "alice"
    assert (event.when, event.earliest, event.latest, event.precision) == (
        "2023-09", "2023-09-01", "2023-09-30", "month",
    )
    assert dev.version == 1 and dev.retracted is False


def test_record_keeps_the_given_id():
    ident = uuid.uuid4()
    payload = check_development(development(), lambda slug: True)
    del payload["id"]
    assert Development.record(ident, recorded_by="alice", **payload).id == ident


@pytest.mark.parametrize(
    ("act", "event_class", "topic"),
    [
        pytest.param(lambda d: d.correct({"title": "New"}, "typo", [], "bob"),
                     Development.Corrected, "timeline:Development.Corrected", id="correct"),
        pytest.param(lambda d: d.add_source({"citation": "AP"}, "bob"),
                     Development.SourceAdded, "timeline:Development.SourceAdded", id="add_source"),
        pytest.param(lambda d: d.retract("duplicate", "bob"),
                     Development.Retracted, "timeline:Development.Retracted", id="retract"),
    ],
)
def test_each_command_produces_its_event_with_an_explicit_topic_and_recorded_by(act, event_class, topic):
    dev = new_development()
    dev.collect_events()
    act(dev)
    (event,) = dev.collect_events()
    assert type(event) is event_class
    assert event.TOPIC == topic
    assert event.recorded_by == "bob"
    assert event.originator_version == 2 == dev.version


def test_restore_produces_a_restored_event():
    dev = new_development()
    dev.retract("duplicate", "bob")
    dev.collect_events()
    dev.restore("not a duplicate after all", "carol")
    (event,) = dev.collect_events()
    assert type(event) is Development.Restored
    assert event.TOPIC == "timeline:Development.Restored"
    assert (event.recorded_by, event.reason) == ("carol", "not a duplicate after all")
    assert dev.retracted is False and dev.version == 3


def test_correct_applies_the_changes_and_appends_sources():
    dev = new_development()
    dev.correct({"title": "New", "certainty": "disputed"}, "typo", [{"citation": "AP"}], "bob")
    assert (dev.title, dev.certainty) == ("New", "disputed")
    assert dev.sources == [{"citation": "Reuters, 19 September 2023"}, {"citation": "AP"}]
    assert dev.category == "assault", "fields not corrected stay as they were"


def test_add_source_appends_a_source():
    dev = new_development()
    dev.add_source({"url": URL, "retrieved": "2023-09-20"}, "bob")
    assert dev.sources[-1] == {"url": URL, "retrieved": "2023-09-20"}
    assert len(dev.sources) == 2


def test_retracting_twice_is_refused_and_adds_no_event():
    dev = new_development()
    dev.retract("duplicate", "bob")
    dev.collect_events()
    errors = refusal(dev.retract, "duplicate", "bob")
    assert errors == {"retraction": ["the development is already retracted"]}
    assert dev.collect_events() == [] and dev.version == 2


def test_restoring_what_is_not_retracted_is_refused_and_adds_no_event():
    dev = new_development()
    dev.collect_events()
    errors = refusal(dev.restore, "why not", "bob")
    assert errors == {"restoration": ["the development is not retracted"]}
    assert dev.collect_events() == [] and dev.version == 1


def test_stated_gives_the_development_as_it_stands_now():
    dev = new_development()
    dev.correct({"title": "New"}, "typo", [], "bob")
    stated = dev.stated()
    assert set(stated) == set(Development.Recorded.__annotations__)
    assert stated["title"] == "New" and stated["recorded_by"] == "alice"


# --- through the Chronicle: events and what they carry --------------------------------


def test_record_development_stores_a_recorded_event(timeline):
    before = log_length(timeline)
    receipt = timeline.record_development(development(), recorded_by="alice")
    assert receipt.created is True and receipt.version == 1
    assert receipt.position == log_length(timeline) == before + 1
    assert UUID(receipt.id)
    assert stored_topics(timeline, receipt.id) == ["timeline:Development.Recorded"]
    (event,) = stored_events(timeline, receipt.id)
    assert event.recorded_by == "alice" and event.title == development()["title"]


def test_a_development_recorded_without_an_id_gets_a_time_ordered_one(timeline):
    """Version 7 (RFC 9562): its first 48 bits are the recording's Unix time in
    milliseconds, so the ids of new streams sort after those before them and their
    inserts into the store's stream index and the heads table stay at the index's end."""
    before = time.time_ns() // 1_000_000
    first, second = (UUID(timeline.record_development(development(), recorded_by="alice").id) for _ in range(2))
    after = time.time_ns() // 1_000_000
    assert first.version == second.version == 7
    assert before <= first.int >> 80 <= second.int >> 80 <= after
    assert str(first) < str(second)  # as SQLite's text keys and PostgreSQL's uuid keys order them


def test_the_life_of_a_development_is_stored_as_explicitly_named_events(timeline, recorded):
    receipts = [
        timeline.correct_development(recorded, {"certainty": "reported"}, reason="one source", recorded_by="bob"),
        timeline.add_source(recorded, {"citation": "AP, 19 September 2023"}, recorded_by="carol"),
        timeline.retract_development(recorded, reason="duplicate", recorded_by="dave"),
        timeline.restore_development(recorded, reason="not a duplicate", recorded_by="erin"),
    ]
    assert stored_topics(timeline, recorded) == [
        TOPIC + "Recorded", TOPIC + "Corrected", TOPIC + "SourceAdded", TOPIC + "Retracted", TOPIC + "Restored",
    ]
    assert [e.recorded_by for e in stored_events(timeline, recorded)] == ["alice", "bob", "carol", "dave", "erin"]
    assert [r.version for r in receipts] == [2, 3, 4, 5]
    assert not any(r.created for r in receipts)
    assert [r.position for r in receipts] == sorted({r.position for r in receipts})
    assert receipts[-1].position == log_length(timeline)


def test_retraction_and_restoration_are_stored_with_their_reason(timeline, recorded):
    timeline.retract_development(recorded, reason="duplicate of another entry", recorded_by="dave")
    assert timeline.development(recorded).retracted is True
    timeline.restore_development(recorded, reason="the other entry was removed", recorded_by="erin")
    assert timeline.development(recorded).retracted is False
    *_, retracted, restored = stored_events(timeline, recorded)
    assert retracted.reason == "duplicate of another entry"
    assert restored.reason == "the other entry was removed"


def test_retracting_twice_is_refused(timeline, recorded):
    timeline.retract_development(recorded, reason="duplicate", recorded_by="dave")
    before = log_length(timeline)
    errors = refusal(timeline.retract_development, recorded, reason="duplicate", recorded_by="dave")
    assert errors == {"retraction": ["the development is already retracted"]}
    assert log_length(timeline) == before


def test_restoring_what_is_not_retracted_is_refused(timeline, recorded):
    before = log_length(timeline)
    errors = refusal(timeline.restore_development, recorded, reason="why", recorded_by="erin")
    assert errors == {"restoration": ["the development is not retracted"]}
    assert log_length(timeline) == before


@pytest.mark.parametrize("command", ["retract_development", "restore_development"])
@pytest.mark.parametrize("reason", [None, "", "   "], ids=["none", "empty", "blank"])
def test_retraction_and_restoration_need_a_reason(timeline, recorded, command, reason):
    if command == "restore_development":
        timeline.retract_development(recorded, reason="duplicate", recorded_by="dave")
    errors = refusal(getattr(timeline, command), recorded, reason=reason, recorded_by="dave")
    assert errors == {"reason": ["is required: say why"]}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param({"actors": [{"actor": "narnia", "role": "target"}]}, "actors[0].actor", id="actor"),
        pytest.param({"effects": [{"actor": "narnia", "attribute": "membership.csto", "value": True}]},
                     "effects[0].actor", id="effect"),
    ],
)
def test_an_unregistered_actor_is_refused(timeline, overrides, field):
    before = log_length(timeline)
    errors = refusal(timeline.record_development, development(**overrides), recorded_by="alice")
    assert errors == {field: ["'narnia' is not a registered actor"]}
    assert log_length(timeline) == before


def test_contradictory_effects_are_refused_and_store_nothing(timeline):
    before = log_length(timeline)
    effects = [{"actor": "armenia", "attribute": "membership.csto", "value": "member"},
               {"actor": "armenia", "attribute": "membership.csto", "value": "withdrawn"}]
    errors = refusal(timeline.record_development, development(effects=effects), recorded_by="alice")
    assert errors == {"effects[1]": ["membership.csto of armenia is already set by effects[0]; give it one value"]}
    assert log_length(timeline) == before


def test_an_invalid_development_stores_nothing(timeline):
    before = log_length(timeline)
    errors = refusal(timeline.record_development, development(title=" "), recorded_by="alice")
    assert errors == {"title": ["must not be blank"]}
    assert log_length(timeline) == before


# --- corrections ----------------------------------------------------------------------


def last_event(timeline: Chronicle, ident: str) -> Any:
    return stored_events(timeline, ident)[-1]


def test_a_correction_stores_only_the_fields_that_really_change(timeline, recorded):
    receipt = timeline.correct_development(
        recorded,
        {"title": "Azerbaijan launches an offensive in Karabakh", "category": "assault", "certainty": "confirmed"},
        reason="shorter title", recorded_by="bob",
    )
    event = last_event(timeline, recorded)
    assert event.TOPIC == "timeline:Development.Corrected"
    assert event.changes == {"title": "Azerbaijan launches an offensive in Karabakh"}
    assert (event.reason, event.recorded_by, event.sources) == ("shorter title", "bob", [])
    assert receipt == Receipt(recorded, 2, log_length(timeline), False)
    assert timeline.development(recorded).title == "Azerbaijan launches an offensive in Karabakh"


def test_a_when_correction_also_stores_the_derived_bounds(timeline, recorded):
    timeline.correct_development(recorded, {"when": "2023-09-11/2023-09-20"}, reason="it lasted", recorded_by="bob")
    assert last_event(timeline, recorded).changes == {
        "when": "2023-09-11/2023-09-20", "earliest": "2023-09-11", "latest": "2023-09-20",
        "precision": "interval", "qualified": False,
    }
    dev = timeline.development(recorded)
    assert (dev.when, dev.earliest, dev.latest, dev.precision, dev.qualified) == (
        "2023-09-11/2023-09-20", "2023-09-11", "2023-09-20", "interval", False,
    )


def test_a_qualifier_correction_stores_the_new_qualification(timeline, recorded):
    timeline.correct_development(recorded, {"when": "2023-09-19?"}, reason="one report", recorded_by="bob")
    changes = last_event(timeline, recorded).changes
    assert changes["qualified"] is True and changes["precision"] == "day"


@pytest.mark.parametrize(("before", "after"), [(1, True), (False, 0)], ids=["1-to-true", "false-to-0"])
def test_a_correction_of_an_effect_value_from_number_to_bool_is_stored(timeline, before, after):
    """1 == True in Python, but the record holds JSON: the correction changes it."""
    effects = [{"actor": "armenia", "attribute": "membership.csto", "value": before}]
    ident = timeline.record_development(development(effects=effects), recorded_by="alice").id
    corrected = [{**effects[0], "value": after}]
    timeline.correct_development(ident, {"effects": corrected}, reason="a flag, not a count", recorded_by="bob")
    assert last_event(timeline, ident).changes == {"effects": corrected}
    value = timeline.development(ident).effects[0]["value"]
    assert value == after and type(value) is type(after)


def test_a_correction_is_validated_against_the_whole_merged_development(timeline, recorded):
    """Only the corrected field is sent; the rest comes from the record and still passes."""
    timeline.correct_development(
        recorded, {"actors": [{"actor": "russia", "role": "mediator"}]}, reason="wrong actors", recorded_by="bob",
    )
    dev = timeline.development(recorded)
    assert dev.actors == [{"actor": "russia", "role": "mediator"}]
    assert dev.title == development()["title"]


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        pytest.param({"title": development()["title"]}, "changes", "the correction changes nothing", id="nothing"),
        pytest.param({}, "changes", "name at least one field to correct", id="empty"),
        pytest.param({"id": str(uuid.uuid4())}, "changes.id", "is fixed", id="id"),
        pytest.param({"sources": [{"citation": "AP"}]}, "changes.sources", "add sources instead", id="sources"),
        pytest.param({"title": "  "}, "changes.title", "must not be blank", id="blank-title"),
        pytest.param({"when": "2023-09-20/2023-09-11"}, "changes.when", "ends before it begins", id="reversed-when"),
        pytest.param({"actors": [{"actor": "narnia", "role": "target"}]}, "changes.actors[0].actor",
                     "'narnia' is not a registered actor", id="unregistered-actor"),
        pytest.param({"actors": [{"actor": "armenia", "role": "target"}, {"actor": "armenia", "role": "target"}]},
                     "changes.actors[1]", "armenia is already listed as target", id="duplicate-actor"),
        pytest.param({"effects": [{"actor": "armenia", "attribute": "membership.csto", "value": "member"},
                                  {"actor": "armenia", "attribute": "membership.csto", "value": "withdrawn"}]},
                     "changes.effects[1]", "membership.csto of armenia is already set by effects[0]",
                     id="contradictory-effects"),
        pytest.param({"earliest": "2023-01-01"}, "changes.earliest", "is not a known field", id="derived"),
        pytest.param({"recorded_by": "mallory"}, "changes.recorded_by", "is not a known field", id="recorded-by"),
    ],
)
def test_bad_corrections_are_refused_and_store_nothing(timeline, recorded, changes, field, fragment):
    before = log_length(timeline)
    errors = refusal(timeline.correct_development, recorded, changes, reason="r", recorded_by="bob")
    assert list(errors) == [field]
    assert any(fragment in message for message in errors[field]), errors[field]
    assert log_length(timeline) == before
    assert timeline.development(recorded).version == 1


@pytest.mark.parametrize("reason", [None, "", " \t "], ids=["none", "empty", "blank"])
def test_a_correction_needs_a_reason(timeline, recorded, reason):
    errors = refusal(timeline.correct_development, recorded, {"title": "New"}, reason=reason, recorded_by="bob")
    assert errors == {"reason": ["is required: say why"]}


def test_a_correction_may_add_sources(timeline, recorded):
    added = {"url": URL, "retrieved": "2023-09-20", "quote": "an anti-terrorist operation"}
    timeline.correct_development(recorded, {"certainty": "reported"}, reason="only one outlet", recorded_by="bob",
                                  sources=[added])
    event = last_event(timeline, recorded)
    assert event.sources == [added] and event.changes == {"certainty": "reported"}
    assert timeline.development(recorded).sources == [{"citation": "Reuters, 19 September 2023"}, added]


def test_sources_added_by_a_correction_are_validated(timeline, recorded):
    before = log_length(timeline)
    errors = refusal(timeline.correct_development, recorded, {"certainty": "reported"}, reason="r",
                     recorded_by="bob", sources=[{"citation": "AP"}, {"url": URL}])
    assert errors == {"sources[1].retrieved": ["is required with a url: the day it was read"]}
    assert log_length(timeline) == before


def test_a_correction_cannot_link_a_development_to_itself(timeline, recorded):
    errors = refusal(timeline.correct_development, recorded,
                     {"links": [{"type": "follows", "development": recorded}]}, reason="r", recorded_by="bob")
    assert errors == {"changes.links": ["a development cannot link to itself"]}


@pytest.mark.parametrize("sources", [True, 5, "AP"], ids=["true", "number", "text"])
def test_sources_added_by_a_correction_must_be_a_list(timeline, recorded, sources):
    """Not a crash of the import that carries them: a refusal naming the field."""
    command = {"id": recorded, "changes": {"certainty": "reported"}, "reason": "r", "sources": sources}
    errors = refusal(timeline.execute, [("correct_development", command)], recorded_by="bob")
    assert list(errors) == ["sources"] and "Expected `array`" in errors["sources"][0]


def test_a_shape_error_in_an_added_source_names_the_sources_field(timeline, recorded):
    errors = refusal(timeline.correct_development, recorded, {"certainty": "reported"}, reason="r",
                     recorded_by="bob", sources=[{"citation": "AP", "quote": "q" * 1001}])
    assert list(errors) == ["sources[0].quote"]


# --- further sources ----------------------------------------------------------------


def test_add_source_stores_the_checked_source(timeline, recorded):
    receipt = timeline.add_source(recorded, {"url": URL, "retrieved": "2023-09-20"}, recorded_by="carol")
    event = last_event(timeline, recorded)
    assert event.TOPIC == "timeline:Development.SourceAdded"
    assert (event.source, event.recorded_by) == ({"url": URL, "retrieved": "2023-09-20"}, "carol")
    assert receipt.version == 2 and receipt.position == log_length(timeline)


@pytest.mark.parametrize(
    ("added", "field_end", "fragment"),
    [
        pytest.param({"title": "No citation"}, "", "needs a citation or a url", id="no-citation-or-url"),
        pytest.param({"url": URL}, ".retrieved", "is required with a url", id="url-without-retrieved"),
        pytest.param({"citation": "c", "published": "2023-13"}, ".published", "is not a valid EDTF date",
                     id="published"),
    ],
)
def test_add_source_refuses_a_bad_source(timeline, recorded, added, field_end, fragment):
    before = log_length(timeline)
    errors = refusal(timeline.add_source, recorded, added, recorded_by="carol")
    (field,) = errors
    assert field == "source" + field_end
    assert fragment in errors[field][0]
    assert log_length(timeline) == before


@pytest.mark.parametrize(
    "added",
    [{"citation": "c", "quote": "q" * 1001}, None],
    ids=["quote-too-long", "missing"],
)
def test_add_source_shape_errors_name_the_source_field(timeline, recorded, added):
    errors = refusal(timeline.add_source, recorded, added, recorded_by="carol")
    assert all(field.startswith("source") for field in errors), errors


# --- versions and ids ------------------------------------------------------------------

COMMANDS = [
    pytest.param(lambda c, i, v: c.correct_development(i, {"title": "New"}, reason="r", recorded_by="b",
                                                       expected_version=v), id="correct"),
    pytest.param(lambda c, i, v: c.add_source(i, {"citation": "AP"}, recorded_by="b", expected_version=v),
                 id="add_source"),
    pytest.param(lambda c, i, v: c.retract_development(i, reason="r", recorded_by="b", expected_version=v),
                 id="retract"),
]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_stale_expected_version_is_refused(timeline, recorded, command):
    timeline.add_source(recorded, {"citation": "AP"}, recorded_by="carol")  # now at version 2
    before = log_length(timeline)
    with pytest.raises(StaleVersion) as caught:
        command(timeline, recorded, 1)
    assert (caught.value.current, caught.value.expected) == (2, 1)
    assert "is at version 2, not 1" in str(caught.value)
    assert log_length(timeline) == before


def test_a_stale_expected_version_is_refused_on_restore(timeline, recorded):
    timeline.retract_development(recorded, reason="duplicate", recorded_by="dave")
    with pytest.raises(StaleVersion) as caught:
        timeline.restore_development(recorded, reason="r", recorded_by="b", expected_version=1)
    assert caught.value.current == 2


@pytest.mark.parametrize("command", COMMANDS)
def test_the_current_expected_version_is_accepted(timeline, recorded, command):
    assert command(timeline, recorded, 1).version == 2


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "ident",
    [str(uuid.uuid4()), "not-a-uuid", str(Actor.create_id("armenia"))],
    ids=["unknown-uuid", "not-a-uuid", "an-actor"],
)
def test_an_unknown_development_is_not_found(timeline, command, ident):
    with pytest.raises(NotFound) as caught:
        command(timeline, ident, None)
    assert caught.value.kind == "development"
    assert "no development with id" in str(caught.value)


def test_reading_an_unknown_development_is_not_found(timeline):
    with pytest.raises(NotFound, match="no development with id"):
        timeline.development(uuid.uuid4())


# --- recording with a client-chosen id -----------------------------------------------


def test_recording_the_same_development_twice_is_a_no_op(timeline):
    ident = str(uuid.uuid4())
    first = timeline.record_development(development(id=ident), recorded_by="importer")
    length = log_length(timeline)
    again = timeline.record_development(development(id=ident), recorded_by="importer")
    assert first == Receipt(ident, 1, length, True)
    assert again == Receipt(ident, 1, None, False)
    assert log_length(timeline) == length
    assert len(stored_events(timeline, ident)) == 1


def test_recording_a_corrected_development_again_is_a_no_op_at_its_current_version(timeline):
    ident = str(uuid.uuid4())
    timeline.record_development(development(id=ident), recorded_by="importer")
    timeline.correct_development(ident, {"title": "New"}, reason="r", recorded_by="bob")
    length = log_length(timeline)
    again = timeline.record_development(development(id=ident), recorded_by="importer")
    assert again == Receipt(ident, 2, None, False)
    assert log_length(timeline) == length


def test_recording_other_content_under_a_taken_id_is_a_conflict(timeline):
    ident = str(uuid.uuid4())
    timeline.record_development(development(id=ident), recorded_by="importer")
    length = log_length(timeline)
    with pytest.raises(Conflict, match=f"{ident} is already in the record with other content"):
        timeline.record_development(development(id=ident, title="Something else"), recorded_by="importer")
    assert log_length(timeline) == length
    assert timeline.development(ident).title == development()["title"]


def later_commands(ident: str, citation: str = "AP, 20 September 2023") -> list[tuple[str, dict[str, Any]]]:
    """A recording with a source added and a correction, as an import file has them."""
    return [("record_development", development(id=ident)),
            ("add_source", {"id": ident, "source": {"citation": citation}}),
            ("correct_development", {"id": ident, "changes": {"certainty": "reported"}, "reason": "one outlet"})]


def test_later_commands_on_a_recording_stored_already_are_stored_after_it(timeline):
    """Importing a recording with its later events, once the recording alone is in the
    record (an earlier import, a retry), stores the later events: they were dropped
    with the recording's no-op, and counted as already present."""
    ident = str(uuid.uuid4())
    timeline.record_development(development(id=ident), recorded_by="importer")
    before = log_length(timeline)
    receipts = timeline.execute(later_commands(ident), recorded_by="importer")
    assert receipts == [Receipt(ident, 1, None, False), Receipt(ident, 2, before + 1, False),
                        Receipt(ident, 3, before + 2, False)]
    stated = timeline.development(ident)
    assert stated.version == 3 and stated.certainty == "reported"
    assert stated.sources == [{"citation": "Reuters, 19 September 2023"}, {"citation": "AP, 20 September 2023"}]

    again = timeline.execute(later_commands(ident), recorded_by="someone else")  # all of it there: no-ops
    assert again == [Receipt(ident, 3, None, False)] * 3 and log_length(timeline) == before + 2


def test_later_commands_that_differ_from_the_record_are_a_conflict(timeline):
    ident = str(uuid.uuid4())
    timeline.execute(later_commands(ident)[:2], recorded_by="importer")
    length = log_length(timeline)
    with pytest.raises(BatchRejected) as caught:
        timeline.execute(later_commands(ident, citation="TASS"), recorded_by="importer")
    assert list(caught.value.failures) == [1]  # the source added: the record has another one
    assert "is in the record with other events since version 1" in str(caught.value.failures[1])
    assert log_length(timeline) == length


def test_recording_again_with_true_for_a_stored_1_is_a_conflict(timeline):
    """1 and true are different values (JSON tells them apart); the record keeps what was sent."""
    ident = str(uuid.uuid4())
    effect = {"actor": "armenia", "attribute": "membership.csto", "value": 1}
    timeline.record_development(development(id=ident, effects=[effect]), recorded_by="importer")
    with pytest.raises(Conflict, match="already in the record with other content"):
        timeline.record_development(development(id=ident, effects=[{**effect, "value": True}]), recorded_by="x")


# --- batches ------------------------------------------------------------------------


def test_a_batch_is_stored_whole(memory_chronicle):
    receipts = memory_chronicle.execute(
        [
            ("register_actor", {"id": "armenia", "name": "Armenia", "kind": "state"}),
            ("register_actor", {"id": "azerbaijan", "name": "Azerbaijan", "kind": "state"}),
            ("record_development", development()),
        ],
        recorded_by="importer",
    )
    assert [r.id for r in receipts[:2]] == ["armenia", "azerbaijan"]
    assert all(r.created and r.version == 1 for r in receipts)
    assert receipts[-1].position == log_length(memory_chronicle) == 3
    assert memory_chronicle.development(receipts[2].id).actors == development()["actors"]


def test_a_development_may_reference_an_actor_registered_earlier_in_the_batch(timeline):
    receipts = timeline.execute(
        [
            ("register_actor", {"id": "csto", "name": "CSTO", "kind": "organization"}),
            ("record_development", development(actors=[{"actor": "csto", "role": "subject"}],
                                               effects=[{"actor": "csto", "attribute": "member.armenia",
                                                         "value": False}])),
        ],
        recorded_by="importer",
    )
    assert timeline.is_registered("csto")
    assert timeline.development(receipts[1].id).actors == [{"actor": "csto", "role": "subject"}]


def test_an_actor_registered_later_in_the_batch_is_not_yet_known(timeline):
    before = log_length(timeline)
    with pytest.raises(BatchRejected) as caught:
        timeline.execute(
            [
                ("record_development", development(actors=[{"actor": "csto", "role": "subject"}])),
                ("register_actor", {"id": "csto", "name": "CSTO", "kind": "organization"}),
            ],
            recorded_by="importer",
        )
    assert set(caught.value.failures) == {0}
    assert caught.value.errors == {"[0].actors[0].actor": ["'csto' is not a registered actor"]}
    assert log_length(timeline) == before


def test_one_invalid_command_rejects_the_whole_batch(timeline):
    before = log_length(timeline)
    with pytest.raises(BatchRejected) as caught:
        timeline.execute(
            [
                ("register_actor", {"id": "csto", "name": "CSTO", "kind": "organization"}),
                ("record_development", development(actors=[{"actor": "csto", "role": "subject"}])),
                ("record_development", development(title="")),
                ("record_development", development()),
            ],
            recorded_by="importer",
        )
    rejected = caught.value
    assert set(rejected.failures) == {2}
    assert rejected.failures[2].errors == {"title": ["must not be empty"]}
    assert rejected.errors == {"[2].title": ["must not be empty"]}
    assert timeline.recorder.max_notification_id() == before
    assert not timeline.is_registered("csto")


def test_every_failing_command_of_a_batch_is_reported(timeline, recorded):
    with pytest.raises(BatchRejected) as caught:
        timeline.execute(
            [
                ("record_development", development(category="war")),
                ("record_development", development()),
                ("retract_development", {"id": str(uuid.uuid4()), "reason": "r"}),
                ("correct_development", {"id": recorded, "changes": {"title": "x"}, "reason": "r",
                                         "expected_version": 7}),
                ("frobnicate", {}),
            ],
            recorded_by="importer",
        )
    failures = caught.value.failures
    assert set(failures) == {0, 2, 3, 4}
    assert all(isinstance(error, InvalidInput) for error in failures.values())
    assert "'war' is not one of" in failures[0].errors["category"][0]
    assert "no development with id" in failures[2].errors["id"][0]
    assert "is at version 1, not 7" in failures[3].errors["id"][0]
    assert "'frobnicate' is not one of" in failures[4].errors["command"][0]


def test_a_conflict_in_a_batch_rejects_the_batch(timeline):
    ident = str(uuid.uuid4())
    timeline.record_development(development(id=ident), recorded_by="importer")
    before = log_length(timeline)
    with pytest.raises(BatchRejected) as caught:
        timeline.execute(
            [("record_development", development(title="New one")),
             ("record_development", development(id=ident, title="Other content"))],
            recorded_by="importer",
        )
    assert set(caught.value.failures) == {1}
    assert "already in the record with other content" in caught.value.failures[1].errors["id"][0]
    assert log_length(timeline) == before


@pytest.mark.parametrize(
    ("command", "field", "fragment"),
    [
        pytest.param(("frobnicate", {}), "command", "'frobnicate' is not one of: register_actor", id="unknown"),
        pytest.param(("record_development", ["not", "a", "mapping"]), "record_development", "must be an object",
                     id="not-a-mapping"),
        pytest.param(("retract_development", {"reason": "r"}), "id", "is required", id="no-id"),
    ],
)
def test_a_malformed_command_is_refused(timeline, command, field, fragment):
    errors = refusal(timeline.execute, [command], recorded_by="importer")
    assert list(errors) == [field] and fragment in errors[field][0]


def test_a_misspelt_argument_is_refused_not_ignored(timeline, recorded):
    """An import line is a command with its arguments: a retraction whose
    ``superseded_by`` is misspelt must not be stored as a retraction without it."""
    other = timeline.record_development(development(title="The replacement"), recorded_by="importer").id
    before = log_length(timeline)
    errors = refusal(timeline.execute, [("retract_development", {"id": recorded, "reason": "duplicate",
                                                                 "superseeded_by": other})], recorded_by="importer")
    assert errors == {"superseeded_by": ["is not an argument of retract_development"]}
    assert log_length(timeline) == before and not timeline.development(recorded).retracted


@pytest.mark.parametrize(
    ("name", "args"),
    [
        pytest.param("correct_actor", {"id": "armenia", "changes": {"name": "Armenien"}, "reason": "r"},
                     id="correct_actor"),
        pytest.param("correct_development", {"changes": {"title": "New"}, "reason": "r"}, id="correct_development"),
        pytest.param("add_source", {"source": {"citation": "AP"}}, id="add_source"),
        pytest.param("retract_development", {"reason": "r"}, id="retract_development"),
        pytest.param("restore_development", {"reason": "r"}, id="restore_development"),
    ],
)
def test_every_command_on_a_stream_names_its_unknown_arguments(timeline, recorded, name, args):
    args = {"id": recorded, **args, "expected_version": None}
    errors = refusal(timeline.execute, [(name, {**args, "note": "x", "by": "y"})], recorded_by="importer")
    assert errors == {"by": [f"is not an argument of {name}"], "note": [f"is not an argument of {name}"]}


@pytest.mark.parametrize("version", ["1", True, 1.0, [1]], ids=["text", "true", "float", "list"])
def test_an_expected_version_that_is_not_a_whole_number_is_refused(timeline, recorded, version):
    """An import line may name the version it expects: ``"1"`` is not version 1 (it was
    refused as stale, "at version 1, not 1"), and ``true`` equals 1 in Python."""
    before = log_length(timeline)
    errors = refusal(timeline.execute, [("add_source", {"id": recorded, "source": {"citation": "AP"},
                                                        "expected_version": version})], recorded_by="importer")
    assert errors == {"expected_version": ["must be a stream version: a whole number"]}
    assert log_length(timeline) == before


def test_a_single_command_raises_its_own_error_not_batch_rejected(timeline):
    with pytest.raises(NotFound) as caught:
        timeline.execute([("retract_development", {"id": str(uuid.uuid4()), "reason": "r"})], recorded_by="x")
    assert not isinstance(caught.value, BatchRejected)


def test_the_same_id_twice_in_one_batch_is_refused(timeline):
    ident = str(uuid.uuid4())
    with pytest.raises(BatchRejected) as caught:
        timeline.execute([("record_development", development(id=ident)),
                           ("record_development", development(id=ident))], recorded_by="importer")
    assert caught.value.errors == {"[1].id": [f"{ident} is recorded twice in this batch"]}


def test_a_batch_may_record_correct_and_retract_one_development(timeline):
    ident = str(uuid.uuid4())
    receipts = timeline.execute(
        [
            ("record_development", development(id=ident)),
            ("correct_development", {"id": ident, "changes": {"when": "2023-09-19~"}, "reason": "approximate"}),
            ("retract_development", {"id": ident, "reason": "duplicate"}),
        ],
        recorded_by="importer",
    )
    assert [(r.id, r.version, r.created) for r in receipts] == [(ident, 1, True), (ident, 2, False), (ident, 3, False)]
    dev = timeline.development(ident)
    assert (dev.when, dev.qualified, dev.retracted) == ("2023-09-19~", True, True)
    assert stored_topics(timeline, ident) == [TOPIC + "Recorded", TOPIC + "Corrected", TOPIC + "Retracted"]


def test_an_empty_batch_stores_nothing(timeline):
    before = log_length(timeline)
    assert timeline.execute([], recorded_by="importer") == []
    assert log_length(timeline) == before


def test_a_no_op_in_a_batch_does_not_drop_the_other_writes(timeline):
    before = log_length(timeline)
    receipts = timeline.execute(
        [("register_actor", ACTORS[0]), ("record_development", development())],
        recorded_by="importer",
    )
    assert timeline.development(receipts[1].id).version == 1, "the new development is stored"
    assert receipts[0] == Receipt("armenia", 1, None, False)
    assert receipts[1].created and receipts[1].position == before + 1
    assert log_length(timeline) == before + 1


def test_each_receipt_of_a_batch_carries_the_position_of_its_own_write(timeline):
    ident = str(uuid.uuid4())
    before = log_length(timeline)
    receipts = timeline.execute(
        [
            ("record_development", development(id=ident)),
            ("correct_development", {"id": ident, "changes": {"title": "New"}, "reason": "r"}),
            ("retract_development", {"id": ident, "reason": "duplicate"}),
        ],
        recorded_by="importer",
    )
    assert [r.position for r in receipts] == [before + 1, before + 2, before + 3]
