"""Health, readiness and the vocabulary."""

from __future__ import annotations

from flask import jsonify

from api.extension import Blueprint
from api.views.common import service
from events import vocabulary

blp = Blueprint("meta", __name__, description="Health and vocabulary")


@blp.route("/healthz")
@blp.response(200)
def healthz():
    """The process is up."""
    return jsonify(status="ok")


@blp.route("/readyz")
@blp.response(200)
@blp.alt_response(503, description="Database unreachable")
def readyz():
    """The database answers; how many events the read model is behind."""
    try:
        lag = service().projector.lag()
    except Exception as error:  # any database failure means: not ready
        response = jsonify(status="unavailable", detail=type(error).__name__)
        response.status_code = 503
        response.headers["Retry-After"] = "5"
        return response
    return jsonify(status="ready", projection_lag=lag)


@blp.route("/api/v1/vocabulary")
@blp.response(200)
def vocabulary_():
    """Categories with their quad class and weight, roles, certainty levels and more."""
    return jsonify(
        categories={name: info._asdict() for name, info in vocabulary.CATEGORIES.items()},
        quad_classes=vocabulary.QUAD_CLASSES,
        roles=vocabulary.ROLES,
        certainties=vocabulary.CERTAINTIES,
        actor_kinds=vocabulary.ACTOR_KINDS,
        link_types=vocabulary.LINK_TYPES,
        precisions=vocabulary.PRECISIONS,
    )
