"""Shared helpers for the benchmark scripts (``bench/import.py``, ``bench/replay.py``,
``bench/query.py``).

- every measured phase runs in a fresh process (``multiprocessing``'s "spawn" context), so
  the peak RSS reported for it (``ru_maxrss``) is that phase's own;
- :class:`Stores` hands out fresh databases (SQLite files in a temporary directory, or
  PostgreSQL schemas) and removes them all at the end, also after an error;
- :func:`build_store` fills a store with a realistic mix of events through the real
  write path (``transfer.import_commands`` and ``Chronicle.execute``);
- small helpers for percentiles, tables, machine facts and JSON output.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from itertools import islice
from multiprocessing import get_context
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # so that `python bench/x.py` works without PYTHONPATH=.
    sys.path.insert(0, str(ROOT))

# Only the standard library is imported at module level, and the benchmark's main
# process imports nothing else: a spawned child starts with ru_maxrss at least the
# parent's RSS (Linux carries the high-water mark across fork and exec), so a lean
# parent keeps each phase's peak its own. Everything heavy is imported inside the
# phases, which run in the children.

POSTGRES = os.environ.get("TIMELINE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
"""The PostgreSQL server the benchmarks use; each run works in fresh schemas of it."""

BACKENDS = ("sqlite", "postgres")


def __getattr__(name: str) -> Any:
    """``Minimal``: the smallest aggregate the library can save (one ``Created`` event),
    the baseline of raw write speed. Defined on first use, so that importing this
    module does not import the eventsourcing library into the main process."""
    if name != "Minimal":
        raise AttributeError(name)
    from eventsourcing.domain import Aggregate

    class Minimal(Aggregate):
        __qualname__ = "Minimal"  # as if defined at module level: topic bench.common:Minimal.Created

    globals()["Minimal"] = Minimal
    return Minimal


# Command line


def parser(description: str, *, n: int, backend: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--n", type=int, default=n, help="size of the benchmark (see the description)")
    p.add_argument("--backend", choices=("sqlite", "postgres", "both"), default=backend)
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    p.add_argument("--seed", type=int, default=7, help="seed of the synthetic data and of random choices")
    return p


def backends(choice: str) -> list[str]:
    return list(BACKENDS) if choice == "both" else [choice]


def begin(p: argparse.ArgumentParser) -> tuple[argparse.Namespace, list[str], dict[str, Any]]:
    """A benchmark's start: its arguments, the backends chosen, and the machine's facts
    (printed, with a warning if other work is already running)."""
    args = p.parse_args()
    chosen = backends(args.backend)
    facts = call(machine, "postgres" in chosen)
    print_machine(facts)
    return args, chosen, facts


# Phases in fresh processes


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def own_peak_mb() -> float | None:
    """The high-water mark of this process image alone (``VmHWM``), a cross-check of
    ``ru_maxrss``, which also covers what the parent had when it started this one."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _measured(function: Callable[..., dict[str, Any]], args: tuple, kwargs: dict) -> dict[str, Any]:
    started_rss, started_cpu, started_load = peak_rss_mb(), _cpu_seconds(), os.getloadavg()[0]
    result = function(*args, **kwargs)
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    result["rss_at_start_mb"] = round(started_rss, 1)
    own = own_peak_mb()
    result["vmhwm_mb"] = None if own is None else round(own, 1)
    result["cpu_seconds"] = round(_cpu_seconds() - started_cpu, 2)  # this process only, not the database server
    result["load_average"] = [round(started_load, 2), round(os.getloadavg()[0], 2)]  # 1-minute, before and after
    return result


