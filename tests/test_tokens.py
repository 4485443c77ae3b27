"""Token lookups are remembered briefly (a write presents a token on every request), and
revoking or replacing a token in this process is seen at once; elsewhere within the
cache's time."""

from __future__ import annotations

import time

import pytest

from events.chronicle import Chronicle
from timeline.tokens import Tokens, Writer
from timeline.views import open_view


@pytest.fixture
def view(chronicle: Chronicle):
    view = open_view(chronicle.env)
    yield view
    view.close()


class Lookups:
    """Counts the token queries a Tokens makes."""

    def __init__(self, tokens: Tokens, monkeypatch: pytest.MonkeyPatch, during=None):
        self.count, self.during = 0, during
        select = tokens.view.select

        def counted(statement, *args, **kwargs):
            rows = select(statement, *args, **kwargs)
            if "token_hash = ?" in statement:
                self.count += 1
                if self.during:
                    self.during()
            return rows

        monkeypatch.setattr(tokens.view, "select", counted)


def test_a_valid_token_is_looked_up_once_within_the_cache_time(view, monkeypatch):
    tokens = Tokens(view, cache_seconds=60)
    token = tokens.create("alice", "historian")
    lookups = Lookups(tokens, monkeypatch)
    assert [tokens.writer(token) for _ in range(5)] == [Writer("alice", "historian")] * 5
    assert lookups.count == 1
    assert tokens.writer("tl_forged") is None and tokens.writer("tl_forged") is None
    assert lookups.count == 3, "unknown tokens are asked about every time, never remembered"


def test_revoking_here_takes_effect_at_once(view):
    tokens = Tokens(view, cache_seconds=60)
    token = tokens.create("alice", "historian")
    assert tokens.writer(token) == Writer("alice", "historian")
    assert tokens.revoke("alice")
    assert tokens.writer(token) is None


def test_a_replaced_token_is_refused_at_once(view):
    tokens = Tokens(view, cache_seconds=60)
    old = tokens.create("alice", "admin")
    assert tokens.writer(old) == Writer("alice", "admin")
    tokens.revoke("alice")
    new = tokens.create("alice", "reader")
    assert tokens.writer(old) is None
    assert tokens.writer(new) == Writer("alice", "reader")


def test_revoking_elsewhere_takes_effect_within_the_cache_time(view):
    here, elsewhere = Tokens(view, cache_seconds=0.3), Tokens(view)
    token = here.create("alice", "historian")
    assert here.writer(token) == Writer("alice", "historian")
    elsewhere.revoke("alice")  # another worker, or `timeline token revoke`
    time.sleep(0.35)
    assert here.writer(token) is None


def test_a_lookup_that_read_a_token_as_it_was_revoked_does_not_remember_it(view, monkeypatch):
    tokens = Tokens(view, cache_seconds=60)
    token = tokens.create("alice", "historian")
    lookups = Lookups(tokens, monkeypatch, during=lambda: tokens.revoke("alice"))
    assert tokens.writer(token) == Writer("alice", "historian"), "read before the revocation"
    lookups.during = None
    assert tokens.writer(token) is None


def test_no_cache_time_asks_every_time(view, monkeypatch):
    tokens = Tokens(view, cache_seconds=0)
    token = tokens.create("alice", "historian")
    lookups = Lookups(tokens, monkeypatch)
    tokens.writer(token), tokens.writer(token)
    assert lookups.count == 2
