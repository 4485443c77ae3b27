"""Replay benchmark: ``Projector.rebuild()`` over a store of N events, against two
baselines measured in the same run on the same store.

For each backend, four phases, each in a fresh process:

1. ``build`` (not timed as replay): the 500 actors and enough synthetic developments
   (2-4 actors, 1-3 effects each) that, with ~5% corrections (certainty changed), ~1%
   retractions and restorations of half of those, the log holds about N events; written
   through ``transfer.import_commands`` and ``Chronicle.execute`` in batches of 1,000.
2. ``rebuild``: ``Projector(chronicle).rebuild()`` (drop every projection table, replay
   the whole log, build the indexes): events per second over all events, per-batch
   latency (one batch = 1,000 events read, decoded and written) and peak RSS.
3. ``decode`` (baseline a): the library alone reading and decoding every event,
   ``recorder.select_notifications(after, 1000, inclusive_of_start=False)`` and
   ``chronicle.mapper.to_domain_event`` -- the ceiling for any replay.
4. ``stock`` (baseline b): the library's stock projection approach, one event per
   transaction -- a minimal ``eventsourcing.projection.Projection`` whose view (a
   ``SQLiteTrackingRecorder``/``PostgresTrackingRecorder`` subclass) inserts one row per
   event and the tracking position in one transaction -- over the first
   ``--stock-events`` events. On PostgreSQL it is driven by the library's own
   ``ProjectionRunner``; SQLite has no subscriptions (``SQLiteApplicationRecorder.subscribe``
   raises NotImplementedError), so there the same projection is fed by the loop the
   runner would run: notifications pulled in pages of 1,000, each event decoded and
   passed to ``process_event``.

    PYTHONPATH=. .venv/bin/python bench/replay.py --n 1000000 --backend sqlite --json bench/results/replay-sqlite.json
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402  (standard library only: the main process stays lean)

CORRECT, RETRACT, RESTORE = 0.05, 0.01, 0.5
"""Fractions of developments corrected and retracted, and of retractions restored."""
TARGET_OF_DECODE = 0.5
TARGET_OF_STOCK = 20.0
TARGET_RSS_MB = 400.0
BATCH = 1000


def _chronicle(url: str) -> Any:
    from events.chronicle import Chronicle

    return Chronicle(env={"TIMELINE_DATABASE_URL": url})


def rebuild_phase(url: str) -> dict[str, Any]:
    from timeline.projector import Projector

    chronicle = _chronicle(url)
    total = chronicle.recorder.max_notification_id() or 0
    projector = Projector(chronicle)
    split = _cpu_split(chronicle, projector)
    laps = common.Laps()
    with common.progress_bar(total=total, unit="ev", desc="rebuild") as bar:
        def progress(count: int) -> None:
            laps()
            bar.update(count)

        started = time.perf_counter()
        laps.start()
        applied = projector.rebuild(progress=progress)
        seconds = time.perf_counter() - started
    tail = seconds - (laps.last - started)  # after the last batch: building the indexes
    developments = next(p for p in projector.projections if p.name == "developments")
    rows = {table: developments.select(f"SELECT COUNT(*) AS n FROM {{{key}}}")[0]["n"]
            for key, table in (("versions", "development_versions"), ("heads", "development_heads"),
                               ("history", "development_history"))}
    projector.close()
    chronicle.close()
    return {"phase": "rebuild", "events": applied, "seconds": round(seconds, 3),
            "rate": round(applied / seconds, 1), "batch_ms": common.summary(laps.times),
            "indexes_seconds": round(tail, 2), "rows": rows,
            "cpu_us_per_event": {part: round(spent / applied * 1e6, 1) for part, spent in split.items()}}


def _cpu_split(chronicle: Any, projector: Any) -> dict[str, float]:
    """Where a rebuild's CPU time goes, by wrapping its steps: reading the log, decoding
    events (the library), making the rows (this service's Python), writing them and the
    tracking positions (the database driver and, on SQLite, the database itself), and
    building the indexes at the end. The process's CPU time (``time.process_time``), which
    other work on the machine does not inflate; on PostgreSQL the server's part is missing."""
    spent = dict.fromkeys(("read", "decode", "rows", "write", "indexes"), 0.0)

    def timed(part: str, function: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[part] += time.process_time() - started
        return call

    chronicle.recorder.select_notifications = timed("read", chronicle.recorder.select_notifications)
    chronicle.mapper.to_domain_event = timed("decode", chronicle.mapper.to_domain_event)
    projector.view.apply_all = timed("write", projector.view.apply_all)
    for projection in projector.projections:
        projection.operations = timed("rows", projection.operations)
        projection.create_tables = timed("indexes", projection.create_tables)
    return spent


def decode_phase(url: str) -> dict[str, Any]:
    chronicle = _chronicle(url)
    recorder, mapper = chronicle.recorder, chronicle.mapper
    total = recorder.max_notification_id() or 0
    laps = common.Laps()
    count = after = 0
    with common.progress_bar(total=total, unit="ev", desc="decode") as bar:
        started = time.perf_counter()
        laps.start()
        while notifications := recorder.select_notifications(after, BATCH, inclusive_of_start=False):
            for notification in notifications:
                mapper.to_domain_event(notification)
            count += len(notifications)
            after = notifications[-1].id
            laps()
            bar.update(len(notifications))
        seconds = time.perf_counter() - started
    chronicle.close()
    return {"phase": "decode", "events": count, "seconds": round(seconds, 3), "rate": round(count / seconds, 1),
            "batch_ms": common.summary(laps.times)}


def _stock_classes() -> tuple[type, type, type]:
    """The minimal projection and its views (made here, not at module level, so that
    the main process does not import the library)."""
    from eventsourcing.postgres import PostgresTrackingRecorder
    from eventsourcing.projection import Projection
    from eventsourcing.sqlite import SQLiteTrackingRecorder
    from psycopg.sql import SQL, Identifier

    class SQLiteStockView(SQLiteTrackingRecorder):
        def construct_create_table_statements(self) -> list[str]:
            return [*super().construct_create_table_statements(),
                    "CREATE TABLE IF NOT EXISTS stock_rows (position INTEGER PRIMARY KEY, "
                    "stream TEXT NOT NULL, version INTEGER NOT NULL, type TEXT NOT NULL)"]

        def insert_row(self, event: Any, tracking: Any) -> None:
            with self.datastore.transaction(commit=True) as cursor:
                cursor.execute("INSERT INTO stock_rows VALUES (?, ?, ?, ?)",
                               (tracking.notification_id, str(event.originator_id), event.originator_version,
                                type(event).__qualname__))
                self._insert_tracking(cursor, tracking)

    class PostgresStockView(PostgresTrackingRecorder):
        def __init__(self, datastore: Any, **kwargs: Any):
            super().__init__(datastore, **kwargs)
            schema = Identifier(self.datastore.schema)
            self.sql_create_statements.append(SQL(
                "CREATE TABLE IF NOT EXISTS {0}.stock_rows (position BIGINT PRIMARY KEY, "
                "stream TEXT NOT NULL, version INTEGER NOT NULL, type TEXT NOT NULL)").format(schema))
            self.insert_row_statement = SQL("INSERT INTO {0}.stock_rows VALUES (%s, %s, %s, %s)").format(schema)

        def insert_row(self, event: Any, tracking: Any) -> None:
            with self.datastore.transaction(commit=True) as cursor:
                cursor.execute(self.insert_row_statement,
                               (tracking.notification_id, str(event.originator_id), event.originator_version,
                                type(event).__qualname__))
                self._insert_tracking(cursor, tracking)

    class StockProjection(Projection):
        """One row per event, with its tracking, in one transaction per event."""

        name = "stock"
        target = 0
        finished = threading.Event()
        finished_at = 0.0
        latencies: list[float] = []
        bar: Any = None

        def process_event(self, domain_event: Any, tracking: Any) -> None:
            started = time.perf_counter()
            self.view.insert_row(domain_event, tracking)
            cls = type(self)
            cls.latencies.append(time.perf_counter() - started)
            if cls.bar is not None:
                cls.bar.update(1)
            if tracking.notification_id >= cls.target and not cls.finished.is_set():
                cls.finished_at = time.perf_counter()
                cls.finished.set()

    return StockProjection, SQLiteStockView, PostgresStockView


def stock_phase(url: str, events: int) -> dict[str, Any]:
    from eventsourcing.persistence import InfrastructureFactory, Tracking
    from eventsourcing.projection import ProjectionRunner
    from eventsourcing.utils import Environment

    from events.chronicle import Chronicle
    from events.storage import library_settings

    projection_class, sqlite_view, postgres_view = _stock_classes()
    postgres = url.startswith("postgres")
    settings = library_settings(url)
    with _chronicle(url) as chronicle:  # where the first `events` events end
        target = chronicle.recorder.select_notifications(None, events)[-1].id
    projection_class.target = target
    with common.progress_bar(total=events, unit="ev", desc="stock projection") as bar:
        projection_class.bar = bar
        started = time.perf_counter()
        if postgres:
            env = {"TIMELINE_DATABASE_URL": url, **settings}
            with ProjectionRunner(application_class=Chronicle, projection_class=projection_class,
                                  view_class=postgres_view, env=env) as runner:
                while not projection_class.finished.wait(0.5):
                    runner.run_forever(timeout=0.001)  # re-raises an error of the processing thread
                    if runner.is_interrupted.is_set():
                        raise RuntimeError("the projection runner stopped before the last event")
            driver = "eventsourcing.projection.ProjectionRunner (LISTEN/NOTIFY subscription)"
        else:
            chronicle = _chronicle(url)
            view = InfrastructureFactory.construct(Environment(projection_class.name, settings)) \
                .tracking_recorder(sqlite_view)
            projection = projection_class(view)
            after = view.max_tracking_id(chronicle.name) or 0
            while not projection_class.finished.is_set():
                for notification in chronicle.recorder.select_notifications(after, BATCH, inclusive_of_start=False):
                    projection.process_event(chronicle.mapper.to_domain_event(notification),
                                             Tracking(chronicle.name, notification.id))
                    after = notification.id
                    if projection_class.finished.is_set():
                        break
            chronicle.close()
            driver = "pull loop (select_notifications pages of 1,000) calling Projection.process_event"
        seconds = projection_class.finished_at - started
    return {"phase": "stock", "events": events, "seconds": round(seconds, 3), "rate": round(events / seconds, 1),
            "event_ms": common.summary(projection_class.latencies[:events]), "driver": driver}


def main() -> None:
    p = common.parser(__doc__.split("\n\n")[0], n=1_000_000, backend="sqlite")
    p.add_argument("--postgres-n", type=int, help="N for PostgreSQL when both backends run (default: --n)")
    p.add_argument("--stock-events", type=int, default=20_000, help="events for the one-per-transaction baseline")
    args, chosen, facts = common.begin(p)
    results: dict[str, Any] = {}
    with common.Stores() as stores:
        for backend in chosen:
            n = args.postgres_n if backend == "postgres" and args.postgres_n else args.n
            developments = common.developments_for_events(n, CORRECT, RETRACT, RESTORE)
            url = stores.url(backend, "replay")
            print(f"{backend}: building a store of ~{n:,} events ({developments:,} developments)", file=sys.stderr)
            phases = {"build": common.run_phase(common.build_store, url, developments, seed=args.seed,
                                                correct=CORRECT, retract=RETRACT, restore=RESTORE)}
            phases["rebuild"] = common.run_phase(rebuild_phase, url)
            phases["decode"] = common.run_phase(decode_phase, url)
            stock = min(args.stock_events, phases["build"]["events"])
            phases["stock"] = common.run_phase(stock_phase, url, stock)
            stores.drop(url)
            rebuild, decode, stock_run = phases["rebuild"], phases["decode"], phases["stock"]
            results[backend] = {
                "n": n,
                "phases": phases,
                "fraction_of_decode": round(rebuild["rate"] / decode["rate"], 3),
                "multiple_of_stock": round(rebuild["rate"] / stock_run["rate"], 1),
                "targets": {"fraction_of_decode": TARGET_OF_DECODE, "multiple_of_stock": TARGET_OF_STOCK,
                            "peak_rss_mb": TARGET_RSS_MB},
                "met": {"fraction_of_decode": rebuild["rate"] >= TARGET_OF_DECODE * decode["rate"],
                        "multiple_of_stock": rebuild["rate"] >= TARGET_OF_STOCK * stock_run["rate"],
                        "peak_rss_mb": rebuild["peak_rss_mb"] < TARGET_RSS_MB},
            }

    print()
    for backend, r in results.items():
        build = r["phases"]["build"]
        print(f"{backend}: store of {build['events']:,} events ({build['counts']}), "
              f"built in {build['build_seconds']:,.0f}s (not part of the replay figures), {build['store_mb']} MB")
    print(common.table(
        ["backend", "phase", "events", "seconds", "events/s", "p50 ms", "p99 ms", "latency of", "client CPU s",
         "peak RSS MB"],
        [[backend, name, p["events"], p["seconds"], p["rate"], (p.get("batch_ms") or p["event_ms"])["p50"],
          (p.get("batch_ms") or p["event_ms"])["p99"], "1,000 events" if "batch_ms" in p else "1 event",
          p["cpu_seconds"], p["peak_rss_mb"]]
         for backend, r in results.items() for name, p in r["phases"].items() if name != "build"]))
    print()
    print("Rebuild CPU time per event, in µs (this process's; the database's own work is in `write` and "
          "`indexes` on SQLite, and mostly in the server on PostgreSQL):")
    parts = ("read", "decode", "rows", "write", "indexes")
    print(common.table(
        ["backend", *parts, "total", "share of rows"],
        [[backend, *(r["phases"]["rebuild"]["cpu_us_per_event"][part] for part in parts),
          round(sum(r["phases"]["rebuild"]["cpu_us_per_event"].values()), 1),
          f"{r['phases']['rebuild']['cpu_us_per_event']['rows'] / sum(r['phases']['rebuild']['cpu_us_per_event'].values()):.0%}"]
         for backend, r in results.items()]))
    print()
    print(common.table(
        ["backend", "rebuild events/s", "÷ decode", "target", "× stock", "target", "peak RSS MB", "target",
         "verdict"],
        [[backend, r["phases"]["rebuild"]["rate"], f"{r['fraction_of_decode']:.2f}", f"≥ {TARGET_OF_DECODE}",
          f"{r['multiple_of_stock']:.1f}×", f"> {TARGET_OF_STOCK:.0f}×", r["phases"]["rebuild"]["peak_rss_mb"],
          f"< {TARGET_RSS_MB:.0f}",
          ", ".join(f"{k} {common.verdict(v)}" for k, v in r["met"].items())]
         for backend, r in results.items()]))
    print(common.load_note(p for r in results.values() for p in r["phases"].values()))
    print(f"Main process peak RSS {common.peak_rss_mb():.0f} MB (each phase's ru_maxrss is at least this).")
    common.write_json(args.json, {"benchmark": "replay", "command": common.command_line(), "machine": facts,
                                  "results": results})

if __name__ == "__main__":
    main()
