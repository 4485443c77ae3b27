"""The HTTP API in process (Flask's test client), on SQLite and on PostgreSQL: every
endpoint of the OpenAPI document, errors as problem details, the auth matrix,
idempotency, rate limits, headers and read-your-writes.

Every refused request is also checked to have stored nothing (the event log keeps its
length).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import subprocess
import sys
import time
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from api import SECURITY_HEADERS, create_app, idempotency
from events import vocabulary
from events.chronicle import EVENT_TYPES, Chronicle
from timeline import transfer
from timeline.projector import KEPT_WRITTEN

PROBLEM = "application/problem+json"
ROLES = ("reader", "historian", "admin")
TIMELINE = "/api/v1/timeline"

# Seed developments used below.
CSTO_MEMBERSHIP = "7400c252-de3f-5f30-8c4c-4bc86d3060c5"  # [1992..2022]
CSTO_REPRESENTATIVE_WITHDRAWN = "739bab14-6978-5ec4-a51d-4c795e78602f"  # [2023-09-02..2023-09-10]
SEED_DEVELOPMENTS = 30
SEED_ACTORS = 28

ENDPOINTS = {
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/api/v1/vocabulary"),
    ("GET", "/api/v1/actors"), ("POST", "/api/v1/actors"), ("GET", "/api/v1/actors/{slug}"),
    ("POST", "/api/v1/actors/{slug}/corrections"), ("GET", "/api/v1/actors/{slug}/state"),
    ("GET", "/api/v1/actors/{slug}/timeline"),
    ("POST", "/api/v1/developments"), ("GET", "/api/v1/developments/{ident}"),
    ("GET", "/api/v1/developments/{ident}/history"), ("POST", "/api/v1/developments/{ident}/corrections"),
    ("POST", "/api/v1/developments/{ident}/sources"), ("POST", "/api/v1/developments/{ident}/retraction"),
    ("POST", "/api/v1/developments/{ident}/restoration"),
    ("GET", "/api/v1/timeline"), ("GET", "/api/v1/events"), ("GET", "/api/v1/events/stream"),
    ("POST", "/api/v1/admin/replay"), ("POST", "/api/v1/admin/tokens"), ("DELETE", "/api/v1/admin/tokens/{name}"),
}
"""Every operation of the OpenAPI document; each is exercised below (the stream in
test_api_server.py)."""


def development(**overrides: Any) -> dict[str, Any]:
    """A valid new development; each keyword replaces a field."""
    return {
        "title": "Armenia protests to the CSTO",
        "category": "accuse",
        "when": "2023-10-02",
        "certainty": "reported",
        "actors": [{"actor": "armenia", "role": "speaker"}, {"actor": "csto", "role": "target"}],
        "sources": [{"citation": "Test agency, 2 October 2023", "quote": "Armenia protested"}],
    } | overrides


def fold(text: str) -> str:
    """Case- and accent-insensitive form, as the search promises."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))


def etag(version: int) -> dict[str, str]:
    return {"If-Match": f'"{version}"'}


def assert_problem(response, status: int, *fields: str) -> dict[str, Any]:
    """An RFC 9457 problem with this status, naming each field in ``errors``."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status and body["type"].startswith("https://") and body["title"] and body["detail"]
    for name in fields:
        assert name in body.get("errors", {}), body
    return body


class Api:
    """A test client, a token per role (named after the role) and the event log."""

    def __init__(self, app):
        self.app = app
        self.client = app.test_client()
        self.timeline = app.extensions["timeline"]
        self.tokens = {role: self.timeline.tokens.create(role, role) for role in ROLES}

    def headers(self, who: str | None, headers: dict[str, str] | None = None) -> dict[str, str]:
        auth = {"Authorization": f"Bearer {self.tokens.get(who, who)}"} if who else {}
        return {**auth, **(headers or {})}

    def get(self, path: str, *, who: str | None = None, headers: dict[str, str] | None = None, **kw):
        return self.client.get(path, headers=self.headers(who, headers), **kw)

    def post(self, path: str, json: Any = None, *, who: str | None = "historian",
             headers: dict[str, str] | None = None, **kw):
        if json is not None:
            kw["json"] = json
        return self.client.post(path, headers=self.headers(who, headers), **kw)

    def open(self, method: str, path: str, *, who: str | None = None, headers: dict[str, str] | None = None, **kw):
        return self.client.open(path, method=method, headers=self.headers(who, headers), **kw)

    # The store

    def seed(self) -> Api:
        with open(transfer.SEED, encoding="utf-8") as stream:
            transfer.import_commands(self.timeline.service.chronicle, transfer.read_lines(stream), recorded_by="seed")
        self.timeline.service.projector.catch_up()
        return self

    def log_length(self) -> int:
        return self.timeline.service.chronicle.recorder.max_notification_id() or 0

    def last_event(self) -> dict[str, Any]:
        return self.get(f"/api/v1/events?after={self.log_length() - 1}").get_json()["items"][0]

    def token_rows(self) -> list[dict[str, Any]]:
        return self.timeline.service.projector.view.select("SELECT * FROM {t} ORDER BY name", {"t": "api_tokens"})

    # Shortcuts

    def record(self, **overrides: Any) -> dict[str, Any]:
        response = self.post("/api/v1/developments", development(**overrides))
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def write(self, path: str, body: dict[str, Any], version: int, who: str = "historian") -> dict[str, Any]:
        response = self.post(path, body, who=who, headers=etag(version))
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def items(self, query: str = "", path: str = TIMELINE) -> list[dict[str, Any]]:
        response = self.get(f"{path}?limit=500{'&' if query else ''}{query}")
        assert response.status_code == 200, response.get_json()
        return response.get_json()["items"]

    def ids(self, query: str = "", path: str = TIMELINE) -> list[str]:
        return [item["id"] for item in self.items(query, path)]


@pytest.fixture
def make_api(database_url: str) -> Callable[..., Api]:
    """``make_api(seed=True, **settings)``: an app on the test's store (one per test)."""
    made: list[Api] = []

    def make(seed: bool = True, **settings: Any) -> Api:
        api = Api(create_app({"DATABASE_URL": database_url, **settings}))
        made.append(api)
        return api.seed() if seed else api

    yield make
    for api in made:
        api.timeline.service.close()


@pytest.fixture
def api(make_api) -> Api:
    return make_api()


@pytest.fixture
def unchanged(api: Api):
    """Asserts at the end of the test that the event log did not grow."""
    before = api.log_length()
    yield
    assert api.log_length() == before


# The OpenAPI document, health, readiness, vocabulary


def test_openapi_document_lists_exactly_the_tested_operations(api: Api):
    spec = api.get("/openapi.json").get_json()
    operations = {(method.upper(), path) for path, item in spec["paths"].items() for method in item
                  if method != "parameters"}
    assert operations == ENDPOINTS
    writes = {op for op in operations if op[0] in ("POST", "DELETE")}
    for method, path in writes:
        assert spec["paths"][path][method.lower()]["security"] == [{"bearer": []}], (method, path)
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}


