"""Answers of the costly reads (timelines, actor state), kept per worker while the read
tables stay as they were.

The same URL asked of the same tables (and on the same day: actor state defaults ``at``
to today) has the same answer. What names the tables' state is the projector's
*edition*: on SQLite, the count of commits to them, which every process adds to after
its commits and every worker reads from shared memory (timeline/changes.py); on
PostgreSQL, the projections' positions, one read of the tracking rows (~0.1 ms). An
answer is kept only if the edition did not change while it was computed; a write by any
process changes it before its writer answers, and the next request computes afresh.
A computed page of the timeline costs ~0.6 ms, an actor's state ~1.3 ms.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date
from functools import wraps
from typing import Any, Callable

from cachetools import LRUCache
from flask import Response, current_app, request


@dataclass(frozen=True)
class _Answer:
    body: bytes
    status: int
    headers: list[tuple[str, str]]


class ReadCache:
    """An LRU of finished answers, bounded in bytes of body (``TIMELINE_READ_CACHE_MB``;
    0 turns it off)."""

    def __init__(self, edition: Callable[[], Any], megabytes: float):
        self._edition = edition
        self._answers: LRUCache | None = None
        if megabytes > 0:
            self._answers = LRUCache(maxsize=int(megabytes * 1024 * 1024), getsizeof=lambda a: len(a.body))
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def answer(self, compute: Callable[[], Response]) -> Response:
        """The kept answer to this request in the current edition, or ``compute()``'s."""
        if self._answers is None:
            return compute()
        before = self._edition()
        key = (_url_as_sent(), before, date.today())
        with self._lock:
            kept = self._answers.get(key)
            self.hits += kept is not None
            self.misses += kept is None
        if kept is not None:
            return Response(kept.body, status=kept.status, headers=kept.headers)
        response = compute()
        if response.status_code == 200 and not response.is_streamed and self._edition() == before:
            kept = _Answer(response.get_data(), response.status_code, list(response.headers))
            with self._lock:
                if kept.body and len(kept.body) <= self._answers.maxsize:
                    self._answers[key] = kept
        return response


def _url_as_sent() -> tuple[str, ...]:
    """The request's URL as the WSGI server read it, naming its answer as ``request.url``
    does (the next page's ``Link`` holds the scheme and host) without building that, whose
    decoding was a tenth of a kept answer's cost. Two spellings of one URL are kept apart."""
    environ = request.environ
    host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
    return (environ["wsgi.url_scheme"], host, environ.get("SCRIPT_NAME", ""), environ.get("PATH_INFO", ""),
            environ.get("QUERY_STRING", ""))


def kept_while_unchanged(view: Callable[..., Any]) -> Callable[..., Response]:
    """A read view whose answers the worker keeps until the read tables change. Place it
    below the auth decorator (a token is checked every time) and above the argument
    parser: only a 200 is kept, and its URL was parsed and checked when it was computed,
    so a kept answer skips the parsing (a seventh of a kept answer's cost)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        def compute() -> Response:
            return current_app.make_response(view(*args, **kwargs))

        return current_app.extensions["timeline"].read_cache.answer(compute)

    return wrapper
