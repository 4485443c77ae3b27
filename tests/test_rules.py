"""The rules a development must satisfy (events.rules over the shapes of events.values):
every bad input is refused with its field path and a clear message."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from events import vocabulary
from events.errors import InvalidInput
from events.rules import check_changes, check_development, check_reason, check_sources, same

REGISTERED = {"armenia", "azerbaijan", "russia"}
DROP = object()
"""An override value that removes the field."""

URL = "https://www.reuters.com/world/asia-pacific/azerbaijan-launches-operation-2023-09-19/"
OTHER_ID = "1c9b8e5e-6c9b-4d38-9c35-8f7f1c0f2b11"


def is_registered(slug: str) -> bool:
    return slug in REGISTERED


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


def source(**overrides: Any) -> list[dict[str, Any]]:
    """A one-source list whose source is a valid URL source with ``overrides``."""
    data = {"url": URL, "retrieved": "2023-09-20"}
    data.update(overrides)
    return [{k: v for k, v in data.items() if v is not DROP}]


def errors_of(data: Any) -> dict[str, list[str]]:
    with pytest.raises(InvalidInput) as caught:
        check_development(data, is_registered)
    return caught.value.errors


def full_development() -> dict[str, Any]:
    return development(
        id=OTHER_ID,
        summary="Azerbaijan announced 'local anti-terrorist measures'; fighting ended the next day.",
        language="en",
        codings=[{"scheme": "CAMEO", "code": "190", "version": "1.1b3", "label": "Use conventional military force"}],
        effects=[
            {"actor": "armenia", "attribute": "control.karabakh", "value": False},
            {"actor": "azerbaijan", "attribute": "control.karabakh", "value": True},
            {"actor": "russia", "attribute": "presence.peacekeepers", "value": None},
        ],
        location={"name": "Stepanakert", "country": "AZE", "lat": 39.8153, "lon": 46.7519},
        tags=["karabakh", "2023 offensive"],
        links=[{"type": "follows", "development": str(uuid.uuid4())}],
        sources=[
            {"citation": "Reuters, 19 September 2023"},
            {
                "url": URL, "retrieved": "2023-09-20", "title": "Azerbaijan launches operation",
                "publisher": "Reuters", "author": "Staff", "published": "2023-09-19", "language": "en",
                "quote": "Azerbaijan launched what it called an anti-terrorist operation", "locator": "para. 1",
                "archive_url": "https://web.archive.org/web/2023/" + URL,
            },
        ],
    )


# --- valid developments ------------------------------------------------------------


def test_a_minimal_development_passes_with_derived_date_and_defaults():
    payload = check_development(development(), is_registered)
    assert payload["title"] == "Azerbaijan launches a military operation in Karabakh"
    assert (payload["earliest"], payload["latest"], payload["precision"], payload["qualified"]) == (
        "2023-09-19", "2023-09-19", "day", False,
    )
    assert payload["id"] is None
    assert payload["summary"] is None and payload["location"] is None
    assert payload["codings"] == payload["effects"] == payload["tags"] == payload["links"] == []


def test_a_full_development_passes_and_is_stored_as_plain_data():
    payload = check_development(full_development(), is_registered)
    assert payload["id"] == OTHER_ID
    assert payload["sources"][1]["retrieved"] == "2023-09-20", "dates become ISO strings"
    assert payload["effects"][2] == {"actor": "russia", "attribute": "presence.peacekeepers", "value": None}
    assert payload["location"]["lat"] == pytest.approx(39.8153)
    assert payload["sources"][0] == {"citation": "Reuters, 19 September 2023"}, "absent fields stay absent"


def test_the_input_is_not_modified():
    data = full_development()
    snapshot = repr(data)
    check_development(data, is_registered)
    assert repr(data) == snapshot


def test_a_client_chosen_id_is_normalised():
    payload = check_development(development(id=OTHER_ID.upper()), is_registered)
    assert payload["id"] == OTHER_ID


@pytest.mark.parametrize(
    ("when", "earliest", "latest", "precision", "qualified"),
    [
        ("2023-09", "2023-09-01", "2023-09-30", "month", False),
        ("2023", "2023-01-01", "2023-12-31", "year", False),
        ("2023-09-05~", "2023-09-05", "2023-09-05", "day", True),
        ("2023-~09", "2023-09-01", "2023-09-30", "month", True),
        ("[2023-09-01..2023-09-10]", "2023-09-01", "2023-09-10", "range", False),
        ("2023-09-11/2023-09-20", "2023-09-11", "2023-09-20", "interval", False),
        ("2023-23", "2023-09-01", "2023-11-30", "season", False),
        ("202X", "2020-01-01", "2029-12-31", "decade", False),
        ("2023-22/2023-24", "2023-06-01", "2024-02-29", "interval", False),
    ],
    ids=["month", "year", "approximate", "approximate-month", "range", "interval", "season", "decade",
         "interval-to-winter"],
)
def test_when_derives_earliest_latest_precision_qualified(when, earliest, latest, precision, qualified):
    payload = check_development(development(when=when), is_registered)
    assert payload["when"] == when
    assert (payload["earliest"], payload["latest"], payload["precision"], payload["qualified"]) == (
        earliest, latest, precision, qualified,
    )


@pytest.mark.parametrize("category", sorted(vocabulary.CATEGORIES))
def test_every_category_is_accepted(category):
    assert check_development(development(category=category), is_registered)["category"] == category


@pytest.mark.parametrize("certainty", vocabulary.CERTAINTIES)
def test_every_certainty_is_accepted(certainty):
    assert check_development(development(certainty=certainty), is_registered)["certainty"] == certainty


@pytest.mark.parametrize("role", vocabulary.ROLES)
def test_every_role_is_accepted(role):
    payload = check_development(development(actors=[{"actor": "armenia", "role": role}]), is_registered)
    assert payload["actors"] == [{"actor": "armenia", "role": role}]


@pytest.mark.parametrize("link_type", vocabulary.LINK_TYPES)
def test_every_link_type_is_accepted(link_type):
    payload = check_development(development(links=[{"type": link_type, "development": OTHER_ID}]), is_registered)
    assert payload["links"] == [{"type": link_type, "development": OTHER_ID}]


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"title": "x" * 300}, id="title-300"),
        pytest.param({"title": "Ա"}, id="title-1-armenian"),
        pytest.param({"title": "Protest in Yerevan 😀"}, id="title-emoji"),
        pytest.param({"summary": "s" * 5000}, id="summary-5000"),
        pytest.param({"language": "az-Latn"}, id="language-with-script"),
        pytest.param({"language": "hy"}, id="language-two-letters"),
        pytest.param({"language": "ckb"}, id="language-three-letters"),
        pytest.param({"tags": ["t" * 64]}, id="tag-64"),
        pytest.param({"tags": [f"tag{i}" for i in range(50)]}, id="50-tags"),
        pytest.param({"sources": [{"citation": "c", "quote": "q" * 1000}]}, id="quote-1000"),
        pytest.param({"sources": [{"citation": "c", "published": "2023-09~"}]}, id="published-edtf"),
        pytest.param({"sources": source(url="http://example.org/a")}, id="http-url"),
        pytest.param({"location": {"name": "North Pole", "lat": 90, "lon": 180}}, id="lat-lon-max"),
        pytest.param({"location": {"name": "South", "lat": -90, "lon": -180}}, id="lat-lon-min"),
        pytest.param({"actors": [{"actor": "armenia", "role": "target"}, {"actor": "armenia", "role": "speaker"}]},
                     id="same-actor-two-roles"),
        pytest.param({"effects": [{"actor": "armenia", "attribute": "membership.csto", "value": None}]},
                     id="effect-value-null"),
        pytest.param({"effects": [{"actor": "armenia", "attribute": "army_size", "value": 42000}]},
                     id="effect-value-int"),
        pytest.param({"effects": [{"actor": "armenia", "attribute": "leader.name-en", "value": "Nikol Pashinyan"}]},
                     id="effect-value-text"),
        pytest.param({"codings": [{"scheme": "PLOVER", "code": "ASSAULT"}] * 20}, id="20-codings"),
    ],
)
def test_values_at_the_limits_are_accepted(overrides):
    payload = check_development(development(**overrides), is_registered)
    for field, value in overrides.items():
        if field != "location":
            assert payload[field] == value
    if "location" in overrides:
        assert payload["location"]["lat"] == overrides["location"]["lat"]


# --- refused developments: one bad field per case ----------------------------------


CATEGORY_LIST = ", ".join(vocabulary.CATEGORIES)


def bad(case_id: str, overrides: dict[str, Any], field: str, fragment: str, *marks: Any) -> Any:
    return pytest.param(overrides, field, fragment, id=case_id, marks=marks)


BAD = [
    # title
    bad("title-missing", {"title": DROP}, "title", "is required"),
    bad("title-empty", {"title": ""}, "title", "must not be empty"),
    bad("title-blank", {"title": "  \t "}, "title", "must not be blank"),
    bad("title-too-long", {"title": "x" * 301}, "title", "must have at most 300 characters"),
    bad("title-not-text", {"title": 5}, "title", "Expected `str`, got `int`"),
    bad("title-null", {"title": None}, "title", "got `null`"),
    # summary, language, category
    bad("summary-too-long", {"summary": "s" * 5001}, "summary", "must have at most 5000 characters"),
    bad("language-word", {"language": "english"}, "language", "must be a BCP 47 language tag"),
    bad("language-one-letter", {"language": "e"}, "language", "must be a BCP 47 language tag"),
    bad("language-underscore", {"language": "de_DE"}, "language", "must be a BCP 47 language tag"),
    bad("language-final-newline", {"language": "de\n"}, "language", "must be a BCP 47 language tag"),
    bad("category-unknown", {"category": "war"}, "category", f"'war' is not one of: {CATEGORY_LIST}"),
    bad("category-missing", {"category": DROP}, "category", "is required"),
    bad("category-wrong-case", {"category": "Assault"}, "category", "'Assault' is not one of"),
    # codings
    bad("codings-not-a-list", {"codings": {"scheme": "CAMEO", "code": "190"}}, "codings", "Expected `array`"),
    bad("coding-without-code", {"codings": [{"scheme": "CAMEO"}]}, "codings[0].code", "is required"),
    bad("coding-without-scheme", {"codings": [{"code": "190"}]}, "codings[0].scheme", "is required"),
    bad("coding-empty-code", {"codings": [{"scheme": "CAMEO", "code": ""}]}, "codings[0].code",
        "must not be empty"),
    bad("coding-code-too-long", {"codings": [{"scheme": "CAMEO", "code": "1" * 65}]}, "codings[0].code",
        "must have at most 64 characters"),
    bad("coding-unknown-field", {"codings": [{"scheme": "CAMEO", "code": "190", "weight": 1}]},
        "codings[0].weight", "is not a known field"),
    bad("codings-too-many", {"codings": [{"scheme": "CAMEO", "code": "190"}] * 21}, "codings",
        "must have at most 20 entries"),
    # when
    bad("when-missing", {"when": DROP}, "when", "is required"),
    bad("when-empty", {"when": ""}, "when", "must not be empty"),
    bad("when-blank", {"when": "   "}, "when", "a date is required"),
    bad("when-not-text", {"when": 2023}, "when", "Expected `str`, got `int`"),
    bad("when-too-long", {"when": "2" * 101}, "when", "must have at most 100 characters"),
    bad("when-unspecified-month-digit", {"when": "2023-1X"}, "when", "is not a valid EDTF date"),
    bad("when-unspecified-day-digit", {"when": "2023-09-1X"}, "when", "is not a valid EDTF date"),
    bad("when-reversed-interval", {"when": "2023-09-20/2023-09-11"}, "when", "ends before it begins"),
    bad("when-impossible-day", {"when": "2023-02-30"}, "when", "is not a day of the calendar"),
    bad("when-open-start", {"when": "../2023"}, "when", "has an open or unknown end"),
    bad("when-open-end", {"when": "2023-09-19/"}, "when", "has an open or unknown end"),
    bad("when-year-0000", {"when": "0000"}, "when", "year 0000 is not supported"),
    # certainty
    bad("certainty-unknown", {"certainty": "likely"}, "certainty",
        "'likely' is not one of: confirmed, reported, claimed, disputed, denied"),
    bad("certainty-missing", {"certainty": DROP}, "certainty", "is required"),
    # actors
    bad("actors-missing", {"actors": DROP}, "actors", "is required"),
    bad("actors-empty", {"actors": []}, "actors", "must not be empty"),
    bad("actors-not-a-list", {"actors": "armenia"}, "actors", "Expected `array`"),
    bad("actors-too-many", {"actors": [{"actor": "armenia", "role": "target"}] * 101}, "actors",
        "must have at most 100 entries"),
    bad("role-unknown", {"actors": [{"actor": "armenia", "role": "victim"}]}, "actors[0].role",
        "'victim' is not one of: " + ", ".join(vocabulary.ROLES)),
    bad("role-missing", {"actors": [{"actor": "armenia"}]}, "actors[0].role", "is required"),
    bad("actor-missing", {"actors": [{"role": "target"}]}, "actors[0].actor", "is required"),
    bad("actor-not-a-slug", {"actors": [{"actor": "Armenia", "role": "target"}]}, "actors[0].actor",
        "must be an actor id like 'armenia'"),
    bad("actor-not-registered", {"actors": [{"actor": "narnia", "role": "target"}]}, "actors[0].actor",
        "'narnia' is not a registered actor"),
    bad("second-actor-not-registered",
        {"actors": [{"actor": "armenia", "role": "target"}, {"actor": "narnia", "role": "initiator"}]},
        "actors[1].actor", "'narnia' is not a registered actor"),
    bad("actor-and-role-twice",
        {"actors": [{"actor": "armenia", "role": "target"}, {"actor": "armenia", "role": "target"}]},
        "actors[1]", "armenia is already listed as target"),
    bad("participation-unknown-field", {"actors": [{"actor": "armenia", "role": "target", "weight": 2}]},
        "actors[0].weight", "is not a known field"),
    # sources
    bad("sources-missing", {"sources": DROP}, "sources", "is required"),
    bad("sources-empty", {"sources": []}, "sources", "must not be empty"),
    bad("source-without-citation-or-url", {"sources": [{"title": "An article"}]}, "sources[0]",
        "needs a citation or a url"),
    bad("source-empty-citation", {"sources": [{"citation": ""}]}, "sources[0]", "needs a citation or a url"),
    bad("url-without-retrieved", {"sources": source(retrieved=DROP)}, "sources[0].retrieved",
        "is required with a url: the day it was read"),
    bad("retrieved-impossible-day", {"sources": source(retrieved="2023-02-30")}, "sources[0].retrieved", "date"),
    bad("retrieved-not-a-date", {"sources": source(retrieved="yesterday")}, "sources[0].retrieved", "date"),
    bad("retrieved-fuzzy", {"sources": source(retrieved="2023-09")}, "sources[0].retrieved", "date"),
    bad("quote-too-long", {"sources": [{"citation": "c", "quote": "q" * 1001}]}, "sources[0].quote",
        "must have at most 1000 characters"),
    bad("second-source-quote-too-long", {"sources": [{"citation": "c"}, {"citation": "d", "quote": "q" * 1001}]},
        "sources[1].quote", "must have at most 1000 characters"),
    bad("published-not-edtf", {"sources": [{"citation": "c", "published": "2023-13-45"}]},
        "sources[0].published", "'2023-13-45' is not a valid EDTF date"),
    bad("published-open-end", {"sources": [{"citation": "c", "published": "2023-09-19/"}]},
        "sources[0].published", "has an open or unknown end"),
    bad("published-reversed", {"sources": [{"citation": "c", "published": "2023-09-20/2023-09-11"}]},
        "sources[0].published", "ends before it begins"),
    bad("published-empty", {"sources": [{"citation": "c", "published": ""}]},
        "sources[0].published", "must not be empty"),
    bad("source-language", {"sources": [{"citation": "c", "language": "english"}]}, "sources[0].language",
        "must be a BCP 47 language tag"),
    bad("source-unknown-field", {"sources": [{"citation": "c", "pages": "3"}]}, "sources[0].pages",
        "is not a known field"),
    bad("citation-too-long", {"sources": [{"citation": "c" * 501}]}, "sources[0].citation",
        "must have at most 500 characters"),
    bad("url-ftp", {"sources": source(url="ftp://example.org/a")}, "sources[0].url", "must be an http(s) URL"),
    bad("url-without-scheme", {"sources": source(url="www.reuters.com/a")}, "sources[0].url",
        "must be an http(s) URL"),
    bad("url-with-space", {"sources": source(url="https://example.org/a b")}, "sources[0].url",
        "must be an http(s) URL"),
    bad("archive-url-without-scheme", {"sources": [{"citation": "c", "archive_url": "web.archive.org/x"}]},
        "sources[0].archive_url", "must be an http(s) URL"),
    bad("url-final-newline", {"sources": source(url="https://example.org/a\n")}, "sources[0].url",
        "must be an http(s) URL"),
    # effects
    bad("effect-actor-not-registered",
        {"effects": [{"actor": "narnia", "attribute": "membership.csto", "value": True}]},
        "effects[0].actor", "'narnia' is not a registered actor"),
    bad("effect-value-missing", {"effects": [{"actor": "armenia", "attribute": "membership.csto"}]},
        "effects[0].value", "is required"),
    bad("effect-attribute-missing", {"effects": [{"actor": "armenia", "value": True}]},
        "effects[0].attribute", "is required"),
    bad("effect-value-a-list", {"effects": [{"actor": "armenia", "attribute": "m", "value": [1, 2]}]},
        "effects[0].value", "got `array`"),
    bad("effect-value-too-long", {"effects": [{"actor": "armenia", "attribute": "m", "value": "v" * 501}]},
        "effects[0].value", "must have at most 500 characters"),
    bad("effect-attribute-upper-case",
        {"effects": [{"actor": "armenia", "attribute": "Membership.CSTO", "value": True}]},
        "effects[0].attribute", "must be a dotted name"),
    bad("effect-attribute-empty-segment",
        {"effects": [{"actor": "armenia", "attribute": "membership..csto", "value": True}]},
        "effects[0].attribute", "must be a dotted name"),
    bad("effect-attribute-space",
        {"effects": [{"actor": "armenia", "attribute": "member ship", "value": True}]},
        "effects[0].attribute", "must be a dotted name"),
    bad("effect-attribute-final-newline",
        {"effects": [{"actor": "armenia", "attribute": "membership.csto\n", "value": True}]},
        "effects[0].attribute", "must be a dotted name"),
    # location
    bad("country-alpha-2", {"location": {"name": "Stepanakert", "country": "AZ"}}, "location.country",
        "must be an ISO 3166-1 alpha-3 country code"),
    bad("country-lower-case", {"location": {"name": "Stepanakert", "country": "aze"}}, "location.country",
        "must be an ISO 3166-1 alpha-3 country code"),
    bad("country-final-newline", {"location": {"name": "Stepanakert", "country": "AZE\n"}}, "location.country",
        "must be an ISO 3166-1 alpha-3 country code"),
    bad("lat-above-90", {"location": {"name": "x", "lat": 90.5}}, "location.lat", "<= 90"),
    bad("lat-below-minus-90", {"location": {"name": "x", "lat": -91}}, "location.lat", ">= -90"),
    bad("lon-above-180", {"location": {"name": "x", "lon": 180.5}}, "location.lon", "<= 180"),
    bad("lon-below-minus-180", {"location": {"name": "x", "lon": -181}}, "location.lon", ">= -180"),
    bad("lat-text", {"location": {"name": "x", "lat": "40.1"}}, "location.lat", "got `str`"),
    bad("location-without-name", {"location": {"country": "ARM"}}, "location.name", "is required"),
    bad("location-unknown-field", {"location": {"name": "x", "altitude": 900}}, "location.altitude",
        "is not a known field"),
    # tags
    bad("tag-empty", {"tags": [""]}, "tags[0]", "must not be empty"),
    bad("tag-too-long", {"tags": ["ok", "t" * 65]}, "tags[1]", "must have at most 64 characters"),
    bad("tags-too-many", {"tags": [f"tag{i}" for i in range(51)]}, "tags", "must have at most 50 entries"),
    bad("tag-not-text", {"tags": [7]}, "tags[0]", "Expected `str`, got `int`"),
    bad("tag-twice", {"tags": ["ceasefire", "csto", "ceasefire"]}, "tags[2]", "'ceasefire' is already listed"),
    # links
    bad("link-type-unknown", {"links": [{"type": "causes", "development": OTHER_ID}]}, "links[0].type",
        "'causes' is not one of: " + ", ".join(vocabulary.LINK_TYPES)),
    bad("link-development-not-uuid", {"links": [{"type": "follows", "development": "2023-offensive"}]},
        "links[0].development", "Invalid UUID"),
    bad("link-development-missing", {"links": [{"type": "follows"}]}, "links[0].development", "is required"),
    bad("link-twice", {"links": [{"type": "follows", "development": OTHER_ID}] * 2}, "links[1]", "is already listed"),
    bad("link-to-itself", {"id": OTHER_ID, "links": [{"type": "follows", "development": OTHER_ID}]},
        "links", "a development cannot link to itself"),
    # id and unknown fields
    bad("id-not-uuid", {"id": "not-a-uuid"}, "id", "Invalid UUID"),
    bad("unknown-field", {"importance": 5}, "importance", "is not a known field"),
    bad("derived-field-given", {"earliest": "2000-01-01"}, "earliest", "is not a known field"),
    bad("recorded-by-given", {"recorded_by": "mallory"}, "recorded_by", "is not a known field"),
    # text that cannot be stored
    bad("nul-in-title", {"title": "Protest\x00"}, "title", "must not contain NUL characters"),
    bad("surrogate-in-title", {"title": "Protest \ud800"}, "title", "unpaired surrogates"),
    bad("nul-in-summary", {"summary": "a\x00b"}, "summary", "must not contain NUL characters"),
    bad("surrogate-in-quote", {"sources": [{"citation": "c", "quote": "\ud800"}]}, "sources[0].quote",
        "unpaired surrogates"),
    bad("nul-in-tag", {"tags": ["a\x00"]}, "tags[0]", "must not contain NUL characters"),
    bad("surrogate-in-location-name", {"location": {"name": "\udfff"}}, "location.name", "unpaired surrogates"),
    bad("nul-in-effect-value", {"effects": [{"actor": "armenia", "attribute": "m", "value": "\x00"}]},
        "effects[0].value", "must not contain NUL characters"),
    # effects: one value per (actor, attribute)
    bad("effect-attribute-twice",
        {"effects": [{"actor": "armenia", "attribute": "membership.csto", "value": "member"},
                     {"actor": "armenia", "attribute": "membership.csto", "value": "withdrawn"}]},
        "effects[1]", "membership.csto of armenia is already set by effects[0]"),
    bad("effect-attribute-twice-same-value",
        {"effects": [{"actor": "armenia", "attribute": "membership.csto", "value": True}] * 2},
        "effects[1]", "membership.csto of armenia is already set by effects[0]"),
    bad("effect-attribute-set-and-ended",
        {"effects": [{"actor": "armenia", "attribute": "membership.csto", "value": "member"},
                     {"actor": "russia", "attribute": "membership.csto", "value": "member"},
                     {"actor": "armenia", "attribute": "membership.csto", "value": None}]},
        "effects[2]", "membership.csto of armenia is already set by effects[0]"),
    bad("effect-1-and-true", {"effects": [{"actor": "armenia", "attribute": "m", "value": 1},
                                          {"actor": "armenia", "attribute": "m", "value": True}]},
        "effects[1]", "m of armenia is already set by effects[0]"),
]


@pytest.mark.parametrize(("overrides", "field", "fragment"), BAD)
def test_bad_input_is_refused_naming_the_field_with_a_clear_message(overrides, field, fragment):
    errors = errors_of(development(**overrides))
    assert list(errors) == [field], f"expected only {field!r} to be named, got {errors}"
    assert any(fragment in message for message in errors[field]), errors[field]


def test_an_attribute_repeated_three_times_names_each_repeat_and_the_first():
    errors = errors_of(development(effects=[{"actor": "armenia", "attribute": "m", "value": v} for v in "abc"]))
    assert errors == {
        "effects[1]": ["m of armenia is already set by effects[0]; give it one value"],
        "effects[2]": ["m of armenia is already set by effects[0]; give it one value"],
    }


def test_one_attribute_of_several_actors_and_several_attributes_of_one_actor_are_accepted():
    effects = [
        {"actor": "armenia", "attribute": "membership.csto", "value": "withdrawn"},
        {"actor": "russia", "attribute": "membership.csto", "value": "member"},
        {"actor": "armenia", "attribute": "membership.eu", "value": "candidate"},
    ]
    assert check_development(development(effects=effects), is_registered)["effects"] == effects


def test_the_category_message_lists_every_allowed_value():
    (message,) = errors_of(development(category="war"))["category"]
    for category in vocabulary.CATEGORIES:
        assert category in message


def test_a_body_that_is_not_an_object_is_refused():
    assert "Expected `object`" in errors_of(["not", "an", "object"])["body"][0]


def test_every_bad_field_is_reported_at_once():
    errors = errors_of(development(
        title="   ",
        when="2023-02-30",
        actors=[{"actor": "narnia", "role": "target"}],
        effects=[{"actor": "atlantis", "attribute": "m", "value": 1}],
        sources=[{"url": URL}],
    ))
    assert set(errors) == {"title", "when", "actors[0].actor", "effects[0].actor", "sources[0].retrieved"}


def test_the_exception_text_names_field_and_message():
    with pytest.raises(InvalidInput, match=r"title: must not be blank"):
        check_development(development(title=" "), is_registered)


def test_a_blank_citation_is_not_a_citation():
    errors = errors_of(development(sources=[{"citation": "   "}]))
    assert set(errors) & {"sources[0]", "sources[0].citation"}


# --- corrections (check_changes) -----------------------------------------------------


@pytest.fixture
def current() -> dict[str, Any]:
    """A development as recorded (without its id, as Development.stated() gives it)."""
    payload = check_development(development(summary="Fighting began in the morning."), is_registered)
    del payload["id"]
    return payload


def changes_errors(current: dict[str, Any], changes: Any) -> dict[str, list[str]]:
    with pytest.raises(InvalidInput) as caught:
        check_changes(current, changes, is_registered)
    return caught.value.errors


def test_a_correction_returns_only_the_fields_that_really_change(current):
    changed = check_changes(current, {"title": "New title", "certainty": "confirmed", "category": "assault"},
                            is_registered)
    assert changed == {"title": "New title"}


def test_a_correction_of_when_also_carries_the_derived_bounds(current):
    changed = check_changes(current, {"when": "[2023-09-19..2023-09-20]"}, is_registered)
    assert changed == {
        "when": "[2023-09-19..2023-09-20]", "earliest": "2023-09-19", "latest": "2023-09-20",
        "precision": "range", "qualified": False,
    }


def test_a_correction_without_when_carries_no_derived_bounds(current):
    assert set(check_changes(current, {"certainty": "disputed"}, is_registered)) == {"certainty"}


def test_a_correction_is_checked_against_the_whole_merged_development(current):
    """Fields not corrected are taken from the record: they need not be sent again."""
    changed = check_changes(current, {"actors": [{"actor": "russia", "role": "mediator"}]}, is_registered)
    assert changed == {"actors": [{"actor": "russia", "role": "mediator"}]}


def test_a_correction_may_clear_an_optional_field(current):
    assert check_changes(current, {"summary": None}, is_registered) == {"summary": None}


def effect(value: Any) -> list[dict[str, Any]]:
    return [{"actor": "armenia", "attribute": "membership.csto", "value": value}]


@pytest.mark.parametrize(
    ("before", "after"),
    [(1, True), (True, 1), (0, False), (False, 0), (1.0, True), (1, 1.0), (1.0, 1), (0, None), ("1", 1)],
    ids=["1-to-true", "true-to-1", "0-to-false", "false-to-0", "1.0-to-true", "1-to-1.0", "1.0-to-1", "0-to-null",
         "text-to-number"],
)
def test_a_correction_of_an_effect_value_to_another_type_is_a_change(current, before, after):
    """Python holds 1 == 1.0 == True; the record, which is JSON, does not."""
    recorded = {**current, "effects": effect(before)}
    changed = check_changes(recorded, {"effects": effect(after)}, is_registered)
    assert changed == {"effects": effect(after)}
    assert type(changed["effects"][0]["value"]) is type(after)


@pytest.mark.parametrize("value", [1, 1.0, True, False, 0, None, "member"])
def test_a_correction_to_the_same_effect_value_changes_nothing(current, value):
    errors = changes_errors({**current, "effects": effect(value)}, {"effects": effect(value)})
    assert errors == {"changes": ["the correction changes nothing"]}


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (1, 1, True), (True, True, True), (None, None, True), ("a", "a", True), (1.5, 1.5, True),
        (1, True, False), (0, False, False), (1.0, True, False), (1, 1.0, False), (None, False, False),
        ("1", 1, False), ([1], [True], False), ({"value": 1}, {"value": True}, False),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}, True), ([1, 2], [2, 1], False),
    ],
)
def test_same_tells_bool_from_number_at_any_depth(a, b, expected):
    assert same(a, b) is expected
    assert same(b, a) is expected


def test_a_correction_that_refers_to_itself_is_refused_when_the_id_is_known(current):
    ident = str(uuid.uuid4())
    errors = changes_errors({**current, "id": ident}, {"links": [{"type": "follows", "development": ident}]})
    assert errors == {"changes.links": ["a development cannot link to itself"]}


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        pytest.param({"title": "Azerbaijan launches a military operation in Karabakh"}, "changes",
                     "the correction changes nothing", id="same-title"),
        pytest.param({"tags": []}, "changes", "the correction changes nothing", id="same-default"),
        pytest.param({}, "changes", "name at least one field to correct", id="empty"),
        pytest.param(None, "changes", "name at least one field to correct", id="none"),
        pytest.param([("title", "x")], "changes", "name at least one field to correct", id="not-a-mapping"),
        pytest.param({"id": OTHER_ID}, "changes.id", "is fixed", id="id"),
        pytest.param({"sources": [{"citation": "c"}]}, "changes.sources", "add sources instead", id="sources"),
        pytest.param({"title": " "}, "changes.title", "must not be blank", id="blank-title"),
        pytest.param({"title": None}, "changes.title", "got `null`", id="title-null"),
        pytest.param({"when": "2023-09-20/2023-09-11"}, "changes.when", "ends before it begins", id="reversed-when"),
        pytest.param({"category": "war"}, "changes.category", "'war' is not one of", id="category"),
        pytest.param({"actors": []}, "changes.actors", "must not be empty", id="no-actors"),
        pytest.param({"actors": [{"actor": "narnia", "role": "target"}]}, "changes.actors[0].actor",
                     "'narnia' is not a registered actor", id="unregistered-actor"),
        pytest.param({"effects": [{"actor": "narnia", "attribute": "m", "value": 1}]}, "changes.effects[0].actor",
                     "'narnia' is not a registered actor", id="unregistered-effect-actor"),
        pytest.param({"effects": [{"actor": "armenia", "attribute": "m", "value": 1},
                                  {"actor": "armenia", "attribute": "m", "value": 2}]}, "changes.effects[1]",
                     "m of armenia is already set by effects[0]", id="effect-attribute-twice"),
        pytest.param({"earliest": "2000-01-01"}, "changes.earliest", "is not a known field", id="derived-field"),
        pytest.param({"recorded_by": "mallory"}, "changes.recorded_by", "is not a known field", id="recorded-by"),
        pytest.param({"retracted": True}, "changes.retracted", "is not a known field", id="retracted"),
    ],
)
def test_bad_corrections_are_refused(current, changes, field, fragment):
    errors = changes_errors(current, changes)
    assert list(errors) == [field]
    assert any(fragment in message for message in errors[field]), errors[field]


# --- further sources (check_sources) -------------------------------------------------


def test_further_sources_are_checked_and_returned_as_plain_data():
    checked = check_sources([{"citation": "AP"}, {"url": URL, "retrieved": "2023-09-20"}])
    assert checked == [{"citation": "AP"}, {"url": URL, "retrieved": "2023-09-20"}]


@pytest.mark.parametrize(
    ("sources", "field", "fragment"),
    [
        pytest.param([{"title": "t"}], "sources[0]", "needs a citation or a url", id="no-citation-or-url"),
        pytest.param([{"citation": "c"}, {"url": URL}], "sources[1].retrieved", "is required with a url",
                     id="url-without-retrieved"),
        pytest.param([{"citation": "c", "published": "2023-13"}], "sources[0].published",
                     "is not a valid EDTF date", id="published"),
    ],
)
def test_further_sources_name_the_bad_field(sources, field, fragment):
    with pytest.raises(InvalidInput) as caught:
        check_sources(sources)
    assert list(caught.value.errors) == [field]
    assert fragment in caught.value.errors[field][0]


def test_further_sources_use_the_given_field_name():
    with pytest.raises(InvalidInput) as caught:
        check_sources([{"title": "t"}], field="source")
    assert caught.value.errors == {"source[0]": ["needs a citation or a url"]}


@pytest.mark.parametrize(
    ("sources", "field"),
    [
        pytest.param([{"citation": "c", "quote": "q" * 1001}], "sources[0].quote", id="quote-too-long"),
        pytest.param([{"citation": "c", "pages": 3}], "sources[0].pages", id="unknown-field"),
        pytest.param([None], "sources[0]", id="not-an-object"),
    ],
)
def test_further_sources_shape_errors_name_the_field(sources, field):
    with pytest.raises(InvalidInput) as caught:
        check_sources(sources)
    assert list(caught.value.errors) == [field]


# --- reasons ------------------------------------------------------------------------


def test_a_reason_is_returned_as_given():
    assert check_reason("The date was a day off in the first report") == "The date was a day off in the first report"


@pytest.mark.parametrize(
    ("reason", "fragment"),
    [
        pytest.param(None, "is required: say why", id="missing"),
        pytest.param("", "is required: say why", id="empty"),
        pytest.param(" \n ", "is required: say why", id="blank"),
        pytest.param(42, "is required: say why", id="not-text"),
        pytest.param("r" * 2001, "at most 2000 characters", id="too-long"),
        pytest.param("typo\x00", "clean text", id="nul"),
        pytest.param("typo \ud800", "clean text", id="surrogate"),
    ],
)
def test_bad_reasons_are_refused(reason, fragment):
    with pytest.raises(InvalidInput) as caught:
        check_reason(reason)
    assert list(caught.value.errors) == ["reason"]
    assert fragment in caught.value.errors["reason"][0]


def test_a_reason_of_2000_characters_is_accepted():
    assert len(check_reason("r" * 2000)) == 2000
