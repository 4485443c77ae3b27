"""Query benchmark: latency of the main read queries over N developments, in-process.

For each backend, two phases, each in a fresh process:

1. ``build`` (not timed): the 500 actors and N synthetic developments through
   ``transfer.import_commands``, with ~5% corrections, ~1% retractions and
   restorations of half of those through ``Chronicle.execute`` (as in
   ``bench/replay.py``), then ``Projector.catch_up()``.
2. ``queries``: on PostgreSQL first ``VACUUM ANALYZE`` (see :func:`vacuum`); for each
   query kind, a few warm-up calls, then up to ``--iterations``
   calls (or until ``--budget`` seconds are spent on the kind), each with a randomly
   chosen (seeded) actor, year, date or development number; latency of each call
   with ``time.perf_counter``, and the CPU time this process spent on it
   (``time.process_time``: on SQLite all of the query's work, which other work on the
   machine does not inflate; on PostgreSQL the server's work is not in it):

   - ``timeline``: ``Reader.timeline(TimelineQuery(actors=[one actor],
     date_from=<Jan 1>, date_to=<Dec 31 of a year>, limit=50))``;
   - ``timeline as_of``: the same with ``as_of`` a past log position (10-90% of the log);
   - ``timeline, several actors``: a page of 50 of the developments of any of two or three
     actors, with no date range (not among the issue's targets: the shape whose time
     grew with the store until their walks were merged);
   - ``free text``: ``Reader.timeline(TimelineQuery(q="Development <k>:", limit=50))``,
     which matches one development;
   - ``free text, common``: the same with ``q`` one of the names that every synthetic
     title holds ("Paschinjan", "Пашинян", "Փաշինյան");
   - ``actor state``: ``Reader.actor_state(<actor>, at=<a day>)``.

   Before the calls, the process freezes its start-up objects, as each worker of
   ``timeline serve`` does (``timeline.service.freeze_startup_objects``): otherwise
   the garbage collector's full collections, which scan them all, land in about one
   call in a hundred.

The target is p99 <= 20 ms for each, on SQLite. For every query the SQL statements
it ran are timed too, and their plans (``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN
ANALYZE`` on PostgreSQL) are printed for the queries that miss the target.

    PYTHONPATH=. .venv/bin/python bench/query.py --n 1000000 --backend sqlite --json bench/results/query-sqlite.json
"""

from __future__ import annotations

import random
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402  (standard library only: the main process stays lean)

CORRECT, RETRACT, RESTORE = 0.05, 0.01, 0.5
TARGET_P99_MS = 20.0
KINDS = ("timeline", "timeline as_of", "free text", "free text, common", "actor state", "timeline, several actors")
"""In this order, so that the random choices of the earlier kinds stay those of earlier runs."""
WARM_UP = 3


