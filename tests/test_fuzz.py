"""Bad input, fuzzed (issue #6). Hypothesis throws NUL bytes, unpaired surrogates,
random bytes, 10 MB strings, JSON nested 100,000 deep, numbers as strings and strings
as numbers, SQL and script payloads at the EDTF wrapper, the import reader and every
request schema. Each is refused with a clear 4xx problem (or a report line) naming the
field, and nothing is stored. Text the record accepts, in any script, is stored and
read back exactly as sent.

All on SQLite: what is fuzzed here is the input, not the store (tests/test_api.py runs
the API on both stores).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from api import schemas
from events.chronicle import Chronicle
from events.dates import FuzzyDate, parse_when
from events.errors import InvalidInput
from events.vocabulary import PRECISIONS
from tests.test_api import (  # noqa: F401  (make_api: the fixture, shared)
    CSTO_MEMBERSHIP, CSTO_REPRESENTATIVE_WITHDRAWN, Api, assert_problem, development, make_api,
)
from timeline import transfer

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
"""The app (or store) of a test serves all its examples: each example stores nothing,
which is what it checks."""

TEN_MB = 10 * 1024 * 1024


@pytest.fixture
def database_url(tmp_path) -> str:
    """SQLite only, for make_api (overrides the conftest's two stores)."""
    return f"sqlite:///{tmp_path}/timeline.db"


@pytest.fixture
def api(make_api) -> Api:
    """The seed with one development retracted (so that a restoration can be valid), a
    write budget no fuzzing run exhausts, and short waits for ``min_position``."""
    api = make_api(WRITE_RATE_LIMIT="1000000 per minute", WAIT_TIMEOUT=0.05)
    api.write(f"/api/v1/developments/{CSTO_REPRESENTATIVE_WITHDRAWN}/retraction", {"reason": "superseded"}, 1)
    return api


# Ingredients

ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=40)
"""Any code points, NUL and unpaired surrogates included."""
UNSTORABLE = st.builds("{}{}{}".format, st.text(max_size=20),
                       st.just("\x00") | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
                       st.text(max_size=20))
"""Text with a NUL or an unpaired surrogate: refused in every field."""
PAYLOADS = ["'; DROP TABLE stored_events; --", "1 OR 1=1", '" OR ""="', "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>", "javascript:alert(1)", "{{7*7}}", "${jndi:ldap://x/a}",
            "../../etc/passwd", "%00", "\\u0000"]
"""SQL and script payloads, refused wherever the record expects an id, a date or a term."""
NUMBERS_AS_STRINGS = st.sampled_from(["45", "-1", "1e3", "1e999", "NaN", "Infinity", "0x10", "٣", "1_000",
                                      "9" * 5000]) | st.integers().map(str) | st.floats().map(str)
NOT_TEXT = (st.integers() | st.floats() | st.booleans() | st.lists(st.integers(), max_size=3)
            | st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))
"""Strings as numbers, and other things that are not text."""
NOT_FINITE = st.sampled_from([float("nan"), float("inf"), float("-inf")])
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT,
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
                           max_leaves=12)
NOT_UTF8 = st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\x80", b"\x00", b"\x00" * 4]) | \
    st.binary(max_size=8).map(lambda raw: raw + b"\xfe")
"""Bytes that make any JSON text invalid: not UTF-8, or a raw NUL."""

STRUCTURED = {"id", "when", "category", "certainty", "role", "actor", "attribute", "language", "kind", "wikidata",
              "country", "type", "development", "superseded_by", "retrieved", "published", "url", "archive_url"}
"""Fields holding an id, a date, a term of the vocabulary or a URL, not free text."""
FIELD_NAMES = {name for schema in (schemas.NewDevelopment, schemas.SourceSchema, schemas.ParticipationSchema,
                                   schemas.EffectSchema, schemas.CodingSchema, schemas.LocationSchema,
                                   schemas.LinkSchema, schemas.Correction, schemas.Retraction, schemas.NewActor,
                                   schemas.ActorCorrection) for name in schema().fields}
