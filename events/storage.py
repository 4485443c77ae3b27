"""Where the record is kept: one setting, ``TIMELINE_DATABASE_URL``, translated into
the eventsourcing library's own persistence settings.

- ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (the default,
  ``sqlite:///instance/timeline.db``): an embedded SQLite file in WAL mode.
- ``sqlite:///:memory:``: a private in-memory database, for tests.
- ``?pool_size=N`` (both): connections each pool keeps open for reuse (default 16 on
  SQLite, as many as a worker of ``timeline serve`` has threads; 5 on PostgreSQL).
- ``postgresql://user:password@host:port/dbname?schema=name``: PostgreSQL; the schema
  (default ``public``) is created if missing.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from eventsourcing.persistence import InterfaceError, Notification, StoredEvent
from eventsourcing.sqlite import (SQLITE3_DEFAULT_LOCK_TIMEOUT, SQLiteApplicationRecorder, SQLiteConnection,
                                  SQLiteConnectionPool, SQLiteFactory)
from eventsourcing.utils import Environment, EnvType, get_topic

DEFAULT_DATABASE_URL = "sqlite:///instance/timeline.db"


def database_url(env: dict[str, str] | None = None) -> str:
    """The configured database URL: ``env`` first, then the process environment."""
    for source in (env or {}, os.environ):
        if source.get("TIMELINE_DATABASE_URL"):
            return source["TIMELINE_DATABASE_URL"]
    return DEFAULT_DATABASE_URL


def library_settings(url: str) -> dict[str, str]:
    """The eventsourcing settings for a database URL."""
    parts = _store_url(url)
    options = _options(parts)
    if parts.scheme == "sqlite":
        return _sqlite_settings(parts.path, options)
    return _postgres_settings(parts, options)


def _store_url(url: str) -> Any:
    """A URL's parts, if it names a store: every other URL would be taken for PostgreSQL
    (a plain path, tried as a database name on 127.0.0.1) and a SQLite URL with a host
    (``sqlite://timeline.db``) for a private in-memory database, lost at exit."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite" and parts.netloc:
        raise ValueError("TIMELINE_DATABASE_URL for SQLite is sqlite:///relative.db or sqlite:////absolute.db; "
                         f"this one has the host {parts.netloc!r}")
    if parts.scheme not in ("sqlite", "postgresql", "postgres"):
        # Only the scheme is quoted: the rest of the URL may hold a password.
        raise ValueError("TIMELINE_DATABASE_URL must start with sqlite:// or postgresql://; "
                         f"its scheme is {parts.scheme!r}")
    return parts


def _pool_size(options: dict[str, str], default: str) -> str:
    """The URL's ``pool_size``, checked here for both stores: a positive integer."""
    value = options.get("pool_size", default)
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"the database URL's pool_size must be a positive integer, not {value!r}")
    return value


def _options(parts: Any) -> dict[str, str]:
    """A URL's query parameters, the last value of each."""
    return {k: v[-1] for k, v in parse_qs(parts.query).items()}


def _sqlite_path(url_path: str) -> str:
    """The file of a SQLite URL's path: ``sqlite:///rel`` -> ``rel``, ``sqlite:////abs`` -> ``/abs``."""
    return url_path[1:] if url_path.startswith("/") else url_path


def _sqlite_settings(path: str, options: dict[str, str]) -> dict[str, str]:
    path = _sqlite_path(path)
    if path in ("", ":memory:"):
        name = f"file:timeline-{uuid.uuid4().hex}?mode=memory&cache=shared"
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        name = path
    return {
        "PERSISTENCE_MODULE": get_topic(SQLiteStore),
        "SQLITE_DBNAME": name,
        "SQLITE_LOCK_TIMEOUT": options.get("timeout", "10"),
        "SQLITE_POOL_SIZE": _pool_size(options, "16"),
        "APPLICATION_RECORDER_TOPIC": get_topic(SQLiteEventLog),
    }


class SQLiteStore(SQLiteFactory):
    """The library's SQLite persistence, with connections that keep their compiled
    statements (:class:`StatementCachingPool`) and the size of its connection pool set by
    ``SQLITE_POOL_SIZE``, as its PostgreSQL pool's is by ``POSTGRES_POOL_SIZE``. The
    library keeps five SQLite connections: under a worker's 16 threads, every use beyond
    those opened and closed a connection of its own, and that churn and the waits for
    the pool cost an HTTP write 80-100 µs of CPU (~9%)."""

    SQLITE_POOL_SIZE = "SQLITE_POOL_SIZE"

    def __init__(self, env: Environment | EnvType | None):
        super().__init__(env)
        pool = self.datastore.pool  # made by the library, with no connection yet
        self.datastore.pool = StatementCachingPool(db_name=pool.db_name, lock_timeout=pool.lock_timeout,
                                                   pool_size=int(self.env.get(self.SQLITE_POOL_SIZE) or 5))


STATEMENT_CACHE = 128
"""Compiled statements each SQLite connection keeps: Python's own default, for the few
dozen statements of the service and the shapes the timeline's filters make."""


