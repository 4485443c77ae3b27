"""Property-based API tests with Schemathesis 4: every operation of the served
``/openapi.json``, called in process (WSGI) on a seeded SQLite store, as an admin, with
every built-in check.

Settings (kept here, explained where set):

* ``max_examples=25`` per operation and phase, ``deadline=None`` (the first request of a
  store is slow), every Hypothesis health check suppressed (filtering by the schema is
  expected), ``derandomize=True`` so that every run sends the same examples.
* ``case.call_and_validate()`` runs every built-in check: not_a_server_error, status
  code / content type / headers / response schema conformance, positive and negative
  data acceptance, missing_required_header, ignored_auth, object_level_authorization,
  use_after_free, ensure_resource_availability, unsupported_method,
  allow_header_conformance.
* ``/api/v1/events/stream`` is excluded: an endless Server-Sent-Events response (it is
  tested against a real server in test_api_server.py).
"""

from __future__ import annotations

import tempfile
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from api import create_app
from timeline import transfer

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
_STORE = tempfile.TemporaryDirectory(prefix="schemathesis-")


def seeded_app() -> tuple[Any, str, int]:
    """An app on a fresh seeded SQLite store, an admin token, and the log's end."""
    app = create_app({"DATABASE_URL": f"sqlite:///{_STORE.name}/timeline.db"})
    timeline = app.extensions["timeline"]
    with open(transfer.SEED, encoding="utf-8") as lines:
        transfer.import_commands(timeline.service.chronicle, transfer.read_lines(lines), recorded_by="seed")
    timeline.service.projector.catch_up()
    return app, timeline.tokens.create("schemathesis", "admin"), timeline.service.chronicle.recorder.max_notification_id()


APP, TOKEN, LOG_END = seeded_app()
schema = schemathesis.openapi.from_wsgi("/openapi.json", APP, config=SchemathesisConfig.from_dict({
    "checks": {
        # 428 Precondition Required is the status RFC 6585 defines for a missing If-Match.
        "missing_required_header": {"expected-statuses": [400, 401, 403, 406, 415, 422, 428]},
        # Schema-valid requests that the record's rules refuse: 422 for rules no JSON
        # Schema states (registered actors, EDTF calendar days, "a citation or a url", a
        # correction that changes nothing, slug patterns), 404 for ids that do not exist,
        # 409 for a slug or id taken with other content, 412 for a random If-Match, 400 for
        # an as_of that is neither a position nor an RFC 3339 timestamp.
        "positive_data_acceptance": {"expected-statuses": ["2xx", "3xx", 400, 401, 403, 404, 409, 412, 422, 429]},
    },
    # A min_position beyond the log's end waits and answers the designed 503 (tested in
    # test_api.py); here it stays at the seed's end.
    "parameters": {"query.min_position": LOG_END},
})).exclude(path="/api/v1/events/stream")
# Every operation is called as an admin (the ignored_auth check still drops the header
# itself to see that secured operations refuse anonymous calls).
schema.config.update(headers={"Authorization": f"Bearer {TOKEN}"})


@schema.parametrize()
@SETTINGS
def test_every_operation_keeps_its_documented_contract(case):
    case.call_and_validate()
