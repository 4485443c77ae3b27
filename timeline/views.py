"""Materialised views: the read tables of the projections, in the same database as the
events, written through the eventsourcing library's tracking recorders.

A view's rows and its tracking position are written in ONE transaction
(:meth:`ReadTables.apply`), so a crash or a replay never applies an event twice or
skips one. The SQL is the portable subset of SQLite and PostgreSQL; :class:`Dialect`
holds the few differences.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import msgspec
from eventsourcing import persistence
from eventsourcing.persistence import InfrastructureFactory, Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder

from events.storage import database_url, schema_lock
from timeline.changes import ChangeCount

Row = dict[str, Any]
SEPARATOR = "\x1e"
"""Joins texts of compact JSON (:meth:`Dialect.joined`): JSON escapes every control character in it."""
Operation = tuple[str, Sequence[Sequence[Any]]]
"""An SQL statement (with ``?`` placeholders and ``{table}`` names) and its rows."""


@dataclass(frozen=True)
class Dialect:
    name: str
    """``sqlite`` or ``postgresql``: which text index the store has (FTS5 or pg_trgm)."""
    placeholder: str
    schema: str | None
    without_rowid: str = ""
    """SQLite's ``WITHOUT ROWID`` for tables whose primary key is all there is to them."""
    position_key: str = "BIGINT PRIMARY KEY"
    """A log position as a table's key. SQLite's ``INTEGER PRIMARY KEY`` is the rowid itself:
    no separate key index, and the row number its FTS5 index refers to."""

    def elements(self, array: str, alias: str) -> str:
        """A FROM item: the elements of a JSON array (a column or a parameter), one row each, as
        ``alias.value``."""
        if self.name == "sqlite":
            return f"json_each({array}) AS {alias}"
        return f"json_array_elements_text({array}::json) AS {alias}(value)"

    def array_of(self, expression: str) -> str:
        """An aggregate: the values of ``expression`` as the text of a JSON array (null if none)."""
        return f"json_group_array({expression})" if self.name == "sqlite" else f"json_agg({expression})::text"

    def array(self, expressions: Sequence[str]) -> str:
        """The values of ``expressions`` as one JSON array."""
        return f"{'json_array' if self.name == 'sqlite' else 'json_build_array'}({', '.join(expressions)})"

    def packed(self, statement: str, row: type[msgspec.Struct]) -> str:
        """A statement of one row for a statement of many: its rows (the fields of ``row``,
        a :func:`packed_row`, in order) as one JSON array, for :func:`unpack`. SQLite
        releases the interpreter lock for each row it steps to, and when the server's other
        threads are busy each release is a hand-over: the 80 rows of an actor's relations
        waited 80 times for the lock to come back. The values pass through JSON, where
        SQLite writes a real with 15 digits: exact for the weights' sums (halves), not for
        any real."""
        return f"SELECT {self.array_of(self.array(row.__struct_fields__))} FROM ({statement}) AS selected"

    def joined(self, expression: str) -> str:
        """An aggregate: the texts of ``expression`` joined by :data:`SEPARATOR` (null if none)."""
        if self.name == "sqlite":
            return f"group_concat({expression}, char(30))"
        return f"string_agg({expression}, chr(30))"

    def table(self, name: str) -> str:
        return f'"{self.schema}"."{name}"' if self.schema else name

    def sql(self, statement: str, tables: dict[str, str]) -> str:
        """Fills in ``{key}`` (the qualified table) and ``{key_name}`` (its bare name, for
        indexes), and the placeholder style. Statements come in shapes that repeat, so the
        last few hundred are kept filled in: filling in took 7 µs for a statement of 300
        characters, and a group commit projects through dozens."""
        return self._filled_in(statement, tuple(tables.items()))

    @functools.lru_cache(maxsize=512)
    def _filled_in(self, statement: str, tables: tuple[tuple[str, str], ...]) -> str:
        qualified = {key: self.table(name) for key, name in tables}
        bare = {f"{key}_name": name for key, name in tables}
        statement = statement.format(**qualified, **bare, without_rowid=self.without_rowid,
                                     position_key=self.position_key)
        return statement.replace("?", self.placeholder) if self.placeholder != "?" else statement


def packed_row(name: str, columns: Sequence[str]) -> type[msgspec.Struct]:
    """The type of a row read packed (:meth:`Dialect.packed`): its columns as attributes,
    decoded straight from the array of each row (a dictionary per row cost twice the
    decoding)."""
    return msgspec.defstruct(name, list(columns), array_like=True, frozen=True)


