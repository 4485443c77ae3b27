"""The catch-up loop that keeps projections current, and replay.

The library's ``ProjectionRunner`` needs subscriptions, which its SQLite recorder does
not have; this loop pulls ``select_notifications`` in batches instead, for SQLite and
PostgreSQL alike, and applies a whole batch per transaction. It tracks the last
position processed, never a count, because positions can have gaps.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any

from eventsourcing.persistence import IntegrityError, Tracking

from events.chronicle import Chronicle
from timeline.projections import Chain, ReadModel, by_name, link
from timeline.views import open_view

BATCH_SIZE = 1000
KEPT_WRITTEN = 1000
"""How many states of this process's writes are kept for their answers (see ``Projector.written``)."""
log = logging.getLogger(__name__)
Progress = Callable[[int], object]


class Projector:
    """Brings a set of projections up to a position of the log."""

    def __init__(self, chronicle: Chronicle, names: Iterable[str] | None = None, *, prefix: str = "",
                 batch_size: int = BATCH_SIZE):
        self.chronicle = chronicle
        self.view = open_view(chronicle.env)
        self.projections: list[ReadModel] = [cls(self.view, prefix) for cls in by_name(names)]
        self.named = names is not None
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._reached = 0
        """A position every projection is known to have reached: a write that another
        thread has projected already needs no query."""
        self._written: dict[tuple[str, int], dict[str, Any]] = {}
        """What this process's writes left, by id and version, until their answers take it."""
        self._written_lock = threading.Lock()
        for projection in self.projections:
            projection.ensure_tables()

    def position(self) -> int:
        """The log position every projection has reached."""
        return min(self.positions())

    @property
    def known_position(self) -> int:
        """A position every projection is known to have reached, without a query: at
        most :meth:`position`, and the log's end is at least it."""
        return self._reached

    def reached(self) -> tuple[str, list[str]]:
        """:meth:`position` as a statement, for a read that must pin its rows to the
        position it read them at: in one statement, both are one state of the store."""
        return self.view.reached([p.tracking_name for p in self.projections])

    def positions(self) -> tuple[int, ...]:
        """The log position of each projection."""
        return tuple(self._positions(self.projections).values())

    def edition(self) -> Hashable:
        """What changes whenever the read tables may have changed, in any process: the
        count of commits to them (SQLite, read from memory), or the projections'
        positions (PostgreSQL: one statement; the tables change only when one moves)."""
        changes = self.view.changes
        return changes.value() if changes is not None else self.positions()

    def lag(self) -> int:
        return (self.chronicle.recorder.max_notification_id() or 0) - self.position()

    def catch_up(self, until: int | None = None, progress: Progress = lambda n: None,
                 saved: Mapping[int, Any] | None = None) -> int:
        """Processes the log up to ``until`` (default: its current end); returns how
        many events were applied. Safe to call from several threads and processes.
        ``saved``: events this process has just saved, by position, used as they are
        instead of decoding their stored form again."""
        if until is not None and until <= self._reached:
            return 0
        head = self.chronicle.recorder.max_notification_id() or 0
        until = head if until is None else min(until, head)
        with self._lock:
            if until <= self._reached:
                return 0
            applied = self._catch_up(self.projections, until, progress, saved)
            self._reached = max(self._reached, until)
            return applied

    def _catch_up(self, projections: list[ReadModel], until: int, progress: Progress,
                  saved: Mapping[int, Any] | None = None) -> int:
        """Reads each batch of the log once, decodes each event once, and applies the
        batch to every projection that is behind in ONE transaction, with each
        projection's tracking position."""
        read = 0
        positions = self._positions(projections)
        while (position := min(positions.values())) < until:
            notifications = self.chronicle.recorder.select_notifications(
                position, self.batch_size, stop=until, inclusive_of_start=False)
            reached = until if len(notifications) < self.batch_size else notifications[-1].id
            work = self._work(projections, positions, notifications, reached, dict(saved or {}))
            try:
                self.view.apply_all(self._writes(work, reached))
            except IntegrityError:  # another process applied this batch first: see where they got
                positions = self._positions(projections)
                continue
            for projection, _ in work:
                positions[projection.name] = reached
            if saved:
                self._keep(self._states(work))
            applied = len({position for _, events in work for _, position in events})
            read += applied
            progress(applied)
        return read

    def _work(self, projections: list[ReadModel], positions: Mapping[str, int], notifications: Sequence[Any],
              reached: int, decoded: dict[int, Any]) -> list[tuple[ReadModel, list[tuple[Any, int]]]]:
        """Each projection that is behind ``reached``, with the events of a batch it has
        not applied (those of its topics), each decoded once for all of them."""
        work = []
        for projection in projections:
            if positions[projection.name] >= reached:
                continue
            mine = [(self._decode(projection, n, decoded), n.id) for n in notifications
                    if n.id > positions[projection.name] and (not projection.topics or n.topic in projection.topics)]
            work.append((projection, mine))
        return work

    @staticmethod
    def _writes(work: list[tuple[ReadModel, list[tuple[Any, int]]]], reached: int) -> list[Any]:
        return [(p.operations(events), p.tables, Tracking(p.tracking_name, reached)) for p, events in work]

    def project_within(self, cursor: Any, stored: Sequence[Any], saved: Mapping[int, Any],
                       previous: int) -> Callable[[], None] | None:
        """Applies events in the transaction that stores them (``Chronicle.within_save``),
        if every projection has reached ``previous``, the log's position before them, and
        no other thread of this process is projecting; otherwise the catch-up after the
        commit applies them. A failure rolls back what this wrote, never the events.
        Answers what to do once the transaction has committed."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            positions = self._positions(self.projections, cursor)
            if any(position != previous for position in positions.values()):
                return None
            reached = stored[-1].id
            cursor.execute("SAVEPOINT projecting")
            try:
                with self.view.reading_in(cursor):
                    work = self._work(self.projections, positions, stored, reached, dict(saved))
                    self.view.apply_all(self._writes(work, reached), cursor)
                    written = self._states(work)
            except Exception:  # noqa: BLE001 - the catch-up after the commit tries again, and raises
                log.warning("projecting events as they were saved failed", exc_info=True)
                cursor.execute("ROLLBACK TO projecting")
                return None
            finally:
                cursor.execute("RELEASE projecting")
            return lambda: self._advance(reached, written)
        finally:
            self._lock.release()

    def _advance(self, position: int, written: dict[tuple[str, int], dict[str, Any]]) -> None:
        """Once the transaction that projected a group has committed."""
        self.view.changed()
        self._reached = max(self._reached, position)
        self._keep(written)

    def written(self, ident: str, version: int) -> dict[str, Any] | None:
        """What a write of this process left of ``ident`` at ``version``, as the read
        queries would answer it, if this process projected it: taken once, by that
        write's answer. Read back instead, under 16 threads, it cost a write ~150 µs of
        CPU, a sixth of all it costs."""
        with self._written_lock:
            return self._written.pop((ident, version), None)

    @staticmethod
    def _states(work: list[tuple[ReadModel, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
        return {key: state for projection, _ in work for key, state in projection.states().items()}

    def _keep(self, written: dict[tuple[str, int], dict[str, Any]]) -> None:
        """Keeps the latest states for the answers; at most ``KEPT_WRITTEN``, the oldest
        forgotten first (a write that failed after its projection leaves its state)."""
        with self._written_lock:
            self._written.update(written)
            for key in list(itertools.islice(self._written, max(0, len(self._written) - KEPT_WRITTEN))):
                del self._written[key]

    def _positions(self, projections: list[ReadModel], cursor: Any = None) -> dict[str, int]:
        tracked = self.view.positions([p.tracking_name for p in projections], cursor)
        return {p.name: tracked[p.tracking_name] for p in projections}

    def _decode(self, projection: ReadModel, notification: Any, decoded: dict[int, Any]) -> Any:
        if type(projection).decode is not ReadModel.decode:
            return projection.decode(notification, self.chronicle.mapper)
        if notification.id not in decoded:
            decoded[notification.id] = self.chronicle.mapper.to_domain_event(notification)
        return decoded[notification.id]

    def wait_for(self, position: int, timeout: float) -> bool:
        """Waits until every projection has reached ``position`` (another process may be
        projecting); catches up itself meanwhile. Returns whether it got there."""
        deadline = time.monotonic() + timeout
        while self.position() < position:
            self.catch_up(until=position)
            if self.position() >= position:
                break
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def follow(self, interval: float = 0.2, stop: threading.Event | None = None,
               progress: Progress = lambda n: None) -> None:
        """Keeps catching up until ``stop`` is set."""
        stop = stop or threading.Event()
        while not stop.is_set():
            if not self.catch_up(progress=progress):
                stop.wait(interval)

    def rebuild(self, progress: Progress = lambda n: None) -> int:
        """Drops the tables of these projections and replays the whole log into them (the
        tamper-evidence chain only when named)."""
        targets = [p for p in self.projections if self.named or p.replayable]
        self._reached = 0  # writes meanwhile wait for the rebuilt tables
        for projection in targets:
            with self.view.schema_lock():
                projection.drop_tables()
                projection.create_tables(indexes=False)
                projection.start_tracking()
        head = self.chronicle.recorder.max_notification_id() or 0
        with self._lock:
            applied = self._catch_up(targets, head, progress)
        for projection in targets:
            projection.create_tables()
        return applied

    def close(self) -> None:
        self.view.close()


def differences(chronicle: Chronicle, names: Iterable[str] | None = None,
                progress: Progress = lambda n: None) -> list[str]:
    """Rebuilds projections into scratch tables, up to the live ones' positions, and
    names every table whose rows differ from the live one. ``progress`` hears the events
    each rebuild applies and, at its end, those it passed over (another projection's), so
    that it ends at the log's length times the number of projections."""
    live = Projector(chronicle, names)
    scratch = Projector(chronicle, names, prefix="scratch_")
    try:
        for projection in scratch.projections:
            projection.drop_tables()
            projection.create_tables()
        found = []
        for old, new in zip(live.projections, scratch.projections, strict=True):
            until = old.position()
            applied = scratch._catch_up([new], until, progress)
            progress(until - applied)  # the positions of other projections' events, passed over
            for key in old.tables:
                if _rows(old, key) != _rows(new, key):
                    found.append(f"{old.name}: table {old.tables[key]} differs from a clean rebuild")
        return found
    finally:
        for projection in scratch.projections:
            projection.drop_tables()
        live.close()
        scratch.close()


def _rows(projection: ReadModel, key: str) -> list[tuple[Any, ...]]:
    rows = projection.select(f"SELECT * FROM {{{key}}}")
    return sorted(tuple(row.values()) for row in rows)


def verify_chain(chronicle: Chronicle) -> tuple[str | None, int]:
    """Recomputes the hash chain over the stored events and compares it with the
    recorded one. Returns (the first problem, naming its position, or None; how many
    events were verified)."""
    projector = Projector(chronicle, ["chain"])
    chain = projector.projections[0]
    try:
        end = chain.position()
        previous, after, verified = Chain.GENESIS, 0, 0
        while after < end:
            stored = chronicle.recorder.select_notifications(after, BATCH_SIZE, stop=end, inclusive_of_start=False)
            until = stored[-1].id if len(stored) == BATCH_SIZE else end
            recorded = chain.hashes(after, until)
            for notification in stored:
                missing = sorted(p for p in recorded if p < notification.id)
                if missing:
                    return f"position {missing[0]}: the stored event was deleted", verified
                expected = recorded.pop(notification.id, None)
                if expected is None:
                    return f"position {notification.id}: an event was inserted behind the service's back", verified
                previous = link(previous, notification)
                if previous != expected:
                    return f"position {notification.id}: the stored event was changed or reordered", verified
                verified += 1
            if recorded:
                return f"position {min(recorded)}: the stored event was deleted", verified
            after = until
        return None, verified
    finally:
        projector.close()
