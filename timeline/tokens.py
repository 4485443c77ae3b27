"""Bearer tokens for writers: created once, shown once, stored only as a hash.

Tokens are 256-bit random secrets, so a plain SHA-256 of them is a safe thing to store
(a slow password hash protects low-entropy secrets, which these are not). The hash is
the lookup key; the final comparison is constant-time.

A valid token is remembered for ``cache_seconds`` (every write presents one, and its
lookup was a query per request). Revoking or replacing a token in this process forgets
it at once; a revocation made by another process (``timeline token revoke``, another
worker) takes effect here within ``cache_seconds``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from timeline.views import ReadTables

ROLES = ("reader", "historian", "admin")
"""Each role may do what the roles before it may."""
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
TABLES = {"tokens": "api_tokens"}
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS {tokens} (name TEXT PRIMARY KEY, role TEXT NOT NULL, "
    "token_hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, revoked_at TEXT)",
)


@dataclass(frozen=True)
class Writer:
    """Whoever presented a valid token: its name is what their writes are recorded by."""

    name: str
    role: str

    def may(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


class TokenError(ValueError):
    pass


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


CACHE_SECONDS = 1.0
"""How long a valid token is believed without asking the database again."""


class Tokens:
    def __init__(self, view: ReadTables, cache_seconds: float = CACHE_SECONDS):
        self.view = view
        self.cache_seconds = cache_seconds
        self._known: dict[str, tuple[Writer, float]] = {}
        """Valid tokens by hash, with when to ask again; only valid ones, so that random
        tokens cannot fill it."""
        self._known_lock = threading.Lock()
        self._forgotten = 0
        """Counts forgetting, so that a lookup that read a token just before it was revoked
        here does not remember it afterwards."""
        with view.schema_lock():  # workers starting at once take turns
            view.execute(SCHEMA, TABLES)

    def create(self, name: str, role: str) -> str:
        """Creates a token and returns it; this is the only time it is ever shown."""
        if not NAME.match(name):
            raise TokenError("a token name is 1-64 lower-case letters, digits, '.', '_' or '-'")
        if role not in ROLES:
            raise TokenError(f"role must be one of {', '.join(ROLES)}")
        token = "tl_" + secrets.token_urlsafe(32)
        now = datetime.now(timezone.utc).isoformat()
        rows = self.view.select("SELECT revoked_at FROM {tokens} WHERE name = ?", TABLES, [name])
        if rows and rows[0]["revoked_at"] is None:
            raise TokenError(f"a token named {name!r} exists; revoke it first")
        self.view.write([
            ("DELETE FROM {tokens} WHERE name = ?", [(name,)]),
            ("INSERT INTO {tokens} VALUES (?, ?, ?, ?, NULL)", [(name, role, _hash(token), now)]),
        ], TABLES)
        self._forget(name)
        return token

    def revoke(self, name: str) -> bool:
        now = datetime.now(timezone.utc).isoformat()
        revoked = bool(self.view.write(
            [("UPDATE {tokens} SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", [(now, name)])], TABLES))
        self._forget(name)
        return revoked

    def writer(self, token: str) -> Writer | None:
        """The writer a token belongs to, or None for an unknown or revoked token."""
        digest = _hash(token)
        known = self._known.get(digest)
        if known is not None and known[1] > time.monotonic():
            return known[0]
        forgotten = self._forgotten
        rows = self.view.select(
            "SELECT name, role, token_hash FROM {tokens} WHERE token_hash = ? AND revoked_at IS NULL",
            TABLES, [digest])
        if rows and hmac.compare_digest(rows[0]["token_hash"], digest):
            writer = Writer(rows[0]["name"], rows[0]["role"])
            with self._known_lock:
                if self.cache_seconds > 0 and self._forgotten == forgotten:
                    self._known[digest] = (writer, time.monotonic() + self.cache_seconds)
            return writer
        self._known.pop(digest, None)
        return None

    def _forget(self, name: str) -> None:
        with self._known_lock:
            self._forgotten += 1
            self._known = {digest: known for digest, known in self._known.items() if known[0].name != name}

    def listing(self) -> list[dict[str, str | None]]:
        return self.view.select("SELECT name, role, created_at, revoked_at FROM {tokens} ORDER BY name", TABLES)
