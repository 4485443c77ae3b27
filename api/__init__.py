"""The Flask app factory: blueprints, the service of one store, auth, idempotency,
rate limits and problem-shaped errors."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

import swagger_ui_bundle
from flask import Flask, request, send_from_directory
from flask_cors import CORS
from eventsourcing.persistence import PersistenceError
from werkzeug.exceptions import BadRequest, HTTPException

from api import auth, problems, web
from api.extension import Timeline, api, count_writes_only, limiter, tame_expiry_timer
from api.json import JSONProvider
from api.settings import from_environment
from api.views.common import PreconditionMissing, precondition_required
from events.errors import RecordError
from timeline.queries import BadQuery

MAX_DEPTH = 32
"""How deep a request body may nest: the record's shapes need four levels."""

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                               "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
}


def create_app(settings: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    config = from_environment(settings)
    app.config.update(
        TIMELINE=config,
        MAX_CONTENT_LENGTH=config["MAX_CONTENT_LENGTH"],
        API_TITLE="Timeline Service",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL="/docs/static/",
        RATELIMIT_STORAGE_URI=config["RATELIMIT_STORAGE_URI"],
        RATELIMIT_HEADERS_ENABLED=False,
    )
    app.json = JSONProvider(app)
    Timeline(app, config)
    limiter.init_app(app)
    count_writes_only(app)
    tame_expiry_timer(limiter.storage)
    CORS(app, resources={r"/api/*": {"origins": "*", "methods": ["GET", "HEAD", "OPTIONS"]}})
    api.init_app(app, spec_kwargs={"components": {"securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer"}}}})

    from api.views import actors, developments, events, meta, timeline

    for module in (meta, actors, developments, timeline, events):
        api.register_blueprint(module.blp)
    auth.init_app(app)
    app.register_blueprint(web.blp)

    @app.route("/docs/static/<path:filename>")
    def swagger_static(filename: str):
        """Swagger UI from the installed swagger-ui-bundle package: no CDN."""
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)

    app.register_error_handler(HTTPException, problems.from_http_exception)
    app.register_error_handler(RecordError, problems.from_record_error)
    app.register_error_handler(BadQuery, problems.from_bad_query)
    app.register_error_handler(PersistenceError, problems.from_store_error)
    app.register_error_handler(PreconditionMissing, lambda _: precondition_required())

    @app.before_request
    def readable_url():
        """Query and path values are text the store can take, as a body's are: a query
        string that is not UTF-8 cannot be read at all, and a NUL ends a pattern for
        SQLite (``q=%00`` matched everything) and is refused by PostgreSQL. Werkzeug
        keeps a percent-escape that is not UTF-8 (``q=%E9``, Latin-1) as its three
        characters, so the escapes are decoded here, not only the raw bytes."""
        try:
            unquote_to_bytes(request.query_string).decode("utf-8")
            values = [*request.args.items(multi=True), *(request.view_args or {}).items()]
        except UnicodeDecodeError:
            return problems.problem(400, "Bad request", "the query string is not UTF-8",
                                    errors={"query": ["is not UTF-8"]})
        for name, value in values:
            if "\x00" in name or "\x00" in str(value):
                return problems.problem(400, "Bad request", f"{name!r} must not contain NUL characters",
                                        errors={name: ["must not contain NUL characters"]})
        return None

    @app.before_request
    def json_only():
        """A body must be JSON (415) that the parser can read (400): nesting near
        Python's recursion limit or an integer of more than 4300 digits would otherwise
        escape the argument parser, which reads the body again, as a server error.
        Routing errors (404, 405) and bodiless requests go on."""
        has_body = bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "")
        if request.routing_exception is not None or not has_body:
            return None
        if request.mimetype != "application/json":
            return problems.problem(415, "Unsupported media type", "send the body as application/json",
                                    errors={"Content-Type": ["must be application/json"]})
        try:
            document = request.get_json()
        except BadRequest:
            reason = "is not valid JSON"
        except RecursionError:
            reason = "is nested too deeply"
        else:
            if not _nests_beyond(document, MAX_DEPTH):
                return None
            reason = f"nests more than {MAX_DEPTH} levels deep"
        return problems.problem(400, "Bad request", f"the body {reason}", errors={"body": [reason]})

    @app.after_request
    def secure(response):
        """The security headers a view has not set itself, added in one pass (werkzeug's
        ``setdefault`` searches the headers once for each)."""
        present = {name.lower() for name in response.headers.keys()}
        response.headers.extend([(name, value) for name, value in SECURITY_HEADERS.items()
                                 if name.lower() not in present])
        return response

    return app


def _nests_beyond(document: Any, limit: int) -> bool:
    """Whether JSON nests deeper than ``limit`` (looked at without recursion)."""
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, (dict, list)):
            if depth > limit:
                return True
            pending.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
    return False
