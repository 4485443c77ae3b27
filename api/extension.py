"""The app's long-lived objects: the service of the configured store, the tokens and
idempotency keys kept in the same database, the OpenAPI ``Api`` and the rate limiter."""

from __future__ import annotations

import http
import threading
from typing import Any

import marshmallow as ma
from flask import Flask, g
from flask_limiter import Limiter
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint
from flask_smorest.utils import prepare_response
from limits.storage import MemoryStorage
from webargs.flaskparser import FlaskParser

from api import problems
from api.cache import ReadCache
from api.problems import PROBLEM_TYPE
from api.idempotency import IdempotencyKeys
from api.schemas import Problem
from timeline.service import Service
from timeline.tokens import Tokens


class Blueprint(SmorestBlueprint):
    """Unknown query parameters and body fields are errors, not silently dropped."""

    ARGUMENTS_PARSER = FlaskParser(unknown=ma.RAISE)

    def arguments(self, schema, *args, **kwargs):
        """Each schema is instantiated once: webargs would build (and deep-copy the fields
        of) a new instance of a schema class on every request."""
        return super().arguments(schema() if isinstance(schema, type) else schema, *args, **kwargs)


class ProblemApi(Api):
    """flask-smorest's Api, with errors as problem details that keep their headers, and
    documented as such (``application/problem+json``)."""

    ERROR_SCHEMA = Problem

    def handle_http_exception(self, error):
        return problems.from_http_exception(error)

    def _register_responses(self):
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["schema"] = Problem
            prepare_response(response, self.spec, PROBLEM_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": Problem}
        prepare_response(response, self.spec, PROBLEM_TYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


def _limit_key() -> str:
    return f"token:{g.writer.name}"


def write_limit() -> str:
    """The per-token write rate limit, from ``TIMELINE_WRITE_RATE_LIMIT``."""
    from flask import current_app

    return current_app.config["TIMELINE"]["WRITE_RATE_LIMIT"]


api = ProblemApi()
limiter = Limiter(key_func=_limit_key, default_limits=[])
write_rate = limiter.shared_limit(write_limit, scope="writes")
"""One write budget per token, shared by every write endpoint."""


def check_limits_in_views_only(app: Flask) -> None:
    """The limit is per token, so it is checked once the token is known: by the write
    decorator, which runs after authentication. The limiter's own check before every
    request (Flask-Limiter has no setting to leave it out) would find no token and no
    limit of its own to apply, and cost a write ~35 µs of CPU, 5% of it."""
    app.before_request_funcs[None].remove(limiter._check_request_limit)


def serialize_expiry_timer(storage: object) -> None:
    """The ``limits`` memory storage restarts its expiry timer from whichever request
    thread finds it stopped, without a lock: two threads at once start one timer twice
    and one write fails with "threads can only be started once" (limits issue #26; fixed
    upstream by pull request #352, not in a release as of limits 5.8.0, the latest). One
    thread at a time restarts it here, and the others go on without it: the timer only
    frees the counters of idle tokens, and a thread that waited for another to start it
    (a new thread every 10 ms) was a tenth of what py-spy saw under 32 writers. Remove
    this once a release has the fix."""
    if not isinstance(storage, MemoryStorage):
        return
    schedule, lock = storage._MemoryStorage__schedule_expiry, threading.Lock()

    def one_at_a_time() -> None:
        if lock.acquire(blocking=False):
            try:
                schedule()
            finally:
                lock.release()

    storage._MemoryStorage__schedule_expiry = one_at_a_time


class Timeline:
    """What a request needs, in ``app.extensions["timeline"]``."""

    def __init__(self, app: Flask, config: dict[str, Any]):
        self.config = config
        self.service = Service({"TIMELINE_DATABASE_URL": config["DATABASE_URL"]},
                               wait_timeout=config["WAIT_TIMEOUT"])
        view = self.service.projector.view
        self.tokens = Tokens(view, config["TOKEN_CACHE_SECONDS"])
        self.idempotency = IdempotencyKeys(view, config["IDEMPOTENCY_TTL_HOURS"])
        self.read_cache = ReadCache(self.service.projector.positions, config["READ_CACHE_MB"])
        self.streams = threading.BoundedSemaphore(config["MAX_STREAMS"])
        app.extensions["timeline"] = self
