"""The views' transactions: projected rows commit without waiting for the disk, while
everything else written through a view (tokens, idempotency keys) keeps full
durability. Both stores."""

from __future__ import annotations

import msgspec
import pytest

from events.chronicle import Chronicle
from timeline.projector import Projector
from timeline.views import packed_row, unpack

FULL, NORMAL = 2, 1


@pytest.fixture
def view(chronicle: Chronicle):
    projector = Projector(chronicle)
    yield projector.view
    projector.close()


def durability(view, cursor) -> str:
    if view.dialect.name == "sqlite":
        cursor.execute("PRAGMA synchronous")
        return {FULL: "full", NORMAL: "relaxed"}[list(cursor.fetchone())[0]]
    cursor.execute("SHOW synchronous_commit")
    return {"on": "full", "off": "relaxed"}[list(cursor.fetchone().values())[0]]


def test_projected_rows_commit_relaxed_and_other_writes_stay_durable(view):
    with view._projection_transaction() as cursor:
        assert durability(view, cursor) == "relaxed"
    for _ in range(3):  # whichever pooled connection comes next, it is back to full
        with view.datastore.transaction(commit=True) as cursor:
            assert durability(view, cursor) == "full"


def test_a_failed_projection_leaves_the_connection_durable(view):
    with pytest.raises(ZeroDivisionError), view._projection_transaction():
        1 / 0
    with view.datastore.transaction(commit=True) as cursor:
        assert durability(view, cursor) == "full"


ROWS = ("SELECT 1 AS n, 'a \"quoted\" \\ text' AS text, NULL AS missing, 2.5 AS weight UNION ALL "
        "SELECT 9223372036854775807, 'é' || char(10) || '✓', NULL, -10 UNION ALL SELECT 0, '', NULL, 0.5")


def test_rows_read_packed_are_the_rows_as_selected(view):
    """A statement of many rows is read as one row and unpacked (``Dialect.packed``,
    ``unpack``): the same rows (in no promised order), and none for none."""
    if view.dialect.name == "postgresql":
        rows = ROWS.replace("char(10)", "chr(10)").replace("1 AS n", "1::bigint AS n")
    else:
        rows = ROWS
    statement = f"SELECT n, text, missing, weight FROM ({rows}) AS given ORDER BY n DESC"
    row_type = packed_row("Given", ["n", "text", "missing", "weight"])
    selected = view.select(statement, {})
    assert [row["n"] for row in selected] == [9223372036854775807, 1, 0]

    def packed(statement: str) -> list[dict]:
        row, = view.select(f"SELECT ({view.dialect.packed(statement, row_type)}) AS packed", {})
        return [msgspec.structs.asdict(row) for row in unpack(row["packed"], row_type)]

    assert sorted(packed(statement), key=lambda row: -row["n"]) == selected
    assert packed(f"{statement} LIMIT 0") == []
