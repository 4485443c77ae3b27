"""``Idempotency-Key`` on POST: a retry with the same key and body gets the original
response and writes nothing; the same key with another body is refused (422).

Keys live in the database, so they hold across workers, for ``IDEMPOTENCY_TTL_HOURS``.
A request claims its key before it runs; a concurrent retry waits for the first to
finish and then answers with its response.

A claim whose process died (a crash between the write and its answer) would hold its
key for good; after ``LEASE`` a retry takes it over and runs the request again. That
is safe because a keyed recording without an id gets one derived from the key
(:func:`keyed_id`): run again, it finds itself already recorded. A write to an existing
stream is run again with ``again`` (:func:`again`): if it did land, it finds its own event
in the record (``Chronicle.landed``) and answers with its receipt, where it would find
its stream moved on and answer 412.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from functools import wraps
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from flask import Response, current_app, g, request

from api.problems import problem
from timeline.views import ReadTables

TABLES = {"keys": "idempotency_keys"}
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS {keys} (owner TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, "
    "status INTEGER, headers TEXT, body TEXT, created_at TEXT NOT NULL, PRIMARY KEY (owner, key))",
)
PENDING_WAIT = 10.0
"""How long a retry waits for the request that holds its key."""
LEASE = timedelta(seconds=30)
"""How long a claim may stay unanswered before a retry takes it over: longer than any
request lives (lock and read waits are bounded at 10 s and 5 s), so only a claim whose
process died gets this old."""


class IdempotencyKeys:
    def __init__(self, view: ReadTables, ttl_hours: float):
        self.view = view
        self.ttl = timedelta(hours=ttl_hours)
        with view.schema_lock():  # workers starting at once take turns
            view.execute(SCHEMA, TABLES)

    def claim(self, owner: str, key: str, fingerprint: str) -> tuple[dict[str, Any] | None, bool]:
        """Claims a key. Answers the row that holds it, if it is held; else None, and
        whether the claim was taken over from a request whose process died (whose write
        may be in the record already)."""
        now = datetime.now(timezone.utc)
        if self.view.write([
            ("DELETE FROM {keys} WHERE created_at < ?", [((now - self.ttl).isoformat(),)]),
            ("INSERT INTO {keys} VALUES (?, ?, ?, NULL, NULL, NULL, ?) ON CONFLICT (owner, key) DO NOTHING",
             [(owner, key, fingerprint, now.isoformat())]),
        ], TABLES):
            return None, False
        # Held: by a running request, an answer, or an abandoned claim past its lease.
        if self.view.write([
            ("UPDATE {keys} SET created_at = ? WHERE owner = ? AND key = ? AND fingerprint = ? "
             "AND status IS NULL AND created_at < ?",
             [(now.isoformat(), owner, key, fingerprint, (now - LEASE).isoformat())]),
        ], TABLES):
            return None, True
        return self.find(owner, key), False

    def find(self, owner: str, key: str) -> dict[str, Any] | None:
        rows = self.view.select("SELECT * FROM {keys} WHERE owner = ? AND key = ?", TABLES, [owner, key])
        return rows[0] if rows else None

    def complete(self, owner: str, key: str, response: Response) -> None:
        headers = {k: v for k, v in response.headers.items() if k in ("Location", "ETag", "X-Timeline-Position",
                                                                       "Content-Type")}
        self.view.write([("UPDATE {keys} SET status = ?, headers = ?, body = ? WHERE owner = ? AND key = ?",
                          [(response.status_code, json.dumps(headers), response.get_data(as_text=True),
                            owner, key)])], TABLES)

    def release(self, owner: str, key: str) -> None:
        self.view.write([("DELETE FROM {keys} WHERE owner = ? AND key = ?", [(owner, key)])], TABLES)


def idempotent(view: Callable[..., Any]) -> Callable[..., Any]:
    """Makes a POST view honour ``Idempotency-Key``."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return view(*args, **kwargs)
        if not 1 <= len(key) <= 255:
            return problem(400, "Bad request", "Idempotency-Key must be 1 to 255 characters",
                           errors={"Idempotency-Key": ["must be 1 to 255 characters"]})
        keys: IdempotencyKeys = current_app.extensions["timeline"].idempotency
        owner = g.writer.name
        fingerprint = hashlib.sha256(f"{request.method} {request.path}\n".encode() + request.get_data()).hexdigest()
        held, g.again = keys.claim(owner, key, fingerprint)
        deadline = time.monotonic() + PENDING_WAIT
        while held is not None and held["status"] is None and time.monotonic() < deadline:
            time.sleep(0.05)
            held = keys.find(owner, key)
            if held is None:  # the first request failed and let go of the key: try again
                held, g.again = keys.claim(owner, key, fingerprint)
        if held is not None:
            return _replay(held, fingerprint)
        try:
            response = current_app.make_response(view(*args, **kwargs))
        except BaseException:
            keys.release(owner, key)
            raise
        if response.status_code >= 500:
            keys.release(owner, key)
        else:
            keys.complete(owner, key, response)
        return response

    return wrapper


def again() -> bool:
    """Whether this request runs again one whose process died after claiming its
    Idempotency-Key: its write may be in the record already (``Chronicle.landed``)."""
    return g.get("again", False)


def _replay(held: dict[str, Any], fingerprint: str) -> Response:
    if held["fingerprint"] != fingerprint:
        return problem(422, "Idempotency key reused", "this Idempotency-Key was used with another request body",
                       errors={"Idempotency-Key": ["was used with another request body"]})
    if held["status"] is None:
        claimed = datetime.fromisoformat(held["created_at"])
        wait = max(1, round((claimed + LEASE - datetime.now(timezone.utc)).total_seconds()))
        return problem(409, "Request in progress", "a request with this Idempotency-Key is still running, "
                       f"or its server stopped; retry after {wait} s", headers={"Retry-After": str(wait)})
    response = Response(held["body"], status=held["status"])
    response.headers.update(json.loads(held["headers"]))
    response.headers["Idempotent-Replayed"] = "true"
    return response


def keyed_id(document: dict[str, Any]) -> dict[str, Any]:
    """A recording sent with an ``Idempotency-Key`` and no id gets an id derived from the
    writer and the key, so that rerunning it after a crash records nothing twice."""
    key = request.headers.get("Idempotency-Key")
    if key is None or document.get("id") is not None:
        return document
    return {**document, "id": str(uuid5(NAMESPACE_URL, f"/idempotency/{g.writer.name}/{key}"))}