@functools.cache
def _rows_of(row: type[msgspec.Struct]) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(list[row])


def unpack(packed: str | None, row: type[msgspec.Struct]) -> list[Any]:
    """The rows of a statement read packed (:meth:`Dialect.packed`), in no promised order
    (no aggregate promises one); none if it had none (PostgreSQL's array is then null)."""
    return _rows_of(row).decode(packed or "[]")


class ReadTables:
    """Portable read/write helpers shared by the SQLite and PostgreSQL views."""

    dialect: Dialect
    datastore: Any
    database_url: str
    """The store's URL, for its schema lock."""

    changes: ChangeCount | None = None
    """The commits to the read tables, counted where every process of a SQLite store sees
    them without a statement (timeline/changes.py). None on PostgreSQL: its processes may
    run on several machines, so its readers ask the store for the positions."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._reading = threading.local()

    def changed(self) -> None:
        """Counts a commit to the read tables, made through this view or by the
        transaction that stored the events it projected. Called after the commit, before
        anyone hears of it."""
        if self.changes is not None:
            self.changes.add()

    def close(self) -> None:
        """Closes the connection pool, and unmaps the count of changes."""
        self.factory.close()
        if self.changes is not None:
            self.changes.close()

    @contextmanager
    def reading_in(self, cursor: Any) -> Iterator[None]:
        """Meanwhile, this thread's reads (:meth:`select` without a snapshot) go through
        ``cursor``: a projection applied in the transaction that stores events reads that
        transaction, and takes no other connection from the pool, where it could wait
        for one held by a writer that is waiting for this transaction to end."""
        self._reading.cursor = cursor
        try:
            yield
        finally:
            self._reading.cursor = None

    def apply(self, operations: Iterable[Operation], tables: dict[str, str], tracking: Tracking) -> None:
        """Writes rows and the tracking position in one transaction."""
        self.apply_all([(operations, tables, tracking)])

    def apply_all(self, work: Iterable[tuple[Iterable[Operation], dict[str, str], Tracking]],
                  cursor: Any = None) -> None:
        """Writes the rows and tracking positions of several projections in one transaction:
        their own, or the one of ``cursor`` (whose owner calls :meth:`changed` once it
        has committed)."""
        if cursor is not None:
            return self._apply_all(cursor, work)
        with self._projection_transaction() as cursor:
            self._apply_all(cursor, work)
        self.changed()

    def _apply_all(self, cursor: Any, work: Iterable[tuple[Iterable[Operation], dict[str, str], Tracking]]) -> None:
        for operations, tables, tracking in work:
            for statement, rows in operations:
                if rows:
                    self._write_rows(cursor, statement, tables, rows)
            self._insert_tracking(cursor, tracking)

    @contextmanager
    def _projection_transaction(self) -> Iterator[Any]:
        """A transaction of projected rows, committed without waiting for the disk. They
        commit with their tracking positions and are rebuilt from the log, so a power
        cut can take only the last few commits, which the next catch-up applies again;
        the events they come from were committed (and synced) before. This halves the
        syncs of a write, and the store's turn no longer waits for one while projecting.
        Tokens and idempotency keys, which no log rebuilds, keep full durability."""
        raise NotImplementedError

    def _write_rows(self, cursor: Any, statement: str, tables: dict[str, str], rows: Sequence[Sequence[Any]]) -> None:
        cursor.executemany(self.dialect.sql(statement, tables), rows)

    def write(self, operations: Iterable[Operation], tables: dict[str, str]) -> int:
        """Writes rows in one transaction (no tracking: for state that is not a projection).
        Returns the number of rows the last statement changed."""
        changed = 0
        with self.datastore.transaction(commit=True) as cursor:
            for statement, rows in operations:
                for row in rows:
                    cursor.execute(self.dialect.sql(statement, tables), tuple(row))
                    changed = getattr(cursor, "sqlite_cursor", cursor).rowcount  # the library wraps SQLite cursors
        self.changed()
        return changed

    def execute(self, statements: Iterable[str], tables: dict[str, str]) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            for statement in statements:
                cursor.execute(self.dialect.sql(statement, tables))
        self.changed()

    def select(self, statement: str, tables: dict[str, str], params: Sequence[Any] = (),
               snapshot: Any = None, *, plan_each_time: bool = False) -> list[Row]:
        """Rows of one statement, read on its own (it sees one state of the tables by
        itself) or in ``snapshot``'s transaction. ``plan_each_time``: the statement's best
        plan depends on its values (see :meth:`PostgresView._rows`)."""
        snapshot = snapshot if snapshot is not None else getattr(self._reading, "cursor", None)
        if snapshot is not None:
            return self._rows(snapshot, statement, tables, params, plan_each_time)
        with self._one_statement() as cursor:
            return self._rows(cursor, statement, tables, params, plan_each_time)

    def exists(self, name: str) -> bool:
        """Whether the store has a table or index of this (bare) name."""
        statement = ("SELECT COUNT(*) AS found FROM sqlite_master WHERE name = ?" if self.dialect.name == "sqlite"
                     else "SELECT to_regclass(?) IS NOT NULL AS found")
        return bool(self.select(statement, {}, [self.dialect.table(name)])[0]["found"])

    @contextmanager
    def _one_statement(self) -> Iterator[Any]:
        """A cursor for one read statement, outside any explicit transaction: a statement
        sees one state of the tables by itself, and the BEGIN and ROLLBACK of a read
        transaction cost a PostgreSQL read two more round trips."""
        raise NotImplementedError

    def _rows(self, cursor: Any, statement: str, tables: dict[str, str], params: Sequence[Any],
              plan_each_time: bool = False) -> list[Row]:
        """SQLite plans a statement without looking at its values, so ``plan_each_time``
        changes nothing here."""
        cursor.execute(self.dialect.sql(statement, tables), tuple(params))
        return [dict(row) for row in cursor.fetchall()]

    @contextmanager
    def snapshot(self) -> Iterator[Any]:
        """A read transaction whose statements all see one state of the tables (pass it to
        :meth:`select`): SQLite keeps the state its first statement saw until the end."""
        with self.datastore.transaction(commit=False) as cursor:
            yield cursor

    def positions(self, application_names: Sequence[str], cursor: Any = None) -> dict[str, int]:
        """The tracked positions of several projections, in one query (in the transaction
        of ``cursor``, if given)."""
        if cursor is not None:
            return self._positions(cursor, application_names)
        with self._one_statement() as cursor:
            return self._positions(cursor, application_names)

    def _positions(self, cursor: Any, application_names: Sequence[str]) -> dict[str, int]:
        cursor.execute(self._each_position(len(application_names), self.dialect.placeholder),
                       tuple(application_names))
        found = {row["name"]: row["position"] for row in cursor.fetchall()}
        return {name: found.get(name) or 0 for name in application_names}

    def reached(self, application_names: Sequence[str]) -> tuple[str, list[str]]:
        """A statement of one row: ``position``, the least position these projections
        have reached (0 while one has none), for a read to put in front of its own (``?``
        placeholders, as the reads' statements have)."""
        count = len(application_names)
        return (f"SELECT CASE WHEN COUNT(*) = {count} THEN MIN(t.position) ELSE 0 END AS position "
                f"FROM ({self._each_position(count, '?')}) t", list(application_names))

    def _each_position(self, count: int, placeholder: str) -> str:
        """The statement of ``count`` projections' positions: a row (``name``, ``position``)
        for each that has one."""
        marks = ", ".join([placeholder] * count)
        return (f"SELECT application_name AS name, MAX(notification_id) AS position FROM {self._tracking} "
                f"WHERE application_name IN ({marks}) GROUP BY application_name")

    @property
    def _tracking(self) -> str:
        return self.dialect.table(getattr(self, "tracking_table_name", "tracking"))

    def forget(self, application_name: str) -> None:
        """Removes a projection's tracking position, so it starts again from zero."""
        tracking = self._tracking
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                f"DELETE FROM {tracking} WHERE application_name = {self.dialect.placeholder}",
                (application_name,),
            )
        self.changed()

    def schema_lock(self) -> Any:
        """Held while tables are made or dropped: two workers starting at once must not
        both create a table (PostgreSQL refuses concurrent CREATE TABLE IF NOT EXISTS), nor
        one drop what the other has just made. The store's own lock (:func:`schema_lock`)."""
        return schema_lock(self.database_url)


