"""The raw event log, for developers who replay history: pages by position, and the
same as Server-Sent Events (resumable with ``Last-Event-ID``). Each event carries its
link in the tamper-evidence hash chain (``timeline.projections.link``), so an outside
party can verify a copy."""

from __future__ import annotations

import json
import time
from typing import Any

import marshmallow as ma
from flask import Response, current_app, jsonify, stream_with_context

from api import schemas
from api.auth import SECURITY, reads, writes
from api.extension import Blueprint
from api.problems import problem
from api.views.common import service
from timeline.projections import Chain
from timeline.projector import Projector

blp = Blueprint("events", __name__, url_prefix="/api/v1", description="The event log and administration")


def log_entries(after: int, limit: int, types: list[str] | None = None) -> list[dict[str, Any]]:
    """Stored events after a position, as stored: position, ids, version, type, time, payload."""
    notifications = service().chronicle.recorder.select_notifications(
        after, limit, topics=types or (), inclusive_of_start=False)
    chain = next(p for p in service().projector.projections if isinstance(p, Chain))
    hashes = chain.hashes(after, notifications[-1].id) if notifications else {}
    entries = []
    for n in notifications:
        payload = json.loads(n.state)
        entries.append({
            "position": n.id, "event_id": f"{n.originator_id}/{n.originator_version}",
            "stream_id": str(n.originator_id), "version": n.originator_version, "type": n.topic,
            "recorded_at": (payload.get("timestamp") or {}).get("_data_"), "payload": payload,
            "hash": hashes.get(n.id),
        })
    return entries


@blp.route("/events")
@reads
@blp.arguments(schemas.EventArgs, location="query")
@blp.response(200)
def events(args):
    """Stored events after position ``after`` (a cursor: pass the last position seen)."""
    entries = log_entries(args["after"], args["limit"], args.get("type"))
    following = entries[-1]["position"] if len(entries) == args["limit"] else None
    return jsonify(items=entries, next_after=following)


@blp.route("/events/stream")
@reads
@blp.arguments(schemas.StreamArgs, location="query")
@blp.arguments(schemas.StreamHeaders, location="headers", unknown=ma.EXCLUDE)
@blp.response(200, content_type="text/event-stream")
def stream(args, headers):
    """Server-Sent Events: ``id:`` is the position; reconnect with ``Last-Event-ID``.
    Each worker serves at most ``TIMELINE_MAX_STREAMS`` streams, so that open streams
    cannot take every thread from other requests."""
    after = headers.get("last_event_id", args["after"])
    extension = current_app.extensions["timeline"]
    if not extension.streams.acquire(blocking=False):
        return problem(503, "Too many streams", "this worker serves its maximum of open event streams",
                       headers={"Retry-After": "5"})
    config = extension.config
    app = current_app._get_current_object()

    def generate():
        position, last_sent = after, time.monotonic()
        yield "retry: 2000\n\n"
        while True:
            with app.app_context():
                entries = log_entries(position, 500)
            for entry in entries:
                position = entry["position"]
                yield f"id: {position}\nevent: {entry['type']}\ndata: {json.dumps(entry, ensure_ascii=False)}\n\n"
                last_sent = time.monotonic()
            if not entries:
                if time.monotonic() - last_sent >= config["STREAM_KEEPALIVE"]:
                    yield ": keep-alive\n\n"
                    last_sent = time.monotonic()
                time.sleep(config["STREAM_POLL_INTERVAL"])

    response = Response(stream_with_context(generate()), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.call_on_close(extension.streams.release)  # not in the generator: a HEAD never runs it
    return response


@blp.route("/admin/replay", methods=["POST"])
@writes("admin")
@blp.response(200)
@blp.doc(security=SECURITY)
def replay():
    """Drop and rebuild every projection from the event log (admin)."""
    started = time.perf_counter()
    projector: Projector = service().projector
    count = projector.rebuild()
    return jsonify(replayed=count, seconds=round(time.perf_counter() - started, 3), position=projector.position())


@blp.route("/admin/tokens", methods=["POST"])
@writes("admin")
@blp.arguments(schemas.NewToken)
@blp.response(201)
@blp.doc(security=SECURITY)
def create_token(args):
    """Create a token; the answer is the only time it is shown."""
    from timeline.tokens import TokenError

    try:
        token = current_app.extensions["timeline"].tokens.create(args["name"], args["role"])
    except TokenError as error:
        return problem(422, "Invalid input", str(error), errors={"name": [str(error)]})
    response = jsonify(name=args["name"], role=args["role"], token=token)
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/admin/tokens/<name>", methods=["DELETE"])
@writes("admin")
@blp.response(204)
@blp.doc(security=SECURITY)
def revoke_token(name):
    """Revoke a token."""
    if not current_app.extensions["timeline"].tokens.revoke(name):
        return problem(404, "Not found", f"no active token named {name!r}")
    return Response(status=204)