UNKNOWN_NAMES = st.text(st.characters(exclude_categories=()), min_size=1, max_size=40).filter(
    lambda name: name not in FIELD_NAMES) | st.sampled_from(
    ["json", "query", "querystring", "headers", "form", "__proto__", "Title", "title ", "a`b", "`", "7", "²",
     *PAYLOADS])
"""Field names no shape knows (``json`` and ``query`` are webargs's names for locations)."""


def nested(depth: int, objects: bool) -> str:
    return '{"a":' * depth + "0" + "}" * depth if objects else "[" * depth + "]" * depth


def leaves(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Every scalar of a JSON document, with its path."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from leaves(item, (*path, i))
    else:
        yield path, value


def strict_objects(value: Any, path: tuple = ()) -> Iterator[tuple]:
    """The paths of the objects that refuse unknown fields (all but the ``names`` map)."""
    if isinstance(value, dict):
        if not path or path[-1] != "names":
            yield path
        for key, item in value.items():
            yield from strict_objects(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from strict_objects(item, (*path, i))


def at(document: Any, path: tuple) -> Any:
    for step in path:
        document = document[step]
    return document


def put(document: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    at(document, path[:-1])[path[-1]] = value
    return document


def spoilers(path: tuple) -> st.SearchStrategy:
    """Values that a field at ``path`` must refuse."""
    name = next((step for step in reversed(path) if isinstance(step, str)), "")
    if name in ("lat", "lon"):
        return NUMBERS_AS_STRINGS | UNSTORABLE | st.booleans() | st.lists(st.floats(), max_size=2) | NOT_FINITE
    if name == "value":
        return UNSTORABLE | NOT_FINITE | st.lists(st.integers(), min_size=1, max_size=3) | \
            st.dictionaries(st.text(max_size=5), st.integers(), max_size=2)
    if name in STRUCTURED:
        return UNSTORABLE | NOT_TEXT | st.sampled_from(PAYLOADS)
    return UNSTORABLE | NOT_TEXT


@dataclass
class Spoiled:
    """A document spoiled in one place, and the top-level field its refusal must name
    (None: any)."""

    document: Any
    named: str | None
    how: str
    deep: str | None = None

    def text(self, ensure_ascii: bool) -> str:
        text = json.dumps(self.document, ensure_ascii=ensure_ascii)
        return text.replace('"__deep__"', self.deep) if self.deep else text


@st.composite
def spoiled(draw, base: Any, fixed: frozenset = frozenset()) -> Spoiled:
    """``base`` with one field replaced by a value it must refuse, an unknown field
    added, or a field (or all of it) nested up to 10,000 deep. ``fixed`` leaves are kept."""
    document = copy.deepcopy(base)
    fields = [path for path, _ in leaves(document) if path not in fixed]
    objects = list(strict_objects(document))
    how = draw(st.sampled_from(["field", "deep"] + (["unknown-field"] if objects else [])))
    if how == "field":
        path = draw(st.sampled_from(fields))
        return Spoiled(put(document, path, draw(spoilers(path))), str(path[0]), how)
    if how == "unknown-field":
        path = draw(st.sampled_from(objects))
        name = draw(UNKNOWN_NAMES)
        at(document, path)[name] = draw(JSON_VALUES)
        return Spoiled(document, str(path[0]) if path else name, how)
    path = draw(st.sampled_from([(), *fields]))
    deep = nested(draw(st.integers(1, 10_000)), draw(st.booleans()))
    return Spoiled(put(document, path, "__deep__"), str(path[0]) if path else None, how, deep=deep)


def unpaired(text: str) -> bool:
    return any("\ud800" <= character <= "\udfff" for character in text)


def named(errors: dict[str, Any], field: str) -> bool:
    return any(name == field or name.startswith((f"{field}.", f"{field}[")) for name in errors)


# 1. The EDTF wrapper

EDTF_TEXT = st.text(st.sampled_from("0123456789-/.,[]{}~?%XYESTZ:+^ \x00\ud800"), max_size=40)
"""Text made of EDTF's own characters, to get past the first character."""


@FUZZ
@given(ANY_TEXT | EDTF_TEXT | st.text(st.characters(exclude_categories=()), min_size=90, max_size=200))
@example("x" * TEN_MB)
@example("2023-09-19" + "\x00")
@example("\ud800")
@example("٢٠٢٣")
@example("２０２３-０９")
@example("[" * 100 + "]" * 100)
@example("Y" + "9" * 99)
@example("<script>alert(1)</script>")
@example("'; DROP TABLE stored_events; --")
def test_parse_when_answers_a_fuzzy_date_or_an_error_naming_the_field(text: str):
    """Whatever the text, the one door to ``edtf`` answers a date or names the field,
    prints nothing, and accepts only ASCII (EDTF is ASCII; ``int`` is not)."""
    printed, warned = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(warned):
        try:
            when = parse_when(text, "sources[0].published")
        except InvalidInput as error:
            assert list(error.errors) == ["sources[0].published"]
            (message,) = error.errors["sources[0].published"]
            assert message and message.encode()
        else:
            assert isinstance(when, FuzzyDate) and when.edtf == text and text.isascii()
            assert date.fromisoformat(when.earliest) <= date.fromisoformat(when.latest)
            assert when.precision in PRECISIONS
    assert printed.getvalue() == "" and warned.getvalue() == ""


# 2. The import reader

RECORDED = "5f8e2b1c-3d4a-4b6c-9e7f-0a1b2c3d4e5f"
KEPT = [
    {"register_actor": {"id": "armenia", "name": "Armenia", "kind": "state"}},
    {"register_actor": {"id": "csto", "name": "CSTO", "kind": "organization"}},
    {"record_development": development(id=RECORDED)},
]
"""Valid lines that open every fuzzed file: the batch stores nothing all the same."""
FULL_DEVELOPMENT = development(
    summary="Jerewan wirft der OVKS vor, ihre Pflichten nicht zu erfüllen.", language="de",
    codings=[{"scheme": "CAMEO", "code": "112", "version": "1.1b3", "label": "Accuse"}],
    effects=[{"actor": "armenia", "attribute": "relations.csto", "value": "strained"}],
    location={"name": "Jerewan", "country": "ARM", "lat": 40.18, "lon": 44.51},
    tags=["ovks"], links=[{"type": "follows", "development": CSTO_MEMBERSHIP}],
    sources=[
        {"citation": "Test agency, 2 October 2023", "quote": "Armenia protested", "locator": "para. 2"},
        {"url": "https://example.org/report", "retrieved": "2023-10-03", "title": "Armenia protests",
         "publisher": "Example", "author": "Staff", "published": "2023-10-02", "language": "en",
         "archive_url": "https://web.archive.org/web/2023/https://example.org/report"},
    ],
)
GEORGIA = {"id": "georgia", "name": "Georgia", "kind": "state", "names": {"de": "Georgien", "ka": "საქართველო"},
           "aliases": ["Sakartwelo"], "description": "Staat im Südkaukasus.", "wikidata": "Q230"}
ACTOR_CHANGES = {"description": "Republik im Südkaukasus.", "aliases": ["Hayastan"], "names": {"fr": "Arménie"}}
DEVELOPMENT_CHANGES = {"title": "Armenien protestiert bei der OVKS", "certainty": "confirmed", "tags": ["ovks"]}
URL_SOURCE = {"url": "https://example.org/follow-up", "retrieved": "2023-10-04", "title": "Follow-up",
              "publisher": "Example", "published": "2023-10-04", "language": "en", "quote": "It protested",
              "locator": "para. 1"}
COMMANDS = {
    "record_development": FULL_DEVELOPMENT,
    "register_actor": GEORGIA,
    "correct_actor": {"id": "armenia", "changes": ACTOR_CHANGES, "reason": "more precise"},
    "correct_development": {"id": RECORDED, "changes": DEVELOPMENT_CHANGES, "reason": "confirmed since"},
    "add_source": {"id": RECORDED, "source": URL_SOURCE},
    "retract_development": {"id": RECORDED, "reason": "a hoax"},
}
"""One valid command of each kind that a file may hold, after KEPT."""


@dataclass
class BadLine:
    text: str
    field: str | None
    """The top-level field its problem names (None: any)."""


@st.composite
def spoiled_commands(draw) -> BadLine:
    command = draw(st.sampled_from(list(COMMANDS)))
    spoilt = draw(spoiled(COMMANDS[command], fixed=frozenset({("id",)} if command == "correct_actor" else ())))
    text = json.dumps({command: "__args__"}).replace('"__args__"', spoilt.text(draw(st.booleans())))
    if spoilt.how == "deep":
        return BadLine(text, None)
    if unpaired(spoilt.named or ""):
        return BadLine(text, "body")  # a field name added at the top: where else
    return BadLine(text, spoilt.named)


GARBAGE = st.one_of(
    st.binary(min_size=1, max_size=200).map(lambda raw: raw.decode("utf-8", "surrogateescape")),
    ANY_TEXT,
    st.builds(nested, st.integers(1, 100_000), st.booleans()),
    st.builds(lambda depth, objects: '{"register_actor": ' + nested(depth, objects) + "}",
              st.integers(1, 100_000), st.booleans()),
    st.sampled_from(["1" * 100_000, '{"record_development": {"title": ' + "9" * 5000 + "}}",
                     '{"register_actor": {"id": "x", "name": "X", "kind": "state", "description": 1e999}}',
                     '{"register_actor": NaN}', '{"\ud800": {}}', '{"register_actor": "\udcff"}',
                     '{"record_development": {"title": "' + "x" * TEN_MB + '"}}']),
    JSON_VALUES.map(json.dumps),
).filter(str.strip).map(lambda text: BadLine(text, None))


@FUZZ
@given(st.lists(spoiled_commands() | GARBAGE, min_size=1, max_size=4))
def test_an_import_of_bad_lines_stores_nothing_and_reports_each_line(memory_chronicle: Chronicle, bad: list[BadLine]):
    """A file of valid lines and bad ones (random bytes read with surrogateescape, NUL,
    unpaired surrogates, nesting 100,000 deep, huge numbers, numbers as strings, valid
    commands with a wrong field) stores nothing and reports every bad line, by number
    and field, in words a terminal can print."""
    lines = [json.dumps(command) for command in KEPT] + [line.text for line in bad]
    report = transfer.import_commands(memory_chronicle, [transfer.Line(n, text) for n, text in enumerate(lines, 1)],
                                      recorded_by="fuzz")
    assert (report.stored, report.unchanged) == (0, 0)
    assert not memory_chronicle.recorder.max_notification_id()
    first_bad = len(KEPT) + 1
    assert {number for number, _, _ in report.problems} == set(range(first_bad, first_bad + len(bad))), report
    for number, field, message in report.problems:
        assert field and message and (field + message).encode()
        expected = bad[number - first_bad].field
        if expected:
            assert named({field: message}, expected), (bad[number - first_bad].text[:300], report.problems)


def test_the_fuzzed_commands_are_valid_unspoiled(memory_chronicle: Chronicle):
    """So that a spoiled command is refused for its spoiling."""
    lines = [json.dumps(line) for line in KEPT] + [json.dumps({name: args}) for name, args in COMMANDS.items()]
    report = transfer.import_commands(memory_chronicle, [transfer.Line(n, t) for n, t in enumerate(lines, 1)],
                                      recorded_by="fuzz")
    assert report.problems == [] and report.stored == len(lines)


def test_an_import_refuses_an_actor_id_with_an_unpaired_surrogate(memory_chronicle: Chronicle):
    line = json.dumps({"correct_actor": {"id": "armenia\ud800", "changes": {"name": "A"}, "reason": "r"}})
    report = transfer.import_commands(memory_chronicle, [transfer.Line(1, line)], recorded_by="fuzz")
    assert [(n, f) for n, f, _ in report.problems] == [(1, "id")]


# 3. The API: every write refuses bad bodies, every read bad parameters


@dataclass(frozen=True)
class Write:
    path: str
    body: Any
    version: int | None = None
    """The stream version for If-Match (writes to an existing stream)."""
    within: str = ""
    """What the write model calls the body, if it is one field of its command."""

    def headers(self, version: int | str | None = None) -> dict[str, str]:
        version = self.version if version is None else version
        return {} if version is None else {"If-Match": f'"{version}"' if version != "*" else "*"}


DEVELOPMENTS = "/api/v1/developments"
WRITES = {
    "record-development": Write(DEVELOPMENTS, FULL_DEVELOPMENT),
    "register-actor": Write("/api/v1/actors", GEORGIA),
    "correct-actor": Write("/api/v1/actors/armenia/corrections", {"changes": ACTOR_CHANGES, "reason": "precise"}, 1),
    "correct-development": Write(f"{DEVELOPMENTS}/{CSTO_MEMBERSHIP}/corrections",
                                 {"changes": DEVELOPMENT_CHANGES, "reason": "confirmed since",
                                  "sources": [{"citation": "Test agency", "quote": "confirmed"}]}, 1),
    "add-source": Write(f"{DEVELOPMENTS}/{CSTO_MEMBERSHIP}/sources", URL_SOURCE, 1, within="source"),
    "retract": Write(f"{DEVELOPMENTS}/{CSTO_MEMBERSHIP}/retraction",
                     {"reason": "a hoax", "superseded_by": CSTO_REPRESENTATIVE_WITHDRAWN}, 1),
    "restore": Write(f"{DEVELOPMENTS}/{CSTO_REPRESENTATIVE_WITHDRAWN}/restoration", {"reason": "not a hoax"}, 2),
}


def send(api: Api, write: Write, body: bytes, **headers: str):
    return api.post(write.path, headers={**write.headers(), **headers}, data=body, content_type="application/json")


def assert_refused(api: Api, response, before: int, field: str | None = None, status: int | None = None,
                   within: str = "") -> None:
    """A 4xx problem (``errors`` naming ``field`` for 400 and 422, or ``body`` for JSON
    the parser cannot read) and not one event more in the log. The write model names the
    body of add-source ``source``, the schema does not: either is fine."""
    where = response.request.path
    assert 400 <= response.status_code < 500, (where, response.get_data()[:500])
    problem = assert_problem(response, status or response.status_code)
    if response.status_code in (400, 422):
        assert problem.get("errors"), (where, problem)
        if response.status_code == 400:
            assert named(problem["errors"], "body"), (where, problem)
        elif field:
            assert named(problem["errors"], field) or within and named(problem["errors"], f"{within}.{field}"), \
                (where, field, problem)
    assert api.log_length() == before, where


def test_the_fuzzed_bodies_are_valid_unspoiled(api: Api):
    """So that a spoiled body is refused for its spoiling."""
    for name, write in WRITES.items():
        response = send(api, write, json.dumps(write.body).encode(), **write.headers("*"))
        assert response.status_code in (200, 201), (name, response.get_json())


@pytest.mark.parametrize("name", WRITES)
@FUZZ
@given(data=st.data())
def test_writes_refuse_bad_bodies_and_store_nothing(api: Api, name: str, data: st.DataObject):
    """A valid body spoiled in one place (sent as JSON with ``\\u`` escapes, as raw
    UTF-8 with CESU-encoded surrogates, or with bytes that are not UTF-8) is refused,
    naming that field."""
    write = WRITES[name]
    spoilt = data.draw(spoiled(write.body))
    body = spoilt.text(data.draw(st.booleans())).encode("utf-8", "surrogatepass")
    if data.draw(st.integers(0, 9)) == 0:
        cut = data.draw(st.integers(1, len(body)))
        body = body[:cut] + data.draw(NOT_UTF8) + body[cut:]
    before = api.log_length()
    assert_refused(api, send(api, write, body), before, spoilt.named, within=write.within)


@pytest.mark.parametrize("name", WRITES)
@FUZZ
@given(body=JSON_VALUES.filter(lambda value: not isinstance(value, dict))
       | st.dictionaries(UNKNOWN_NAMES, JSON_VALUES, max_size=4))
def test_writes_refuse_bodies_of_another_shape(api: Api, name: str, body: Any):
    """Arrays, strings, numbers, null, or objects of nothing but unknown fields."""
    write = WRITES[name]
    before = api.log_length()
    assert_refused(api, send(api, write, json.dumps(body).encode("utf-8", "surrogatepass")), before)


def test_ten_megabytes_are_too_large_and_a_long_field_is_named(api: Api):
    for write in WRITES.values():
        path, _ = next(leaves(write.body))
        before = api.log_length()
        huge = put(copy.deepcopy(write.body), path, "x" * TEN_MB)
        assert_refused(api, send(api, write, json.dumps(huge).encode()), before, status=413)
        long = put(copy.deepcopy(write.body), path, "x" * 1_000_000)
        assert_refused(api, send(api, write, json.dumps(long).encode()), before, str(path[0]), status=422,
                       within=write.within)


@pytest.mark.parametrize("depth", [33, 1000, 10_000, 100_000])
def test_json_nested_deeper_than_the_record_needs_is_a_bad_request(api: Api, depth: int):
    """Whole, or in place of a field; 33 is one level beyond what the service reads, the
    others beyond what Python's parser can."""
    for write in WRITES.values():
        path, _ = next(leaves(write.body))
        for objects in (False, True):
            for body in (nested(depth, objects),
                         json.dumps(put(copy.deepcopy(write.body), path, "__deep__")).replace(
                             '"__deep__"', nested(depth, objects))):
                before = api.log_length()
                assert_refused(api, send(api, write, body.encode()), before, str(path[0]), within=write.within)


def test_if_match_with_thousands_of_digits_is_a_failed_precondition(api: Api):
    write = WRITES["restore"]
    before = api.log_length()
    response = send(api, write, json.dumps(write.body).encode(), **{"If-Match": '"' + "9" * 5000 + '"'})
    assert_refused(api, response, before, status=412)


TIMELINE_PARAMETERS = ("as_of", "min_position", "actor", "role", "category", "tag", "certainty", "from", "to",
                       "match", "q", "order", "limit", "cursor", "format")
READS = {
    "timeline": ("/api/v1/timeline", TIMELINE_PARAMETERS),
    "actor-timeline": ("/api/v1/actors/armenia/timeline", TIMELINE_PARAMETERS),
    "actor-search": ("/api/v1/actors", ("q", "limit")),
    "actor": ("/api/v1/actors/armenia", ("as_of", "min_position")),
    "actor-state": ("/api/v1/actors/armenia/state", ("at", "as_of", "min_position")),
    "development": (f"{DEVELOPMENTS}/{CSTO_MEMBERSHIP}", ("as_of", "min_position")),
    "history": (f"{DEVELOPMENTS}/{CSTO_MEMBERSHIP}/history", ()),
    "events": ("/api/v1/events", ("after", "limit", "type")),
}
PLAUSIBLE = ["2023-09-19", "0001-01-01", "9999-12-31", "2023-09-20T12:00:00Z", "0001-01-01T00:00:00Z", "0", "1",
             "10", "500", "501", "-1", "9223372036854775807", "9223372036854775808", "armenia", "csto", "assault",
             "confirmed", "initiator", "json", "csv", "jsonl", "timelinejs", "desc", "within", "ovks",
             "timeline:Development.Retracted", "Ереван", "W1siMTk5MS0wMS0wMSIsIjE5OTEtMTItMzEiLDI5XSw1OF0"]
QUERY_VALUES = (st.sampled_from(PLAUSIBLE + PAYLOADS) | NUMBERS_AS_STRINGS | ANY_TEXT | st.binary(max_size=20)
                | st.text(min_size=200, max_size=300) | st.sampled_from(["Q" * 10_000, "9" * 5000]))


def _percent(value: str | bytes) -> str:
    raw = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
    return quote_from_bytes(raw, safe="")


def _waits(pairs: list[tuple[str, str | bytes]], log_length: int) -> bool:
    """Whether a ``min_position`` beyond the log makes the read wait and answer 503, as
    it should (tests/test_api.py)."""
    for name, value in pairs:
        raw = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
        if name == "min_position":
            with contextlib.suppress(ValueError):
                if int(raw.decode("utf-8", "replace")) > log_length:
                    return True
    return False


@pytest.mark.parametrize("name", READS)
@FUZZ
@given(data=st.data())
def test_reads_answer_bad_parameters_with_a_problem(api: Api, name: str, data: st.DataObject):
    """Any names and values, percent-encoded from any bytes (unpaired surrogates as
    CESU-8): an answer or a 4xx problem, never a server error, and the log unmoved."""
    path, parameters = READS[name]
    names = st.sampled_from(parameters) | UNKNOWN_NAMES if parameters else UNKNOWN_NAMES
    pairs = data.draw(st.lists(st.tuples(names, QUERY_VALUES), max_size=4))
    assume(not _waits(pairs, api.log_length()))
    before = api.log_length()
    response = api.get(path + "?" + "&".join(f"{_percent(k)}={_percent(v)}" for k, v in pairs))
    assert response.status_code < 500, (response.status_code, response.get_data()[:500])
    if response.status_code >= 400:
        problem = assert_problem(response, response.status_code)
        assert response.status_code != 400 or problem.get("errors"), problem
    assert api.log_length() == before


def _cursor(key: list[Any], as_of: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps([key, as_of]).encode()).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    _cursor(["2023-01-01", "2023-01-02", 10**30], None),
    _cursor(["\ud800", "2023-01-02", 1], None),
], ids=["position-beyond-64-bits", "unpaired-surrogate"])
def test_a_forged_cursor_is_a_bad_query(api: Api, cursor: str):
    assert_problem(api.get(f"/api/v1/timeline?cursor={cursor}"), 400, "cursor")


@pytest.mark.parametrize("as_of", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"],
                         ids=["first-day", "last-day"])
def test_as_of_at_the_calendars_edge_is_a_bad_query(api: Api, as_of: str):
    assert_problem(api.get("/api/v1/timeline", query_string={"as_of": as_of}), 400, "as_of")


# 4. Text is stored exactly as sent

SPECIMENS = [
    "e\u0301", "\u0915\u094d\u0937", "\u0627\u064e", "שָׁלוֹם", "مرحبا", "\u200f", "\u202e", "\u2067", "\u200d",
    "👩\u200d👩\u200d👧", "🇦🇲", "👍🏽", "🏳️\u200d🌈", "Հայաստան", "Пашинян", "საქართველო", "Azərbaycan", "中华人民共和国",
    "\ufeff", "\u2028", "\r\n", "\t", "\x01", "\x1f", "\x7f", "\x85", "\ufffe", "\uffff", "\U0010ffff", "\U0001d11e",
    "<script>alert(1)</script>", "'; DROP TABLE stored_events; --", "\\", '"', "\\u0000", "%00", "&amp;", "  ",
]
"""Combining marks, right-to-left text and its controls, emoji sequences, Armenian,
Cyrillic, Georgian, noncharacters, the last code point, and payloads that are only text."""
TEXT = st.lists(st.sampled_from(SPECIMENS) | st.text(st.characters(exclude_categories=("Cs",),
                                                                   exclude_characters="\x00"), max_size=8),
                min_size=1, max_size=10).map("".join)
"""Valid Unicode (no NUL, no unpaired surrogates), weighted towards the hard cases."""


def text(max_size: int, blank: bool = True) -> st.SearchStrategy[str]:
    """Text that a field of 1 to ``max_size`` characters accepts (``blank``: may be all
    white space)."""
    fitting = TEXT.map(lambda value: value[:max_size]).filter(len)
    return fitting if blank else fitting.filter(str.strip)


@st.composite
def developments(draw) -> dict[str, Any]:
    return development(
        title=draw(text(300, blank=False)), summary=draw(text(5000)),
        tags=draw(st.lists(text(64), max_size=3, unique=True)),  # a development lists a tag once
        codings=[{"scheme": draw(text(200)), "code": draw(text(64)), "label": draw(text(500))}],
        location={"name": draw(text(200))},
        effects=[{"actor": "armenia", "attribute": "mood", "value": draw(text(500))}],
        sources=[{"citation": draw(text(500, blank=False)), "quote": draw(text(1000)), "locator": draw(text(200)),
                  "title": draw(text(500)), "publisher": draw(text(200)), "author": draw(text(200))}],
    )


@st.composite
def actors(draw) -> dict[str, Any]:
    return {"id": f"fuzz-{uuid.uuid4().hex[:12]}", "name": draw(text(200, blank=False)), "kind": "person",
            "names": draw(st.dictionaries(st.sampled_from(["de", "hy", "ru", "ka", "az", "he", "ar"]), text(200),
                                          max_size=3)),
            "aliases": draw(st.lists(text(200), max_size=3, unique=True)), "description": draw(text(5000, blank=False))}


def assert_kept(sent: dict[str, Any], stored: dict[str, Any], where: str) -> None:
    for name, value in sent.items():
        assert stored[name] == value, (where, name, value, stored[name])


@FUZZ
@given(sent=developments())
@example(sent=development(title="'; DROP TABLE stored_events; --", summary="<script>alert(1)</script>"))
def test_developments_keep_their_text_exactly(api: Api, sent: dict[str, Any]):
    """What a development says comes back unchanged from every read: no normalisation,
    trimming, escaping or loss (and SQL is only text)."""
    response = api.post(DEVELOPMENTS, sent)
    assert response.status_code == 201, response.get_json()
    receipt = response.get_json()
    assert_kept(sent, receipt["development"], "receipt")
    assert_kept(sent, api.get(f"{DEVELOPMENTS}/{receipt['id']}").get_json(), "development")
    (item,) = [item for item in api.items() if item["id"] == receipt["id"]]
    assert_kept(sent, item, "timeline")
    lines = api.get("/api/v1/timeline?limit=500&format=jsonl").get_data(as_text=True).split("\n")
    (item,) = [item for item in map(json.loads, filter(None, lines)) if item["id"] == receipt["id"]]
    assert_kept(sent, item, "timeline as JSON lines")
    (event,) = api.get(f"/api/v1/events?after={receipt['position'] - 1}").get_json()["items"]
    assert_kept(sent, event["payload"], "event log")


@FUZZ
@given(sent=actors())
def test_actors_keep_their_text_exactly(api: Api, sent: dict[str, Any]):
    """Names in any script, aliases and the description come back unchanged."""
    response = api.post("/api/v1/actors", sent)
    assert response.status_code == 201, response.get_json()
    receipt = response.get_json()
    assert_kept(sent, receipt["actor"], "receipt")
    assert_kept(sent, api.get(f"/api/v1/actors/{sent['id']}").get_json(), "actor")
    (event,) = api.get(f"/api/v1/events?after={receipt['position'] - 1}").get_json()["items"]
    assert_kept({k: v for k, v in sent.items() if k != "id"}, event["payload"], "event log")


@pytest.mark.parametrize("path, body, field", [
    (DEVELOPMENTS, development(title="Protest\x00"), "title"),
    (DEVELOPMENTS, development(summary="\ud83d"), "summary"),
    (DEVELOPMENTS, development(sources=[{"citation": "c", "quote": "\udfff"}]), "sources[0].quote"),
    ("/api/v1/actors", {"id": "x", "name": "\x00", "kind": "state"}, "name"),
    ("/api/v1/actors", {"id": "x", "name": "X", "kind": "state", "aliases": ["\ud800"]}, "aliases[0]"),
], ids=["nul-in-title", "high-surrogate-in-summary", "low-surrogate-in-quote", "nul-in-name",
        "surrogate-in-alias"])
def test_text_that_utf8_cannot_store_is_refused_by_field(api: Api, path: str, body: dict[str, Any], field: str):
    """The one deliberate refusal of text: NUL and unpaired surrogates, by name."""
    before = api.log_length()
    response = api.post(path, data=json.dumps(body), content_type="application/json")
    assert_problem(response, 422, field)
    assert api.log_length() == before
