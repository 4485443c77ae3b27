"""Tamper evidence: the hash chain over the stored events names the first position that
was changed, deleted or reordered behind the service's back."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from tests.conftest import POSTGRES
from timeline import transfer
from timeline.projector import Projector, verify_chain


@pytest.fixture
def seeded(chronicle):
    with transfer.SEED.open(encoding="utf-8") as lines:
        transfer.import_commands(chronicle, transfer.read_lines(lines), recorded_by="seed")
    projector = Projector(chronicle)
    projector.catch_up()
    yield chronicle
    projector.close()


def sql(chronicle, statement: str) -> None:
    """Changes the store directly, as someone going around the service would."""
    settings = chronicle.env
    if "SQLITE_DBNAME" in str(settings):
        connection = sqlite3.connect(settings.get("SQLITE_DBNAME"))
        connection.execute(statement.format(events="stored_events", id="rowid"))
        connection.commit()
        connection.close()
    else:
        schema = settings.get("POSTGRES_SCHEMA")
        with psycopg.connect(POSTGRES, autocommit=True) as connection:
            connection.execute(statement.format(events=f'"{schema}".timeline_events', id="notification_id"))


def test_an_untouched_store_verifies(seeded):
    assert verify_chain(seeded) == (None, seeded.recorder.max_notification_id())


def test_a_changed_payload_is_named_by_position(seeded):
    on_postgres = "POSTGRES" in str(seeded.env)
    sql(seeded, "UPDATE {events} SET state = convert_to(replace(convert_from(state, 'UTF8'), 'Armenien', "
                "'Armenia'), 'UTF8') WHERE {id} = 1" if on_postgres else
                "UPDATE {events} SET state = CAST(REPLACE(CAST(state AS TEXT), 'Armenien', 'Armenia') AS BLOB) "
                "WHERE {id} = 1")
    assert verify_chain(seeded) == ("position 1: the stored event was changed or reordered", 0)


def test_a_deleted_event_is_named_by_position(seeded):
    sql(seeded, "DELETE FROM {events} WHERE {id} = 20")
    problem, verified = verify_chain(seeded)
    assert problem == "position 20: the stored event was deleted"
    assert verified == 19


def test_reordered_events_are_found(seeded):
    first = seeded.recorder.select_notifications(30, 1)[0]
    second = seeded.recorder.select_notifications(31, 1)[0]
    # Swap the contents of positions 30 and 31 (two different streams, both at version 1).
    assert (first.originator_version, second.originator_version) == (1, 1)
    sql(seeded, "DELETE FROM {events} WHERE {id} IN (30, 31)")
    seeded.recorder.insert_events([second, first])
    problem, _ = verify_chain(seeded)
    assert problem is not None and "position 30" in problem


def test_events_expose_their_chain_hash_through_the_projection(seeded):
    projector = Projector(seeded, ["chain"])
    (chain,) = projector.projections
    hashes = chain.hashes(0, 3)
    projector.close()
    assert sorted(hashes) == [1, 2, 3]
    assert len(set(hashes.values())) == 3 and all(len(h) == 64 for h in hashes.values())
