"""Actors: the rules on their details, their ids (uuid5 of the slug), the Actor aggregate's
events and the Chronicle's register_actor and correct_actor."""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import pytest

from events import vocabulary
from events.actor import Actor
from events.chronicle import BatchRejected, Chronicle, Receipt
from events.errors import Conflict, InvalidInput, NotFound, StaleVersion
from events.rules import check_actor

DROP = object()


def actor(**overrides: Any) -> dict[str, Any]:
    """A valid actor; each keyword replaces a field (``DROP`` removes it)."""
    data = {"id": "armenia", "name": "Armenia", "kind": "state"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not DROP}


def full_actor() -> dict[str, Any]:
    return actor(
        names={"de": "Armenien", "hy": "Հայաստան", "az-Latn": "Ermənistan", "ru": "Армения"},
        aliases=["Republic of Armenia", "RA"],
        description="A state in the South Caucasus.",
        wikidata="Q399",
    )


def errors_of(data: Any) -> dict[str, list[str]]:
    with pytest.raises(InvalidInput) as caught:
        check_actor(data)
    return caught.value.errors


def log_length(chronicle: Chronicle) -> int:
    return chronicle.recorder.max_notification_id() or 0


# --- actor details -------------------------------------------------------------------


def test_a_minimal_actor_passes_with_defaults():
    assert check_actor(actor()) == {
        "id": "armenia", "name": "Armenia", "kind": "state",
        "names": {}, "aliases": [], "description": None, "wikidata": None,
    }


def test_a_full_actor_passes_unchanged():
    assert check_actor(full_actor()) == full_actor()


@pytest.mark.parametrize("kind", vocabulary.ACTOR_KINDS)
def test_every_actor_kind_is_accepted(kind):
    assert check_actor(actor(kind=kind))["kind"] == kind


@pytest.mark.parametrize(
    "slug",
    ["armenia", "united-states", "un.security_council", "g7", "a" * 64, "x"],
    ids=["word", "hyphen", "dot-and-underscore", "digits", "64-characters", "one-letter"],
)
def test_valid_slugs_are_accepted(slug):
    assert check_actor(actor(id=slug))["id"] == slug


SLUG_MESSAGE = "must be an actor id like 'armenia' or 'united-states'"


def bad(case_id: str, overrides: dict[str, Any], field: str, fragment: str, *marks: Any) -> Any:
    return pytest.param(overrides, field, fragment, id=case_id, marks=marks)


