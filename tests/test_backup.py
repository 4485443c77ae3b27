"""Backups and export/import into an empty store reproduce the record exactly."""

from __future__ import annotations

import io
import shutil

import pytest

from events.chronicle import Chronicle
from timeline import transfer
from timeline.projector import Projector, verify_chain
from timeline.queries import Reader, TimelineQuery


def load_seed(chronicle: Chronicle) -> None:
    with transfer.SEED.open(encoding="utf-8") as lines:
        transfer.import_commands(chronicle, transfer.read_lines(lines), recorded_by="seed")
    chronicle.retract_development("739bab14-6978-5ec4-a51d-4c795e78602f", reason="test", recorded_by="t")


def picture(chronicle: Chronicle) -> tuple:
    """What readers see: the timeline, an actor's state, the history of one development."""
    projector = Projector(chronicle)
    projector.catch_up()
    reader = Reader(projector)
    timeline = reader.timeline(TimelineQuery(limit=500, as_of=None))
    state = reader.actor_state("armenia", at="2023-09-30")
    history = reader.history("739bab14-6978-5ec4-a51d-4c795e78602f")
    chain = projector.projections[-1].hashes(0, 10_000)
    projector.close()
    return [d["id"] for d in timeline.items], state["attributes"], history, chain


def exported(chronicle: Chronicle) -> str:
    out = io.StringIO()
    transfer.export_events(chronicle, out)
    return out.getvalue()


def test_export_then_import_into_an_empty_store_is_identical(chronicle, tmp_path):
    load_seed(chronicle)
    log = exported(chronicle)
    copy = Chronicle(env={"TIMELINE_DATABASE_URL": f"sqlite:///{tmp_path}/copy.db"})
    copied = transfer.copy_events(copy, transfer.read_lines(io.StringIO(log)))
    assert copied == len(log.splitlines())
    without_positions = [line.split(", ", 1)[1] for line in log.splitlines()]
    assert [line.split(", ", 1)[1] for line in exported(copy).splitlines()] == without_positions
    assert picture(copy)[:3] == picture(chronicle)[:3]
    assert verify_chain(copy)[0] is None
    copy.close()


def test_an_interrupted_copy_resumes_and_ends_identical(chronicle, tmp_path):
    load_seed(chronicle)
    log = exported(chronicle)
    lines = log.splitlines(keepends=True)
    copy = Chronicle(env={"TIMELINE_DATABASE_URL": f"sqlite:///{tmp_path}/copy.db"})
    transfer.copy_events(copy, transfer.read_lines(io.StringIO("".join(lines[:25]))))
    transfer.copy_events(copy, transfer.read_lines(io.StringIO(log)))
    assert len(exported(copy).splitlines()) == len(lines)
    copy.close()


def test_copy_refuses_a_store_holding_something_else(chronicle, tmp_path):
    load_seed(chronicle)
    other = Chronicle(env={"TIMELINE_DATABASE_URL": f"sqlite:///{tmp_path}/other.db"})
    other.register_actor({"id": "someone", "name": "Someone", "kind": "person"}, recorded_by="t")
    with pytest.raises(transfer.RecordError, match="does not hold the beginning"):
        transfer.copy_events(other, transfer.read_lines(io.StringIO(exported(chronicle))))
    other.close()


def test_sqlite_backup_reproduces_the_record(tmp_path):
    chronicle = Chronicle(env={"TIMELINE_DATABASE_URL": f"sqlite:///{tmp_path}/live.db"})
    load_seed(chronicle)
    before = picture(chronicle)
    transfer.backup(chronicle, tmp_path / "backup.db")
    restored = Chronicle(env={"TIMELINE_DATABASE_URL": f"sqlite:///{tmp_path}/backup.db"})
    assert picture(restored) == before
    assert exported(restored) == exported(chronicle)
    chronicle.close()
    restored.close()


@pytest.mark.postgres
def test_postgres_backup_is_a_pg_dump(tmp_path):
    from tests.conftest import POSTGRES, drop_schema, postgres_or_skip

    postgres_or_skip()
    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    chronicle = Chronicle(env={"TIMELINE_DATABASE_URL": f"{POSTGRES}?schema=backup_test"})
    try:
        load_seed(chronicle)
        message = transfer.backup(chronicle, tmp_path / "dump")
        assert "pg_dump" in message
        assert (tmp_path / "dump").read_bytes()[:5] == b"PGDMP"
    finally:
        chronicle.close()
        drop_schema("backup_test")