def test_healthz(api: Api):
    response = api.get("/healthz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


def test_readyz_reports_the_projection_lag(api: Api):
    assert api.get("/readyz").get_json() == {"status": "ready", "projection_lag": 0}
    # Two events written behind the projector's back, by another process's chronicle.
    elsewhere = Chronicle(env={"TIMELINE_DATABASE_URL": api.timeline.config["DATABASE_URL"]})
    elsewhere.register_actor({"id": "georgia", "name": "Georgia", "kind": "state"}, recorded_by="elsewhere")
    elsewhere.register_actor({"id": "moldova", "name": "Moldova", "kind": "state"}, recorded_by="elsewhere")
    elsewhere.close()
    body = api.get("/readyz").get_json()
    assert body["status"] == "ready"
    assert isinstance(body["projection_lag"], int) and body["projection_lag"] == 2


def test_vocabulary_is_the_record_vocabulary(api: Api):
    body = api.get("/api/v1/vocabulary").get_json()
    assert body["categories"]["assault"] == {"quad_class": "material_conflict", "weight": -10.0,
                                             "description": vocabulary.CATEGORIES["assault"].description}
    assert set(body["categories"]) == set(vocabulary.CATEGORIES)
    assert body["roles"] == list(vocabulary.ROLES) and body["certainties"] == list(vocabulary.CERTAINTIES)
    assert body["quad_classes"] == list(vocabulary.QUAD_CLASSES)
    assert body["actor_kinds"] == list(vocabulary.ACTOR_KINDS) and body["link_types"] == list(vocabulary.LINK_TYPES)
    assert "day" in body["precisions"] and "interval" in body["precisions"]


# Actors

GEORGIA = {"id": "georgia", "name": "Georgia", "kind": "state", "names": {"de": "Georgien", "ka": "საქართველო"},
           "aliases": ["Sakartwelo"]}


def test_register_actor(api: Api):
    response = api.post("/api/v1/actors", GEORGIA)
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == "/api/v1/actors/georgia"
    assert response.headers["ETag"] == '"1"'
    assert int(response.headers["X-Timeline-Position"]) == body["position"] == api.log_length()
    assert (body["id"], body["version"], body["created"]) == ("georgia", 1, True)
    assert body["actor"]["names"] == GEORGIA["names"] and body["actor"]["recorded_by"] == "historian"
    assert api.get("/api/v1/actors/georgia").get_json()["aliases"] == ["Sakartwelo"]


def test_registering_an_actor_again(api: Api):
    api.post("/api/v1/actors", GEORGIA)
    length = api.log_length()
    again = api.post("/api/v1/actors", GEORGIA)
    assert again.status_code == 200
    assert again.get_json()["created"] is False and again.get_json()["position"] is None
    assert "X-Timeline-Position" not in again.headers
    assert_problem(api.post("/api/v1/actors", {**GEORGIA, "name": "Sakartvelo"}), 409)
    assert api.log_length() == length
    assert api.get("/api/v1/actors/georgia").get_json()["name"] == "Georgia"


@pytest.mark.parametrize("q, slug", [
    ("Russland", "russia"), ("Paschinjan", "pashinyan"), ("Пашинян", "pashinyan"), ("Türkei", "turkey"),
    ("turkiye", "turkey"), ("KREML", "russia"), ("Eriwan", "armenia"), ("united", "united-states"),
], ids=["german-name", "german-person", "russian", "umlaut", "accent-insensitive", "alias-any-case",
        "german-alias", "id"])
def test_search_actors_in_any_language(api: Api, q: str, slug: str):
    items = api.get("/api/v1/actors", query_string={"q": q}).get_json()["items"]
    assert slug in [a["id"] for a in items]
    for actor in items:
        terms = [actor["id"], actor["name"], *actor["names"].values(), *actor["aliases"]]
        assert any(fold(q) in fold(term) for term in terms), actor["id"]


def test_search_actors_without_q_lists_them_by_id(api: Api):
    every = [a["id"] for a in api.get("/api/v1/actors?limit=500").get_json()["items"]]
    assert len(every) == SEED_ACTORS and every == sorted(every)
    assert [a["id"] for a in api.get("/api/v1/actors?limit=3").get_json()["items"]] == every[:3]
    assert api.get("/api/v1/actors?q=Atlantis").get_json() == {"items": []}


def test_get_actor_with_etag_and_if_none_match(api: Api):
    response = api.get("/api/v1/actors/armenia")
    assert response.status_code == 200 and response.headers["ETag"] == '"1"'
    assert response.get_json()["names"]["de"] == "Armenien"
    for header in ('"1"', '"7", "1"'):
        cached = api.get("/api/v1/actors/armenia", headers={"If-None-Match": header})
        assert cached.status_code == 304 and cached.data == b"" and cached.headers["ETag"] == '"1"'
    assert api.get("/api/v1/actors/armenia", headers={"If-None-Match": '"2"'}).status_code == 200


@pytest.mark.parametrize("header", ['W/"1"', "*"], ids=["weak", "star"])
def test_if_none_match_uses_weak_comparison(api: Api, header: str):
    assert api.get("/api/v1/actors/armenia", headers={"If-None-Match": header}).status_code == 304


def test_if_match_uses_strong_comparison(api: Api, unchanged):
    """A weak tag never matches in If-Match (RFC 9110), so a write carrying one is stale."""
    correction = {"changes": {"description": "Republik im Südkaukasus."}, "reason": "shorter"}
    refused = api.post("/api/v1/actors/armenia/corrections", correction, headers={"If-Match": 'W/"1"'})
    assert assert_problem(refused, 412)["current_version"] == 1


def test_correct_actor_needs_if_match(api: Api):
    path = "/api/v1/actors/armenia/corrections"
    correction = {"changes": {"description": "Republik im Südkaukasus."}, "reason": "shorter"}
    before = api.log_length()
    assert_problem(api.post(path, correction), 428, "If-Match")
    stale = api.post(path, correction, headers=etag(7))
    assert assert_problem(stale, 412)["current_version"] == 1 and stale.headers["ETag"] == '"1"'
    assert api.log_length() == before
    response = api.post(path, correction, headers=etag(1))
    body = response.get_json()
    assert response.status_code == 200 and response.headers["ETag"] == '"2"'
    assert response.headers["Location"] == "/api/v1/actors/armenia"
    new = "Republik im Südkaukasus."
    assert (body["version"], body["position"], body["actor"]["description"]) == (2, before + 1, new)
    assert api.get("/api/v1/actors/armenia").get_json()["description"] == new
    old = api.get(f"/api/v1/actors/armenia?as_of={before}")
    assert old.headers["ETag"] == '"1"' and old.get_json()["description"].startswith("Republik im Südkaukasus, ")


def test_actor_state_differs_between_two_dates(api: Api):
    early = api.get("/api/v1/actors/armenia/state?at=2023-01-01").get_json()
    late = api.get("/api/v1/actors/armenia/state?at=2023-09-15").get_json()
    assert (early["actor"], early["at"], late["at"]) == ("armenia", "2023-01-01", "2023-09-15")
    assert early["attributes"]["membership.csto"]["value"] == "member"
    assert early["attributes"]["membership.csto"]["development"] == CSTO_MEMBERSHIP
    assert late["attributes"]["membership.csto"]["value"] == "representative_withdrawn"
    assert late["attributes"]["membership.csto"]["development"] == CSTO_REPRESENTATIVE_WITHDRAWN
    assert "exercise.united-states" not in early["attributes"] and "exercise.united-states" in late["attributes"]
    assert early["involvement"]["developments"] < late["involvement"]["developments"]
    assert late["profile"]["names"]["de"] == "Armenien"


def test_actor_state_as_of_an_earlier_record_time(api: Api):
    before = api.log_length()
    api.record(title="Armenia leaves the CSTO", category="retreat", when="2023-09-14",
               actors=[{"actor": "armenia", "role": "initiator"}, {"actor": "csto", "role": "target"}],
               effects=[{"actor": "armenia", "attribute": "membership.csto", "value": None}])
    now = api.get("/api/v1/actors/armenia/state?at=2023-09-15").get_json()
    then = api.get(f"/api/v1/actors/armenia/state?at=2023-09-15&as_of={before}").get_json()
    assert "membership.csto" not in now["attributes"]
    assert then["attributes"]["membership.csto"]["value"] == "representative_withdrawn" and then["as_of"] == before


def test_actor_timeline(api: Api):
    items = api.items(path="/api/v1/actors/armenia/timeline")
    assert items and all("armenia" in [a["actor"] for a in item["actors"]] for item in items)
    assert [i["id"] for i in items] == api.ids("actor=armenia")
    assert api.ids("role=initiator", "/api/v1/actors/armenia/timeline") == api.ids("actor=armenia&role=initiator")
    assert_problem(api.get("/api/v1/actors/atlantis/timeline"), 404)


def test_actor_timeline_stays_the_timeline_of_that_actor(api: Api):
    items = api.items("actor=russia", "/api/v1/actors/armenia/timeline")
    assert items and all("armenia" in [a["actor"] for a in item["actors"]] for item in items)


@pytest.mark.parametrize("role", ["initiator", "participant", "target"])
def test_on_an_actors_timeline_role_is_that_actors_role_when_other_actors_narrow_it(api: Api, role: str):
    """It was checked on the other actors' rows instead (in the seed Russia is a target
    beside Armenia once, and Armenia never beside Russia)."""
    items = api.items(f"actor=russia&role={role}", "/api/v1/actors/armenia/timeline")
    expected = [item["id"] for item in api.items("actor=russia", "/api/v1/actors/armenia/timeline")
                if {"actor": "armenia", "role": role} in item["actors"]]
    assert [item["id"] for item in items] == expected
    assert bool(items) == (role != "target")


# Developments


def test_record_development(api: Api):
    sent = development(when="2023-09~", tags=["ovks"])
    response = api.post("/api/v1/developments", sent)
    body = response.get_json()
    assert response.status_code == 201 and body["created"] is True and body["version"] == 1
    uuid.UUID(body["id"])
    assert response.headers["Location"] == f"/api/v1/developments/{body['id']}"
    assert response.headers["ETag"] == '"1"'
    assert int(response.headers["X-Timeline-Position"]) == body["position"] == api.log_length()
    stored = body["development"]
    assert {k: stored[k] for k in sent} == sent
    assert (stored["earliest"], stored["latest"], stored["precision"], stored["qualified"]) == \
        ("2023-09-01", "2023-09-30", "month", True)
    assert stored["recorded_by"] == "historian" and stored["retracted"] is False
    assert api.get(response.headers["Location"]).get_json() == stored


def test_recording_a_client_chosen_id_twice(api: Api):
    ident = str(uuid.uuid4())
    first = api.post("/api/v1/developments", development(id=ident))
    assert first.status_code == 201 and first.get_json()["id"] == ident
    length = api.log_length()
    again = api.post("/api/v1/developments", development(id=ident))
    body = again.get_json()
    assert again.status_code == 200 and (body["id"], body["created"], body["position"]) == (ident, False, None)
    assert "X-Timeline-Position" not in again.headers and again.headers["ETag"] == '"1"'
    assert_problem(api.post("/api/v1/developments", development(id=ident, title="Another title")), 409)
    assert api.log_length() == length
    assert api.ids("q=Armenia protests") == [ident]


def test_get_development_as_of_a_past_position(api: Api):
    recorded = api.record()
    corrected = api.write(f"/api/v1/developments/{recorded['id']}/corrections",
                          {"changes": {"title": "Armenia accuses the CSTO"}, "reason": "wording"}, 1)
    path = f"/api/v1/developments/{recorded['id']}"
    then = api.get(f"{path}?as_of={recorded['position']}")
    assert then.headers["ETag"] == '"1"'
    assert (then.get_json()["title"], then.get_json()["version"]) == ("Armenia protests to the CSTO", 1)
    now = api.get(path)
    assert now.headers["ETag"] == '"2"' and now.get_json()["title"] == "Armenia accuses the CSTO"
    assert api.get(f"{path}?as_of={corrected['position']}").get_json()["version"] == 2
    recorded_at = recorded["development"]["recorded_at"]
    assert api.get(path, query_string={"as_of": recorded_at}).get_json()["version"] == 1
    assert_problem(api.get(f"{path}?as_of={recorded['position'] - 1}"), 404)


def test_history_lists_every_version(api: Api):
    ident = api.record()["id"]
    base = f"/api/v1/developments/{ident}"
    api.write(f"{base}/corrections", {"changes": {"certainty": "confirmed"}, "reason": "second source"}, 1)
    api.write(f"{base}/sources", {"citation": "Second agency"}, 2, who="admin")
    api.write(f"{base}/retraction", {"reason": "duplicate"}, 3)
    api.write(f"{base}/restoration", {"reason": "not a duplicate"}, 4)
    history = api.get(f"{base}/history").get_json()
    assert history["id"] == ident
    entries = history["history"]
    assert [e["type"] for e in entries] == ["recorded", "corrected", "source_added", "retracted", "restored"]
    assert [e["version"] for e in entries] == [1, 2, 3, 4, 5]
    assert [e["recorded_by"] for e in entries] == ["historian", "historian", "admin", "historian", "historian"]
    assert [e["reason"] for e in entries] == [None, "second source", None, "duplicate", "not a duplicate"]
    positions = [e["position"] for e in entries]
    assert positions == sorted(positions) and positions[-1] == api.log_length()
    assert entries[0]["stated"]["title"] == "Armenia protests to the CSTO"
    assert entries[1]["changes"] == {"certainty": "confirmed"}
    assert entries[2]["source"] == {"citation": "Second agency"}
    assert all(e["recorded_at"] for e in entries)


FOLLOW_UPS = {
    "corrections": {"changes": {"title": "Armenia accuses the CSTO"}, "reason": "wording"},
    "sources": {"citation": "Second agency", "quote": "Armenia protested"},
    "retraction": {"reason": "duplicate"},
    "restoration": {"reason": "not a duplicate"},
}


def test_a_write_answers_the_development_as_it_left_it_without_reading_it_back(api: Api, monkeypatch):
    """Each kind of write answers what a read at its own position gives, from what this
    process projected: no query reads the development back."""
    reader = api.timeline.service.reader
    monkeypatch.setattr(reader, "development", lambda *a: pytest.fail("a write's answer read the development back"))
    recorded = api.record()
    base = f"/api/v1/developments/{recorded['id']}"
    answers = [recorded]
    for version, (write, body) in enumerate(FOLLOW_UPS.items(), start=1):
        answers.append(api.write(f"{base}/{write}", body, version))
    monkeypatch.undo()
    assert [a["development"]["version"] for a in answers] == [1, 2, 3, 4, 5]
    assert [a["development"]["retracted"] for a in answers] == [False, False, False, True, False]
    for answer in answers:
        assert answer["development"] == api.get(f"{base}?as_of={answer['position']}").get_json()
    assert answers[-1]["development"] == api.get(base).get_json()


def test_a_repeated_write_answers_the_development_read_back(api: Api):
    """A repeat that stores nothing projects nothing: its answer reads the record."""
    ident = str(uuid.uuid4())
    first = api.record(id=ident)
    again = api.post("/api/v1/developments", development(id=ident))
    assert again.status_code == 200 and again.get_json()["position"] is None
    assert again.get_json()["development"] == first["development"]


def test_the_states_kept_for_answers_are_bounded(api: Api):
    projector = api.timeline.service.projector
    projector._keep({(f"d{i}", 1): {"i": i} for i in range(KEPT_WRITTEN + 5)})
    assert projector.written("d4", 1) is None and projector.written("d5", 1) == {"i": 5}
    assert projector.written("d5", 1) is None, "a state is taken once"


@pytest.mark.parametrize("write", FOLLOW_UPS)
def test_writes_to_a_development_need_if_match(api: Api, write: str):
    ident = api.record()["id"]
    version = 1
    if write == "restoration":
        api.write(f"/api/v1/developments/{ident}/retraction", {"reason": "to restore it"}, 1)
        version = 2
    path, body = f"/api/v1/developments/{ident}/{write}", FOLLOW_UPS[write]
    length = api.log_length()
    assert_problem(api.post(path, body), 428, "If-Match")
    for stale in (f'"{version - 1}"', f'"{version + 1}"', "garbage"):
        response = api.post(path, body, headers={"If-Match": stale})
        assert assert_problem(response, 412)["current_version"] == version
        assert response.headers["ETag"] == f'"{version}"'
    assert api.log_length() == length
    response = api.post(path, body, headers=etag(version))
    assert response.status_code == 200 and response.headers["ETag"] == f'"{version + 1}"'
    assert response.get_json()["version"] == version + 1 and response.get_json()["position"] == length + 1
    assert api.get(f"/api/v1/developments/{ident}/history").get_json()["history"][-1]["version"] == version + 1


def test_etag_after_a_retraction_is_the_stream_version(api: Api):
    ident = api.record()["id"]
    api.write(f"/api/v1/developments/{ident}/retraction", {"reason": "duplicate"}, 1)
    response = api.get(f"/api/v1/developments/{ident}", headers={"If-None-Match": '"1"'})
    assert response.status_code == 200 and response.get_json()["retracted"] is True
    assert response.headers["ETag"] == '"2"' and response.get_json()["version"] == 2


def test_if_match_star_skips_the_version_check(api: Api):
    ident = api.record()["id"]
    response = api.post(f"/api/v1/developments/{ident}/sources", {"citation": "Any"}, headers={"If-Match": "*"})
    assert response.status_code == 200 and response.get_json()["version"] == 2


def test_retracted_development_leaves_the_timeline_but_not_the_record(api: Api):
    ident = api.record(tags=["retract-me"])["id"]
    assert api.ids("tag=retract-me") == [ident]
    retracted = api.write(f"/api/v1/developments/{ident}/retraction", {"reason": "duplicate"}, 1)
    assert api.ids("tag=retract-me") == [] and ident not in api.ids()
    assert api.get(f"/api/v1/developments/{ident}").get_json()["retracted"] is True
    before = api.get(f"/api/v1/developments/{ident}?as_of={retracted['position'] - 1}").get_json()
    assert before["retracted"] is False
    assert [e["type"] for e in api.get(f"/api/v1/developments/{ident}/history").get_json()["history"]] == \
        ["recorded", "retracted"]
    assert api.ids(f"tag=retract-me&as_of={retracted['position'] - 1}") == [ident]
    api.write(f"/api/v1/developments/{ident}/restoration", {"reason": "not a duplicate"}, 2)
    assert api.ids("tag=retract-me") == [ident]
    assert api.get(f"/api/v1/developments/{ident}").get_json()["retracted"] is False


# The timeline


def test_timeline_of_the_seed(api: Api):
    body = api.get(TIMELINE).get_json()
    items = body["items"]
    assert len(items) == SEED_DEVELOPMENTS and body["next_cursor"] is None and body["as_of"] == api.log_length()
    keys = [(i["earliest"], i["latest"]) for i in items]
    assert keys == sorted(keys) and items[0]["when"] == "1991"


def test_timeline_order_desc_is_the_reverse(api: Api):
    assert api.ids("order=desc") == api.ids()[::-1]


def is_in(actor: str, role: str | None = None) -> Callable[[dict[str, Any]], bool]:
    return lambda d: any(a["actor"] == actor and role in (None, a["role"]) for a in d["actors"])


FILTERS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "actor=russia": is_in("russia"),
    "actor=turkey&actor=ryabkov": lambda d: is_in("turkey")(d) or is_in("ryabkov")(d),
    "role=mediator": lambda d: any(a["role"] == "mediator" for a in d["actors"]),
    "actor=armenia&role=initiator": is_in("armenia", "initiator"),
    "category=accuse": lambda d: d["category"] == "accuse",
    "category=accuse&category=threaten": lambda d: d["category"] in ("accuse", "threaten"),
    "tag=ovks": lambda d: "ovks" in d["tags"],
    "tag=telegram&tag=x": lambda d: {"telegram", "x"} & set(d["tags"]),
    "certainty=reported": lambda d: d["certainty"] == "reported",
    "certainty=claimed&certainty=reported": lambda d: d["certainty"] in ("claimed", "reported"),
    "from=2023-09-19": lambda d: d["latest"] >= "2023-09-19",
    "to=2020-12-31": lambda d: d["earliest"] <= "2020-12-31",
    "from=2023-09-01&to=2023-09-18": lambda d: d["latest"] >= "2023-09-01" and d["earliest"] <= "2023-09-18",
    "from=2023-09-01&to=2023-09-18&match=within":
        lambda d: d["earliest"] >= "2023-09-01" and d["latest"] <= "2023-09-18",
    "from=2023-09&to=2023-09": lambda d: d["latest"] >= "2023-09-01" and d["earliest"] <= "2023-09-30",
    "from=2023-09&to=2023-09&match=within": lambda d: d["earliest"] >= "2023-09-01" and d["latest"] <= "2023-09-30",
    "to=2020": lambda d: d["earliest"] <= "2020-12-31",
    "from=2023-23": lambda d: d["latest"] >= "2023-09-01",
    "category=appeal&from=2023-09-19&actor=azerbaijan":
        lambda d: d["category"] == "appeal" and d["latest"] >= "2023-09-19" and is_in("azerbaijan")(d),
}


