"""Workers on sockets of their own (``timeline serve``'s default, ``SO_REUSEPORT``) against
one socket shared by the workers (``--no-reuse-port``), alternated: writes from 32
concurrent clients and computed actor-state reads, and how the clients' 32 keep-alive
connections fell on the three workers (half a second into each run).

    PYTHONPATH=. .venv/bin/python bench/spread.py [--alternations 3] [--requests 6000]

Needs `hey` (Debian package `hey`). Each server runs on the same SQLite store (the seed
plus ``--developments`` synthetic ones) with kept answers off, so each read is computed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
from pathlib import Path

import psutil

from bench import common
from bench.http_load import BIN, Server, hey, measured, prepare, served
from bench.synthetic import ONE_WRITE
from timeline.cli import THREADS, WORKERS

MODES = {"own sockets": "--reuse-port", "one shared socket": "--no-reuse-port"}


def connections_per_worker(server: Server) -> list[int]:
    """How many established connections each worker holds, most first."""
    port = int(server.url.rsplit(":", 1)[1])
    return sorted((sum(1 for c in worker.net_connections("tcp") if c.laddr.port == port
                       and c.status == psutil.CONN_ESTABLISHED) for worker in psutil.Process(server.pid).children()),
                  reverse=True)


def load(server: Server, path: str, requests: int, *args: str) -> dict:
    """hey against ``path`` (after a third as many unmeasured requests): the rate by hey's
    own clock, the server's CPU per request, and the connections each worker held half
    a second into the run."""
    hey(server, path, requests // 3, 32, *args)
    held: list[int] = []
    sample = threading.Timer(0.5, lambda: held.extend(connections_per_worker(server)))
    sample.start()
    result = measured([hey(server, path, requests, 32, *args)])
    sample.join()
    return {"rps": result["rps"], "cpu_ms": result["cpu_ms"], "connections": held,
            "statuses": sorted(result["statuses"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alternations", type=int, default=3)
    parser.add_argument("--requests", type=int, default=6000, help="requests per measurement")
    parser.add_argument("--developments", type=int, default=10000, help="synthetic developments in the store")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if shutil.which("hey") is None:
        sys.exit("bench/spread.py needs hey: apt-get install hey")
    directory = tempfile.mkdtemp()
    env = {"TIMELINE_DATABASE_URL": f"sqlite:///{directory}/spread.db", "TIMELINE_READ_CACHE_MB": "0",
           "TIMELINE_WRITE_RATE_LIMIT": "10000000 per minute"}
    token = prepare(env, args.developments)
    body = Path(directory) / "development.json"
    body.write_text(json.dumps(ONE_WRITE))
    targets = {
        "POST /developments (32 writers)": ("/api/v1/developments", ["-m", "POST", "-T", "application/json", "-D",
                                                                     str(body), "-H", f"Authorization: Bearer {token}"]),
        "GET /actors/{id}/state, computed": ("/api/v1/actors/actor-7/state?at=1990-01-01", []),
    }
    results: dict[str, dict[str, list[dict]]] = {name: {mode: [] for mode in MODES} for name in targets}
    with common.progress_bar(total=args.alternations * len(MODES) * len(targets), desc="measurements", unit="run") as bar:
        for _ in range(args.alternations):
            for mode, option in MODES.items():
                command = [str(BIN / "timeline"), "serve", "--port", "{port}", "--workers", str(WORKERS),
                           "--threads", str(THREADS), option]
                with served(command, env) as server:
                    for name, (path, hey_args) in targets.items():
                        results[name][mode].append(load(server, path, args.requests, *hey_args))
                        bar.update()
    shutil.rmtree(directory)
    print(f"{args.alternations} alternations of {args.requests} requests, 32 concurrent, {WORKERS} workers of "
          f"{THREADS} threads; connections: per worker, half a second into each run")
    for name, modes in results.items():
        print(name)
        for mode, runs in modes.items():
            print(f"  {mode:18} {statistics.median(r['rps'] for r in runs):>6.0f}/s median; runs "
                  f"{', '.join(str(r['rps']) for r in runs)}/s; CPU ms "
                  f"{', '.join(str(r['cpu_ms']) for r in runs)}; connections "
                  f"{' '.join('/'.join(map(str, r['connections'])) for r in runs)}; statuses "
                  f"{sorted({s for r in runs for s in r['statuses']})}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
