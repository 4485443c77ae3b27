"""The per-worker cache of read answers (api/cache.py), on its own: what it keeps, what
it refuses to keep, and its bound."""

from __future__ import annotations

from datetime import date

import pytest
from flask import Flask, Response

from api import cache
from api.cache import ReadCache


@pytest.fixture
def app() -> Flask:
    return Flask(__name__)


class Record:
    """An edition of the read tables that a test moves, and a view that counts its
    computations."""

    def __init__(self):
        self.position, self.computed = 1, 0

    def edition(self) -> tuple[int, ...]:
        return (self.position, self.position)

    def view(self, size: int = 10, moves: bool = False, status: int = 200):
        def compute() -> Response:
            self.computed += 1
            if moves:  # a write lands while the answer is computed
                self.position += 1
            return Response(b"x" * size, status=status, headers={"Link": "<next>"})
        return compute


def ask(app: Flask, kept: ReadCache, compute, url: str = "/timeline?limit=5") -> Response:
    with app.test_request_context(url):
        return kept.answer(compute)


def test_the_same_url_in_the_same_edition_is_computed_once(app):
    record = Record()
    kept = ReadCache(record.edition, megabytes=1)
    first, again = ask(app, kept, record.view()), ask(app, kept, record.view())
    assert record.computed == 1 and (kept.hits, kept.misses) == (1, 1)
    assert again.get_data() == first.get_data() and again.headers["Link"] == "<next>"
    ask(app, kept, record.view(), "/timeline?limit=6")
    assert record.computed == 2


def test_an_answer_computed_while_the_edition_changed_is_not_kept(app):
    """Otherwise a rebuild that passes the old position again would be answered with
    tables of a later one (on PostgreSQL, the edition is the positions)."""
    record = Record()
    kept = ReadCache(record.edition, megabytes=1)
    ask(app, kept, record.view(moves=True))
    record.position = 1
    ask(app, kept, record.view())
    assert record.computed == 2


def test_errors_are_not_kept(app):
    record = Record()
    kept = ReadCache(record.edition, megabytes=1)
    ask(app, kept, record.view(status=404))
    ask(app, kept, record.view(status=404))
    assert record.computed == 2


def test_a_new_day_computes_again(app, monkeypatch):
    """Actor state's ``at`` defaults to today."""
    record = Record()
    kept = ReadCache(record.edition, megabytes=1)
    ask(app, kept, record.view())

    class Tomorrow(date):
        @classmethod
        def today(cls):
            return date(2100, 1, 1)

    monkeypatch.setattr(cache, "date", Tomorrow)
    ask(app, kept, record.view())
    assert record.computed == 2


def test_the_bound_in_bytes_evicts_the_least_recently_used(app):
    record = Record()
    kept = ReadCache(record.edition, megabytes=2500 / 1024 / 1024)
    for url in ("/a", "/b", "/a", "/c"):  # /a is used again, so /b goes to make room for /c
        ask(app, kept, record.view(1000), url)
    assert record.computed == 3
    ask(app, kept, record.view(1000), "/a")
    assert record.computed == 3
    ask(app, kept, record.view(1000), "/b")
    assert record.computed == 4
    ask(app, kept, record.view(5000), "/big")  # larger than the bound: answered, not kept
    ask(app, kept, record.view(5000), "/big")
    assert record.computed == 6


def test_off_computes_every_time(app):
    record = Record()
    kept = ReadCache(record.edition, megabytes=0)
    ask(app, kept, record.view())
    ask(app, kept, record.view())
    assert record.computed == 2