@pytest.mark.parametrize("query", FILTERS)
def test_timeline_filters(api: Api, query: str):
    everything = api.items()
    expected = [d["id"] for d in everything if FILTERS[query](d)]
    assert 0 < len(expected) < len(everything)
    assert api.ids(query) == expected


@pytest.mark.parametrize("q, found", [
    ("Waffenstillstand", True), ("waffenstillstand", True), ("Simonjan", True), ("Paşinyan", True),
    ("Moskau", True), ("Кремль", False), ("%", False), ("_", False),
], ids=["german", "lower-case", "actor-german-name", "actor-alias-accent", "title-and-alias", "no-match",
        "percent-is-literal", "underscore-is-literal"])
def test_timeline_free_text(api: Api, q: str, found: bool):
    """``q`` searches title, summary and the names of the developments' actors."""
    actors = {a["id"] for a in api.get("/api/v1/actors", query_string={"q": q, "limit": 500}).get_json()["items"]}
    expected = [d["id"] for d in api.items()
                if fold(q) in fold(f"{d['title']}\n{d.get('summary') or ''}")
                or actors & {a["actor"] for a in d["actors"]}]
    assert api.ids(urlencode({"q": q})) == expected
    assert bool(expected) is found


def test_timeline_as_of_shows_the_record_as_it_stood(api: Api):
    before = api.log_length()
    titles_before = {i["id"]: i["title"] for i in api.items()}
    api.record()
    api.write(f"/api/v1/developments/{CSTO_MEMBERSHIP}/corrections",
              {"changes": {"title": "Armenien ist OVKS-Mitglied"}, "reason": "shorter"}, 1)
    now = {i["id"]: i["title"] for i in api.items()}
    assert len(now) == len(titles_before) + 1 and now[CSTO_MEMBERSHIP] == "Armenien ist OVKS-Mitglied"
    response = api.get(f"{TIMELINE}?limit=500&as_of={before}").get_json()
    assert {i["id"]: i["title"] for i in response["items"]} == titles_before and response["as_of"] == before


