"""Write benchmark below HTTP: concurrent historians recording developments through
``Service.execute`` (validation, group commit, projection before answering: the API's
write path without Flask and gunicorn), in one process or several on one store.

For each backend, in fresh processes:

- ``writes``: ``--processes`` processes (the API's worker processes) of ``--threads``
  threads each, every thread recording ``--n`` developments one after another, each
  waiting for its answer; writes/s over the slowest process's time, latency p50/p99
  per write, and the mean group (commands saved per transaction, counted by wrapping
  ``Chronicle.save``);
- baseline, in the same run: the library alone saving one minimal aggregate per
  transaction (``Application.save``, one ``Created`` event) from one thread, the rate
  that grouping concurrent writes has to beat.

    PYTHONPATH=. .venv/bin/python bench/writes.py --backend both --threads 32 --processes 1
    PYTHONPATH=. .venv/bin/python bench/writes.py --backend sqlite --threads 16 --processes 2
"""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

BASELINE_SAVES = 3000


def prepare(url: str) -> None:
    """The store's tables and the one actor the developments name."""
    from timeline.service import Service

    service = Service({"TIMELINE_DATABASE_URL": url})
    service.execute("register_actor", {"id": "armenia", "name": "Armenia", "kind": "state"}, recorded_by="bench")
    service.close()


def writes_phase(url: str, threads: int, per_thread: int, start_at: float) -> dict[str, Any]:
    from bench.synthetic import ONE_WRITE
    from timeline.service import Service

    service = Service({"TIMELINE_DATABASE_URL": url})
    service.execute("record_development", ONE_WRITE, recorded_by="bench")  # connections open, caches warm
    chronicle, groups = service.chronicle, []
    save = chronicle.save

    def counted(*objects: Any, **kwargs: Any) -> Any:
        groups.append(len(objects))
        return save(*objects, **kwargs)

    chronicle.save = counted
    latencies: list[list[float]] = [[] for _ in range(threads)]
    finished: list[float] = []

    def writer(mine: list[float]) -> None:
        for _ in range(per_thread):
            started = time.perf_counter()
            service.execute("record_development", ONE_WRITE, recorded_by="bench")
            mine.append(time.perf_counter() - started)
        finished.append(time.perf_counter())

    workers = [threading.Thread(target=writer, args=(mine,)) for mine in latencies]
    time.sleep(max(0.0, start_at - time.time()))  # the processes start together
    started = time.perf_counter()
    with common.progress_bar(total=threads * per_thread, unit="write", desc="writes") as bar:
        for worker in workers:
            worker.start()
        while any(worker.is_alive() for worker in workers):
            time.sleep(0.2)
            bar.n = sum(len(mine) for mine in latencies)
            bar.refresh()
        bar.n = sum(len(mine) for mine in latencies)
    seconds = max(finished) - started  # not when the progress bar looked last
    service.close()
    return {"writes": threads * per_thread, "seconds": seconds, "groups": len(groups),
            "latencies": [s for mine in latencies for s in mine]}


def concurrent_writes(url: str, processes: int, threads: int, per_thread: int) -> dict[str, Any]:
    """The ``writes`` phase in ``processes`` spawned processes at once, on one store."""
    common.call(prepare, url)
    start_at = time.time() + 3 + processes  # after every process has imported and opened the store
    with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
        runs = [f.result() for f in [pool.submit(writes_phase, url, threads, per_thread, start_at)
                                     for _ in range(processes)]]
    writes = sum(r["writes"] for r in runs)
    seconds = max(r["seconds"] for r in runs)
    return {"processes": processes, "threads": threads, "writes": writes, "rate": round(writes / seconds, 1),
            "latency_ms": common.summary([s for r in runs for s in r["latencies"]]),
            "mean_group": round(writes / sum(r["groups"] for r in runs), 1)}


def main() -> None:
    p = common.parser(__doc__.split("\n\n")[0], n=100, backend="sqlite")
    p.add_argument("--threads", type=int, default=32, help="writing threads per process")
    p.add_argument("--processes", type=int, default=1, help="processes writing to the store at once")
    args, chosen, facts = common.begin(p)
    results: dict[str, Any] = {}
    with common.Stores() as stores:
        for backend in chosen:
            baseline = common.run_phase(common.library_save_phase, stores.url(backend, "baseline"),
                                        BASELINE_SAVES, batch_size=1)
            writes = concurrent_writes(stores.url(backend, "writes"), args.processes, args.threads, args.n)
            results[backend] = {"writes": writes, "baseline": baseline}
    print()
    print(common.table(
        ["backend", "processes × threads", "writes", "writes/s", "p50 ms", "p99 ms", "mean group",
         "library, one event per transaction/s", "× library"],
        [[backend, f"{r['writes']['processes']} × {r['writes']['threads']}", r["writes"]["writes"],
          r["writes"]["rate"], r["writes"]["latency_ms"]["p50"], r["writes"]["latency_ms"]["p99"],
          r["writes"]["mean_group"], r["baseline"]["rate"], r["writes"]["rate"] / r["baseline"]["rate"]]
         for backend, r in results.items()]))
    common.write_json(args.json, {"benchmark": "writes", "command": common.command_line(), "machine": facts,
                                  "results": results})


if __name__ == "__main__":
    main()