BAD = [
    bad("slug-missing", {"id": DROP}, "id", "is required"),
    bad("slug-empty", {"id": ""}, "id", SLUG_MESSAGE),
    bad("slug-upper-case", {"id": "Armenia"}, "id", SLUG_MESSAGE),
    bad("slug-space", {"id": "united states"}, "id", SLUG_MESSAGE),
    bad("slug-double-hyphen", {"id": "united--states"}, "id", SLUG_MESSAGE),
    bad("slug-leading-hyphen", {"id": "-armenia"}, "id", SLUG_MESSAGE),
    bad("slug-trailing-dot", {"id": "armenia."}, "id", SLUG_MESSAGE),
    bad("slug-slash", {"id": "actors/armenia"}, "id", SLUG_MESSAGE),
    bad("slug-non-ascii", {"id": "ermənistan"}, "id", SLUG_MESSAGE),
    bad("slug-final-newline", {"id": "armenia\n"}, "id", SLUG_MESSAGE),
    bad("slug-too-long", {"id": "a" * 65}, "id", "must have at most 64 characters"),
    bad("slug-not-text", {"id": 7}, "id", "Expected `str`, got `int`"),
    bad("name-missing", {"name": DROP}, "name", "is required"),
    bad("name-empty", {"name": ""}, "name", "must not be empty"),
    bad("name-blank", {"name": "   "}, "name", "must not be blank"),
    bad("name-too-long", {"name": "n" * 201}, "name", "must have at most 200 characters"),
    bad("kind-missing", {"kind": DROP}, "kind", "is required"),
    bad("kind-unknown", {"kind": "country"}, "kind",
        "'country' is not one of: state, organization, person, media, armed_group, other"),
    bad("names-key-a-word", {"names": {"german": "Armenien"}}, "names", "key must be a BCP 47 language tag"),
    bad("names-key-one-letter", {"names": {"d": "Armenien"}}, "names", "key must be a BCP 47 language tag"),
    bad("names-key-underscore", {"names": {"de_AT": "Armenien"}}, "names", "key must be a BCP 47 language tag"),
    bad("names-key-final-newline", {"names": {"de\n": "Armenien"}}, "names", "key must be a BCP 47 language tag"),
    bad("names-not-an-object", {"names": ["de", "Armenien"]}, "names", "Expected `object`"),
    bad("aliases-too-many", {"aliases": [f"alias {i}" for i in range(101)]}, "aliases",
        "must have at most 100 entries"),
    bad("alias-empty", {"aliases": ["RA", ""]}, "aliases[1]", "must not be empty"),
    bad("alias-twice", {"aliases": ["RA", "Yerevan", "RA"]}, "aliases[2]", "'RA' is already listed"),
    bad("description-too-long", {"description": "d" * 5001}, "description", "must have at most 5000 characters"),
    bad("description-blank", {"description": " \n "}, "description", "must not be blank"),
    bad("wikidata-no-q", {"wikidata": "399"}, "wikidata", "must be a Wikidata id like 'Q399'"),
    bad("wikidata-lower-case", {"wikidata": "q399"}, "wikidata", "must be a Wikidata id like 'Q399'"),
    bad("wikidata-leading-zero", {"wikidata": "Q0399"}, "wikidata", "must be a Wikidata id like 'Q399'"),
    bad("wikidata-property", {"wikidata": "P31"}, "wikidata", "must be a Wikidata id like 'Q399'"),
    bad("wikidata-final-newline", {"wikidata": "Q399\n"}, "wikidata", "must be a Wikidata id like 'Q399'"),
    bad("wikidata-url", {"wikidata": "https://www.wikidata.org/wiki/Q399"}, "wikidata",
        "must be a Wikidata id like 'Q399'"),
    bad("unknown-field", {"capital": "Yerevan"}, "capital", "is not a known field"),
    bad("recorded-by-given", {"recorded_by": "mallory"}, "recorded_by", "is not a known field"),
    bad("nul-in-name", {"name": "Armenia\x00"}, "name", "must not contain NUL characters"),
    bad("surrogate-in-description", {"description": "\ud800"}, "description", "unpaired surrogates"),
    bad("nul-in-alias", {"aliases": ["\x00"]}, "aliases[0]", "must not contain NUL characters"),
]


@pytest.mark.parametrize(("overrides", "field", "fragment"), BAD)
def test_bad_actor_details_are_refused_naming_the_field(overrides, field, fragment):
    errors = errors_of(actor(**overrides))
    assert list(errors) == [field], f"expected only {field!r} to be named, got {errors}"
    assert any(fragment in message for message in errors[field]), errors[field]


@pytest.mark.parametrize(
    "names",
    [{"de": ""}, {"de": "\x00"}, {"de": "n" * 201}],
    ids=["empty", "nul", "too-long"],
)
def test_a_bad_name_in_another_language_is_refused_under_names(names):
    errors = errors_of(actor(names=names))
    (field,) = errors
    assert field.startswith("names")


def test_a_body_that_is_not_an_object_is_refused():
    assert "Expected `object`" in errors_of("armenia")["body"][0]


# --- ids ----------------------------------------------------------------------------


def test_an_actor_id_is_the_uuid5_of_its_slug_and_is_stable():
    assert Actor.create_id("armenia") == uuid5(NAMESPACE_URL, "/actors/armenia")
    assert Actor.create_id("armenia") == UUID("3d90a00c-9669-53b1-a42e-e24b9eb2806d")
    assert Actor.create_id("armenia") == Actor.create_id("armenia")


def test_different_slugs_have_different_ids():
    assert len({Actor.create_id(s) for s in ("armenia", "azerbaijan", "armenia-1", "armenia.")}) == 4


# --- the aggregate on its own ---------------------------------------------------------


def new_actor(**overrides: Any) -> Actor:
    payload = check_actor(actor(**overrides))
    slug = payload.pop("id")
    return Actor(slug=slug, recorded_by="alice", **payload)


def test_registering_produces_a_registered_event():
    armenia = new_actor(wikidata="Q399")
    (event,) = armenia.collect_events()
    assert isinstance(event, Actor.Registered)
    assert event.TOPIC == "timeline:Actor.Registered"
    assert (event.slug, event.name, event.kind, event.wikidata) == ("armenia", "Armenia", "state", "Q399")
    assert event.recorded_by == "alice"
    assert armenia.id == event.originator_id == Actor.create_id("armenia")


