"""Errors as RFC 9457 problem details (``application/problem+json``): type, title,
status, detail, and for bad input an ``errors`` member naming each bad field."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app
from werkzeug.exceptions import HTTPException

from events.errors import Conflict, InvalidInput, NotFound, RecordError, StaleVersion
from timeline.queries import BadQuery
from timeline.service import ProjectionsBehind

PROBLEM_TYPES = "https://timeline.invalid/problems/"
PROBLEM_TYPE = "application/problem+json"


def problem(status: int, title: str, detail: str, *, errors: dict[str, Any] | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> Response:
    """A problem response, encoded by the standard library: a bad field name may hold
    an unpaired surrogate, which UTF-8 cannot carry (msgspec refuses it); it goes out as
    its JSON escape (``\\ud800``), as the client sent it."""
    body: dict[str, Any] = {"type": PROBLEM_TYPES + title.lower().replace(" ", "-"), "title": title,
                            "status": status, "detail": detail, **extra}
    if errors:
        body["errors"] = errors
    data = json.dumps(body, ensure_ascii=False).encode("utf-8", "backslashreplace")
    response = Response(data, status=status, mimetype=PROBLEM_TYPE)
    response.headers.update(headers or {})
    return response


def from_http_exception(error: HTTPException) -> Response:
    """Werkzeug/webargs errors, keeping the headers they carry (``Allow`` on 405,
    ``WWW-Authenticate`` on 401, ``Retry-After`` on 429)."""
    data = getattr(error, "data", None) or {}
    errors = _flatten(data.get("messages") or data.get("errors") or {})
    headers = dict(data.get("headers") or {})
    for key, value in error.get_headers():
        if key in ("Allow", "WWW-Authenticate", "Retry-After"):
            headers[key] = value
    status = error.code or 500
    messages = data.get("messages") or {}
    if status == 422 and isinstance(messages, dict) and set(messages) & {"query", "querystring", "headers"}:
        status = 400  # a malformed query string or header is a bad request, not an unprocessable entity
    if status in (400, 422) and errors:
        detail = "the request has invalid fields: " + ", ".join(errors)
    else:
        detail = data.get("message") or error.description or error.name
    title = "Bad request" if status == 400 else error.name
    return problem(status, title, str(detail), errors=errors or None, headers=headers)


def from_record_error(error: RecordError) -> Response:
    if isinstance(error, InvalidInput):
        return problem(422, "Invalid input", str(error), errors=error.errors)
    if isinstance(error, NotFound):
        return problem(404, "Not found", str(error))
    if isinstance(error, StaleVersion):
        return problem(412, "Precondition failed", str(error), current_version=error.current,
                       headers={"ETag": f'"{error.current}"'})
    if isinstance(error, Conflict):
        return problem(409, "Conflict", str(error))
    if isinstance(error, ProjectionsBehind):
        return problem(503, "Read model behind", str(error), headers={"Retry-After": "1"})
    return problem(400, "Refused", str(error))


def from_store_error(error: Exception) -> Response:
    """The database is unreachable, locked beyond its timeout, or failing: 503, so that
    clients retry; never a 500, never a hang beyond the configured timeouts."""
    current_app.logger.warning("store unavailable: %s: %s", type(error).__name__, error)
    return problem(503, "Store unavailable",
                   "the database could not answer (unreachable, busy beyond its timeout or failing); retry shortly",
                   headers={"Retry-After": "2"})


def from_bad_query(error: BadQuery) -> Response:
    return problem(400, "Bad query", str(error), errors={error.field: [str(error).split(": ", 1)[-1]]})


def _flatten(messages: Any, prefix: str = "", *, located: bool = True) -> dict[str, list[str]]:
    """webargs nests errors by location (``{"query": {"limit": [...]}}``); flatten them
    to field paths. The location is the outermost level only: a body may well have a
    field named ``json`` or ``query``."""
    if isinstance(messages, list):
        if all(isinstance(m, str) for m in messages):
            return {prefix or "body": messages}
        return {f"{prefix}[{i}]": m for i, m in enumerate(messages)}  # pragma: no cover
    flat: dict[str, list[str]] = {}
    for key, value in messages.items():
        if located and key in ("json", "query", "querystring", "headers", "form"):
            flat.update(_flatten(value, "", located=False))
            continue
        path = (f"{prefix}[{key}]" if isinstance(key, int) else f"{prefix}.{key}") if prefix else str(key)
        if isinstance(value, dict):
            flat.update(_flatten(value, path, located=False))
        else:
            flat[path] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return flat