CROWD = SEED_DEVELOPMENTS + 50


@pytest.fixture
def crowded(api: Api) -> Api:
    """The seed plus 50 more developments (80 in all; 108 events), recorded directly
    through the chronicle."""
    commands = [("record_development", development(title=f"Statement {n:02d}", when=f"2023-11-{n % 30 + 1:02d}"))
                for n in range(50)]
    api.timeline.service.chronicle.execute(commands, recorded_by="bulk")
    api.timeline.service.projector.catch_up()
    return api


def test_timeline_limit(crowded: Api):
    page = crowded.get(TIMELINE).get_json()
    assert len(page["items"]) == 50 and page["next_cursor"]
    assert len(crowded.get(f"{TIMELINE}?limit=500").get_json()["items"]) == CROWD
    assert len(crowded.get(f"{TIMELINE}?limit=1").get_json()["items"]) == 1
    for limit in (501, 0, -1, "ten"):
        assert_problem(crowded.get(f"{TIMELINE}?limit={limit}"), 400, "limit")


def follow(api: Api, url: str) -> tuple[list[dict[str, Any]], int]:
    """Every item of every page, following ``Link: rel="next"``; and the number of pages."""
    items, pages = [], 0
    while url:
        response = api.get(url)
        body = response.get_json()
        items += body["items"]
        pages += 1
        link = response.headers.get("Link")
        if body["next_cursor"] is None:
            assert link is None
            url = None
        else:
            target, rel = link.split("; ")
            assert rel == 'rel="next"' and target[0] == "<" and target[-1] == ">"
            parts = urlsplit(target[1:-1])
            assert parts.path == TIMELINE and parse_qs(parts.query)["cursor"] == [body["next_cursor"]]
            url = f"{parts.path}?{parts.query}"
    return items, pages


