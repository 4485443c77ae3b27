"""Group commit: single commands that concurrent threads send while a save is under way
are stored together in one transaction, and every thread hears exactly what running the
commands one after another would have told it."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from eventsourcing.persistence import IntegrityError

from events.chronicle import Chronicle, Receipt
from events.errors import Conflict, InvalidInput, StaleVersion
from events.storage import store_lock
from tests.test_development import ACTORS, development
from timeline.projector import differences


@pytest.fixture
def timeline(chronicle: Chronicle) -> Chronicle:
    chronicle.execute([("register_actor", actor) for actor in ACTORS], recorded_by="setup")
    return chronicle


class HeldSave:
    """Holds the chronicle's first save until released, so that the commands sent meanwhile
    queue up and are stored as one group; counts the saves (one per transaction)."""

    def __init__(self, chronicle: Chronicle, monkeypatch: pytest.MonkeyPatch):
        self.chronicle, self.saves, self.release = chronicle, 0, threading.Event()
        save = chronicle.save

        def held(*objects: Any, **kwargs: Any) -> Any:
            self.saves += 1
            if self.saves == 1:
                self.release.wait(10)
            return save(*objects, **kwargs)

        monkeypatch.setattr(chronicle, "save", held)

    def run(self, first: Callable[[], Any], queued: list[Callable[[], Any]]) -> list[Any]:
        """Runs ``first``, then the ``queued`` commands while its save is held; answers
        each command's receipt or error, in the order of ``queued``."""
        with ThreadPoolExecutor(len(queued) + 1) as pool:
            head = pool.submit(outcome, first)
            while self.saves == 0:
                time.sleep(0.001)
            futures = []
            for command in queued:  # one at a time, so the group keeps this order
                futures.append(pool.submit(outcome, command))
                while len(self.chronicle._group.queue) < len(futures):
                    time.sleep(0.001)
            self.release.set()
            head.result()
            return [f.result() for f in futures]


def outcome(command: Callable[[], Any]) -> Any:
    try:
        return command()
    except Exception as error:  # noqa: BLE001 - the error is the answer under test
        return error


def positions(timeline: Chronicle) -> list[int]:
    return [n.id for n in timeline.recorder.select_notifications(0, 10_000)]


def test_concurrent_commands_are_stored_in_one_transaction(timeline, monkeypatch):
    held = HeldSave(timeline, monkeypatch)
    before = positions(timeline)
    receipts = held.run(
        lambda: timeline.record_development(development(title="First"), recorded_by="alice"),
        [lambda i=i: timeline.record_development(development(title=f"Queued {i}"), recorded_by=f"writer{i}")
         for i in range(12)])
    assert held.saves == 2, "the first save, then the twelve queued commands together"
    assert all(isinstance(r, Receipt) and r.created and r.version == 1 for r in receipts)
    stored = positions(timeline)[len(before) + 1:]
    assert [r.position for r in receipts] == stored, "each receipt names its own event's position"
    for i, receipt in enumerate(receipts):
        development_ = timeline.development(receipt.id)
        assert (development_.title, development_.recorded_by) == (f"Queued {i}", f"writer{i}")


def test_a_group_answers_each_command_as_if_they_had_run_one_after_another(timeline, monkeypatch):
    existing = timeline.record_development(development(title="Existing"), recorded_by="alice")
    again = str(uuid.uuid4())
    held = HeldSave(timeline, monkeypatch)
    before = len(positions(timeline))
    correction = {"title": "Existing, corrected"}
    answers = held.run(
        lambda: timeline.record_development(development(title="First"), recorded_by="alice"),
        [
            lambda: timeline.record_development(development(id=again, title="Once"), recorded_by="bob"),
            lambda: timeline.record_development(development(when="not a date"), recorded_by="bob"),
            lambda: timeline.record_development(development(id=again, title="Once"), recorded_by="bob"),
            lambda: timeline.record_development(development(id=again, title="Other"), recorded_by="bob"),
            lambda: timeline.correct_development(existing.id, correction, reason="typo", recorded_by="carol",
                                                 expected_version=1),
            lambda: timeline.add_source(existing.id, {"citation": "Second agency"}, recorded_by="dave",
                                        expected_version=1),
            lambda: timeline.add_source(existing.id, {"citation": "Third agency"}, recorded_by="erin",
                                        expected_version=2),
        ])
    recorded, invalid, repeated, conflicting, corrected, stale, sourced = answers
    assert recorded.created and recorded.version == 1
    assert isinstance(invalid, InvalidInput) and "when" in invalid.errors
    assert isinstance(repeated, Receipt) and not repeated.created and repeated.position is None
    assert repeated.id == again and repeated.version == 1
    assert isinstance(conflicting, Conflict)
    assert corrected.version == 2
    assert isinstance(stale, StaleVersion)
    assert sourced.version == 3
    assert len(positions(timeline)) == before + 4, "First, Once, the correction and the third source"
    stored = timeline.development(existing.id)
    assert stored.title == "Existing, corrected"
    assert [s["citation"] for s in stored.sources][-1] == "Third agency"
    assert "Second agency" not in [s["citation"] for s in stored.sources]