class StatementCachingPool(SQLiteConnectionPool):
    """The library's SQLite pool, whose connections keep their compiled statements. The
    library opens them with ``cached_statements=True``, which Python takes as a cache of
    ONE statement: every statement but a repeat of the one before was compiled again. An
    actor's state (seven statements) spent half its SQL time compiling them: 0.92 ms of
    SQL, 0.42 ms with the cache. Otherwise the library's ``_create_connection``, as it is
    in eventsourcing 9.5.6."""

    def _create_connection(self) -> SQLiteConnection:
        try:
            connection = sqlite3.connect(database=self.db_name, uri=True, check_same_thread=False,
                                         isolation_level=None, cached_statements=STATEMENT_CACHE,
                                         timeout=self.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT)
        except (sqlite3.Error, TypeError) as error:
            raise InterfaceError(error) from error
        if not self.is_sqlite_memory_mode and not self.is_journal_mode_wal:
            cursor = connection.cursor()
            if cursor.execute("PRAGMA journal_mode;").fetchone()[0].lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL;")
                self.journal_mode_was_changed_to_wal = True
            self.is_journal_mode_wal = True
        connection.row_factory = sqlite3.Row
        return SQLiteConnection(sqlite_conn=connection, max_age=self.max_age)


Within = Callable[[Any, Sequence[Notification], int], Callable[[], object] | None]
"""Work done in the transaction that stores events: given its cursor, the events as
stored (with their positions) and the log's last position before them; answers what to
do once the transaction has committed, if anything."""


class SQLiteEventLog(SQLiteApplicationRecorder):
    """The library's SQLite recorder, which a save may also pass ``within``: work that
    commits in the same transaction as the events (the service projects a group there,
    so events and projection commit together, with one sync, and nothing is read back)."""

    def insert_events(self, stored_events: Sequence[StoredEvent], *, within: Within | None = None,
                      **kwargs: Any) -> Sequence[int] | None:
        if within is None or not stored_events:
            return super().insert_events(stored_events, **kwargs)
        with self.datastore.transaction(commit=True) as cursor:
            positions = self._insert_events(cursor, stored_events, **kwargs)
            # Read after the insert, which holds the write lock: a read first could see a
            # state another writer then moves on, and the insert would fail at once.
            cursor.execute(f"SELECT MAX(rowid) FROM {self.events_table_name} WHERE rowid < ?",
                           (positions[0],))
            previous = cursor.fetchone()[0] or 0
            stored = [Notification(id=position, originator_id=event.originator_id, topic=event.topic,
                                   originator_version=event.originator_version, state=event.state)
                      for event, position in zip(stored_events, positions, strict=True)]
            committed = within(cursor, stored, previous)
        if committed is not None:
            committed()
        return positions


def _postgres_settings(parts, options: dict[str, str]) -> dict[str, str]:
    settings = _postgres_connection(parts, options)
    _create_schema(settings)
    return settings


def _postgres_connection(parts, options: dict[str, str]) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_SCHEMA": options.get("schema", "public"),
        "POSTGRES_CONNECT_TIMEOUT": options.get("connect_timeout", "5"),
        "POSTGRES_LOCK_TIMEOUT": options.get("lock_timeout", "10"),
        "POSTGRES_POOL_SIZE": _pool_size(options, "5"),
    }


def _connect(settings: dict[str, str]) -> Any:
    """A connection of our own, failing as the library's stores fail (a PersistenceError)."""
    import psycopg
    from eventsourcing.persistence import OperationalError

    try:
        return psycopg.connect(
            dbname=settings["POSTGRES_DBNAME"],
            host=settings["POSTGRES_HOST"],
            port=int(settings["POSTGRES_PORT"]),
            user=settings["POSTGRES_USER"],
            password=settings["POSTGRES_PASSWORD"] or None,
            connect_timeout=int(settings["POSTGRES_CONNECT_TIMEOUT"]),
            autocommit=True,
        )
    except psycopg.OperationalError as error:
        raise OperationalError(str(error)) from error


def _create_schema(settings: dict[str, str]) -> None:
    if settings["POSTGRES_SCHEMA"] == "public":
        return
    from psycopg import sql

    with _connect(settings) as connection:
        connection.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(settings["POSTGRES_SCHEMA"]))
        )


@contextmanager
def schema_lock(url: str) -> Iterator[None]:
    """Held while a process makes the store's tables: PostgreSQL refuses concurrent
    ``CREATE SCHEMA`` or ``CREATE OR REPLACE FUNCTION`` of one name ("tuple concurrently
    updated"), which is what workers starting at once would do. SQLite: the library's
    tracking recorder records its table migration once, and a second process doing the
    same at once fails. On its own connection, since the store's pools may not exist yet."""
    parts = _store_url(url)
    if parts.scheme == "sqlite":
        with store_lock(url, "schema"):
            yield
        return
    settings = _postgres_connection(parts, _options(parts))
    with _connect(settings) as connection, store_lock(url, "schema", connection):
        yield


def _lock_file(path: str) -> Any:
    """The lock file, opened for this call; its folder is made only when missing (a
    write takes the lock once per group, and checking the folder each time cost more
    than opening the file)."""
    try:
        return open(path, "a")
    except FileNotFoundError:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return open(path, "a")


@contextmanager
def store_lock(url: str, purpose: str, connection: Any = None) -> Iterator[None]:
    """A lock that every process of a store shares, one per ``purpose``: a lock file
    beside a SQLite file (``<db>.<purpose>-lock``, opened per call, so that forked
    processes do not share it); on PostgreSQL a session advisory lock held on
    ``connection``. An in-memory database has one process: nothing to lock."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = _sqlite_path(parts.path)
        if path in ("", ":memory:"):
            yield
            return
        with _lock_file(f"{path}.{purpose}-lock") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return
    schema = _postgres_connection(parts, _options(parts))["POSTGRES_SCHEMA"]
    name = schema if purpose == "schema" else f"{schema} {purpose}"  # the schema's own name: as before
    connection.execute("SELECT pg_advisory_lock(hashtext(%s))", (name,))
    try:
        yield
    finally:
        connection.execute("SELECT pg_advisory_unlock(hashtext(%s))", (name,))
