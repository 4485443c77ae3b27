"""Reads under a worker's threads, in process: each read called by one thread, then by
``--threads`` threads at once (as a worker of ``timeline serve`` runs them), with the CPU
time and the wall time per call.

In one thread a read costs what its SQL and Python cost. In many, every statement (and
every row it steps to) releases the interpreter lock, and another thread takes it: the
difference between the two is what a read pays for those hand-overs, without HTTP.

- ``SELECT 1``: one trivial statement through the store's pool;
- ``timeline``: a page of 50 filtered by one actor and 1950-2000 (the page of
  ``bench/http_load.py``);
- ``actor state``: an actor on a day.

For each backend, a store of 500 actors and N developments is built first (not timed,
``common.build_store``); each read then takes the same (seeded) random arguments in
both runs.

    PYTHONPATH=. .venv/bin/python bench/contention.py --n 10000 --backend sqlite --threads 16
"""

from __future__ import annotations

import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402  (standard library only: the main process stays lean)


def contention_phase(url: str, *, threads: int, calls: int, seed: int) -> dict[str, Any]:
    from bench.synthetic import ACTORS, actor_slug
    from events.chronicle import Chronicle
    from timeline.projector import Projector
    from timeline.queries import Reader, TimelineQuery
    from timeline.service import freeze_startup_objects

    chronicle = Chronicle(env={"TIMELINE_DATABASE_URL": url})
    projector = Projector(chronicle)
    projector.catch_up()
    reader = Reader(projector)
    rng = random.Random(seed)
    actors = [actor_slug(rng.randrange(ACTORS)) for _ in range(calls)]
    years = [rng.randint(1925, 2024) for _ in range(calls)]
    reads = {
        "SELECT 1": lambda i: reader._select("SELECT 1 AS one"),
        "timeline": lambda i: reader.timeline(TimelineQuery(actors=[actors[i]], date_from="1950-01-01",
                                                            date_to="2000-12-31", limit=50)),
        "actor state": lambda i: reader.actor_state(actors[i], at=f"{years[i]}-06-15"),
    }
    freeze_startup_objects()
    results: dict[str, Any] = {}
    with common.progress_bar(total=2 * len(reads), unit="run", desc="reads") as bar:
        for name, read in reads.items():
            for _ in range(20):  # warm: the pool's connections, their compiled statements and page caches
                read(0)
            results[name] = {}
            for n in (1, threads):
                results[name][str(n)] = _run(read, n, calls)
                bar.update(1)
    projector.close()
    chronicle.close()
    return {"phase": "contention", "reads": results}


def _run(read: Any, threads: int, calls: int) -> dict[str, float]:
    """``calls`` reads shared among ``threads`` threads: CPU and wall time per call, in µs."""
    share = calls // threads

    def work(first: int) -> None:
        for i in range(first, first + share):
            read(i)

    workers = [threading.Thread(target=work, args=(t * share,)) for t in range(threads)]
    cpu, wall = time.process_time(), time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    done = share * threads
    return {"cpu_us": round((time.process_time() - cpu) * 1e6 / done, 1),
            "wall_us": round((time.perf_counter() - wall) * 1e6 / done, 1)}


def main() -> None:
    p = common.parser(__doc__.split("\n\n")[0], n=10_000, backend="sqlite")
    p.add_argument("--threads", type=int, default=16, help="threads calling each read at once")
    p.add_argument("--calls", type=int, default=3000, help="calls of each read, in each run")
    args, chosen, facts = common.begin(p)
    results: dict[str, Any] = {}
    with common.Stores() as stores:
        for backend in chosen:
            url = stores.url(backend, "contention")
            print(f"{backend}: building a store of {args.n:,} developments", file=sys.stderr)
            common.run_phase(common.build_store, url, args.n, seed=args.seed, catch_up=True)
            results[backend] = common.run_phase(contention_phase, url, threads=args.threads, calls=args.calls,
                                                seed=args.seed)
            stores.drop(url)
    print()
    print(common.table(
        ["backend", "read", "CPU µs, 1 thread", f"CPU µs, {args.threads} threads", "wall µs, 1 thread",
         f"wall µs, {args.threads} threads"],
        [[backend, name, runs["1"]["cpu_us"], runs[str(args.threads)]["cpu_us"], runs["1"]["wall_us"],
          runs[str(args.threads)]["wall_us"]]
         for backend, r in results.items() for name, runs in r["reads"].items()]))
    print()
    print(common.load_note(results.values()))
    common.write_json(args.json, {"benchmark": "contention", "command": common.command_line(), "machine": facts,
                                  "results": results})


if __name__ == "__main__":
    main()
