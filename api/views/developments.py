"""Developments: record, read (as of any record time), history, and the later events
that correct, source, retract and restore them (each needs ``If-Match``)."""

from __future__ import annotations

from flask import url_for

from api import schemas
from api.auth import reads
from api.extension import Blueprint
from api.idempotency import again, keyed_id
from api.problems import problem
from api.views.common import as_of, body, expected_version, service, with_etag, write_operation, writer, written

blp = Blueprint("developments", __name__, url_prefix="/api/v1/developments",
                description="Sourced developments of contemporary history")


def _found(ident: str, as_of_=None):
    document = service().reader.development(ident, as_of_)
    if document is None:
        return None, problem(404, "Not found", f"no development with id {ident!r}" +
                             (f" at record time {as_of_}" if as_of_ is not None else ""))
    return document, None


def _answer(receipt):
    document = service().reader.written(receipt.id, receipt.version)
    return written(receipt, url_for("developments.development", ident=receipt.id), 201, development=document)


@blp.route("", methods=["POST"])
@write_operation(blp, schemas.NewDevelopment, status=201, repeatable=True)
def record(_args):
    """Record a development (a client-chosen id makes a retry a no-op)."""
    return _answer(service().execute("record_development", keyed_id(body()), recorded_by=writer()))


@blp.route("/<ident>")
@reads
@blp.arguments(schemas.AsOf, location="query")
@blp.response(200, schemas.DevelopmentOut)
def development(args, ident):
    """A development as the record states it now, or stated it at ``as_of``."""
    document, missing = _found(ident, as_of(args))
    return missing or with_etag(document, document["version"])


@blp.route("/<ident>/history")
@reads
@blp.arguments(schemas.NoArgs, location="query")
@blp.response(200)
def history(_args, ident):
    """Every version: event type, recorded time, recorded by, reason, what changed."""
    entries = service().reader.history(ident)
    if entries is None:
        return problem(404, "Not found", f"no development with id {ident!r}")
    return {"id": ident, "history": entries}


@blp.route("/<ident>/corrections", methods=["POST"])
@write_operation(blp, schemas.Correction, precondition=True)
def correct(_args, ident):
    """Correct fields of a development, with a reason (and optionally new sources)."""
    data = body()
    receipt = service().execute("correct_development", ident, data.get("changes"), reason=data.get("reason"),
                                sources=data.get("sources") or (), expected_version=expected_version(),
                                again=again(), recorded_by=writer())
    return _answer(receipt)


@blp.route("/<ident>/sources", methods=["POST"])
@write_operation(blp, schemas.SourceSchema, precondition=True)
def add_source(_args, ident):
    """Add a source backing a development."""
    receipt = service().execute("add_source", ident, body(), expected_version=expected_version(),
                                again=again(), recorded_by=writer())
    return _answer(receipt)


@blp.route("/<ident>/retraction", methods=["POST"])
@write_operation(blp, schemas.Retraction, precondition=True)
def retract(_args, ident):
    """Retract a development: it leaves current timelines and stays in history; it may
    name the development that supersedes it."""
    data = body()
    receipt = service().execute("retract_development", ident, reason=data.get("reason"),
                                superseded_by=data.get("superseded_by"), expected_version=expected_version(),
                                again=again(), recorded_by=writer())
    return _answer(receipt)


@blp.route("/<ident>/restoration", methods=["POST"])
@write_operation(blp, schemas.Reason, precondition=True)
def restore(_args, ident):
    """Undo a retraction, with a reason."""
    receipt = service().execute("restore_development", ident, reason=body().get("reason"),
                                expected_version=expected_version(), again=again(), recorded_by=writer())
    return _answer(receipt)