def test_correcting_produces_a_corrected_event():
    armenia = new_actor()
    armenia.collect_events()
    armenia.correct({"names": {"de": "Armenien"}}, "German name", "bob")
    (event,) = armenia.collect_events()
    assert type(event) is Actor.Corrected
    assert event.TOPIC == "timeline:Actor.Corrected"
    assert (event.changes, event.reason, event.recorded_by) == ({"names": {"de": "Armenien"}}, "German name", "bob")
    assert armenia.names == {"de": "Armenien"} and armenia.version == 2


def test_stated_gives_the_slug_as_id():
    stated = new_actor().stated()
    assert stated["id"] == "armenia" and "slug" not in stated
    assert stated["recorded_by"] == "alice"


# --- through the Chronicle -------------------------------------------------------------


@pytest.fixture
def timeline(memory_chronicle: Chronicle) -> Chronicle:
    """An in-memory chronicle with Armenia registered by alice."""
    memory_chronicle.register_actor(actor(), recorded_by="alice")
    return memory_chronicle


def test_register_actor_stores_a_registered_event(memory_chronicle):
    receipt = memory_chronicle.register_actor(full_actor(), recorded_by="alice")
    assert receipt == Receipt("armenia", 1, log_length(memory_chronicle), True)
    stored = memory_chronicle.recorder.select_events(Actor.create_id("armenia"))
    assert [s.topic for s in stored] == ["timeline:Actor.Registered"]
    loaded = memory_chronicle.actor("armenia")
    assert loaded.stated() == {**full_actor(), "recorded_by": "alice"}
    assert memory_chronicle.is_registered("armenia")
    assert not memory_chronicle.is_registered("azerbaijan")


def test_registering_the_same_actor_again_is_a_no_op(timeline):
    length = log_length(timeline)
    again = timeline.register_actor(actor(), recorded_by="someone else")
    assert again == Receipt("armenia", 1, None, False)
    assert log_length(timeline) == length


def test_a_slug_can_be_registered_only_once(timeline):
    length = log_length(timeline)
    with pytest.raises(Conflict, match="armenia is already in the record with other content"):
        timeline.register_actor(actor(name="Republic of Armenia"), recorded_by="bob")
    assert log_length(timeline) == length
    assert timeline.actor("armenia").name == "Armenia"


def test_a_slug_registered_twice_in_one_batch_is_refused(memory_chronicle):
    with pytest.raises(BatchRejected) as caught:
        memory_chronicle.execute([("register_actor", actor()), ("register_actor", actor(name="Other"))],
                                 recorded_by="importer")
    assert caught.value.errors == {"[1].id": ["'armenia' is registered twice in this batch"]}
    assert log_length(memory_chronicle) == 0
    assert not memory_chronicle.is_registered("armenia")


def test_invalid_actor_details_store_nothing(memory_chronicle):
    with pytest.raises(InvalidInput) as caught:
        memory_chronicle.register_actor(actor(kind="country"), recorded_by="alice")
    assert list(caught.value.errors) == ["kind"]
    assert log_length(memory_chronicle) == 0


def test_correct_actor_stores_only_the_changed_fields(timeline):
    receipt = timeline.correct_actor(
        "armenia", {"names": {"de": "Armenien"}, "kind": "state", "wikidata": "Q399"},
        reason="German name and Wikidata", recorded_by="bob",
    )
    assert receipt == Receipt("armenia", 2, log_length(timeline), False)
    *_, event = timeline.events.get(Actor.create_id("armenia"))
    assert event.TOPIC == "timeline:Actor.Corrected"
    assert event.changes == {"names": {"de": "Armenien"}, "wikidata": "Q399"}
    assert (event.reason, event.recorded_by) == ("German name and Wikidata", "bob")
    armenia = timeline.actor("armenia")
    assert (armenia.names, armenia.wikidata, armenia.recorded_by) == ({"de": "Armenien"}, "Q399", "alice")


