"""The chronicle: the one door through which every write enters the record.

Each command validates its input against :mod:`events.rules`, changes aggregates in
memory and saves them in one transaction, so a refused command changes nothing.
Single commands sent by concurrent threads are saved together (group commit), so a busy
server pays one commit for many writes.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple
from urllib.parse import urlsplit
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Notification
from eventsourcing.utils import Environment, EnvType
from uuid_utils.compat import uuid7

from events import rules
from events.actor import Actor
from events.development import Development
from events.errors import Conflict, InvalidInput, NotFound, RecordError, StaleVersion
from events.storage import SQLiteEventLog, database_url, library_settings, schema_lock, store_lock
from events.values import SLUG

Aggregate = Actor | Development
EVENT_TYPES = tuple(event.TOPIC for event in (
    Actor.Registered, Actor.Corrected, Development.Recorded, Development.Corrected, Development.SourceAdded,
    Development.Retracted, Development.Restored))
"""The type (topic) of every event the record stores, as the event log names it."""
log = logging.getLogger(__name__)


class Receipt(NamedTuple):
    """What a write answers: which stream, its new version, its position in the log."""

    id: str
    """The development's UUID or the actor's slug."""
    version: int
    """The stream's version after the write (the API's ETag)."""
    position: int | None
    """The log position of the write's last event; None when nothing new was stored."""
    created: bool = False
    """Whether the write created the stream."""


class BatchRejected(InvalidInput):
    """Some commands of a batch were refused, so none of them was stored."""

    def __init__(self, failures: Mapping[int, RecordError]):
        self.failures = {i: as_invalid(e) for i, e in failures.items()}
        super().__init__({f"[{i}].{f}": m for i, e in self.failures.items() for f, m in e.errors.items()})


def as_invalid(error: RecordError) -> InvalidInput:
    return error if isinstance(error, InvalidInput) else InvalidInput.of("id", str(error))


