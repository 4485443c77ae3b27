"""The app's long-lived objects: the service of the configured store, the tokens and
idempotency keys kept in the same database, the OpenAPI ``Api`` and the rate limiter."""

from __future__ import annotations

import http
import math
import threading
import time
from collections.abc import Callable
from functools import lru_cache, partial, wraps
from typing import Any

import marshmallow as ma
from flask import Flask, current_app, g
from flask_limiter import Limiter
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint
from flask_smorest.utils import prepare_response
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import TooManyRequests

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


api = ProblemApi()


def _budget() -> str:
    """Whose write budget a request spends: its token's."""
    return f"token:{g.writer.name}"


limiter = Limiter(key_func=_budget, default_limits=[])
"""Flask-Limiter: the storage (``TIMELINE_RATELIMIT_STORAGE_URI``) and the strategy that
count each token's write budget. :func:`write_rate` asks the strategy itself."""


@lru_cache(maxsize=8)
def _write_limits(text: str) -> tuple[RateLimitItem, ...]:
    """The limits of ``TIMELINE_WRITE_RATE_LIMIT`` (``api.settings`` has checked it),
    shortest window first."""
    return tuple(sorted(parse_many(text)))


def write_rate(view: Callable[..., Any]) -> Callable[..., Any]:
    """One write budget per token, shared by every write endpoint, counted once the token
    is known (the decorator runs after authentication); a write beyond it is 429 with the
    seconds until the budget resets in ``Retry-After``.

    The count is Flask-Limiter's strategy, asked directly. Its route decorator also
    resolved the limit's text, scopes, exemptions and meta limits again on every write,
    none of which this service uses: 9% of a write's interpreter time under 32 writers
    (py-spy)."""

    @wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        counter, key = limiter.limiter, _budget()
        for limit in _write_limits(current_app.config["TIMELINE"]["WRITE_RATE_LIMIT"]):
            if not counter.hit(limit, key, "writes"):
                reset = counter.get_window_stats(limit, key, "writes").reset_time
                raise TooManyRequests(f"this token has written {limit} already",
                                      retry_after=max(1, math.ceil(reset - time.time())))
        return view(*args, **kwargs)

    return limited


def count_writes_only(app: Flask) -> None:
    """Takes out Flask-Limiter's hooks before, after and at the end of every request.
    Writes are counted by :func:`write_rate`, once the token is known; the hooks would
    look for limits of their own (there are none), add headers (off) and reset their
    per-request state (never made), ~20 µs of CPU on every request. Flask-Limiter has no
    setting to leave them out."""

    def of_limiter(hook: Any) -> bool:
        owner = hook.args[0] if isinstance(hook, partial) and hook.args else getattr(hook, "__self__", None)
        return owner is limiter

    for hooks in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        hooks[None] = [hook for hook in hooks.get(None, []) if not of_limiter(hook)]


EXPIRY_INTERVAL = 1.0
"""Seconds between runs of the ``limits`` memory storage's expiry timer."""


def tame_expiry_timer(storage: object) -> None:
    """The ``limits`` memory storage restarts its expiry timer, a new thread that runs
    10 ms later, from the first request thread that finds it finished. Two fixes:

    - One thread at a time restarts it. Two at once started one timer twice and a write
      failed with "threads can only be started once" (limits issue #26; fixed upstream
      by pull request #352, not in a release as of limits 5.8.0, the latest). The others
      go on without waiting for it.
    - It is restarted at most once every ``EXPIRY_INTERVAL``. Under steady writes it was
      a new thread every ~10 ms per worker, and starting it took 3% of a write's
      interpreter time (py-spy). The timer only frees the counters of idle tokens: a
      counter whose window has passed is reset when its token next writes, timer or not.

    Remove this once a release has the fix and a setting for the interval."""
    if not isinstance(storage, MemoryStorage):
        return
    schedule, lock = storage._MemoryStorage__schedule_expiry, threading.Lock()
    due = 0.0

    def seldom_and_one_at_a_time() -> None:
        nonlocal due
        if time.monotonic() >= due and lock.acquire(blocking=False):
            try:
                due = time.monotonic() + EXPIRY_INTERVAL
                schedule()
            finally:
                lock.release()

    storage._MemoryStorage__schedule_expiry = seldom_and_one_at_a_time


class Timeline:
    """What a request needs, in ``app.extensions["timeline"]``."""

    def __init__(self, app: Flask, config: dict[str, Any]):
        self.config = config
        self.service = Service({"TIMELINE_DATABASE_URL": config["DATABASE_URL"]},
                               wait_timeout=config["WAIT_TIMEOUT"])
        view = self.service.projector.view
        self.tokens = Tokens(view, config["TOKEN_CACHE_SECONDS"])
        self.idempotency = IdempotencyKeys(view, config["IDEMPOTENCY_TTL_HOURS"])
        self.read_cache = ReadCache(self.service.projector.edition, config["READ_CACHE_MB"])
        self.streams = threading.BoundedSemaphore(config["MAX_STREAMS"])
        app.extensions["timeline"] = self
