"""Bulk moves in and out of the record: importing commands, exporting and copying the
event log.

Two kinds of JSON Lines files come in. A *command file* has one command per line,
``{"register_actor": {...}}`` or ``{"record_development": {...}}`` (any command of
:class:`~events.chronicle.Chronicle`); it is validated and saved in batches, each batch
one transaction. An *event log* (what :func:`export_events` writes, one stored event per
line) is copied as it is into an empty store, so that streams, versions, payloads and
recorded times come out identical: a backup, and the way from SQLite to PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from events.chronicle import BatchRejected, Chronicle, as_invalid
from events.errors import InvalidInput, RecordError

SEED = Path(__file__).parent / "seed" / "nagorno-karabakh-2023.jsonl"
BATCH_SIZE = 1000
Progress = Callable[[int], object]
"""Called with the number of bytes of input just handled."""


@dataclass
class ImportReport:
    stored: int = 0
    """Commands that changed the record."""
    unchanged: int = 0
    """Commands whose result was in the record already (a repeated import)."""
    problems: list[tuple[int, str, str]] = field(default_factory=list)
    """(line number, field, message) for every line that was refused."""


@dataclass
class Line:
    number: int
    text: str


def read_lines(stream: IO[str]) -> Iterator[Line]:
    for number, text in enumerate(stream, start=1):
        if text.strip():
            yield Line(number, text)


def is_event_log(path: Path) -> bool:
    """Whether a file is an exported event log rather than a command file."""
    with path.open(encoding="utf-8", errors="surrogateescape") as stream:
        first = next(read_lines(stream), None)
    try:
        return first is not None and "stream_id" in json.loads(first.text)
    except (ValueError, TypeError):
        return False


def import_commands(
    chronicle: Chronicle, lines: Iterable[Line], *, recorded_by: str,
    batch_size: int = BATCH_SIZE, progress: Progress = lambda n: None,
) -> ImportReport:
    """Carries out a command file, batch by batch; a batch with an invalid line is not
    stored at all, and every invalid line is reported with its number and field."""
    report = ImportReport()
    batch: list[tuple[Line, str, Any]] = []
    unreadable: list[tuple[int, str, str]] = []
    for line in lines:
        try:
            batch.append((line, *_parse_command(line.text)))
        except InvalidInput as error:
            unreadable += [(line.number, f, " ".join(m)) for f, m in error.errors.items()]
        if len(batch) + len({p[0] for p in unreadable}) == batch_size:
            _import_batch(chronicle, batch, recorded_by, report, unreadable)
            batch, unreadable = [], []
        progress(len(line.text.encode(errors="replace")))  # a byte read with surrogateescape counts once
    if batch or unreadable:
        _import_batch(chronicle, batch, recorded_by, report, unreadable)
    report.problems.sort()
    return report


def _parse_command(text: str) -> tuple[str, Any]:
    try:
        command = json.loads(text)
    except ValueError as error:
        raise InvalidInput.of("line", f"is not valid JSON: {error}") from None
    except RecursionError:
        raise InvalidInput.of("line", "is nested too deeply to be a command") from None
    if not isinstance(command, dict) or len(command) != 1:
        raise InvalidInput.of("line", 'must be one object with one command, e.g. {"register_actor": {...}}')
    return next(iter(command.items()))


def _import_batch(chronicle: Chronicle, batch: list[tuple[Line, str, Any]], recorded_by: str,
                  report: ImportReport, unreadable: list[tuple[int, str, str]]) -> None:
    """Stores a batch in one transaction; with an unreadable line in it, only checks it."""
    report.problems += unreadable
    commands = [(name, args) for _, name, args in batch]
    try:
        if unreadable:
            chronicle.check(commands, recorded_by=recorded_by)
            return
        receipts = chronicle.execute(commands, recorded_by=recorded_by)
    except RecordError as error:
        failures = error.failures if isinstance(error, BatchRejected) else {0: as_invalid(error)}
        for index, failure in failures.items():
            report.problems += [(batch[index][0].number, f, " ".join(m)) for f, m in failure.errors.items()]
    else:
        report.unchanged += sum(r.position is None for r in receipts)
        report.stored += sum(r.position is not None for r in receipts)


def export_events(chronicle: Chronicle, stream: IO[str], *, progress: Progress = lambda n: None) -> int:
    """Writes the whole event log in order, every event as stored. Returns the count."""
    count, after = 0, 0
    while notifications := chronicle.recorder.select_notifications(after, BATCH_SIZE, inclusive_of_start=False):
        for n in notifications:
            payload = json.loads(n.state)
            stream.write(json.dumps({
                "position": n.id,
                "stream_id": str(n.originator_id),
                "version": n.originator_version,
                "type": n.topic,
                "recorded_at": payload.get("timestamp", {}).get("_data_"),
                "payload": payload,
            }, ensure_ascii=False) + "\n")
        count += len(notifications)
        after = notifications[-1].id
        progress(len(notifications))
    return count


def copy_events(chronicle: Chronicle, lines: Iterable[Line], *, progress: Progress = lambda n: None) -> int:
    """Copies an exported event log into this store, as it is. The store must be empty,
    or hold the beginning of the same log (an interrupted copy, which then resumes)."""
    stored = _stored_keys(chronicle)
    copied, batch = 0, []
    for line in lines:
        event = _stored_event(line)
        progress(len(line.text.encode()))
        held = next(stored, None)
        if held is not None:
            if held != (event.originator_id, event.originator_version):
                raise RecordError("the store is not empty and does not hold the beginning of this event log")
            continue  # stored already, by an interrupted copy
        batch.append(event)
        if len(batch) == BATCH_SIZE:
            chronicle.recorder.insert_events(batch)
            copied, batch = copied + len(batch), []
    if next(stored, None) is not None:
        raise RecordError("the store is not empty and does not hold the beginning of this event log")
    if batch:
        chronicle.recorder.insert_events(batch)
        copied += len(batch)
    return copied


def _stored_keys(chronicle: Chronicle) -> Iterator[tuple[UUID, int]]:
    """(stream, version) of every event the store holds, in log order."""
    after = 0
    while notifications := chronicle.recorder.select_notifications(after, BATCH_SIZE, inclusive_of_start=False):
        yield from ((n.originator_id, n.originator_version) for n in notifications)
        after = notifications[-1].id


def _stored_event(line: Line) -> StoredEvent:
    try:
        record = json.loads(line.text)
        return StoredEvent(
            originator_id=UUID(record["stream_id"]),
            originator_version=int(record["version"]),
            topic=str(record["type"]),
            state=json.dumps(record["payload"], separators=(",", ":"), ensure_ascii=False).encode(),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise RecordError(f"line {line.number}: not an exported event ({error})") from None


def backup(chronicle: Chronicle, path: Path) -> str:
    """A consistent copy of the whole store (events, projections, tokens) while it runs:
    SQLite's online backup API, or ``pg_dump`` (custom format, restore with
    ``pg_restore``) for PostgreSQL. Returns what was done, in words."""
    import sqlite3
    import subprocess

    env = chronicle.env
    if env.get("SQLITE_DBNAME"):
        source = sqlite3.connect(env.get("SQLITE_DBNAME"), uri=True)
        try:
            target = sqlite3.connect(path)
            with target:
                source.backup(target)
            target.close()
        except sqlite3.Error as error:  # a directory that does not exist, a file that is not a database
            raise RecordError(f"cannot write the backup to {path}: {error}") from None
        finally:
            source.close()
        return f"SQLite online backup of {env.get('SQLITE_DBNAME')} to {path}"
    command = ["pg_dump", "--format=custom", f"--file={path}", f"--schema={env.get('POSTGRES_SCHEMA') or 'public'}",
               f"--host={env.get('POSTGRES_HOST')}", f"--port={env.get('POSTGRES_PORT')}",
               f"--username={env.get('POSTGRES_USER')}", env.get("POSTGRES_DBNAME")]
    password = env.get("POSTGRES_PASSWORD")
    result = subprocess.run(command, capture_output=True, text=True, check=False,
                            env={"PGPASSWORD": password} if password else None)
    if result.returncode:
        raise RecordError(f"pg_dump failed: {result.stderr.strip()}")
    return f"pg_dump of schema {env.get('POSTGRES_SCHEMA') or 'public'} to {path} (restore with pg_restore)"