class Chronicle(Application[UUID]):
    """The record of developments and actors."""

    name = "Timeline"

    COMMANDS = {
        "register_actor": None,
        "correct_actor": ("id", "changes", "reason", "expected_version"),
        "record_development": None,
        "correct_development": ("id", "changes", "reason", "sources", "expected_version"),
        "add_source": ("id", "source", "expected_version"),
        "retract_development": ("id", "reason", "superseded_by", "expected_version"),
        "restore_development": ("id", "reason", "expected_version"),
    }
    """Each command with the arguments it takes; a creation's arguments are the details
    it states, whose shape (:mod:`events.values`) names its fields."""

    def __init__(self, env: EnvType | None = None) -> None:
        with schema_lock(database_url(dict(env or {}))):  # processes starting at once take turns
            super().__init__(env)
        self._registered: set[str] = set()
        self._group = _GroupCommit(self)
        self.after_save: Callable[[int, Mapping[int, Any]], object] | None = None
        """Called with the last log position of each group commit and the events it
        saved by position, before the next group is saved (the service projects the
        group there, in one transaction, without decoding what was just encoded, unless
        ``within_save`` has done it)."""
        self.within_save: Callable[[Any, Sequence[Notification], Mapping[int, Any], int],
                                   Callable[[], object] | None] | None = None
        """Called inside the transaction that stores events, where the store allows it
        (SQLite), with its cursor, the events as stored and as saved (by position), and
        the log's last position before them; answers what to do once it has committed.
        What it writes commits with the events (the service projects them there; then
        ``after_save`` finds nothing left to do)."""

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        """Adds the library's persistence settings for ``TIMELINE_DATABASE_URL``."""
        environment = super().construct_env(name, env)
        self.database_url = database_url(dict(environment))
        environment.update({f"{name.upper()}_{k}": v for k, v in library_settings(self.database_url).items()})
        return environment

    def save(self, *events: Any, **kwargs: Any) -> Any:
        """Stores domain events (not aggregates) with the library's event store, which
        also runs ``within_save`` in the same transaction when the store allows it.

        Not through ``Application.save``: on Python 3.11 it checks each object against
        the library's runtime-checkable ``DomainEventProtocol``, ~18 µs an event (a tenth
        of an import), to tell events from aggregates; what else it does (snapshots,
        ``notify`` hooks, the aggregate cache) this application does not use."""
        within = self.within_save
        if within is not None and isinstance(self.recorder, SQLiteEventLog):
            kwargs["within"] = lambda cursor, stored, previous: within(
                cursor, stored, {n.id: event for n, event in zip(stored, events, strict=True)}, previous)
        return self.events.put(events, **kwargs)

    # Commands, one method each; each runs as a batch of one, grouped with concurrent ones.
    # ``again`` on a write to an existing stream: the command may be in the record already,
    # sent before by a request whose answer was lost (:meth:`landed`).

    def register_actor(self, details: Mapping[str, Any], *, recorded_by: str) -> Receipt:
        return self._group.submit("register_actor", details, recorded_by)

    def correct_actor(self, actor: str, changes: Mapping[str, Any], *, reason: str, recorded_by: str,
                      expected_version: int | None = None, again: bool = False) -> Receipt:
        args = {"id": actor, "changes": changes, "reason": reason, "expected_version": expected_version}
        return self._group.submit("correct_actor", args, recorded_by, again)

    def record_development(self, details: Mapping[str, Any], *, recorded_by: str) -> Receipt:
        return self._group.submit("record_development", details, recorded_by)

    def correct_development(self, development: UUID | str, changes: Mapping[str, Any], *, reason: str,
                            recorded_by: str, sources: Iterable[Any] = (),
                            expected_version: int | None = None, again: bool = False) -> Receipt:
        args = {"id": development, "changes": changes, "reason": reason, "sources": list(sources),
                "expected_version": expected_version}
        return self._group.submit("correct_development", args, recorded_by, again)

    def add_source(self, development: UUID | str, source: Mapping[str, Any], *, recorded_by: str,
                   expected_version: int | None = None, again: bool = False) -> Receipt:
        args = {"id": development, "source": source, "expected_version": expected_version}
        return self._group.submit("add_source", args, recorded_by, again)

    def retract_development(self, development: UUID | str, *, reason: str, recorded_by: str,
                            superseded_by: UUID | str | None = None,
                            expected_version: int | None = None, again: bool = False) -> Receipt:
        args = {"id": development, "reason": reason, "superseded_by": superseded_by,
                "expected_version": expected_version}
        return self._group.submit("retract_development", args, recorded_by, again)

    def restore_development(self, development: UUID | str, *, reason: str, recorded_by: str,
                            expected_version: int | None = None, again: bool = False) -> Receipt:
        args = {"id": development, "reason": reason, "expected_version": expected_version}
        return self._group.submit("restore_development", args, recorded_by, again)

    def execute(self, commands: Iterable[tuple[str, Mapping[str, Any]]], *, recorded_by: str) -> list[Receipt]:
        """Carries out commands as one transaction: all of them are stored, or none.

        Creating a stream that exists already with the same content is not an error but
        a no-op (imports and retries can be repeated); with other content it is a
        :class:`Conflict`.
        """
        return self._execute(list(commands), recorded_by)[0]

    def _execute(self, commands: list[tuple[str, Mapping[str, Any]]],
                 recorded_by: str) -> tuple[list[Receipt], list[Any]]:
        """:meth:`execute`, answering also the library's recordings of what it saved."""
        recordings: list[Any] = []
        batch, failures = self._prepare(commands, recorded_by)
        if not failures:
            pending = {ident: aggregate.collect_events() for ident, aggregate in batch.aggregates.items()}
            try:
                recordings = self.save(*(e for events in pending.values() for e in events))
            except IntegrityError:  # a stream was created or moved on meanwhile
                failures = batch.set_aside_existing(pending)
                if not failures:
                    try:
                        recordings = self.save(*(e for i in batch.aggregates for e in pending[i]))
                    except IntegrityError:
                        raise Conflict("the record changed while this was saved; try again") from None
        if failures:
            raise failures[0] if len(commands) == 1 else BatchRejected(failures)
        positions = {(r.domain_event.originator_id, r.domain_event.originator_version): r.notification.id
                     for r in recordings}
        return [
            receipt._replace(position=positions.get((ident, receipt.version)))
            if ident in batch.aggregates else receipt
            for ident, receipt in batch.receipts
        ], recordings

    def check(self, commands: Iterable[tuple[str, Mapping[str, Any]]], *, recorded_by: str) -> None:
        """Validates commands as :meth:`execute` would, storing nothing."""
        commands = list(commands)
        _, failures = self._prepare(commands, recorded_by)
        if failures:
            raise failures[0] if len(commands) == 1 else BatchRejected(failures)

    def _prepare(self, commands: list[tuple[str, Any]], recorded_by: str) -> tuple[_Batch, dict[int, RecordError]]:
        batch = _Batch(self, recorded_by)
        failures: dict[int, RecordError] = {}
        for i, (name, args) in enumerate(commands):
            try:
                batch.run(i, name, args)
            except RecordError as error:
                failures[i] = error
        return batch, failures

    # Reads of one stream, for commands and for the history of a record.

    def development(self, development: UUID | str) -> Development:
        return self.load(_development_id(development), Development, "development")

    def actor(self, slug: str) -> Actor:
        return self.load(Actor.create_id(slug), Actor, "actor", slug)

    def is_registered(self, slug: str) -> bool:
        """Whether an actor has this slug; actors are never removed, so yes is cached."""
        if slug not in self._registered:
            if Actor.create_id(slug) not in self.repository:
                return False
            self._registered.add(slug)
        return True

    def load(self, ident: UUID, kind: type[Aggregate], label: str, name: str | None = None) -> Any:
        """The current state of one stream, or :class:`NotFound` (naming it by ``name``)."""
        try:
            aggregate = self.repository.get(ident)
        except AggregateNotFoundError:
            raise NotFound(label, name or ident) from None
        if not isinstance(aggregate, kind):
            raise NotFound(label, name or ident)
        return aggregate

    def landed(self, command: str, args: Mapping[str, Any], recorded_by: str) -> Receipt | None:
        """The receipt of a write to an existing stream that the record holds already: run
        on the version it expected (with no expected version, the one before the last), it
        makes the event that follows that version, and the same writer wrote it.

        A request whose process died after storing its event and before answering is run
        again under its Idempotency-Key. By then its stream has moved on by its own event,
        and without this its answer would be a stale version, inviting the writer to send
        it a third time."""
        try:
            ident = Actor.create_id(args["id"]) if command == "correct_actor" else _development_id(args["id"])
            current = self.repository.get(ident).version
        except (AggregateNotFoundError, RecordError):  # the command will say what is wrong
            return None
        expected = args.get("expected_version")
        version = current - 1 if expected is None else expected
        if not 0 < version < current:
            return None
        stored = list(self.events.get(ident, gt=version, lte=version + 1))
        if len(stored) != 1 or getattr(stored[0], "recorded_by", None) != recorded_by:
            return None
        batch = _Batch(self, recorded_by)
        before = batch.aggregates[ident] = self.repository.get(ident, version=version)
        try:
            batch.run(0, command, {**args, "expected_version": version})
        except RecordError:
            return None
        made = before.collect_events()
        if len(made) != 1 or not _same_event(stored[0], made[0]):
            return None
        return batch.receipts[-1][1]


