"""Property-based API tests with Schemathesis 4: every operation of ``/openapi.json``,
called in process (WSGI) on a seeded SQLite store, as an admin, with every built-in check.

Two runs:

* ``test_served_document``: the document exactly as served, default checks and
  expectations. Every operation currently fails (reported); each is ``xfail(strict)``
  with its finding, so a fix shows up as an XPASS to clean up.
* ``test_documented_behaviour``: the same document with the *reported* documentation
  bugs corrected in memory (``correct_document``; each correction names its finding) and
  the reported method-handling bug set aside, so that every other check keeps guarding
  every operation. What still fails there is a server bug, reported and ``xfail(strict)``.

Settings (kept here rather than in a ``schemathesis.toml``, and explained where set):

* ``max_examples=25`` per operation and phase, ``deadline=None`` (the first request of a
  store is slow), every Hypothesis health check suppressed (filtering by the schema is
  expected), ``derandomize=True`` so that the same examples run every time and the
  strict xfails are stable.
* ``case.call_and_validate()`` runs every registered check whose configuration is
  enabled (``CheckContext`` in schemathesis/checks.py), which by default is all 14
  built-in checks: not_a_server_error, status_code / content_type / response_headers /
  response_schema conformance, positive and negative data acceptance,
  missing_required_header, ignored_auth, object_level_authorization, use_after_free,
  ensure_resource_availability, unsupported_method, allow_header_conformance.
  (max_response_time runs only with a configured limit; none is set.)
* When a reported bug is fixed its strict xfail XPASSes, and schemathesis 4.32.5's
  pytest plugin then stops the run with an INTERNALERROR (``_get_pytest_report_outcome``
  asserts an exception that a strict XPASS does not have): remove the fixed entry from
  SERVED_FAILURES / DOCUMENTED_FAILURES.
* ``/api/v1/events/stream`` is excluded: an endless Server-Sent-Events response (it is
  tested against a real server in test_api_server.py).
"""

from __future__ import annotations

import copy
import tempfile
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from api import create_app
from timeline import transfer

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
_STORES: list[tempfile.TemporaryDirectory] = []  # removed at exit


def seeded_app(token_name: str) -> tuple[Any, str]:
    """An app on a fresh seeded SQLite store, and an admin token for it."""
    store = tempfile.TemporaryDirectory(prefix="schemathesis-")
    _STORES.append(store)
    app = create_app({"DATABASE_URL": f"sqlite:///{store.name}/timeline.db"})
    timeline = app.extensions["timeline"]
    with open(transfer.SEED, encoding="utf-8") as lines:
        transfer.import_commands(timeline.service.chronicle, transfer.read_lines(lines), recorded_by="seed")
    timeline.service.projector.catch_up()
    return app, timeline.tokens.create(token_name, "admin")


def load(app: Any, token: str, config: dict[str, Any] | None = None) -> Any:
    schema = schemathesis.openapi.from_wsgi(
        "/openapi.json", app, config=SchemathesisConfig.from_dict(config) if config else None)
    # Every operation is called as an admin (the `ignored_auth` check still drops the
    # header itself to see that secured operations refuse anonymous calls).
    schema.config.update(headers={"Authorization": f"Bearer {token}"})
    return schema.exclude(path="/api/v1/events/stream")


def expect_failure(request: pytest.FixtureRequest, label: str, known: dict[str, str]) -> None:
    if label in known:
        request.applymarker(pytest.mark.xfail(reason=known[label], strict=True))


# 1. The document as served.

SERVED_APP, SERVED_TOKEN = seeded_app("schemathesis-served")
served = load(SERVED_APP, SERVED_TOKEN)

PROBLEM_JSON = ("BUG (OpenAPI document): error responses are documented as application/json with flask-smorest's "
                "`Error` schema (code, status: string, message; additionalProperties false), but every error is "
                "served as application/problem+json with type/title/status (integer)/detail[/errors]: ST105")
PUT_415 = ("BUG: api/__init__.py json_only answers 415 to a request without a body and without Content-Length "
           "before routing, so an undeclared method such as `PUT {path}` gets 415 instead of 405: ST204")
SERVED_FAILURES = {
    **{f"GET {path}": PUT_415.format(path=path) for path in (
        "/healthz", "/readyz", "/api/v1/vocabulary", "/api/v1/developments/{ident}/history")},
    **{label: PROBLEM_JSON for label in (
        "GET /api/v1/actors", "POST /api/v1/actors", "GET /api/v1/actors/{slug}",
        "POST /api/v1/actors/{slug}/corrections", "GET /api/v1/actors/{slug}/state",
        "GET /api/v1/actors/{slug}/timeline", "POST /api/v1/developments", "GET /api/v1/developments/{ident}",
        "POST /api/v1/developments/{ident}/corrections", "POST /api/v1/developments/{ident}/sources",
        "POST /api/v1/developments/{ident}/retraction", "POST /api/v1/developments/{ident}/restoration",
        "GET /api/v1/timeline", "GET /api/v1/events", "POST /api/v1/admin/replay", "POST /api/v1/admin/tokens",
        "DELETE /api/v1/admin/tokens/{name}")},
}