def test_a_group_whose_save_clashes_runs_each_command_alone_in_its_order(timeline, monkeypatch):
    """Another process moved a stream of the group on between its commands and its save
    (the commands run before the store's turn): every command runs again alone."""
    held = HeldSave(timeline, monkeypatch)
    save, saves = timeline.save, []

    def clashing(*objects: Any, **kwargs: Any) -> Any:
        saves.append(len(objects))
        if len(saves) == 2:  # the group's save
            raise IntegrityError("another process wrote to this stream")
        return save(*objects, **kwargs)

    monkeypatch.setattr(timeline, "save", clashing)
    before = positions(timeline)
    first, invalid, last = held.run(
        lambda: timeline.record_development(development(title="Held"), recorded_by="alice"),
        [lambda: timeline.record_development(development(title="First"), recorded_by="bob"),
         lambda: timeline.record_development(development(when="not a date"), recorded_by="carol"),
         lambda: timeline.record_development(development(title="Last"), recorded_by="dave")])
    assert saves == [1, 2, 1, 1], "the held one, the group of two that clashes, then each alone"
    assert isinstance(invalid, InvalidInput) and first.position < last.position
    assert len(positions(timeline)) == len(before) + 3
    assert timeline.development(last.id).title == "Last"


def test_writers_that_keep_writing_are_grouped(timeline, monkeypatch):
    """Each waiting writer is woken once its outcome is ready, and does not queue behind
    the thread that saves the next group: when it had to, 32 writing threads made groups
    of 1.3 commands on average."""
    save, saves = timeline.save, []

    def slow(*objects: Any, **kwargs: Any) -> Any:
        saves.append(len(objects))
        time.sleep(0.005)  # a disk that takes its time: the other writers queue meanwhile
        return save(*objects, **kwargs)

    monkeypatch.setattr(timeline, "save", slow)

    def writer(name: str) -> list[Receipt]:
        return [timeline.record_development(development(title=f"{name} {i}"), recorded_by=name) for i in range(10)]

    with ThreadPoolExecutor(16) as pool:
        receipts = [r for rs in pool.map(writer, [f"writer{w}" for w in range(16)]) for r in rs]
    assert len({r.position for r in receipts}) == 160 and sum(saves) == 160
    assert len(saves) <= 40, f"160 writes in {len(saves)} groups"


def test_a_store_failure_reaches_every_command_of_the_group_and_stores_none(timeline, monkeypatch):
    held = HeldSave(timeline, monkeypatch)
    before = positions(timeline)
    original = timeline.recorder.insert_events
    calls = []

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) > 1:
            raise OSError("disk unplugged")
        return original(*args, **kwargs)

    monkeypatch.setattr(timeline.recorder, "insert_events", failing)
    answers = held.run(lambda: timeline.record_development(development(), recorded_by="alice"),
                       [lambda: timeline.record_development(development(), recorded_by="bob") for _ in range(3)])
    assert all(isinstance(a, OSError) for a in answers)
    assert len(positions(timeline)) == len(before) + 1, "only the first, saved before the failure"


# The service: the thread that saves a group projects it, in the store's turn


def open_service(database_url: str) -> Iterator[Any]:
    """A service on the store, with the actors registered; closed at the end."""
    from timeline.service import Service

    service = Service({"TIMELINE_DATABASE_URL": database_url})
    service.chronicle.execute([("register_actor", actor) for actor in ACTORS], recorded_by="setup")
    yield service
    service.close()