@pytest.mark.parametrize("query", ["limit=7", "limit=7&order=desc", "limit=4&actor=armenia&from=2023-01-01"])
def test_cursor_pages_concatenate_to_the_full_list(crowded: Api, query: str):
    full = crowded.ids(query.split("&", 1)[1] if "&" in query else "")
    items, pages = follow(crowded, f"{TIMELINE}?{query}")
    assert [i["id"] for i in items] == full
    limit = int(query.split("&")[0].split("=")[1])
    assert pages == -(-len(full) // limit) and len(full) > 2 * limit


def test_cursor_pages_keep_the_record_time_of_the_first_page(crowded: Api):
    first = crowded.get(f"{TIMELINE}?limit=40").get_json()
    crowded.record(when="2023-12-31", title="Recorded between two pages")
    second = crowded.get(f"{TIMELINE}?limit=40&cursor={first['next_cursor']}").get_json()
    assert second["as_of"] == first["as_of"] == crowded.log_length() - 1
    assert "Recorded between two pages" not in [i["title"] for i in second["items"]]
    assert len(first["items"]) + len(second["items"]) == CROWD and second["next_cursor"] is None


def test_timeline_as_csv(api: Api):
    response = api.get(f"{TIMELINE}?format=csv&actor=russia")
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["id", "when", "earliest", "latest", "precision", "category", "certainty", "title", "actors",
                       "tags", "version"]
    items = api.items("actor=russia")
    assert [r[0] for r in rows[1:]] == [i["id"] for i in items]
    first, item = dict(zip(rows[0], rows[1])), items[0]
    assert (first["when"], first["title"], first["version"]) == (item["when"], item["title"], "1")
    assert first["actors"] == ";".join(f"{a['actor']}:{a['role']}" for a in item["actors"])
    assert first["tags"] == ";".join(item["tags"])


def test_timeline_as_csv_keeps_spreadsheets_from_running_text_as_formulas(api: Api):
    formulas = ['=HYPERLINK("https://evil.example","click")', "+1+1", "-2+3", "@SUM(A1)"]
    for title in formulas:
        api.record(title=title, tags=["csv-injection"])
    api.record(title="A plain title", tags=["csv-injection"])
    rows = list(csv.DictReader(io.StringIO(api.get(f"{TIMELINE}?format=csv&tag=csv-injection").get_data(as_text=True))))
    assert sorted(row["title"] for row in rows) == sorted(["'" + title for title in formulas] + ["A plain title"])
    assert sorted(item["title"] for item in api.items("tag=csv-injection")) == sorted(formulas + ["A plain title"])


def test_timeline_as_json_lines(api: Api):
    response = api.get(f"{TIMELINE}?format=jsonl&tag=ovks")
    assert response.mimetype == "application/x-ndjson"
    lines = response.get_data(as_text=True).splitlines()
    assert [json.loads(line) for line in lines] == api.items("tag=ovks")


def test_timeline_as_timelinejs(api: Api):
    day = api.record(when="2023-10-02", tags=["tljs"])["id"]
    fuzzy = api.record(when="2023-10-03?", title="Fuzzy", tags=["tljs"])["id"]
    interval = api.record(when="2023-10~", title="Month", tags=["tljs"])["id"]
    events = {e["unique_id"]: e for e in api.get(f"{TIMELINE}?format=timelinejs&tag=tljs").get_json()["events"]}
    assert set(events) == {day, fuzzy, interval}
    assert events[day]["start_date"] == {"year": "2023", "month": "10", "day": "2"}
    assert "display_date" not in events[day] and "end_date" not in events[day]
    assert events[day]["group"] == "accuse" and events[day]["text"]["headline"] == "Armenia protests to the CSTO"
    assert events[fuzzy]["start_date"] == {"year": "2023", "month": "10", "day": "3"}
    assert events[fuzzy]["display_date"] == "2023-10-03?"
    assert events[interval]["start_date"] == {"year": "2023", "month": "10"}
    assert events[interval]["end_date"] == {"year": "2023", "month": "10"}
    assert events[interval]["display_date"] == "2023-10~"
    seed = api.get(f"{TIMELINE}?format=timelinejs").get_json()["events"]
    assert len(seed) == SEED_DEVELOPMENTS + 3 and seed[0]["start_date"] == {"year": "1991"}


# The event log


def test_events_pages_by_position(api: Api):
    positions, after, pages = [], 0, 0
    while after is not None:
        body = api.get(f"/api/v1/events?after={after}&limit=25").get_json()
        positions += [e["position"] for e in body["items"]]
        after, pages = body["next_after"], pages + 1
        if after is not None:
            assert after == positions[-1]
    total = api.log_length()
    assert positions == list(range(1, total + 1)) and pages == -(-total // 25)
    first = api.get("/api/v1/events?limit=1").get_json()["items"][0]
    assert first["type"] == "timeline:Actor.Registered" and first["version"] == 1
    assert first["payload"]["slug"] == "armenia" and first["payload"]["recorded_by"] == "seed"
    assert first["event_id"] == f"{first['stream_id']}/1" and first["recorded_at"]
    assert api.get(f"/api/v1/events?after={total}").get_json() == {"items": [], "next_after": None}


def test_events_default_limit(crowded: Api):
    page = crowded.get("/api/v1/events").get_json()
    assert crowded.log_length() == SEED_ACTORS + CROWD > 100
    assert [e["position"] for e in page["items"]] == list(range(1, 101)) and page["next_after"] == 100


def test_events_type_filter(api: Api):
    actors = api.get("/api/v1/events?type=timeline:Actor.Registered").get_json()["items"]
    assert len(actors) == SEED_ACTORS and {e["type"] for e in actors} == {"timeline:Actor.Registered"}
    ident = api.record()["id"]
    api.write(f"/api/v1/developments/{ident}/retraction", {"reason": "duplicate"}, 1)
    both = api.get("/api/v1/events?type=timeline:Development.Retracted&type=timeline:Actor.Registered&after=20")
    assert [e["type"] for e in both.get_json()["items"]] == \
        ["timeline:Actor.Registered"] * (SEED_ACTORS - 20) + ["timeline:Development.Retracted"]
    unknown = assert_problem(api.get("/api/v1/events?type=timeline:Development.Retraction"), 400, "type[0]")
    assert "timeline:Development.Retracted" in unknown["errors"]["type[0]"][0]  # a typo is named, with the types


def test_the_event_types_are_those_the_record_stores(api: Api):
    """Every command once: the types the log then holds are the ones the filter takes."""
    ident = api.record()["id"]
    for version, (path, body) in enumerate([("corrections", {"changes": {"title": "Corrected"}, "reason": "typo"}),
                                            ("sources", {"citation": "AP"}), ("retraction", {"reason": "duplicate"}),
                                            ("restoration", {"reason": "not a duplicate"})], 1):
        api.write(f"/api/v1/developments/{ident}/{path}", body, version)
    api.write("/api/v1/actors/armenia/corrections", {"changes": {"aliases": ["RA"]}, "reason": "short form"}, 1)
    stored = {entry["type"] for entry in api.get("/api/v1/events?limit=1000").get_json()["items"]}
    assert stored == set(EVENT_TYPES) and len(EVENT_TYPES) == 7


STREAM = "/api/v1/events/stream"


def test_head_requests_do_not_keep_stream_slots(make_api):
    """A HEAD never runs the stream's generator; its slot must come back all the same,
    or a few HEADs (a link checker, ``curl -I``) lock every client out of the stream."""
    api = make_api(seed=False, MAX_STREAMS=2)
    for _ in range(2 + 1):
        head = api.client.head(STREAM, buffered=True)  # read and closed, as a server does
        assert head.status_code == 200 and head.mimetype == "text/event-stream"
    opened = [api.get(STREAM) for _ in range(2 + 1)]
    try:
        assert [r.status_code for r in opened] == [200, 200, 503]  # every slot free, the limit still holds
        assert opened[0].mimetype == "text/event-stream" and next(opened[0].response) == b"retry: 2000\n\n"
    finally:
        for response in reversed(opened):  # each open stream holds its request context: last in, first out
            response.close()
    again = api.get(STREAM)
    again.close()
    assert again.status_code == 200


@pytest.mark.parametrize("value", [str(2**63), "99999999999999999999", "-1", "x"],
                         ids=["2**63", "20-digits", "negative", "not-a-number"])
@pytest.mark.parametrize("field", ["Last-Event-ID", "after"])
def test_stream_refuses_a_bad_position_before_streaming(make_api, field: str, value: str):
    """As ``/events?after=``: a position the store cannot hold is the client's error, not
    a 200 whose stream dies and that an EventSource then retries with the same id forever."""
    api = make_api(seed=False)
    if field == "after":
        response = api.get(STREAM, query_string={"after": value})
    else:
        response = api.get(STREAM, headers={field: value})
    try:
        assert response.mimetype == PROBLEM, response.status_code  # an endless stream: never read its body
        assert_problem(response, 400, field)
    finally:
        response.close()
    assert api.timeline.streams.acquire(blocking=False)  # the refusal took no slot
    api.timeline.streams.release()


# Errors

BIG = "x" * (1024 * 1024)


@dataclass
class Bad:
    method: str
    path: str
    status: int
    fields: tuple[str, ...] = ()
    json: Any = None
    kw: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    who: str | None = "historian"


UNKNOWN = "00000000-0000-4000-8000-000000000000"
BAD_REQUESTS = {
    "unknown-query-parameter": Bad("GET", f"{TIMELINE}?bogus=1", 400, ("bogus",)),
    "unknown-query-parameter-events": Bad("GET", "/api/v1/events?since=3", 400, ("since",)),
    "limit-501": Bad("GET", f"{TIMELINE}?limit=501", 400, ("limit",)),
    "events-limit-1001": Bad("GET", "/api/v1/events?limit=1001", 400, ("limit",)),
    "bad-date": Bad("GET", f"{TIMELINE}?from=2023-13-01", 400, ("from",)),
    "bad-month": Bad("GET", f"{TIMELINE}?to=2023-13", 400, ("to",)),
    "open-interval-as-bound": Bad("GET", f"{TIMELINE}?from=2023-09-01/..", 400, ("from",)),
    "range-of-years-ends-before-it-starts": Bad("GET", f"{TIMELINE}?from=2024&to=2023", 400, ("to",)),
    "state-at-a-month": Bad("GET", "/api/v1/actors/armenia/state?at=2023-09", 400, ("at",)),
    "range-ends-before-it-starts": Bad("GET", f"{TIMELINE}?from=2023-10-01&to=2023-09-01", 400, ("to",)),
    "actor-range-ends-before-it-starts": Bad("GET", "/api/v1/actors/armenia/timeline?from=2023-10-01&to=2023-09-30",
                                             400, ("to",)),
    "bad-order": Bad("GET", f"{TIMELINE}?order=sideways", 400, ("order",)),
    "bad-format": Bad("GET", f"{TIMELINE}?format=xml", 400, ("format",)),
    "bad-category": Bad("GET", f"{TIMELINE}?category=war", 400, ("category[0]",)),
    "bad-as-of": Bad("GET", f"{TIMELINE}?as_of=yesterday", 400, ("as_of",)),
    "as-of-without-zone": Bad("GET", f"{TIMELINE}?as_of=2023-09-20T12:00:00", 400, ("as_of",)),
    "bad-cursor": Bad("GET", f"{TIMELINE}?cursor=bm90LWEtY3Vyc29y", 400, ("cursor",)),
    "negative-min-position": Bad("GET", f"{TIMELINE}?min_position=-1", 400, ("min_position",)),
    "bad-state-date": Bad("GET", "/api/v1/actors/armenia/state?at=tomorrow", 400, ("at",)),
    "search-limit-0": Bad("GET", "/api/v1/actors?limit=0", 400, ("limit",)),
    "unknown-body-field": Bad("POST", "/api/v1/developments", 422, ("bogus",), development(bogus=1)),
    "unknown-nested-field": Bad("POST", "/api/v1/developments", 422, ("sources[0].page",),
                                development(sources=[{"citation": "X", "page": 3}])),
    "missing-field": Bad("POST", "/api/v1/developments", 422, ("title",),
                         {k: v for k, v in development().items() if k != "title"}),
    "edtf-not-a-day": Bad("POST", "/api/v1/developments", 422, ("when",), development(when="2023-02-30")),
    "edtf-words": Bad("POST", "/api/v1/developments", 422, ("when",), development(when="next week")),
    "long-quote": Bad("POST", "/api/v1/developments", 422, ("sources[0].quote",),
                      development(sources=[{"citation": "X", "quote": "q" * 1001}])),
    "source-without-citation": Bad("POST", "/api/v1/developments", 422, ("sources[0]",),
                                   development(sources=[{"quote": "no citation"}])),
    "unregistered-actor": Bad("POST", "/api/v1/developments", 422, ("actors[0].actor",),
                              development(actors=[{"actor": "atlantis", "role": "initiator"}])),
    "bad-category-body": Bad("POST", "/api/v1/developments", 422, ("category",), development(category="war")),
    "bad-actor-slug": Bad("POST", "/api/v1/actors", 422, ("id",), {"id": "Not A Slug", "name": "X", "kind": "state"}),
    "correction-changes-nothing": Bad("POST", f"/api/v1/developments/{CSTO_MEMBERSHIP}/corrections", 422,
                                      ("changes",), {"changes": {"category": "institutional"}, "reason": "same"},
                                      headers=etag(1)),
    "restore-a-live-development": Bad("POST", f"/api/v1/developments/{CSTO_MEMBERSHIP}/restoration", 422,
                                      ("restoration",), {"reason": "was never retracted"}, headers=etag(1)),
    "body-not-an-object": Bad("POST", "/api/v1/developments", 422, (), [development()]),
    "malformed-json": Bad("POST", "/api/v1/developments", 400, (),
                          kw={"data": '{"title": ', "content_type": "application/json"}),
    "wrong-content-type": Bad("POST", "/api/v1/developments", 415, ("Content-Type",),
                              kw={"data": json.dumps(development()), "content_type": "text/plain"}),
    "form-content-type": Bad("POST", "/api/v1/actors", 415, ("Content-Type",),
                             kw={"data": {"id": "x", "name": "X", "kind": "state"}}),
    "body-over-1-mib": Bad("POST", "/api/v1/developments", 413, (), development(summary=BIG)),
    "idempotency-key-too-long": Bad("POST", "/api/v1/developments", 400, ("Idempotency-Key",), development(),
                                    headers={"Idempotency-Key": "k" * 256}),
    "unknown-development": Bad("GET", f"/api/v1/developments/{UNKNOWN}", 404),
    "not-a-uuid": Bad("GET", "/api/v1/developments/not-a-uuid", 404),
    "unknown-history": Bad("GET", f"/api/v1/developments/{UNKNOWN}/history", 404),
    "unknown-actor": Bad("GET", "/api/v1/actors/atlantis", 404),
    "unknown-actor-state": Bad("GET", "/api/v1/actors/atlantis/state", 404),
    "unknown-actor-timeline": Bad("GET", "/api/v1/actors/atlantis/timeline", 404),
    "correct-unknown-actor": Bad("POST", "/api/v1/actors/atlantis/corrections", 404, (),
                                 {"changes": {"name": "Atlantis"}, "reason": "found"}, headers=etag(1)),
    "correct-unknown-development": Bad("POST", f"/api/v1/developments/{UNKNOWN}/corrections", 404, (),
                                       {"changes": {"title": "X"}, "reason": "x"}, headers=etag(1)),
    "retract-unknown-development": Bad("POST", f"/api/v1/developments/{UNKNOWN}/retraction", 404, (),
                                       {"reason": "x"}, headers=etag(1)),
    "revoke-unknown-token": Bad("DELETE", "/api/v1/admin/tokens/nobody", 404, who="admin"),
    "bad-token-name": Bad("POST", "/api/v1/admin/tokens", 422, ("name",), {"name": "Alice Smith", "role": "reader"},
                          who="admin"),
    "bad-token-role": Bad("POST", "/api/v1/admin/tokens", 422, ("role",), {"name": "alice", "role": "root"},
                          who="admin"),
    "existing-token-name": Bad("POST", "/api/v1/admin/tokens", 422, ("name",), {"name": "reader", "role": "reader"},
                               who="admin"),
    "unknown-route": Bad("GET", "/api/v1/nothing-here", 404),
    "min-position-stays-an-integer": Bad("GET", f"{TIMELINE}?min_position=1.5", 400, ("min_position",)),
}


@pytest.mark.parametrize("bad", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_requests_are_problems_and_change_nothing(api: Api, bad: Bad):
    tokens = api.token_rows()
    before = api.log_length()
    response = api.open(bad.method, bad.path, who=bad.who, json=bad.json, headers=bad.headers, **bad.kw)
    assert_problem(response, bad.status, *bad.fields)
    assert api.log_length() == before and api.token_rows() == tokens


@pytest.mark.parametrize("method, path, allowed", [
    ("GET", "/api/v1/developments", {"POST"}),
    ("DELETE", TIMELINE, {"GET", "HEAD"}),
    ("PATCH", f"/api/v1/developments/{CSTO_MEMBERSHIP}", {"GET", "HEAD"}),
    ("GET", "/api/v1/admin/tokens", {"POST"}),
], ids=["get-developments", "delete-timeline", "patch-development", "get-tokens"])
def test_method_not_allowed_carries_allow(api: Api, unchanged, method: str, path: str, allowed: set[str]):
    response = api.open(method, path, who="admin", json={} if method == "PATCH" else None)
    assert_problem(response, 405)
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}
    assert method not in response.headers["Allow"]


@pytest.mark.parametrize("method, path, who, status", [
    ("POST", "/api/v1/admin/replay", "admin", 200),
    ("POST", "/api/v1/admin/replay", None, 401),
    ("PUT", "/healthz", None, 405),
    ("PUT", TIMELINE, None, 405),
], ids=["replay-without-body", "replay-without-token", "put-healthz", "put-timeline"])
def test_requests_without_a_body_are_not_unsupported_media_type(api: Api, unchanged, method, path, who, status):
    assert api.open(method, path, who=who).status_code == status


@pytest.mark.parametrize("as_of", ["²", "٣"], ids=["superscript-two", "arabic-indic-three"])
def test_as_of_with_non_ascii_digits_is_a_bad_query(api: Api, as_of: str):
    assert_problem(api.get(TIMELINE, query_string={"as_of": as_of}), 400, "as_of")


@pytest.mark.parametrize("path", [
    "/api/v1/events?after=9223372036854775808",
    f"{TIMELINE}?as_of=9223372036854775808",
    "/api/v1/actors/armenia?as_of=9223372036854775808",
    f"/api/v1/developments/{CSTO_MEMBERSHIP}?as_of=9223372036854775808",
], ids=["events-after", "timeline-as-of", "actor-as-of", "development-as-of"])
def test_integers_beyond_64_bits_are_not_server_errors(api: Api, path: str):
    response = api.get(path)
    assert response.status_code < 500
    assert response.status_code in (200, 400, 404)


@pytest.mark.parametrize(("path", "field"), [
    (f"{TIMELINE}?q=%00", "q"),
    (f"{TIMELINE}?q=arm%00enien", "q"),
    (f"{TIMELINE}?actor=%00", "actor"),
    (f"{TIMELINE}?tag=%00", "tag"),
    ("/api/v1/actors?q=%00", "q"),
    ("/api/v1/actors/%00/state", "slug"),
    ("/api/v1/developments/%00", "ident"),
], ids=["free-text", "free-text-inside", "actor", "tag", "actor-search", "actor-path", "development-path"])
def test_a_nul_in_a_query_or_path_value_is_a_bad_request(api: Api, path: str, field: str):
    """Not every development (SQLite's LIKE ended the pattern at the NUL) nor a 503
    (PostgreSQL refuses NUL in text)."""
    assert_problem(api.get(path), 400, field)


def test_a_query_string_that_is_not_utf8_is_a_bad_request(api: Api):
    response = api.get(TIMELINE, environ_overrides={"QUERY_STRING": "q=\xe9"})
    assert_problem(response, 400, "query")


@pytest.mark.parametrize("query", ["q=%E9", "q=caf%E9", "%FF=1", "q=%ED%A0%80"], ids=["latin-1", "inside", "name",
                                                                                     "surrogate"])
def test_a_percent_escape_that_is_not_utf8_is_a_bad_request(api: Api, query: str):
    """As every HTTP client sends such bytes; Werkzeug read them as the text ``%E9``."""
    assert_problem(api.get(f"{TIMELINE}?{query}"), 400, "query")


def test_actor_state_on_the_first_day_of_the_calendar(api: Api):
    response = api.get("/api/v1/actors/armenia/state?at=0001-01-01")
    assert response.status_code == 200 and response.get_json()["attributes"] == {}


def test_history_refuses_unknown_query_parameters(api: Api):
    assert_problem(api.get(f"/api/v1/developments/{CSTO_MEMBERSHIP}/history?as_of=1"), 400, "as_of")


# Authentication and roles


@dataclass
class Write:
    """A write endpoint: ``prepare(api)`` returns (method, path, json, headers) of a
    valid request; ``check(api, response, who)`` that it had its effect."""

    role: str
    prepare: Callable[[Api], tuple[str, str, Any, dict[str, str]]]
    check: Callable[[Api, Any, str], None]


def _fresh_development(api: Api, retracted: bool = False) -> str:
    receipt = api.timeline.service.execute("record_development", development(), recorded_by="setup")
    if retracted:
        api.timeline.service.execute("retract_development", receipt.id, reason="setup", recorded_by="setup")
    return receipt.id


def _event_by(api: Api, response, who: str) -> None:
    assert response.status_code in (200, 201), response.get_json()
    assert api.last_event()["payload"]["recorded_by"] == who
    assert api.last_event()["position"] == response.get_json()["position"]


def _replayed(api: Api, response, who: str) -> None:
    assert response.status_code == 200 and response.get_json()["replayed"] == api.log_length()
    assert response.get_json()["position"] == api.log_length()


def _token_created(api: Api, response, who: str) -> None:
    body = response.get_json()
    assert response.status_code == 201 and response.headers["Cache-Control"] == "no-store"
    assert (body["name"], body["role"]) == ("newcomer", "reader")
    assert api.get(TIMELINE, who=body["token"]).status_code == 200
    assert api.post("/api/v1/actors", GEORGIA, who=body["token"]).status_code == 403


def _token_revoked(api: Api, response, who: str) -> None:
    assert response.status_code == 204 and response.data == b""
    assert [r["revoked_at"] is not None for r in api.token_rows() if r["name"] == "leaving"] == [True]
    assert api.post("/api/v1/actors", GEORGIA, who=api.tokens["leaving"]).status_code == 401


def _leaving(api: Api) -> tuple[str, str, Any, dict[str, str]]:
    api.tokens["leaving"] = api.timeline.tokens.create("leaving", "historian")
    return "DELETE", "/api/v1/admin/tokens/leaving", None, {}


D = "/api/v1/developments"
WRITES: dict[str, Write] = {
    "register-actor": Write("historian", lambda api: ("POST", "/api/v1/actors", GEORGIA, {}), _event_by),
    "correct-actor": Write("historian", lambda api: (
        "POST", "/api/v1/actors/armenia/corrections", {"changes": {"description": "Republik."}, "reason": "r"},
        etag(1)), _event_by),
    "record-development": Write("historian", lambda api: ("POST", D, development(), {}), _event_by),
    "correct-development": Write("historian", lambda api: (
        "POST", f"{D}/{_fresh_development(api)}/corrections", {"changes": {"title": "T"}, "reason": "r"}, etag(1)),
        _event_by),
    "add-source": Write("historian", lambda api: (
        "POST", f"{D}/{_fresh_development(api)}/sources", {"citation": "Another"}, etag(1)), _event_by),
    "retract": Write("historian", lambda api: (
        "POST", f"{D}/{_fresh_development(api)}/retraction", {"reason": "duplicate"}, etag(1)), _event_by),
    "restore": Write("historian", lambda api: (
        "POST", f"{D}/{_fresh_development(api, retracted=True)}/restoration", {"reason": "not one"}, etag(2)),
        _event_by),
    "replay": Write("admin", lambda api: ("POST", "/api/v1/admin/replay", {}, {}), _replayed),
    "create-token": Write("admin", lambda api: (
        "POST", "/api/v1/admin/tokens", {"name": "newcomer", "role": "reader"}, {}), _token_created),
    "revoke-token": Write("admin", _leaving, _token_revoked),
}
CALLERS = {
    "no-token": None,
    "empty-bearer": "Bearer",
    "basic-auth": "Basic aGlzdG9yaWFuOnNlY3JldA==",
    "unknown-token": "Bearer tl_" + "A" * 43,
    "revoked-admin": "revoked",
    "reader": "reader",
    "historian": "historian",
    "admin": "admin",
}


@pytest.mark.parametrize("caller", CALLERS, ids=CALLERS.keys())
@pytest.mark.parametrize("name", WRITES, ids=WRITES.keys())
def test_auth_matrix(api: Api, name: str, caller: str):
    write = WRITES[name]
    method, path, body, headers = write.prepare(api)
    if caller == "revoked-admin":
        api.tokens["revoked"] = api.timeline.tokens.create("revoked", "admin")
        assert api.timeline.tokens.revoke("revoked")
    credentials = CALLERS[caller]
    if credentials in api.tokens:
        headers = {**headers, "Authorization": f"Bearer {api.tokens[credentials]}"}
    elif credentials:
        headers = {**headers, "Authorization": credentials}
    tokens, before = api.token_rows(), api.log_length()
    response = api.client.open(path, method=method, json=body, headers=headers)
    allowed = caller in ROLES and ROLES.index(caller) >= ROLES.index(write.role)
    if allowed:
        write.check(api, response, caller)
        return
    if caller in ROLES:
        assert_problem(response, 403)
    else:
        assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert api.log_length() == before and api.token_rows() == tokens


def test_bearer_scheme_is_case_insensitive(api: Api):
    response = api.client.post("/api/v1/actors", json=GEORGIA,
                               headers={"Authorization": f"bearer {api.tokens['historian']}"})
    assert response.status_code == 201 and response.get_json()["actor"]["recorded_by"] == "historian"


READS = ["/api/v1/actors", "/api/v1/actors/armenia", "/api/v1/actors/armenia/state",
         "/api/v1/actors/armenia/timeline", f"/api/v1/developments/{CSTO_MEMBERSHIP}",
         f"/api/v1/developments/{CSTO_MEMBERSHIP}/history", TIMELINE, "/api/v1/events"]


@pytest.mark.parametrize("path", READS)
def test_reads_need_a_token_when_not_public(make_api, path: str):
    api = make_api(PUBLIC_READS=False)
    refused = api.get(path)
    assert_problem(refused, 401)
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert_problem(api.get(path, who="tl_unknown"), 401)
    for role in ROLES:
        assert api.get(path, who=role).status_code == 200
    assert api.get("/healthz").status_code == 200 and api.get("/openapi.json").status_code == 200


@pytest.mark.parametrize("path", READS)
def test_reads_are_public_by_default(api: Api, path: str):
    assert api.get(path).status_code == 200


def test_tokens_are_stored_only_as_hashes(api: Api):
    created = api.post("/api/v1/admin/tokens", {"name": "alice", "role": "historian"}, who="admin").get_json()
    secrets = [created["token"], *api.tokens.values()]
    rows = api.token_rows()
    assert {r["name"] for r in rows} == {"alice", *ROLES}
    stored = json.dumps(rows, default=str)
    for secret in secrets:
        assert secret.startswith("tl_") and len(secret) >= 40
        assert secret not in stored and secret[3:] not in stored
    hashes = {r["name"]: r["token_hash"] for r in rows}
    assert hashes["alice"] == hashlib.sha256(created["token"].encode()).hexdigest()
    assert api.post("/api/v1/actors", GEORGIA, who=created["token"]).get_json()["actor"]["recorded_by"] == "alice"


def test_tokens_never_appear_in_the_logs(api: Api, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    revoked = api.timeline.tokens.create("gone", "historian")
    api.timeline.tokens.revoke("gone")
    secrets = [*api.tokens.values(), revoked, "tl_not-a-real-token"]

    def broken(*args: Any, **kwargs: Any):
        raise RuntimeError("the timeline query failed")

    monkeypatch.setattr(api.timeline.service.reader, "timeline", broken)  # so that a request logs an error
    for secret in secrets:
        headers = {"Authorization": f"Bearer {secret}"}
        api.client.post("/api/v1/actors", json=GEORGIA, headers=headers)
        api.client.post("/api/v1/developments", json=development(when="never"), headers=headers)
        api.client.post("/api/v1/admin/tokens", json={"name": "x", "role": "reader"}, headers=headers)
        assert api.client.get(TIMELINE, headers=headers).status_code == 500
    assert "Exception on /api/v1/timeline" in caplog.text  # the logs did capture the failing requests
    logged = caplog.text + json.dumps([str(r.args) for r in caplog.records])
    for secret in secrets:
        assert secret not in logged and secret[3:] not in logged


# Idempotency-Key


def test_idempotent_retry_answers_the_original_response(api: Api):
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = api.post("/api/v1/developments", development(tags=["once"]), headers=key)
    length = api.log_length()
    retry = api.post("/api/v1/developments", development(tags=["once"]), headers=key)
    assert retry.status_code == first.status_code == 201
    assert retry.get_json() == first.get_json()
    assert retry.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    for header in ("Location", "ETag", "X-Timeline-Position"):
        assert retry.headers[header] == first.headers[header]
    assert retry.mimetype == "application/json"
    assert api.log_length() == length and api.ids("tag=once") == [first.get_json()["id"]]


def test_idempotency_key_with_another_body_or_endpoint_is_refused(api: Api):
    key = {"Idempotency-Key": "the-key"}
    api.post("/api/v1/developments", development(), headers=key)
    length = api.log_length()
    assert_problem(api.post("/api/v1/developments", development(title="Other"), headers=key), 422, "Idempotency-Key")
    assert_problem(api.post("/api/v1/actors", GEORGIA, headers=key), 422, "Idempotency-Key")
    assert api.log_length() == length


def test_idempotency_keys_belong_to_their_token(api: Api):
    key = {"Idempotency-Key": "shared-key"}
    mine = api.post("/api/v1/developments", development(), headers=key).get_json()
    theirs = api.post("/api/v1/developments", development(), headers=key, who="admin")
    assert theirs.status_code == 201 and "Idempotent-Replayed" not in theirs.headers
    assert theirs.get_json()["id"] != mine["id"] and theirs.get_json()["development"]["recorded_by"] == "admin"


def abandon(api: Api, key: str, age: timedelta) -> None:
    """What a crash between a keyed write and its answer leaves: a claim with no answer."""
    claimed = (datetime.now(timezone.utc) - age).isoformat()
    api.timeline.service.projector.view.write([(
        "UPDATE {keys} SET status = NULL, headers = NULL, body = NULL, created_at = ? WHERE key = ?",
        [(claimed, key)])], {"keys": "idempotency_keys"})


def test_a_key_abandoned_by_a_crash_is_taken_over_after_its_lease_and_records_nothing_twice(api: Api):
    key = str(uuid.uuid4())
    first = api.post("/api/v1/developments", development(tags=["crash"]), headers={"Idempotency-Key": key})
    assert first.status_code == 201
    length = api.log_length()
    abandon(api, key, idempotency.LEASE + timedelta(seconds=1))
    rerun = api.post("/api/v1/developments", development(tags=["crash"]), headers={"Idempotency-Key": key})
    assert rerun.status_code == 200 and rerun.get_json()["id"] == first.get_json()["id"]
    assert rerun.get_json()["created"] is False and "Idempotent-Replayed" not in rerun.headers
    assert api.log_length() == length and api.ids("tag=crash") == [first.get_json()["id"]]
    replayed = api.post("/api/v1/developments", development(tags=["crash"]), headers={"Idempotency-Key": key})
    assert replayed.headers["Idempotent-Replayed"] == "true" and replayed.get_json() == rerun.get_json()


@pytest.mark.parametrize("if_match", ['"1"', "*"])
def test_a_keyed_write_to_a_stream_taken_over_after_a_crash_answers_with_its_own_event(api: Api, if_match: str):
    """Its event landed before the crash: run again, it finds the stream moved on by
    that event, and answers as the lost answer would have, not 412, and stores nothing."""
    ident = api.record()["id"]
    key, source = str(uuid.uuid4()), {"citation": "Agency after a crash", "quote": "q"}
    headers = {"Idempotency-Key": key, "If-Match": if_match}
    first = api.post(f"/api/v1/developments/{ident}/sources", source, headers=headers)
    assert first.status_code == 200 and first.get_json()["version"] == 2
    length = api.log_length()
    abandon(api, key, idempotency.LEASE + timedelta(seconds=1))
    rerun = api.post(f"/api/v1/developments/{ident}/sources", source, headers=headers)
    assert rerun.status_code == 200, rerun.get_json()
    assert (rerun.get_json()["version"], rerun.headers["ETag"], rerun.get_json()["created"]) == (2, '"2"', False)
    assert api.log_length() == length
    citations = [s["citation"] for s in api.get(f"/api/v1/developments/{ident}").get_json()["sources"]]
    assert citations.count("Agency after a crash") == 1


def test_a_stale_write_is_412_even_when_it_repeats_the_writers_last_one(api: Api):
    """Only a request run again under its Idempotency-Key looks for itself in the record."""
    ident = api.record()["id"]
    source = {"citation": "Said twice"}
    assert api.post(f"/api/v1/developments/{ident}/sources", source, headers=etag(1)).status_code == 200
    assert_problem(api.post(f"/api/v1/developments/{ident}/sources", source, headers=etag(1)), 412)


def test_a_key_held_within_its_lease_answers_409_with_when_to_retry(api: Api, monkeypatch):
    monkeypatch.setattr(idempotency, "PENDING_WAIT", 0.2)
    key = str(uuid.uuid4())
    api.post("/api/v1/developments", development(), headers={"Idempotency-Key": key})
    abandon(api, key, timedelta(seconds=5))
    length = api.log_length()
    held = api.post("/api/v1/developments", development(), headers={"Idempotency-Key": key})
    assert_problem(held, 409)
    assert 20 <= int(held.headers["Retry-After"]) <= 26
    assert api.log_length() == length


# Rate limit


def test_write_rate_limit_per_token(make_api):
    api = make_api(WRITE_RATE_LIMIT="3 per minute")
    for n in range(3):
        assert api.post("/api/v1/actors", {**GEORGIA, "id": f"state-{n}"}).status_code == 201
    length = api.log_length()
    limited = api.post("/api/v1/actors", {**GEORGIA, "id": "state-3"})
    assert_problem(limited, 429)
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert api.log_length() == length and api.get("/api/v1/actors/state-3").status_code == 404
    for _ in range(10):
        assert api.get(TIMELINE).status_code == 200 and api.get("/api/v1/actors/state-0").status_code == 200
    assert api.post("/api/v1/actors", {**GEORGIA, "id": "state-3"}, who="admin").status_code == 201


def test_a_write_beyond_any_of_several_limits_waits_for_the_window_it_exhausted(make_api):
    api = make_api(WRITE_RATE_LIMIT="100 per minute; 3 per hour")
    for n in range(3):
        assert api.post("/api/v1/actors", {**GEORGIA, "id": f"state-{n}"}).status_code == 201
    limited = api.post("/api/v1/actors", {**GEORGIA, "id": "state-3"})
    assert_problem(limited, 429)
    assert "3 per 1 hour" in limited.get_json()["detail"]
    assert 60 < int(limited.headers["Retry-After"]) <= 3600


def test_concurrent_writes_never_start_the_memory_limits_expiry_timer_twice(make_api, monkeypatch):
    """Regression: a write failed with 500 "threads can only be started once" when two
    threads found the memory storage's expiry timer stopped at the same moment. And the
    writes that find another thread restarting the timer do not wait for it."""
    import threading

    from api.extension import limiter

    make_api(seed=False)
    storage = limiter.storage
    others_done = threading.Event()

    class Preempted(type(storage)):
        def __setattr__(self, name: str, value: Any) -> None:
            super().__setattr__(name, value)
            if name == "timer":  # the thread loses the GIL right after replacing the timer...
                others_done.wait(timeout=10)  # ...until the other writes are through

    storage.timer.cancel()
    storage.timer.join()
    monkeypatch.setattr(storage, "__class__", Preempted)
    failures: list[Exception] = []
    finished = threading.Semaphore(0)

    def hit() -> None:
        try:
            storage.incr("token:someone", 60)
        except RuntimeError as error:
            failures.append(error)
        finished.release()

    threads = [threading.Thread(target=hit) for _ in range(4)]
    for thread in threads:
        thread.start()
    through = sum(finished.acquire(timeout=5) for _ in range(3))  # while one still restarts the timer
    others_done.set()
    for thread in threads:
        thread.join()
    assert through == 3
    assert failures == [] and storage.get("token:someone") == 4


def test_flask_limiter_adds_no_hook_to_every_request(make_api):
    """Writes are counted in the write decorator; Flask-Limiter's own hooks on every
    request found nothing to do and cost ~20 µs of CPU each time."""
    from functools import partial

    from api.extension import limiter

    app = make_api(seed=False).app
    hooks = [*app.before_request_funcs[None], *app.after_request_funcs[None], *app.teardown_request_funcs.get(None, [])]
    owners = [h.args[0] if isinstance(h, partial) else getattr(h, "__self__", None) for h in hooks]
    assert limiter not in owners and len(hooks) == 4, hooks  # ours: readable_url, json_only, secure; CORS


def test_steady_writes_restart_the_memory_limits_expiry_timer_at_most_once_a_second(make_api):
    """It was a new thread every ~10 ms per worker, 3% of a write's interpreter time."""
    import threading

    from api.extension import EXPIRY_INTERVAL, limiter

    make_api(seed=False)
    storage = limiter.storage
    storage.timer.cancel()
    storage.timer.join()
    timers: list[threading.Timer] = []
    started = time.monotonic()
    while time.monotonic() - started < 0.3:  # ~30 lifetimes of a 10 ms timer
        storage.incr("token:steady", 60)
        if not timers or storage.timer is not timers[-1]:
            timers.append(storage.timer)
        time.sleep(0.002)
    assert EXPIRY_INTERVAL >= 1 and len(timers) == 1, f"{len(timers)} timers in 0.3 s"
    assert storage.get("token:steady") > 50
    assert isinstance(storage.timer, threading.Timer)


def test_write_rate_limit_counts_every_write_of_a_token(make_api):
    api = make_api(WRITE_RATE_LIMIT="3 per minute")
    assert api.post("/api/v1/actors", GEORGIA).status_code == 201
    ident = api.record()["id"]
    api.write(f"/api/v1/developments/{ident}/sources", {"citation": "Another"}, 1)
    length = api.log_length()
    assert_problem(api.post(f"/api/v1/developments/{ident}/retraction", {"reason": "r"}, headers=etag(2)), 429)
    assert api.log_length() == length


# Headers


SAMPLES: dict[str, Callable[[Api], Any]] = {
    "json-200": lambda api: api.get(TIMELINE),
    "csv-200": lambda api: api.get(f"{TIMELINE}?format=csv"),
    "created-201": lambda api: api.post("/api/v1/actors", GEORGIA),
    "not-modified-304": lambda api: api.get("/api/v1/actors/armenia", headers={"If-None-Match": '"1"'}),
    "bad-query-400": lambda api: api.get(f"{TIMELINE}?limit=0"),
    "unauthorized-401": lambda api: api.post("/api/v1/actors", GEORGIA, who=None),
    "forbidden-403": lambda api: api.post("/api/v1/actors", GEORGIA, who="reader"),
    "not-found-404": lambda api: api.get("/api/v1/actors/atlantis"),
    "method-405": lambda api: api.open("DELETE", TIMELINE),
    "too-large-413": lambda api: api.post("/api/v1/actors", {**GEORGIA, "name": BIG}),
    "media-type-415": lambda api: api.post("/api/v1/actors", data="x", content_type="text/plain"),
    "invalid-422": lambda api: api.post("/api/v1/developments", development(when="soon")),
    "precondition-428": lambda api: api.post("/api/v1/actors/armenia/corrections",
                                             {"changes": {"name": "A"}, "reason": "r"}),
    "openapi": lambda api: api.get("/openapi.json"),
    "docs": lambda api: api.get("/docs"),
    "healthz": lambda api: api.get("/healthz"),
}


@pytest.mark.parametrize("sample", SAMPLES, ids=SAMPLES.keys())
def test_security_headers_on_every_response(api: Api, sample: str):
    response = SAMPLES[sample](api)
    assert response.status_code < 500
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    assert response.headers["X-Content-Type-Options"] == "nosniff" and response.headers["X-Frame-Options"] == "DENY"


def test_cors_allows_reads_from_any_origin_but_not_writes(api: Api):
    origin = {"Origin": "https://historians.example"}
    response = api.get(TIMELINE, headers=origin)
    assert response.status_code == 200 and response.headers["Access-Control-Allow-Origin"] in ("*", origin["Origin"])
    preflight = api.open("OPTIONS", "/api/v1/developments",
                         headers={**origin, "Access-Control-Request-Method": "POST"})
    assert "POST" not in preflight.headers.get("Access-Control-Allow-Methods", "")


# Read-your-writes and min_position


def test_reads_see_a_write_at_once(api: Api):
    receipt = api.post("/api/v1/developments", development(tags=["fresh"])).get_json()
    assert api.ids("tag=fresh") == [receipt["id"]]
    assert api.get(f"/api/v1/developments/{receipt['id']}?min_position={receipt['position']}").status_code == 200
    assert api.ids(f"tag=fresh&min_position={receipt['position']}") == [receipt["id"]]
    assert api.get(f"/api/v1/events?after={receipt['position'] - 1}").get_json()["items"][0]["stream_id"] == \
        receipt["id"]


@pytest.mark.parametrize("path", [TIMELINE, "/api/v1/actors/armenia", f"/api/v1/developments/{CSTO_MEMBERSHIP}",
                                  "/api/v1/actors/armenia/state"])
def test_min_position_beyond_the_log_waits_then_answers_503(make_api, path: str):
    api = make_api(WAIT_TIMEOUT=0.2)
    started = time.monotonic()
    response = api.get(f"{path}?min_position={api.log_length() + 5}")
    elapsed = time.monotonic() - started
    assert_problem(response, 503)
    assert int(response.headers["Retry-After"]) >= 1
    assert 0.2 <= elapsed < 3
    assert api.get(f"{path}?min_position={api.log_length()}").status_code == 200


# Answers kept while the projections stand still (api/cache.py)

STATE = "/api/v1/actors/armenia/state?at=2023-09-15"


def counting(api: Api, monkeypatch, query: str) -> list[int]:
    """Counts the calls of one of the reader's queries."""
    reader, calls = api.timeline.service.reader, []
    original = getattr(reader, query)

    def counted(*args: Any, **kwargs: Any):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(reader, query, counted)
    return calls


@pytest.mark.parametrize(("path", "query"), [(f"{TIMELINE}?actor=armenia&limit=5", "timeline"),
                                             ("/api/v1/actors/armenia/timeline?limit=5", "timeline"),
                                             (STATE, "actor_state")])
def test_a_kept_answer_is_the_computed_one_until_a_write(api: Api, monkeypatch, path: str, query: str):
    calls = counting(api, monkeypatch, query)
    first, again = api.get(path), api.get(path)
    assert len(calls) == 1
    assert again.get_data() == first.get_data() and again.headers.get("Link") == first.headers.get("Link")
    assert again.mimetype == first.mimetype == "application/json"
    assert again.headers["X-Content-Type-Options"] == "nosniff"  # the after-request headers are added to both
    api.record(title="Armenia and the CSTO fall out", when="2023-09-14", category="accuse",
               actors=[{"actor": "armenia", "role": "initiator"}, {"actor": "csto", "role": "target"}],
               effects=[{"actor": "armenia", "attribute": "membership.csto", "value": None}])
    after = api.get(path)
    assert len(calls) == 2 and after.get_data() != first.get_data()


def test_a_kept_answer_is_kept_apart_for_each_host_and_spelling_of_its_url(api: Api, monkeypatch):
    """The next page's Link names the host the request was sent to."""
    calls = counting(api, monkeypatch, "timeline")
    path = f"{TIMELINE}?actor=armenia&limit=2"
    links = {host: api.get(path, headers={"Host": host}).headers["Link"] for host in ("a.example", "b.example")}
    assert links["a.example"].startswith("<http://a.example/") and links["b.example"].startswith("<http://b.example/")
    assert api.get(path, headers={"Host": "a.example"}).headers["Link"] == links["a.example"]
    assert len(calls) == 2
    assert api.get(path.replace("limit=2", "limit=%32"), headers={"Host": "a.example"}).status_code == 200
    assert len(calls) == 3


WRITE_ELSEWHERE = """
import json, sys
from timeline.service import Service
service = Service({"TIMELINE_DATABASE_URL": sys.argv[1]})
print(service.execute("record_development", json.loads(sys.argv[2]), recorded_by="elsewhere").id)
service.close()
"""


def test_a_write_of_another_worker_ends_the_kept_answers(api: Api, database_url: str, monkeypatch):
    """Another process's commit changes the edition this worker reads (on SQLite, the
    count in shared memory; on PostgreSQL, the positions) before that process answers."""
    calls = counting(api, monkeypatch, "timeline")
    assert "fresh" not in str(api.items("actor=armenia"))
    written = subprocess.run([sys.executable, "-c", WRITE_ELSEWHERE, database_url,
                              json.dumps(development(tags=["fresh"]))],
                             capture_output=True, text=True, check=True, timeout=120).stdout.strip()
    assert written in api.ids("actor=armenia") and len(calls) == 2
    assert api.ids("actor=armenia") and len(calls) == 2  # kept again, in the new edition


def test_kept_answers_can_be_turned_off(make_api, monkeypatch):
    api = make_api(READ_CACHE_MB=0)
    calls = counting(api, monkeypatch, "actor_state")
    assert api.get(STATE).get_data() == api.get(STATE).get_data()
    assert len(calls) == 2


def test_a_kept_answer_still_needs_the_token_when_reads_are_private(make_api):
    api = make_api(PUBLIC_READS=False)
    assert api.get(STATE, who="reader").status_code == 200
    assert_problem(api.get(STATE), 401)
    assert_problem(api.get(STATE, who="not-a-token"), 401)