def run_phase(function: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Runs ``function(*args, **kwargs)`` in a fresh spawned process and returns its
    result with ``peak_rss_mb`` (``ru_maxrss`` of that process at the end: the phase's
    peak RSS), ``rss_at_start_mb`` (``ru_maxrss`` before the phase's work and its
    imports: the bare interpreter with this module) and ``vmhwm_mb`` (the cross-check, see :func:`own_peak_mb`)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(_measured, function, args, kwargs).result()


def call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Runs a helper (dropping a schema, sizing a store...) in a short-lived spawned
    process, so that the main process never imports the database drivers."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args, **kwargs).result()


# Databases


class Stores:
    """Fresh databases for one benchmark run, all removed on exit."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="timeline-bench-"))
        self.schemas: list[str] = []

    def __enter__(self) -> Stores:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def url(self, backend: str, label: str) -> str:
        """A database URL for a new, empty store."""
        tag = f"{label}_{uuid.uuid4().hex[:8]}"
        if backend == "sqlite":
            return f"sqlite:///{self.directory / tag}.db"  # absolute path: sqlite:////tmp/...
        schema = f"bench_{tag}"
        self.schemas.append(schema)
        return f"{POSTGRES}?schema={schema}"

    def path(self, name: str) -> Path:
        return self.directory / name

    def drop(self, url: str) -> None:
        """Removes one store now (to keep disk use down between phases)."""
        if url.startswith("sqlite:"):
            base = url.removeprefix("sqlite:///")
            for suffix in ("", "-wal", "-shm"):
                Path(base + suffix).unlink(missing_ok=True)
            return
        schema = url.rsplit("schema=", 1)[1]
        call(drop_schemas, [schema])
        if schema in self.schemas:
            self.schemas.remove(schema)

    def cleanup(self) -> None:
        if self.schemas:
            try:
                call(drop_schemas, list(self.schemas))
            except Exception as error:  # noqa: BLE001 - report and go on cleaning
                print(f"could not drop schemas {self.schemas}: {error}", file=sys.stderr)
            else:
                self.schemas.clear()
        shutil.rmtree(self.directory, ignore_errors=True)


def drop_schemas(schemas: list[str]) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(POSTGRES, autocommit=True) as connection:
        for schema in schemas:
            connection.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def store_size_mb(url: str) -> float | None:
    """Disk size of a store: the SQLite file (with its WAL), or the PostgreSQL schema."""
    if url.startswith("sqlite:"):
        base = url.removeprefix("sqlite:///")
        return round(sum(Path(base + s).stat().st_size for s in ("", "-wal") if Path(base + s).exists()) / 2**20, 1)
    import psycopg

    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(POSTGRES) as connection:
        (size,) = connection.execute(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
            (schema,)).fetchone()
    return round(int(size) / 2**20, 1)


# Building a store with a realistic mix of events


def library_save_phase(url: str, count: int, batch_size: int = 1000) -> dict[str, Any]:
    """The baseline of raw write speed: the library alone saving ``count`` minimal
    aggregates (one ``Created`` event each), ``batch_size`` per transaction."""
    from eventsourcing.application import Application

    from bench.common import Minimal  # the module's __getattr__ defines it on first use
    from events.storage import library_settings

    app = Application(env=library_settings(url))
    batches: list[float] = []
    with progress_bar(total=count, unit="agg", desc=f"library save {count:,}, {batch_size:,} a transaction") as bar:
        started = time.perf_counter()
        for start in range(0, count, batch_size):
            batch_started = time.perf_counter()
            app.save(*[Minimal() for _ in range(min(batch_size, count - start))])
            batches.append(time.perf_counter() - batch_started)
            bar.update(min(batch_size, count - start))
        seconds = time.perf_counter() - started
    app.close()
    return {"phase": "library save", "items": count, "seconds": round(seconds, 3),
            "rate": round(count / seconds, 1), "batch_ms": summary(batches), "store_mb": store_size_mb(url)}


def developments_for_events(events: int, correct: float, retract: float, restore: float) -> int:
    """How many developments make a store of about ``events`` events with this mix."""
    from bench.synthetic import ACTORS

    return max(1, round((events - ACTORS) / (1 + correct + retract + retract * restore)))


def build_store(url: str, developments: int, *, seed: int = 7, correct: float = 0.05,
                retract: float = 0.01, restore: float = 0.5, chunk: int = 50_000,
                catch_up: bool = False) -> dict[str, Any]:
    """Fills an empty store: the 500 synthetic actors and ``developments`` synthetic
    developments through ``transfer.import_commands`` (batches of 1,000, one
    transaction each), and after every ``chunk`` of them, through ``Chronicle.execute``
    in batches of 1,000: corrections of a fraction ``correct`` of that chunk (certainty
    changed), retractions of a fraction ``retract``, and restorations of a fraction
    ``restore`` of the developments retracted in the chunk before (so some stay
    retracted). Optionally brings the projections up to date (``Projector.catch_up``)."""
    from bench.synthetic import actor_commands, development_commands
    from events.chronicle import Chronicle
    from events.vocabulary import CERTAINTIES
    from timeline import transfer
    from timeline.projector import Projector

    rng = random.Random(seed + 1)
    chronicle = Chronicle(env={"TIMELINE_DATABASE_URL": url})
    counts = {"actors": 0, "recorded": 0, "corrected": 0, "retracted": 0, "restored": 0}
    started = time.perf_counter()
    with progress_bar(total=developments, unit="dev", desc="build store") as bar:
        report = transfer.import_commands(chronicle, _lines(actor_commands()), recorded_by="bench")
        _check(report)
        counts["actors"] = report.stored
        commands = development_commands(developments, seed=seed)
        to_restore: list[str] = []
        while chunk_commands := list(islice(commands, chunk)):
            report = transfer.import_commands(chronicle, _lines(chunk_commands), recorded_by="bench")
            _check(report)
            counts["recorded"] += report.stored
            corrections, retractions = [], []
            for command in chunk_commands:
                details = command["record_development"]
                if rng.random() < correct:
                    certainty = rng.choice([c for c in CERTAINTIES if c != details["certainty"]])
                    corrections.append(("correct_development", {
                        "id": details["id"], "changes": {"certainty": certainty}, "reason": "bench"}))
                if rng.random() < retract:
                    retractions.append(("retract_development", {"id": details["id"], "reason": "bench"}))
            restorations = [("restore_development", {"id": i, "reason": "bench"}) for i in to_restore]
            to_restore = [args["id"] for _, args in retractions if rng.random() < restore]
            for name, batch in (("corrected", corrections), ("retracted", retractions),
                                ("restored", restorations)):
                counts[name] += _execute(chronicle, batch)
            bar.update(len(chunk_commands))
        counts["restored"] += _execute(
            chronicle, [("restore_development", {"id": i, "reason": "bench"}) for i in to_restore])
    built = time.perf_counter() - started
    result: dict[str, Any] = {
        "developments": developments,
        "counts": counts,
        "events": sum(counts.values()),
        "last_position": chronicle.recorder.max_notification_id(),
        "build_seconds": round(built, 1),
    }
    if catch_up:
        projector = Projector(chronicle)
        started = time.perf_counter()
        with progress_bar(total=projector.lag(), unit="ev", desc="catch up") as bar:
            result["projected"] = projector.catch_up(progress=bar.update)
        result["catch_up_seconds"] = round(time.perf_counter() - started, 1)
        projector.close()
    result["store_mb"] = store_size_mb(url)
    chronicle.close()
    return result


def _lines(commands: Iterable[dict]) -> Iterator[Any]:
    from timeline.transfer import Line

    for number, command in enumerate(commands, start=1):
        yield Line(number, json.dumps(command, ensure_ascii=False))


def _check(report: Any) -> None:
    if report.problems:
        raise RuntimeError(f"the synthetic data was refused: {report.problems[:5]}")


def _execute(chronicle: Any, commands: list[tuple[str, dict]], batch_size: int = 1000) -> int:
    stored = 0
    for start in range(0, len(commands), batch_size):
        receipts = chronicle.execute(commands[start:start + batch_size], recorded_by="bench")
        stored += sum(r.position is not None for r in receipts)
    return stored


# Figures


def summary(samples: Sequence[float], scale: float = 1000.0) -> dict[str, float]:
    """Mean, p50 and p99 (and max) of latencies in seconds, in milliseconds by default.
    Percentiles by ``statistics.quantiles`` (inclusive method: p99 of 200 samples lies
    between the 2nd and 3rd largest)."""
    if not samples:
        return {"n": 0}
    values = [s * scale for s in samples]
    if len(values) >= 2:
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        p50, p99 = cuts[49], cuts[98]
    else:
        p50 = p99 = values[0]
    return {"n": len(values), "mean": round(statistics.fmean(values), 3), "p50": round(p50, 3),
            "p99": round(p99, 3), "max": round(max(values), 3)}


class Laps:
    """Times between successive calls, e.g. of a per-batch progress callback."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.last = time.perf_counter()

    def start(self) -> None:
        self.times.clear()
        self.last = time.perf_counter()

    def __call__(self, *args: Any) -> None:
        now = time.perf_counter()
        self.times.append(now - self.last)
        self.last = now


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown pipe table, padded for the terminal."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def machine(use_postgres: bool) -> dict[str, Any]:
    """The facts about this machine that the figures depend on (run it with :func:`call`)."""
    from importlib.metadata import version

    facts: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "eventsourcing": version("eventsourcing"),
    }
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            facts["cpu"] = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
                                None)
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            facts["memory_gb"] = round(int(meminfo.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    if use_postgres:
        import psycopg

        with psycopg.connect(POSTGRES) as connection:
            facts["postgresql"] = connection.execute("SHOW server_version").fetchone()[0]
    return facts


def print_machine(facts: dict[str, Any]) -> None:
    print(", ".join(f"{k}: {v}" for k, v in facts.items()))
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"WARNING: 1-minute load average {load:.2f} before the run: other work on this machine "
              f"will slow the figures down.", file=sys.stderr)


def load_note(phases: Iterable[dict[str, Any]]) -> str:
    """The highest 1-minute load average seen around the phases (2 cores: above ~1.2 means
    something else competed for the CPU)."""
    highest = max((max(p.get("load_average", [0])) for p in phases), default=0)
    return f"highest 1-minute load average around the phases: {highest:.2f} on {os.cpu_count()} cores"


def write_json(path: Path | None, payload: dict[str, Any]) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"Results written to {path}")


def command_line() -> str:
    return " ".join([Path(sys.executable).name, *sys.argv])


def progress_bar(**kwargs: Any) -> Any:
    from tqdm import tqdm

    return tqdm(mininterval=1, file=sys.stderr, **kwargs)