class SQLiteView(ReadTables, SQLiteTrackingRecorder):
    dialect = Dialect("sqlite", "?", None, " WITHOUT ROWID", "INTEGER PRIMARY KEY")

    @contextmanager
    def _one_statement(self) -> Iterator[Any]:
        """The library opens SQLite connections in autocommit mode: 17 -> 9.5 µs a read."""
        with _failing_as_the_library_fails(), self.datastore.get_connection(commit=False) as connection, \
                connection.cursor() as cursor:
            yield cursor

    @contextmanager
    def _projection_transaction(self) -> Iterator[Any]:
        """``synchronous=NORMAL`` (in WAL mode: no fsync at commit), set on the connection
        around the transaction, since SQLite refuses to change it inside one."""
        with _failing_as_the_library_fails(), self.datastore.get_connection(commit=True) as connection:
            connection.cursor().execute("PRAGMA synchronous=NORMAL")
            try:
                with connection.transaction(commit=True) as cursor:
                    yield cursor
            finally:
                connection.cursor().execute("PRAGMA synchronous=FULL")


@contextmanager
def _failing_as_the_library_fails() -> Iterator[None]:
    """SQLite's errors on a connection used outside the library's transactions, raised as
    its transactions raise them (its error of the same name): a failing store is then a
    503 on every path, as it is on PostgreSQL, whose pool translates them itself."""
    try:
        yield
    except sqlite3.Error as error:
        raise getattr(persistence, type(error).__name__, persistence.PersistenceError)(error) from error