@served.parametrize()
@SETTINGS
def test_served_document(case, request):
    expect_failure(request, case.operation.label, SERVED_FAILURES)
    case.call_and_validate()


# 2. The document with the reported documentation bugs corrected.

PROBLEM = {
    "type": "object", "required": ["type", "title", "status", "detail"],
    "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                   "detail": {"type": "string"}, "errors": {"type": "object"}, "current_version": {"type": "integer"}},
}
TIMELINE_JS = {"type": "object", "required": ["events"], "additionalProperties": False,
               "properties": {"events": {"type": "array", "items": {"type": "object"}}}}
IF_MATCH = {"in": "header", "name": "If-Match", "required": True, "schema": {"type": "string"}}


def correct_document(raw: dict[str, Any]) -> None:
    """The corrections of the reported documentation bugs, applied to the loaded document."""
    components, paths = raw["components"], raw["paths"]
    # (a) Errors are application/problem+json problem details (see PROBLEM_JSON).
    for response in components["responses"].values():
        response["content"] = {"application/problem+json": {"schema": PROBLEM}}
    # (b) Repeating a registration / a recording with a client-chosen id answers 200
    #     (created: false); only 201 is documented.
    for path in ("/api/v1/actors", "/api/v1/developments"):
        responses = paths[path]["post"]["responses"]
        responses["200"] = copy.deepcopy(responses["201"])
    # (c) Write receipts carry the written `actor` / `development`, but WriteReceipt is
    #     documented with additionalProperties: false.
    components["schemas"]["WriteReceipt"]["additionalProperties"] = True
    # (d) `format=csv|jsonl|timelinejs` answer text/csv, application/x-ndjson and
    #     {"events": [...]}; only the JSON page is documented.
    for path in ("/api/v1/timeline", "/api/v1/actors/{slug}/timeline"):
        content = paths[path]["get"]["responses"]["200"]["content"]
        page = content["application/json"]["schema"]
        content["application/json"]["schema"] = {"oneOf": [page, TIMELINE_JS]}
        content["text/csv"] = {"schema": {"type": "string"}}
        content["application/x-ndjson"] = {"schema": {"type": "string"}}
    # (e) Every write to an existing stream needs If-Match (else 428); only the
    #     development corrections document it.
    for path in ("/api/v1/actors/{slug}/corrections", "/api/v1/developments/{ident}/sources",
                 "/api/v1/developments/{ident}/retraction", "/api/v1/developments/{ident}/restoration"):
        paths[path]["post"].setdefault("parameters", []).append(dict(IF_MATCH))
    # (f) Positions are 64-bit integers; `after` documents no maximum. (Documented, the
    #     coverage phase sends 2**63 deterministically: see DOCUMENTED_FAILURES.)
    for parameter in paths["/api/v1/events"]["get"]["parameters"]:
        if parameter["name"] == "after":
            parameter["schema"]["maximum"] = 2**63 - 1


DOCUMENTED_APP, DOCUMENTED_TOKEN = seeded_app("schemathesis-documented")
SEED_LOG_END = DOCUMENTED_APP.extensions["timeline"].service.chronicle.recorder.max_notification_id()
documented = load(DOCUMENTED_APP, DOCUMENTED_TOKEN, {
    "checks": {
        # PUT/PATCH/... without a body answer 415 instead of 405 (PUT_415, reported, and
        # asserted in test_served_document and test_api.py); set aside here only, so
        # that every operation stays under all the other checks.
        "unsupported_method": {"enabled": False},
        # 428 Precondition Required is the status RFC 6585 defines for a missing If-Match.
        "missing_required_header": {"expected-statuses": [400, 401, 403, 406, 415, 422, 428]},
        # Schema-valid requests the record's rules refuse (reported as documentation gaps
        # where the document could say more): 422 for rules no JSON Schema can state
        # (registered actors, EDTF calendar days, "a citation or a url", "retrieved with a
        # url", a correction that changes nothing) and for constraints the document omits
        # (slug and token-name patterns, BCP 47 tags, Wikidata ids, `format: url` that
        # allows non-http URLs); 400 for an `as_of` that is neither a position nor an RFC
        # 3339 timestamp (documented as any string); 412 for a random If-Match.
        "positive_data_acceptance": {"expected-statuses": ["2xx", "3xx", 400, 401, 403, 404, 409, 412, 422, 429]},
    },
    # A `min_position` beyond the log end waits (WAIT_TIMEOUT, 5 s) and answers the
    # designed 503 (tested in test_api.py); here it stays at the seed's log end.
    "parameters": {"query.min_position": SEED_LOG_END},
})
correct_document(documented.raw_schema)

DOCUMENTED_FAILURES = {
    "POST /api/v1/admin/replay": "BUG: POST /api/v1/admin/replay without Authorization and without a body "
                                 "answers 415 (api/__init__.py json_only runs before auth), not 401: ST203",
    "GET /api/v1/events": "BUG: GET /api/v1/events?after=9223372036854775808 -> 500 on SQLite (OverflowError: "
                          "Python int too large to convert to SQLite INTEGER; `after` has no maximum): ST101",
}


@documented.parametrize()
@SETTINGS
def test_documented_behaviour(case, request):
    expect_failure(request, case.operation.label, DOCUMENTED_FAILURES)
    case.call_and_validate()