@pytest.fixture
def service(database_url: str):
    yield from open_service(database_url)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/timeline.db"


@pytest.fixture
def sqlite_service(sqlite_url: str):
    """For what only SQLite does: project a group in the transaction that stores it."""
    yield from open_service(sqlite_url)


def test_a_group_is_projected_once_up_to_its_last_position_before_any_writer_answers(service, monkeypatch):
    chronicle, view = service.chronicle, service.projector.view
    held = HeldSave(chronicle, monkeypatch)
    projected: list[int] = []
    apply_all = view.apply_all

    def counted(work, cursor=None):
        work = list(work)
        projected.append(max(tracking.notification_id for _, _, tracking in work))
        return apply_all(work, cursor)

    monkeypatch.setattr(view, "apply_all", counted)
    receipts = held.run(
        lambda: service.execute("record_development", development(title="First"), recorded_by="alice"),
        [lambda i=i: service.execute("record_development", development(title=f"Queued {i}"), recorded_by="bob")
         for i in range(8)])
    last = max(r.position for r in receipts)
    assert projected[-1] == last and len(projected) == 2, "the first write, then the whole group in one go"
    assert all(service.reader.development(r.id)["title"].startswith("Queued") for r in receipts)


def test_on_sqlite_a_group_and_its_projection_commit_in_one_transaction(sqlite_service, monkeypatch):
    """The projection is written in the transaction that stores the events: nothing is
    read back from the log, and what a reader sees never has the events without it."""
    service = sqlite_service
    read_back: list[Any] = []
    select_notifications = service.chronicle.recorder.select_notifications
    monkeypatch.setattr(service.chronicle.recorder, "select_notifications",
                        lambda *args, **kwargs: read_back.append(args) or select_notifications(*args, **kwargs))
    stored_and_projected: list[tuple[int, int]] = []
    within = service.chronicle.within_save

    def watched(cursor, stored, saved, previous):
        committed = within(cursor, stored, saved, previous)
        # In the same transaction, before its commit: the events and the tracking row.
        cursor.execute("SELECT MAX(rowid) FROM stored_events")
        events = cursor.fetchone()[0]
        tracked = service.projector.view.positions([p.tracking_name for p in service.projector.projections], cursor)
        stored_and_projected.append((events, min(tracked.values())))
        return committed

    service.chronicle.within_save = watched
    receipt = service.execute("record_development", development(title="Together"), recorded_by="alice")
    assert stored_and_projected == [(receipt.position, receipt.position)]
    assert read_back == []
    assert service.reader.development(receipt.id)["title"] == "Together"
    assert differences(service.chronicle) == []


def test_a_projection_in_the_saving_transaction_reads_through_it(sqlite_service, monkeypatch):
    """It takes no connection from the view's pool: under concurrent writers (retries
    waiting on an idempotency key) every pooled connection can be waiting for this
    transaction's write lock, and waiting for one of them timed the save out."""
    service = sqlite_service
    first = service.execute("record_development", development(title="First"), recorded_by="alice")
    view, within, pooled = service.projector.view, service.chronicle.within_save, []
    get_connection = view.datastore.get_connection

    def watched(*args):
        monkeypatch.setattr(view.datastore, "get_connection", lambda **kw: pooled.append(kw) or get_connection(**kw))
        try:
            return within(*args)
        finally:
            monkeypatch.setattr(view.datastore, "get_connection", get_connection)

    service.chronicle.within_save = watched
    corrected = service.execute("correct_development", first.id, {"title": "Corrected"}, reason="typo",
                                recorded_by="alice", expected_version=first.version)
    assert pooled == []
    assert service.projector.position() == corrected.position
    assert service.reader.development(first.id)["title"] == "Corrected"


def test_a_projection_that_fails_in_the_saving_transaction_loses_no_event(sqlite_service, monkeypatch):
    """What the projection wrote is rolled back, the events are stored all the same, and
    the catch-up after the commit projects them."""
    from timeline.projections import Developments

    service = sqlite_service
    operations, calls = Developments.operations, []

    def fails_once(self, events):
        calls.append(len(events))
        if len(calls) == 1:
            raise OSError("disk hiccup")
        return operations(self, events)

    monkeypatch.setattr(Developments, "operations", fails_once)
    receipt = service.execute("record_development", development(title="Kept"), recorded_by="alice")
    assert calls == [1, 1], "tried in the saving transaction, then by the catch-up"
    assert service.chronicle.development(receipt.id).title == "Kept"
    assert service.reader.development(receipt.id)["title"] == "Kept"
    assert differences(service.chronicle) == []


