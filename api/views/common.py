"""Helpers shared by the views: the service, request bodies, preconditions, write answers."""

from __future__ import annotations

import re
from typing import Any

from flask import current_app, g, jsonify, request

from api.problems import problem
from events.chronicle import Receipt
from timeline.queries import AsOf, parse_as_of
from timeline.service import Service

_ETAG = re.compile(r'^\s*(?:W/)?"(\d+)"\s*$')


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


def precondition_required():
    return problem(428, "Precondition required",
                   "send If-Match with the ETag (stream version) you last read, e.g. If-Match: \"3\"",
                   errors={"If-Match": ["is required"]})