class PostgresView(ReadTables, PostgresTrackingRecorder):
    @property
    def dialect(self) -> Dialect:
        return Dialect("postgresql", "%s", self.datastore.schema)

    @contextmanager
    def snapshot(self) -> Iterator[Any]:
        """At REPEATABLE READ: PostgreSQL's default shows each statement the latest commits."""
        with super().snapshot() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield cursor

    @contextmanager
    def _one_statement(self) -> Iterator[Any]:
        """The pool's connections are in autocommit mode: a one-statement read took
        0.16 ms in a transaction, 0.07 ms without."""
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            yield cursor

    @contextmanager
    def _projection_transaction(self) -> Iterator[Any]:
        """``synchronous_commit`` off for this transaction only: the server answers the
        commit before its WAL reaches the disk (a crash loses the last commits whole)."""
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
            yield cursor

    def _rows(self, cursor: Any, statement: str, tables: dict[str, str], params: Sequence[Any],
              plan_each_time: bool = False) -> list[Row]:
        """psycopg prepares a statement on the server from its fifth run on, and
        PostgreSQL may then run it with one generic plan, chosen without the values. For
        free text that is wrong: a rare text is best found through the text index, a
        common one by reading the timeline in order. After 200 rare texts, a common one
        took 40 ms instead of 8 (200,000 developments), so such statements are planned at
        each run (``plan_each_time``); the others keep the prepared plans."""
        cursor.execute(self.dialect.sql(statement, tables), tuple(params), prepare=False if plan_each_time else None)
        return [dict(row) for row in cursor.fetchall()]

    def _write_rows(self, cursor: Any, statement: str, tables: dict[str, str], rows: Sequence[Sequence[Any]]) -> None:
        """Plain inserts go by ``COPY``: one stream for all the rows of a batch, where an
        ``INSERT`` per row makes the server parse, plan and answer each."""
        plain = _PLAIN_INSERT.fullmatch(statement)
        if plain is None:
            return super()._write_rows(cursor, statement, tables, rows)
        with cursor.copy(f"COPY {self.dialect.table(tables[plain[1]])} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


_PLAIN_INSERT = re.compile(r"INSERT INTO \{(\w+)\} VALUES \([?,]+\)")
"""An insert of whole rows, without ON CONFLICT: the statements ``COPY`` can replace."""


def open_view(env: dict[str, str]) -> SQLiteView | PostgresView:
    """The view for a store, built by the library's own infrastructure factory from the
    same settings as the chronicle's (``env`` is the chronicle's environment)."""
    factory = InfrastructureFactory.construct(env)
    view_class = PostgresView if "postgres" in type(factory).__module__ else SQLiteView
    url = database_url(dict(env))
    with schema_lock(url):  # the recorder makes its tracking table
        view: TrackingRecorder = factory.tracking_recorder(view_class)
    view.factory = factory  # the view owns the factory and its connection pool
    view.database_url = url
    if isinstance(view, SQLiteView):
        view.changes = ChangeCount.of(view.datastore.pool.db_name)
    return view