def test_events_saved_while_the_projections_lag_are_projected_after_the_ones_before(sqlite_service, sqlite_url):
    """A write that finds the projections behind (events stored by a process that does
    not project) leaves its events to the catch-up, which applies the log in order."""
    service = sqlite_service
    elsewhere = Chronicle(env={"TIMELINE_DATABASE_URL": sqlite_url})
    try:
        unseen = elsewhere.record_development(development(title="Stored elsewhere"), recorded_by="bob")
        receipt = service.execute("record_development", development(title="Stored here"), recorded_by="alice")
        assert receipt.position > unseen.position
        assert service.projector.position() == receipt.position
        assert service.reader.development(unseen.id)["title"] == "Stored elsewhere"
        assert differences(service.chronicle) == []
    finally:
        elsewhere.close()


def test_the_projection_of_a_group_uses_its_events_as_saved(service, monkeypatch):
    """Its events are projected as they were saved, not decoded from the log again; the
    views still equal a rebuild from the log."""
    service.projector.catch_up()  # the actors registered without the service
    mapper, decoded = service.chronicle.mapper, []
    to_domain_event = mapper.to_domain_event

    def counted(stored):
        decoded.append(stored)
        return to_domain_event(stored)

    monkeypatch.setattr(mapper, "to_domain_event", counted)
    held = HeldSave(service.chronicle, monkeypatch)
    receipts = held.run(
        lambda: service.execute("record_development", development(title="First"), recorded_by="alice"),
        [lambda i=i: service.execute("record_development", development(title=f"Queued {i}"), recorded_by="bob")
         for i in range(8)])
    assert [e for e in decoded if "Development" in e.topic] == []
    assert all(service.reader.development(r.id)["title"].startswith("Queued") for r in receipts)
    monkeypatch.undo()
    assert differences(service.chronicle) == []


def test_a_failed_projection_of_the_group_is_retried_by_each_writer(service, monkeypatch):
    def failing(position: int, saved) -> None:
        raise OSError("projection tables locked")

    monkeypatch.setattr(service.chronicle, "after_save", failing)
    receipt = service.execute("record_development", development(title="Still answered"), recorded_by="alice")
    assert service.reader.development(receipt.id)["title"] == "Still answered"


@contextmanager
def turn_taken_elsewhere(database_url: str) -> Iterator[None]:
    """The store's turn to write, taken as another worker takes it to save and project
    (a lock file opened anew, or another connection's advisory lock)."""
    if database_url.startswith("sqlite"):
        with store_lock(database_url, "write"):
            yield
        return
    import psycopg

    with psycopg.connect(database_url.split("?")[0], autocommit=True) as connection, \
            store_lock(database_url, "write", connection):
        yield


def test_a_group_waits_while_another_process_has_the_turn(chronicle, database_url):
    chronicle.execute([("register_actor", actor) for actor in ACTORS], recorded_by="setup")
    before = positions(chronicle)
    with turn_taken_elsewhere(database_url):
        writer = threading.Thread(target=chronicle.record_development, args=(development(),),
                                  kwargs={"recorded_by": "alice"})
        writer.start()
        writer.join(0.3)
        assert writer.is_alive() and positions(chronicle) == before
    writer.join(5)
    assert not writer.is_alive() and len(positions(chronicle)) == len(before) + 1