def test_correct_actor_accepts_the_current_expected_version(timeline):
    assert timeline.correct_actor("armenia", {"name": "Republic of Armenia"}, reason="official name",
                                  recorded_by="bob", expected_version=1).version == 2


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        pytest.param({"name": "Armenia"}, "changes", "the correction changes nothing", id="nothing"),
        pytest.param({}, "changes", "name at least one field to correct", id="empty"),
        pytest.param(None, "changes", "name at least one field to correct", id="none"),
        pytest.param({"id": "hayastan"}, "changes.id", "is fixed: register a new actor instead", id="id"),
    ],
)
def test_bad_actor_corrections_are_refused(timeline, changes, field, fragment):
    length = log_length(timeline)
    with pytest.raises(InvalidInput) as caught:
        timeline.correct_actor("armenia", changes, reason="r", recorded_by="bob")
    assert list(caught.value.errors) == [field]
    assert fragment in caught.value.errors[field][0]
    assert log_length(timeline) == length


CORRECTION_RULES = [
    pytest.param({"kind": "country"}, "kind", "'country' is not one of", id="kind"),
    pytest.param({"name": "  "}, "name", "must not be blank", id="blank-name"),
    pytest.param({"wikidata": "399"}, "wikidata", "must be a Wikidata id like 'Q399'", id="wikidata"),
    pytest.param({"names": {"armenian": "Հայաստան"}}, "names", "key must be a BCP 47 language tag", id="names-key"),
    pytest.param({"recorded_by": "mallory"}, "recorded_by", "is not a known field", id="recorded-by"),
    pytest.param({"slug": "hayastan"}, "slug", "is not a known field", id="slug"),
]


@pytest.mark.parametrize(("changes", "field", "fragment"), CORRECTION_RULES)
def test_actor_corrections_are_validated(timeline, changes, field, fragment):
    length = log_length(timeline)
    with pytest.raises(InvalidInput) as caught:
        timeline.correct_actor("armenia", changes, reason="r", recorded_by="bob")
    ((named, messages),) = caught.value.errors.items()
    assert named.endswith(field)
    assert fragment in messages[0]
    assert log_length(timeline) == length
    assert timeline.actor("armenia").version == 1


@pytest.mark.parametrize(("changes", "field", "fragment"), CORRECTION_RULES)
def test_actor_correction_errors_name_the_changes_path(timeline, changes, field, fragment):
    with pytest.raises(InvalidInput) as caught:
        timeline.correct_actor("armenia", changes, reason="r", recorded_by="bob")
    assert list(caught.value.errors) == [f"changes.{field}"]


@pytest.mark.parametrize("reason", [None, "", "   "], ids=["none", "empty", "blank"])
def test_an_actor_correction_needs_a_reason(timeline, reason):
    with pytest.raises(InvalidInput) as caught:
        timeline.correct_actor("armenia", {"name": "Republic of Armenia"}, reason=reason, recorded_by="bob")
    assert caught.value.errors == {"reason": ["is required: say why"]}


def test_an_actor_correction_with_a_stale_version_is_refused(timeline):
    timeline.correct_actor("armenia", {"wikidata": "Q399"}, reason="link", recorded_by="bob")
    with pytest.raises(StaleVersion) as caught:
        timeline.correct_actor("armenia", {"name": "Republic of Armenia"}, reason="r", recorded_by="bob",
                               expected_version=1)
    assert (caught.value.current, caught.value.expected) == (2, 1)


def test_correcting_an_unknown_actor_is_not_found(timeline):
    with pytest.raises(NotFound) as caught:
        timeline.correct_actor("narnia", {"name": "Narnia"}, reason="r", recorded_by="bob")
    assert caught.value.kind == "actor"


def test_correcting_without_an_actor_id_is_refused(timeline):
    with pytest.raises(InvalidInput) as caught:
        timeline.correct_actor("", {"name": "X"}, reason="r", recorded_by="bob")
    assert caught.value.errors == {"id": ["is required"]}


def test_not_found_names_the_slug_that_was_asked_for(timeline):
    with pytest.raises(NotFound) as caught:
        timeline.actor("narnia")
    assert caught.value.ident == "narnia"
    assert "'narnia'" in str(caught.value)


def test_a_development_is_not_an_actor(timeline):
    receipt = timeline.record_development(
        {"title": "Armenia recognises the ICC", "category": "institutional", "when": "2024-02-01",
         "certainty": "confirmed", "actors": [{"actor": "armenia", "role": "subject"}],
         "sources": [{"citation": "ICC press release"}]},
        recorded_by="alice",
    )
    with pytest.raises(NotFound):
        timeline.load(UUID(receipt.id), Actor, "actor")
