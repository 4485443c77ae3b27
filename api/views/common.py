"""Helpers shared by the views: the service, request bodies, preconditions, write answers."""

from __future__ import annotations

import re
from typing import Any

from flask import current_app, g, jsonify, request

from api.problems import problem
from events.chronicle import Receipt
from timeline.queries import AsOf, parse_as_of
from timeline.service import Service

_ETAG = re.compile(r'^\s*"(\d{1,19})"\s*$')
"""A stream version in ``If-Match``, as one strong entity tag: If-Match compares strongly
(RFC 9110), so a weak tag never matches, and a longer number names no version there is:
both are 412."""


class PreconditionMissing(Exception):
    pass


def service() -> Service:
    return current_app.extensions["timeline"].service


def body() -> Any:
    """The JSON body exactly as sent (marshmallow has checked its shape already)."""
    return request.get_json()


def writer() -> str:
    return g.writer.name


def expected_version() -> int | None:
    """The stream version named by ``If-Match``; writes to existing streams require it."""
    header = request.headers.get("If-Match")
    if header is None:
        raise PreconditionMissing
    if header.strip() == "*":
        return None
    match = _ETAG.match(header)
    return int(match[1]) if match else -1


def as_of(args: dict[str, Any]) -> AsOf:
    service().settle(args.get("min_position"))
    return parse_as_of(args.get("as_of"))


def written(receipt: Receipt, location: str, status: int = 200, **body: Any):
    response = jsonify({"id": receipt.id, "version": receipt.version, "position": receipt.position,
                        "created": receipt.created, **body})
    response.status_code = status if receipt.created or status != 201 else 200
    response.headers["ETag"] = f'"{receipt.version}"'
    response.headers["Location"] = location
    if receipt.position is not None:
        response.headers["X-Timeline-Position"] = str(receipt.position)
    return response


def with_etag(document: dict[str, Any], version: int):
    """A single resource, with its strong ETag; ``If-None-Match`` gives 304."""
    etag = f'"{version}"'
    sent = [t.strip().removeprefix("W/") for t in request.headers.get("If-None-Match", "").split(",")]
    if etag in sent or "*" in sent:  # RFC 9110: If-None-Match compares weakly
        response = current_app.response_class(status=304)
    else:
        response = jsonify(document)
    response.headers["ETag"] = etag
    return response


def write_operation(blp: Any, body_schema: Any, *, status: int = 200, precondition: bool = False,
                    repeatable: bool = False, role: str = "historian"):
    """What every write shares: a token of ``role``, the body's shape, the receipt, the
    OpenAPI security (and If-Match, for writes to an existing stream), the per-token rate
    limit and Idempotency-Key. ``repeatable``: repeating a creation with the same content
    answers 200."""
    from api import schemas
    from api.auth import SECURITY, writes
    from api.extension import write_rate
    from api.idempotency import idempotent

    def decorate(view):
        view = write_rate(idempotent(view))
        view = blp.doc(security=SECURITY, **({"parameters": [schemas.IF_MATCH]} if precondition else {}))(view)
        if repeatable:
            view = blp.alt_response(200, schema=schemas.WriteReceipt,
                                    description="Already in the record with the same content: no-op")(view)
        view = blp.response(status, schemas.WriteReceipt)(view)
        return writes(role)(blp.arguments(body_schema)(view))

    return decorate


def precondition_required():
    return problem(428, "Precondition required",
                   "send If-Match with the ETag (stream version) you last read, e.g. If-Match: \"3\"",
                   errors={"If-Match": ["is required"]})
