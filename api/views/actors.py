"""Actors: register, search in any language, read, correct, state at a date, timeline."""

from __future__ import annotations

from flask import jsonify, url_for

from api import schemas
from api.auth import reads
from api.cache import kept_while_unchanged
from api.extension import Blueprint
from api.idempotency import again
from api.problems import problem
from api.views.common import as_of, body, expected_version, service, with_etag, write_operation, writer, written
from api.views.timeline import timeline_answer

blp = Blueprint("actors", __name__, url_prefix="/api/v1/actors", description="States, organizations, people, media")


def _missing(slug: str):
    return problem(404, "Not found", f"no actor with id {slug!r}")


@blp.route("", methods=["POST"])
@write_operation(blp, schemas.NewActor, status=201, repeatable=True)
def register(_args):
    """Register an actor under a slug (a slug can be claimed only once)."""
    receipt = service().execute("register_actor", body(), recorded_by=writer())
    return written(receipt, url_for("actors.actor", slug=receipt.id), 201,
                   actor=service().reader.written_actor(receipt.id, receipt.version))


@blp.route("")
@reads
@blp.arguments(schemas.ActorSearch, location="query")
@blp.response(200)
def search(args):
    """Actors whose id, names (any language) or aliases contain ``q``."""
    return jsonify(items=service().reader.actors(args.get("q"), args["limit"]))


@blp.route("/<slug>")
@reads
@blp.arguments(schemas.AsOf, location="query")
@blp.response(200)
def actor(args, slug):
    """An actor's profile, now or at record time ``as_of``."""
    document = service().reader.actor(slug, as_of(args))
    return with_etag(document, document["version"]) if document else _missing(slug)


@blp.route("/<slug>/corrections", methods=["POST"])
@write_operation(blp, schemas.ActorCorrection, precondition=True)
def correct(_args, slug):
    """Correct an actor's profile, with a reason (needs ``If-Match``)."""
    data = body()
    receipt = service().execute("correct_actor", slug, data.get("changes"), reason=data.get("reason"),
                                expected_version=expected_version(), again=again(), recorded_by=writer())
    return written(receipt, url_for("actors.actor", slug=slug),
                   actor=service().reader.written_actor(slug, receipt.version))


@blp.route("/<slug>/state")
@reads
@kept_while_unchanged
@blp.arguments(schemas.StateArgs, location="query")
@blp.response(200)
def state(args, slug):
    """Attributes, relations and involvement on day ``at``, as the record stood at ``as_of``."""
    at = args.get("at")
    found = service().reader.actor_state(slug, at.isoformat() if at else None, as_of(args))
    return jsonify(found) if found else _missing(slug)


@blp.route("/<slug>/timeline")
@reads
@kept_while_unchanged
@blp.arguments(schemas.ActorTimelineArgs, location="query")
@blp.response(200, schemas.TimelinePage)
@blp.doc(responses=schemas.TIMELINE_RESPONSES)
def timeline(args, slug):
    """The timeline of one actor (the same parameters as the timeline: ``role`` is this
    actor's role; ``actor`` narrows it to developments shared with any of those actors)."""
    if service().reader.actor(slug) is None:
        return _missing(slug)
    return timeline_answer({**args, "actor": args.get("actor") or [slug]}, involving=slug)
