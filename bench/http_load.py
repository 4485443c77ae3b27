"""HTTP benchmark: `timeline serve` on 127.0.0.1 (SQLite and PostgreSQL) under load from
`hey`, beside a trivial Flask endpoint served by the same gunicorn settings in the same
run.

    PYTHONPATH=. .venv/bin/python bench/http_load.py [--backend sqlite|postgres|both] [--requests 5000]

Needs `hey` (Debian package `hey`). Reports requests/s and p50/p99 latency for
POST /api/v1/developments (32 concurrent writers), GET /api/v1/timeline (a filtered
page of 50) and GET /api/v1/actors/{id}/state, and the trivial endpoint's rate. Each read
is measured twice: as served (the worker keeps the answer while the projections stand
still, api/cache.py) and with that cache off (TIMELINE_READ_CACHE_MB=0), computed by
every request.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
WORKERS, THREADS = "2", "16"  # `timeline serve`'s defaults


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def hey(url: str, n: int, c: int, *args: str) -> dict:
    """Runs hey twice: a warm-up of n/2 requests, unmeasured (right after a start, the
    timeline's first 4,000 requests ran at 932/s and the next at 2,156/s: each thread's
    first requests open store connections and fill caches), then n requests, whose rate
    and latency percentiles come from hey's per-request CSV."""
    subprocess.run(["hey", "-n", str(max(n // 2, c)), "-c", str(c), *args, url], capture_output=True, check=True)
    started = time.perf_counter()
    out = subprocess.run(["hey", "-n", str(n), "-c", str(c), "-o", "csv", *args, url],
                         capture_output=True, text=True, check=True).stdout
    elapsed = time.perf_counter() - started
    rows = list(csv.DictReader(io.StringIO(out)))
    latencies = sorted(float(r["response-time"]) * 1000 for r in rows)
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r["status-code"]] = statuses.get(r["status-code"], 0) + 1
    cuts = statistics.quantiles(latencies, n=100)
    return {"requests": len(rows), "rps": round(len(rows) / elapsed), "p50_ms": round(cuts[49], 1),
            "p99_ms": round(cuts[98], 1), "statuses": statuses}


def serve(cmd: list[str], env: dict[str, str], port: int) -> subprocess.Popen:
    process = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    wait_up(f"http://127.0.0.1:{port}/healthz" if "timeline" in cmd[0] else f"http://127.0.0.1:{port}/ping")
    return process


def run_backend(url: str, requests: int, developments: int) -> dict:
    env = {"TIMELINE_DATABASE_URL": url, "TIMELINE_WRITE_RATE_LIMIT": "10000000 per minute"}
    timeline = str(BIN / "timeline")
    subprocess.run([timeline, "seed"], env={**os.environ, **env}, check=True, capture_output=True)
    from bench.synthetic import write_commands

    data = Path(tempfile.mkdtemp()) / "data.jsonl"
    write_commands(data, developments)
    subprocess.run([timeline, "import", str(data)], env={**os.environ, **env}, check=True, capture_output=True)
    subprocess.run([timeline, "project"], env={**os.environ, **env}, check=True, capture_output=True)
    token = subprocess.run([timeline, "token", "create", "bench", "--role", "historian"],
                           env={**os.environ, **env}, check=True, capture_output=True, text=True).stdout.strip()
    body = Path(tempfile.mkdtemp()) / "development.json"
    body.write_text(json.dumps({
        "title": "Benchmark development", "category": "statement", "when": "2023-09-19", "certainty": "reported",
        "actors": [{"actor": "armenia", "role": "speaker"}], "sources": [{"citation": "bench", "quote": "q"}]}))
    reads = {
        "GET /timeline (filtered page of 50)": "/api/v1/timeline?actor=actor-7&from=1950-01-01&to=2000-12-31&limit=50",
        "GET /actors/{id}/state": "/api/v1/actors/actor-7/state?at=1990-01-01",
    }
    command = [timeline, "serve", "--port", "{port}", "--workers", WORKERS, "--threads", THREADS]
    results = {}
    with served(command, env) as base:
        results["POST /developments (32 writers)"] = hey(
            f"{base}/api/v1/developments", requests, 32, "-m", "POST", "-T", "application/json", "-D", str(body),
            "-H", f"Authorization: Bearer {token}")
        for name, path in reads.items():  # no writes meanwhile: answers are kept
            results[f"{name}, kept answer"] = hey(f"{base}{path}", requests, 32)
    with served(command, {**env, "TIMELINE_READ_CACHE_MB": "0"}) as base:
        for name, path in reads.items():
            results[f"{name}, computed each time"] = hey(f"{base}{path}", requests, 32)
    return results


@contextmanager
def served(command: list[str], env: dict[str, str]) -> Iterator[str]:
    """``command`` (with ``{port}`` in it) serving on a free port, until the block ends."""
    port = free_port()
    server = serve([part.format(port=port) for part in command], env, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def baseline(requests: int) -> dict:
    from timeline.cli import ACCESS_LOG_FORMAT

    command = [str(BIN / "gunicorn"), "-w", WORKERS, "-k", "gthread", "--threads", THREADS, "-b", "127.0.0.1:{port}",
               "--access-logfile", "-", "--access-logformat", ACCESS_LOG_FORMAT, "bench.trivial_app:app"]
    with served(command, {}) as base:
        return {"GET /ping (trivial Flask, same gunicorn settings)": hey(f"{base}/ping", requests, 32)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--developments", type=int, default=20000, help="synthetic developments in the store")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if shutil.which("hey") is None:
        sys.exit("bench/http_load.py needs hey: apt-get install hey")
    loads = {"start": os.getloadavg()[0]}
    report = {"baseline": baseline(args.requests)}
    if args.backend in ("sqlite", "both"):
        directory = tempfile.mkdtemp()
        report["sqlite"] = run_backend(f"sqlite:///{directory}/bench.db", args.requests, args.developments)
        shutil.rmtree(directory)
    if args.backend in ("postgres", "both"):
        schema = f"bench_http_{os.getpid()}"
        try:
            report["postgres"] = run_backend(f"{POSTGRES}?schema={schema}", args.requests, args.developments)
        finally:
            import psycopg

            with psycopg.connect(POSTGRES, autocommit=True) as connection:
                connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    report["baseline, again at the end"] = baseline(args.requests)
    trivial = statistics.mean(next(iter(report[k].values()))["rps"] for k in ("baseline", "baseline, again at the end"))
    loads["end"] = os.getloadavg()[0]
    print(f"load average (1 min): {loads['start']:.2f} at the start, {loads['end']:.2f} at the end "
          "(the machine's 2 cores are shared: compare with the trivial endpoint of the same run)")
    print(f"{'':52} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7}  vs trivial (mean of both runs)  statuses")
    for section, results in report.items():
        print(section)
        for name, r in results.items():
            print(f"  {name:50} {r['rps']:>7} {r['p50_ms']:>7} {r['p99_ms']:>7}  {r['rps'] / trivial:>9.0%}  "
                  f"{r['statuses']}")
    if args.json:
        args.json.write_text(json.dumps({**report, "load_average": loads}, indent=2))


if __name__ == "__main__":
    main()