def queries_phase(url: str, developments: int, *, iterations: int, budget: float, seed: int) -> dict[str, Any]:
    from bench.synthetic import ACTORS, actor_slug
    from events.chronicle import Chronicle
    from timeline.projector import Projector
    from timeline.queries import Reader, TimelineQuery
    from timeline.service import freeze_startup_objects

    chronicle = Chronicle(env={"TIMELINE_DATABASE_URL": url})
    projector = Projector(chronicle)
    if projector.lag():
        raise RuntimeError("the projections are not up to date")
    projector.catch_up()  # nothing to apply; the projector knows its position, as a service's does from start-up
    if url.startswith("postgresql"):
        vacuum(url)
    reader = Reader(projector)
    view = projector.view
    head = projector.position()
    rng = random.Random(seed)

    # Every SQL statement a query runs, with its last parameters and its times.
    statements: dict[tuple[str, str], dict[str, Any]] = {}
    recording: dict[str, Any] = {"kind": None}
    select = view.select

    def timed_select(statement: str, tables: dict[str, str], params: Any = (), snapshot: Any = None,
                     **options: Any) -> list[dict[str, Any]]:
        started = time.perf_counter()
        rows = select(statement, tables, params, snapshot, **options)
        if recording["kind"] is not None:
            entry = statements.setdefault((recording["kind"], shape(statement)), {"times": [], "rows": 0})
            entry["times"].append(time.perf_counter() - started)
            entry["statement"], entry["params"], entry["tables"] = statement, list(params), tables
            entry["rows"] += len(rows)
        return rows

    view.select = timed_select

    def year() -> int:
        return rng.randint(1925, 2024)

    def actor() -> str:
        return actor_slug(rng.randrange(ACTORS))

    def timeline() -> int:
        y = year()
        return len(reader.timeline(TimelineQuery(actors=[actor()], date_from=f"{y}-01-01", date_to=f"{y}-12-31",
                                                 limit=50)).items)

    def timeline_as_of() -> int:
        y = year()
        return len(reader.timeline(TimelineQuery(actors=[actor()], date_from=f"{y}-01-01", date_to=f"{y}-12-31",
                                                 limit=50, as_of=rng.randint(head // 10, head * 9 // 10))).items)

    def timeline_several_actors() -> int:
        return len(reader.timeline(TimelineQuery(actors=[actor() for _ in range(rng.randint(2, 3))], limit=50)).items)

    def free_text() -> int:
        return len(reader.timeline(TimelineQuery(q=f"Development {rng.randrange(developments)}:", limit=50)).items)

    def free_text_common() -> int:
        return len(reader.timeline(TimelineQuery(q=rng.choice(["Paschinjan", "Пашинян", "Փաշինյան"]),
                                                 limit=50)).items)

    def actor_state() -> int:
        state = reader.actor_state(actor(), at=f"{year()}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")
        return state["involvement"]["developments"]

    calls = {"timeline": timeline, "timeline as_of": timeline_as_of, "free text": free_text,
             "free text, common": free_text_common, "actor state": actor_state,
             "timeline, several actors": timeline_several_actors}
    results: dict[str, Any] = {}
    freeze_startup_objects()
    for kind in KINDS:
        call = calls[kind]
        warm_up = time.perf_counter()
        for _ in range(WARM_UP):  # fewer if the query is slow
            call()
            if time.perf_counter() - warm_up > budget / 10:
                break
        latencies, cpu, sizes = [], [], []
        recording["kind"] = kind
        spent = time.perf_counter()
        with common.progress_bar(total=iterations, unit="q", desc=kind) as bar:
            for _ in range(iterations):
                started, started_cpu = time.perf_counter(), time.process_time()
                sizes.append(call())
                latencies.append(time.perf_counter() - started)
                cpu.append(time.process_time() - started_cpu)
                bar.update(1)
                if time.perf_counter() - spent > budget:
                    break
        recording["kind"] = None
        results[kind] = {**common.summary(latencies), "cpu": common.summary(cpu),
                         "mean_result_size": round(sum(sizes) / len(sizes), 1),
                         "statements": []}
    for (kind, _), entry in statements.items():  # the plan of the last call of each statement
        plan = explain(view, entry["statement"], entry["tables"], entry["params"])
        results[kind]["statements"].append({
            "sql": shape(view.dialect.sql(entry["statement"], entry["tables"])), "ms": common.summary(entry["times"]),
            "rows_per_call": round(entry["rows"] / len(entry["times"]), 1), "params": entry["params"],
            "plan": plan})
    projector.close()
    chronicle.close()
    return {"phase": "queries", "position": head, "queries": results}


def vacuum(url: str) -> None:
    """``VACUUM ANALYZE`` of the store's tables, as autovacuum does on a live store some
    time after a bulk load: it marks the pages all-visible, which index-only scans need
    (otherwise they read the table row by row), and gathers the planner's statistics."""
    import psycopg
    from psycopg import sql

    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(common.POSTGRES, autocommit=True) as connection:
        tables = [row[0] for row in connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))]
        for table in tables:
            connection.execute(sql.SQL("VACUUM ANALYZE {}.{}").format(sql.Identifier(schema), sql.Identifier(table)))


def shape(statement: str) -> str:
    """A statement with its ``IN (?, ?, ...)`` lists collapsed, so that one query with lists
    of different lengths counts as one statement."""
    return re.sub(r"\bIN \((?:\s*(?:\?|%s)\s*,)*\s*(?:\?|%s)\s*\)", "IN (?, …)", statement)


def explain(view: Any, statement: str, tables: dict[str, str], params: list[Any]) -> list[str]:
    """The plan of a statement: ``EXPLAIN QUERY PLAN`` (SQLite) as an indented tree, or
    ``EXPLAIN ANALYZE`` (PostgreSQL)."""
    sql = view.dialect.sql(statement, tables)
    postgres = view.dialect.placeholder != "?"
    with view.datastore.transaction(commit=False) as cursor:
        cursor.execute(("EXPLAIN ANALYZE " if postgres else "EXPLAIN QUERY PLAN ") + sql, tuple(params))
        rows = [dict(row) for row in cursor.fetchall()]
    if postgres:
        return [next(iter(row.values())) for row in rows]
    depth = {0: -1}
    lines = []
    for row in rows:
        depth[row["id"]] = depth.get(row["parent"], -1) + 1
        lines.append("  " * depth[row["id"]] + row["detail"])
    return lines


def main() -> None:
    p = common.parser(__doc__.split("\n\n")[0], n=1_000_000, backend="sqlite")
    p.add_argument("--postgres-n", type=int, help="N for PostgreSQL when both backends run (default: --n)")
    p.add_argument("--iterations", type=int, default=200, help="measured calls of each query")
    p.add_argument("--budget", type=float, default=60.0,
                   help="seconds at most per query kind (fewer iterations if a query is slow)")
    args, chosen, facts = common.begin(p)
    results: dict[str, Any] = {}
    with common.Stores() as stores:
        for backend in chosen:
            n = args.postgres_n if backend == "postgres" and args.postgres_n else args.n
            url = stores.url(backend, "query")
            print(f"{backend}: building a store of {n:,} developments", file=sys.stderr)
            build = common.run_phase(common.build_store, url, n, seed=args.seed, correct=CORRECT, retract=RETRACT,
                                     restore=RESTORE, catch_up=True)
            run = common.run_phase(queries_phase, url, n, iterations=args.iterations, budget=args.budget,
                                   seed=args.seed)
            stores.drop(url)
            for entry in run["queries"].values():
                entry["met"] = entry["p99"] <= TARGET_P99_MS
            results[backend] = {"n": n, "build": build, "queries": run}

    print()
    for backend, r in results.items():
        build = r["build"]
        print(f"{backend}: {r['n']:,} developments, {build['events']:,} events ({build['counts']}); built in "
              f"{build['build_seconds']:,.0f}s, projected in {build['catch_up_seconds']:,.0f}s (not timed); "
              f"{build['store_mb']} MB")
    print(common.table(
        ["backend", "query", "n", "mean ms", "p50 ms", "p99 ms", "max ms", "CPU p50 ms", "CPU p99 ms",
         "rows returned", "target p99", "verdict"],
        [[backend, kind, q["n"], q["mean"], q["p50"], q["p99"], q["max"], q["cpu"]["p50"], q["cpu"]["p99"],
          q["mean_result_size"], f"≤ {TARGET_P99_MS:.0f} ms", common.verdict(q["met"])]
         for backend, r in results.items() for kind, q in r["queries"]["queries"].items()]))
    for backend, r in results.items():
        for kind, q in r["queries"]["queries"].items():
            if q["met"]:
                continue
            print(f"\n## {backend}: {kind} misses the target (p99 {q['p99']:.1f} ms)")
            for statement in q["statements"]:
                ms = statement["ms"]
                params = statement["params"]
                shown = params if len(params) <= 8 else [*params[:8], f"... {len(params)} in all"]
                print(f"\n-- {ms['n']} calls, mean {ms['mean']:.1f} ms, p99 {ms['p99']:.1f} ms, "
                      f"{statement['rows_per_call']} rows per call; last parameters {shown}")
                print(statement["sql"])
                print("\n".join("   " + line for line in statement["plan"]))
    print()
    print(common.load_note(p for r in results.values() for p in (r["build"], r["queries"])))
    print(f"Main process peak RSS {common.peak_rss_mb():.0f} MB.")
    common.write_json(args.json, {"benchmark": "query", "command": common.command_line(), "machine": facts,
                                  "results": results})


if __name__ == "__main__":
    main()