class _Pending:
    """A single command waiting for the next group commit, and then its outcome."""

    __slots__ = ("command", "args", "recorded_by", "outcome", "woken")

    def __init__(self, command: str, args: Mapping[str, Any], recorded_by: str):
        self.command, self.args, self.recorded_by = command, args, recorded_by
        self.outcome: Any = None
        """The receipt, or the error to raise."""
        self.woken = threading.Event()
        """Set once the outcome is ready, or when this command's thread is to save the next group."""


class _GroupCommit:
    """Group commit: the single commands that threads send while a save is under way are
    saved together in the next one, in one transaction. A thread that finds no save under
    way saves the queue; the others wait, each until its outcome is ready, and the first
    of those that queued during a save saves the next group.

    Each waiting thread is woken once, when it has something to do: waiting for a shared
    lock instead made a thread whose outcome was ready queue behind the next savers, and
    under 32 writing threads in one process the groups held 1.4 commands (now 16, and
    982 -> 3,299 writes/s: ``bench/writes.py``).

    A command the group refuses is run again alone after the group is stored, and if the
    group's save clashes with another process every command runs alone, so each answer
    is what running the commands one after another would have given.
    """

    def __init__(self, chronicle: Chronicle):
        self.chronicle = chronicle
        self.queue: list[_Pending] = []
        self.saving = False
        self.lock = threading.Lock()
        """Guards the queue and ``saving``."""

    def submit(self, command: str, args: Mapping[str, Any], recorded_by: str, again: bool = False) -> Receipt:
        """The command's receipt, once its group is saved. ``again``: the command's own
        earlier run may be in the record (:meth:`Chronicle.landed`), and then its receipt is
        the answer: instead of a stale version, or, with no expected version, instead of
        running it twice."""
        if again and args.get("expected_version") is None:  # nothing would be stale: look first
            found = self.chronicle.landed(command, args, recorded_by)
            if found is not None:
                return found
        pending = _Pending(command, args, recorded_by)
        with self.lock:
            self.queue.append(pending)
            follows, self.saving = self.saving, True
        if follows:
            pending.woken.wait()
        if pending.outcome is None:
            self._save_queued()
        outcome = pending.outcome
        if again and isinstance(outcome, StaleVersion):
            outcome = self.chronicle.landed(command, args, recorded_by) or outcome
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def _save_queued(self) -> None:
        """Saves the queue as one group, wakes its commands' threads, and hands the next
        save to the first command that queued meanwhile."""
        with self.lock:
            group, self.queue = self.queue, []
        try:
            self._save(group)
        except BaseException as error:  # the store failed: every command of the group hears it
            for waiting in group:
                waiting.outcome = waiting.outcome or error
            if not isinstance(error, Exception):
                raise
        finally:
            with self.lock:
                following = self.queue[0] if self.queue else None
                self.saving = following is not None
            for waiting in group:
                waiting.woken.set()
            if following is not None:
                following.woken.set()

    def _save(self, group: list[_Pending]) -> None:
        """Runs the group's commands, then saves it and hands it to ``after_save`` in the
        store's turn: a group of another worker waits for the turn instead of in SQLite's
        busy timeout, whose sleeps grow to tens of milliseconds, and finds this group
        projected when it projects its own.

        The commands run before the turn, since the turn is what the workers of a store
        queue for (under 32 writers it was held ~5 ms per group of ~7). A stream another
        process moves on meanwhile makes the save clash, and each command runs again
        alone, in the turn. The commands queued while the group waited for the turn join
        it there (:meth:`_join_latecomers`)."""
        batch, staged = self._stage(group)
        with self.turn():
            self._join_latecomers(group, batch, staged)
            saved = self._store(group, batch, staged)
            reached = max((p.outcome.position or 0 for p in group if isinstance(p.outcome, Receipt)), default=0)
            if reached and self.chronicle.after_save is not None:
                try:
                    self.chronicle.after_save(reached, saved)
                except Exception:  # each writer projects again itself, and hears the error there
                    log.warning("projecting a group commit failed", exc_info=True)

    def _join_latecomers(self, group: list[_Pending], batch: _Batch,
                         staged: list[tuple[_Pending, tuple[UUID, Receipt]]]) -> None:
        """Moves the commands queued meanwhile into the group, after its own. A commit
        costs a SQLite store ~0.6 ms of CPU to sync its log, however many commands it
        holds. With three workers taking turns, a group waited longer for its turn than it
        took to save (9 ms against 7 ms under 32 writers), and its own worker's next
        commands queued behind it: 29% of the groups were of one command, at ~4 times the
        CPU per command of a group of eight. Joined here, 13,250 writes took 1,700 groups
        where 13,560 had taken 3,000."""
        with self.lock:
            latecomers, self.queue = self.queue, []
        if not latecomers:
            return
        staged_before = len(group) > 1  # a group of one needs no batch, so it was not staged
        group.extend(latecomers)  # first: whatever happens next, they hear the group's outcome
        self._stage_into(batch, staged, latecomers if staged_before else group)

    def _stage(self, group: list[_Pending]) -> tuple[_Batch, list[tuple[_Pending, tuple[UUID, Receipt]]]]:
        """Runs the group's commands as one batch, leaving out those it refuses (they
        run alone); a group of one needs no batch."""
        batch = _Batch(self.chronicle, "")
        staged: list[tuple[_Pending, tuple[UUID, Receipt]]] = []
        if len(group) > 1:
            self._stage_into(batch, staged, group)
        return batch, staged

    @staticmethod
    def _stage_into(batch: _Batch, staged: list[tuple[_Pending, tuple[UUID, Receipt]]],
                    commands: list[_Pending]) -> None:
        for pending in commands:
            batch.recorded_by = pending.recorded_by
            try:
                batch.run(len(staged), pending.command, pending.args)
            except Exception:  # noqa: BLE001 - it will hear its own error when it runs alone
                continue
            staged.append((pending, batch.receipts[-1]))

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Groups of all processes of a store take turns saving and projecting; on
        PostgreSQL this also keeps workers from projecting the same events and losing on
        the tracking row."""
        url = self.chronicle.database_url
        if urlsplit(url).scheme == "sqlite":
            with store_lock(url, "write"):
                yield
            return
        with self.chronicle.recorder.datastore.get_connection() as connection, store_lock(url, "write", connection):
            yield

    def _store(self, group: list[_Pending], batch: _Batch,
               staged: list[tuple[_Pending, tuple[UUID, Receipt]]]) -> dict[int, Any]:
        """Saves the staged commands in one transaction, then runs the others alone, in
        the group's order (all of them, if the save clashed with another process);
        answers the events saved, by log position."""
        recordings = []
        if staged:
            try:
                recordings = self.chronicle.save(*(e for a in batch.aggregates.values() for e in a.collect_events()))
            except IntegrityError:  # another process wrote to one of these streams meanwhile
                staged = []
        positions = {(r.domain_event.originator_id, r.domain_event.originator_version): r.notification.id
                     for r in recordings}
        for pending, (ident, receipt) in staged:
            pending.outcome = receipt._replace(position=positions.get((ident, receipt.version)))
        for pending in group:
            if pending.outcome is None:
                recordings += self._alone(pending)
        return {r.notification.id: r.domain_event for r in recordings}

    def _alone(self, pending: _Pending) -> list[Any]:
        """Runs one command in a transaction of its own; answers what it saved."""
        try:
            receipts, recordings = self.chronicle._execute([(pending.command, pending.args)], pending.recorded_by)
        except Exception as error:
            pending.outcome = error
            return []
        pending.outcome = receipts[0]
        return recordings


class _Batch:
    """The aggregates one batch of commands touches, changed in memory until saved."""

    def __init__(self, chronicle: Chronicle, recorded_by: str):
        self.chronicle = chronicle
        self.recorded_by = recorded_by
        self.aggregates: dict[UUID, Aggregate] = {}
        self.receipts: list[tuple[UUID, Receipt]] = []
        self.created: dict[UUID, tuple[int, dict[str, Any]]] = {}
        self.command = 0
        self.new_actors: set[str] = set()
        self.loaded: dict[UUID, int] = {}

    def run(self, command: int, name: str, args: Mapping[str, Any]) -> None:
        self.command = command
        if name not in Chronicle.COMMANDS:
            raise InvalidInput.of("command", f"{name!r} is not one of: {', '.join(Chronicle.COMMANDS)}")
        if not isinstance(args, Mapping):
            raise InvalidInput.of(name, "must be an object")
        arguments = Chronicle.COMMANDS[name]
        if arguments is not None:
            rules.check_arguments(name, args, arguments)
        getattr(self, name)(args)

    def is_registered(self, slug: str) -> bool:
        return slug in self.new_actors or self.chronicle.is_registered(slug)

    def register_actor(self, args: Mapping[str, Any]) -> None:
        payload = rules.check_actor(args)
        slug = payload.pop("id")
        actor = Actor(slug=slug, recorded_by=self.recorded_by, **payload)
        if actor.id in self.aggregates:
            raise InvalidInput.of("id", f"{slug!r} is registered twice in this batch")
        self.new_actors.add(slug)
        self._add(actor, slug, created=payload | {"slug": slug})

    def record_development(self, args: Mapping[str, Any]) -> None:
        payload = rules.check_development(args, self.is_registered)
        given = payload.pop("id")
        ident = UUID(given) if given else new_development_id()
        if ident in self.aggregates:
            raise InvalidInput.of("id", f"{ident} is recorded twice in this batch")
        development = Development.record(ident, recorded_by=self.recorded_by, **payload)
        self._add(development, str(ident), created=payload)

    def correct_actor(self, args: Mapping[str, Any]) -> None:
        slug = _required(args, "id")
        if not isinstance(slug, str) or not re.fullmatch(SLUG, slug):  # never registered; and uuid5 needs UTF-8
            raise NotFound("actor", slug)
        actor = self._load(Actor.create_id(slug), Actor, "actor", args, name=slug)
        changes = args.get("changes")
        if not isinstance(changes, Mapping) or not changes:
            raise InvalidInput.of("changes", "name at least one field to correct")
        if "id" in changes:
            raise InvalidInput.of("changes.id", "is fixed: register a new actor instead")
        stated = {k: v for k, v in actor.stated().items() if k != "recorded_by"}
        try:
            merged = rules.check_actor({**stated, **changes, "id": actor.slug})
        except InvalidInput as error:
            raise InvalidInput({f"changes.{k}": v for k, v in error.errors.items()}) from None
        changed = {k: merged[k] for k in changes if not rules.same(merged[k], getattr(actor, k))}
        if not changed:
            raise InvalidInput.of("changes", "the correction changes nothing")
        actor.correct(changed, rules.check_reason(args.get("reason")), self.recorded_by)
        self._add(actor, actor.slug)

    def correct_development(self, args: Mapping[str, Any]) -> None:
        development = self._development(args)
        reason = rules.check_reason(args.get("reason"))
        stated = {**development.stated(), "id": str(development.id)}
        changed = rules.check_changes(stated, args.get("changes") or {}, self.is_registered)
        sources = rules.check_sources(args.get("sources") or ())
        development.correct(changed, reason, sources, self.recorded_by)
        self._add(development, str(development.id))

    def add_source(self, args: Mapping[str, Any]) -> None:
        development = self._development(args)
        source = rules.check_source(args.get("source"))
        development.add_source(source, self.recorded_by)
        self._add(development, str(development.id))

    def retract_development(self, args: Mapping[str, Any]) -> None:
        development = self._development(args)
        replacement = args.get("superseded_by")
        if replacement is not None:
            try:
                replacement = str(self._load(_development_id(replacement, "superseded_by"), Development,
                                             "development", {}).id)
            except NotFound:
                raise InvalidInput.of("superseded_by", f"no development with id {replacement!r}") from None
        development.retract(rules.check_reason(args.get("reason")), self.recorded_by, replacement)
        self._add(development, str(development.id))

    def restore_development(self, args: Mapping[str, Any]) -> None:
        development = self._development(args)
        development.restore(rules.check_reason(args.get("reason")), self.recorded_by)
        self._add(development, str(development.id))

    def _development(self, args: Mapping[str, Any]) -> Development:
        return self._load(_development_id(_required(args, "id")), Development, "development", args)

    def _load(self, ident: UUID, kind: type[Aggregate], label: str, args: Mapping[str, Any],
              name: str | None = None) -> Any:
        aggregate = self.aggregates.get(ident)
        if aggregate is None:
            aggregate = self.chronicle.load(ident, kind, label, name)
            if ident not in self.created:
                self.loaded[ident] = aggregate.version
        expected = rules.check_version(args.get("expected_version"))
        if expected is not None and expected != aggregate.version:
            raise StaleVersion(name or ident, expected, aggregate.version)
        return aggregate

    def _add(self, aggregate: Aggregate, key: str, created: dict[str, Any] | None = None) -> None:
        self.aggregates[aggregate.id] = aggregate
        if created is not None:
            self.created[aggregate.id] = (self.command, created)
        self.receipts.append((aggregate.id, Receipt(key, aggregate.version, None, created is not None)))

    def set_aside_existing(self, pending: dict[UUID, list[Any]]) -> dict[int, RecordError]:
        """After a clash on save: a stream this batch created that exists already is
        compared with the record, event by event. What the record holds already is taken
        out of ``pending`` (its commands are no-ops), and the batch's later events on the
        stream stay, to be saved after it: importing a recording and its sources again,
        once the recording alone was stored, stores the sources. A recording with other
        content, or a later event that differs from the record's, is a :class:`Conflict`;
        a loaded stream that moved on is a :class:`StaleVersion`."""
        failures: dict[int, RecordError] = {}
        for ident, (command, stated) in self.created.items():
            stored = list(self.chronicle.events.get(ident))
            if not stored:
                continue
            if not rules.same(stated, {k: getattr(stored[0], k, None) for k in stated}):
                failures[command] = Conflict(f"{self._key(ident)} is already in the record with other content")
                continue
            mine = pending[ident]
            agree = next((i for i, (a, b) in enumerate(zip(stored, mine)) if i and not _same_event(a, b)),
                         min(len(stored), len(mine)))
            if agree < min(len(stored), len(mine)):
                failures[self._command_of(ident, agree + 1)] = Conflict(
                    f"{self._key(ident)} is in the record with other events since version {agree}")
                continue
            pending[ident] = mine[agree:]
            kept = len(stored) if not pending[ident] else None  # a no-op answers the stream's version
            self.receipts = [
                (i, Receipt(r.id, kept or r.version, None, False) if i == ident and r.version <= agree else r)
                for i, r in self.receipts
            ]
        for ident, version in self.loaded.items():
            current = self.chronicle.repository.get(ident).version
            if current != version:
                command = next(i for i, (key, _) in enumerate(self.receipts) if key == ident)
                failures[command] = StaleVersion(self._key(ident), version, current)
        return failures

    def _command_of(self, ident: UUID, version: int) -> int:
        """The batch's command that took a stream to ``version``."""
        return next(i for i, (key, r) in enumerate(self.receipts) if key == ident and r.version >= version)

    def _key(self, ident: UUID) -> str:
        return next(r.id for i, r in self.receipts if i == ident)


_WHO_AND_WHEN = {"originator_id", "originator_version", "originator_topic", "timestamp", "recorded_by"}


def new_development_id() -> UUID:
    """A time-ordered UUID (version 7, RFC 9562) for a development recorded without an id.
    Its stream id keys the event store's index of streams and ``development_heads``: with
    random ids each recording dirtied a page of both (a group commit of eight wrote 68
    pages to SQLite's log, 54 with these: ``bench/pages.py``), and at a million
    developments those pages are rarely in memory."""
    return uuid7()


def _same_event(stored: Any, made: Any) -> bool:
    """Whether an event made again says what the stored one says (who wrote it, and
    when, do not count)."""
    said = [{k: v for k, v in vars(event).items() if k not in _WHO_AND_WHEN} for event in (stored, made)]
    return type(stored) is type(made) and rules.same(*said)


def _required(args: Mapping[str, Any], field: str) -> Any:
    if args.get(field) in (None, ""):
        raise InvalidInput.of(field, "is required")
    return args[field]


def _development_id(value: UUID | str, field: str | None = None) -> UUID:
    """A development id; a malformed one is not found (or, for a field, invalid)."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        if field:
            raise InvalidInput.of(field, f"{value!r} is not a development id") from None
        raise NotFound("development", value) from None