def test_commands_sent_while_a_group_waits_for_the_turn_join_it(chronicle, database_url, monkeypatch):
    """Each commit syncs the store's log to disk, whatever it holds: a group of one that
    waited for another worker's turn takes the commands queued meanwhile along, and each
    still hears its own answer, in the order sent."""
    chronicle.execute([("register_actor", actor) for actor in ACTORS], recorded_by="setup")
    save, saves = chronicle.save, []

    def counted(*events: Any, **kwargs: Any) -> Any:
        saves.append(len(events))
        return save(*events, **kwargs)

    monkeypatch.setattr(chronicle, "save", counted)
    with ThreadPoolExecutor(4) as pool, turn_taken_elsewhere(database_url):
        first = pool.submit(outcome, lambda: chronicle.record_development(development(title="First"),
                                                                          recorded_by="alice"))
        while not chronicle._group.saving:
            time.sleep(0.001)
        later = []
        for title in ("Second", "not a date", "Third"):
            details = development(title=title) if title != "not a date" else development(when=title)
            later.append(pool.submit(outcome, lambda d=details: chronicle.record_development(d, recorded_by="bob")))
            while len(chronicle._group.queue) < len(later):
                time.sleep(0.001)
        time.sleep(0.05)
        assert saves == [], "nothing is saved before the turn"
    first, second, invalid, third = first.result(5), *(f.result(5) for f in later)
    assert saves == [3], "one save of the three valid commands (the invalid one, run alone, saves nothing)"
    assert isinstance(invalid, InvalidInput)
    assert [r.position for r in (first, second, third)] == positions(chronicle)[-3:]
    assert [chronicle.development(r.id).title for r in (first, second, third)] == ["First", "Second", "Third"]


# A command run again after its answer was lost (``again``: Chronicle.landed)


def test_a_write_run_again_finds_itself_in_the_record_instead_of_a_stale_version(timeline):
    recorded = timeline.record_development(development(), recorded_by="alice")
    source = {"citation": "Second agency", "quote": "q"}
    first = timeline.add_source(recorded.id, source, recorded_by="alice", expected_version=1)
    before = positions(timeline)
    with pytest.raises(StaleVersion):
        timeline.add_source(recorded.id, source, recorded_by="alice", expected_version=1)
    again = timeline.add_source(recorded.id, source, recorded_by="alice", expected_version=1, again=True)
    assert (again.id, again.version, again.created) == (first.id, 2, False)
    assert positions(timeline) == before, "nothing stored twice"
    assert [s["citation"] for s in timeline.development(recorded.id).sources].count("Second agency") == 1


def test_a_write_run_again_after_others_wrote_answers_the_version_it_made(timeline):
    recorded = timeline.record_development(development(), recorded_by="alice")
    timeline.add_source(recorded.id, {"citation": "Second agency"}, recorded_by="alice", expected_version=1)
    timeline.add_source(recorded.id, {"citation": "Third agency"}, recorded_by="bob", expected_version=2)
    again = timeline.add_source(recorded.id, {"citation": "Second agency"}, recorded_by="alice",
                                expected_version=1, again=True)
    assert (again.version, again.created) == (2, False)


@pytest.mark.parametrize("differs", ["writer", "source", "expected version"])
def test_a_write_run_again_is_stale_when_the_record_holds_something_else(timeline, differs: str):
    recorded = timeline.record_development(development(), recorded_by="alice")
    timeline.add_source(recorded.id, {"citation": "Second agency"}, recorded_by="alice", expected_version=1)
    writer = "bob" if differs == "writer" else "alice"
    citation = "Other agency" if differs == "source" else "Second agency"
    expected = 0 if differs == "expected version" else 1
    with pytest.raises(StaleVersion):
        timeline.add_source(recorded.id, {"citation": citation}, recorded_by=writer, expected_version=expected,
                            again=True)


def test_each_kind_of_write_run_again_finds_itself(timeline):
    actor = ACTORS[0]["id"]
    recorded = timeline.record_development(development(), recorded_by="alice")
    writes = [
        lambda again: timeline.correct_development(recorded.id, {"title": "Corrected"}, reason="typo",
                                                   recorded_by="alice", expected_version=1, again=again),
        lambda again: timeline.retract_development(recorded.id, reason="doubtful", recorded_by="alice",
                                                   expected_version=2, again=again),
        lambda again: timeline.restore_development(recorded.id, reason="confirmed", recorded_by="alice",
                                                   expected_version=3, again=again),
        lambda again: timeline.correct_actor(actor, {"name": "Renamed"}, reason="spelling", recorded_by="alice",
                                             expected_version=1, again=again),
        lambda again: timeline.add_source(recorded.id, {"citation": "Any"}, recorded_by="alice", again=again),
    ]
    for write in writes:
        first = write(False)
        length = len(positions(timeline))
        assert write(True) == first._replace(position=None, created=False)
        assert len(positions(timeline)) == length
