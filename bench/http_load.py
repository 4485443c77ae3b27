"""HTTP benchmark: `timeline serve` on 127.0.0.1 (SQLite and PostgreSQL) under load from
`hey`, beside a trivial Flask endpoint served by the same gunicorn settings in the same
run.

    PYTHONPATH=. .venv/bin/python bench/http_load.py [--backend sqlite|postgres|both] [--requests 4000] [--rounds 3]

Needs `hey` (Debian package `hey`). Reports requests/s and p50/p99 latency for
POST /api/v1/developments (32 concurrent writers), GET /api/v1/timeline (a filtered
page of 50) and GET /api/v1/actors/{id}/state. Each read is measured twice: as served
(the worker keeps the answer while the projections stand still, api/cache.py) and by a
second server with that cache off (TIMELINE_READ_CACHE_MB=0), which computes every
answer.

This machine's speed drifts by a factor of two within seconds (the trivial endpoint
gave 1,858 and 7,150 requests/s in consecutive measurements), so one baseline per run
cannot carry the comparison: every server stays up for the whole run, and in each of
several rounds each endpoint and the trivial endpoint take turns in short slices
(``--slices``), so that both are measured at nearly the same moments. A rate is the
slices' requests over the time hey itself measured for them (process start-up left
out). The report gives each endpoint's median rate and the median of its per-round
ratios to the trivial endpoint, and the CPU time the server's processes spent per
request (from /proc: the gunicorn master, its workers and the workers it reaped), which
hey's own share of the two cores does not enter.
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
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


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


@dataclass(frozen=True)
class Server:
    """A server started by :func:`served`: where it answers, and its master's pid."""

    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """CPU time the server's processes have spent so far: the master's own and that of
        the workers it reaped (``cutime``, ``cstime``), and that of its live workers."""
        tick = os.sysconf("SC_CLK_TCK")
        master = _stat(self.pid)
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        live = sum(sum(_stat(int(child))[11:13]) for child in children)
        return (sum(master[11:15]) + live) / tick


def _stat(pid: int) -> list[int]:
    """The fields of /proc/PID/stat after the process name (utime is [11], stime [12],
    cutime [13], cstime [14]); zeros for a process that has just exited."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return [0] * 15
    return [int(field) if field.lstrip("-").isdigit() else 0 for field in fields]


def hey(server: Server, path: str, n: int, c: int, *args: str, warm: bool = False) -> dict:
    """Runs hey for n requests: how many it sent, over how long by its own clock, their
    latencies and statuses, from its per-request CSV, and the server's CPU time meanwhile.
    ``warm``: first an unmeasured run of n/2 (right after a start, the timeline's first
    4,000 requests ran at 932/s and the next at 2,156/s: each thread's first requests open
    store connections and fill caches)."""
    url = f"{server.url}{path}"
    if warm:
        subprocess.run(["hey", "-n", str(max(n // 2, c)), "-c", str(c), *args, url], capture_output=True, check=True)
    cpu = server.cpu_seconds()
    out = subprocess.run(["hey", "-n", str(n), "-c", str(c), "-o", "csv", *args, url],
                         capture_output=True, text=True, check=True).stdout
    cpu = server.cpu_seconds() - cpu
    rows = list(csv.DictReader(io.StringIO(out)))
    return {"requests": len(rows), "seconds": max(float(r["offset"]) + float(r["response-time"]) for r in rows),
            "server_cpu_seconds": cpu, "latencies": [float(r["response-time"]) * 1000 for r in rows],
            "statuses": dict(Counter(r["status-code"] for r in rows))}


def measured(slices: list[dict]) -> dict:
    """Slices of one endpoint as one measurement: rate, latency percentiles, and the
    server's CPU time per request."""
    latencies = sorted(ms for s in slices for ms in s["latencies"])
    cuts = statistics.quantiles(latencies, n=100)
    return {"requests": len(latencies), "rps": round(len(latencies) / sum(s["seconds"] for s in slices)),
            "p50_ms": round(cuts[49], 1), "p99_ms": round(cuts[98], 1),
            "cpu_ms": round(sum(s["server_cpu_seconds"] for s in slices) * 1000 / len(latencies), 3),
            "statuses": all_statuses(slices)}


def all_statuses(measurements: list[dict]) -> dict[str, int]:
    """How many answers of each status several measurements got."""
    return dict(sum((Counter(m["statuses"]) for m in measurements), Counter()))


def prepare(env: dict[str, str], developments: int) -> str:
    """Seeds the store, imports synthetic developments, projects them; answers a
    historian's token."""
    timeline = str(BIN / "timeline")
    run = {"env": {**os.environ, **env}, "check": True, "capture_output": True}
    subprocess.run([timeline, "seed"], **run)
    from bench.synthetic import write_commands

    data = Path(tempfile.mkdtemp()) / "data.jsonl"
    write_commands(data, developments)
    subprocess.run([timeline, "import", str(data)], **run)
    subprocess.run([timeline, "project"], **run)
    return subprocess.run([timeline, "token", "create", "bench", "--role", "historian"], text=True,
                          **run).stdout.strip()


def run_backend(url: str, trivial: Server, requests: int, developments: int, rounds: int,
                slices: int) -> dict[str, list[dict]]:
    """Every endpoint in every round, taking turns with the trivial endpoint in ``slices``
    slices of ``requests`` in all."""
    from bench.synthetic import ONE_WRITE
    from timeline.cli import THREADS, WORKERS

    env = {"TIMELINE_DATABASE_URL": url, "TIMELINE_WRITE_RATE_LIMIT": "10000000 per minute"}

    token = prepare(env, developments)
    body = Path(tempfile.mkdtemp()) / "development.json"
    body.write_text(json.dumps(ONE_WRITE))
    write = ["-m", "POST", "-T", "application/json", "-D", str(body), "-H", f"Authorization: Bearer {token}"]
    reads = {
        "GET /timeline (filtered page of 50)": "/api/v1/timeline?actor=actor-7&from=1950-01-01&to=2000-12-31&limit=50",
        "GET /actors/{id}/state": "/api/v1/actors/actor-7/state?at=1990-01-01",
    }
    command = [str(BIN / "timeline"), "serve", "--port", "{port}", "--workers", str(WORKERS), "--threads", str(THREADS)]
    with served(command, env) as kept, served(command, {**env, "TIMELINE_READ_CACHE_MB": "0"}) as computed:
        targets = {"POST /developments (32 writers)": (kept, "/api/v1/developments", write)}
        targets |= {f"{name}, kept answer": (kept, path, []) for name, path in reads.items()}
        targets |= {f"{name}, computed each time": (computed, path, []) for name, path in reads.items()}
        results: dict[str, list[dict]] = {name: [] for name in targets}
        for round_ in range(rounds):
            for name, (server, path, args) in targets.items():
                baseline, measuring = [], []
                for slice_ in range(slices):
                    warm = round_ == 0 and slice_ == 0
                    baseline.append(hey(trivial, "/ping", requests // slices, 32, warm=warm))
                    measuring.append(hey(server, path, requests // slices, 32, *args, warm=warm))
                before, result = measured(baseline), measured(measuring)
                results[name].append({**result, "trivial_rps": before["rps"], "trivial_cpu_ms": before["cpu_ms"],
                                      "vs_trivial": result["rps"] / before["rps"]})
                print(f"  round {round_ + 1}: {name}: {result['rps']}/s, {result['cpu_ms']} ms CPU; trivial "
                      f"{before['rps']}/s, {before['cpu_ms']} ms CPU", file=sys.stderr)
    return results


@contextmanager
def served(command: list[str], env: dict[str, str]) -> Iterator[Server]:
    """``command`` (with ``{port}`` in it) serving on a free port, until the block ends."""
    port = free_port()
    server = subprocess.Popen([part.format(port=port) for part in command], env={**os.environ, **env}, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(f"http://127.0.0.1:{port}/healthz" if "timeline" in command[0] else f"http://127.0.0.1:{port}/ping")
        yield Server(f"http://127.0.0.1:{port}", server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)


def summary(rounds: list[dict]) -> dict:
    """The median round (by its ratio to the trivial endpoint), with the range of ratios."""
    ordered = sorted(rounds, key=lambda r: r["vs_trivial"])
    median = ordered[len(ordered) // 2]
    return {"rps": statistics.median(r["rps"] for r in rounds), "p50_ms": median["p50_ms"],
            "p99_ms": median["p99_ms"], "vs_trivial": median["vs_trivial"],
            "vs_trivial_range": (ordered[0]["vs_trivial"], ordered[-1]["vs_trivial"]),
            "trivial_rps": statistics.median(r["trivial_rps"] for r in rounds),
            "cpu_ms": statistics.median(r["cpu_ms"] for r in rounds),
            "trivial_cpu_ms": statistics.median(r["trivial_cpu_ms"] for r in rounds), "statuses": all_statuses(rounds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--requests", type=int, default=4000, help="requests per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--slices", type=int, default=3,
                        help="turns of each endpoint and the trivial one per round")
    parser.add_argument("--developments", type=int, default=10000, help="synthetic developments in the store")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if shutil.which("hey") is None:
        sys.exit("bench/http_load.py needs hey: apt-get install hey")
    from api.access_log import ACCESS_LOG_FORMAT
    from timeline.cli import THREADS, WORKERS

    loads = {"start": os.getloadavg()[0]}
    report: dict[str, dict[str, list[dict]]] = {}
    trivial_app = [str(BIN / "gunicorn"), "-w", str(WORKERS), "-k", "gthread", "--threads", str(THREADS), "-b",
                   "127.0.0.1:{port}", "--reuse-port", "--access-logfile", "-", "--access-logformat",
                   ACCESS_LOG_FORMAT, "--logger-class", "api.access_log.AccessLog", "bench.trivial_app:app"]
    with served(trivial_app, {}) as trivial:
        if args.backend in ("sqlite", "both"):
            directory = tempfile.mkdtemp()
            report["sqlite"] = run_backend(f"sqlite:///{directory}/bench.db", trivial, args.requests,
                                           args.developments, args.rounds, args.slices)
            shutil.rmtree(directory)
        if args.backend in ("postgres", "both"):
            schema = f"bench_http_{os.getpid()}"
            try:
                report["postgres"] = run_backend(f"{POSTGRES}?schema={schema}", trivial, args.requests,
                                                 args.developments, args.rounds, args.slices)
            finally:
                import psycopg

                with psycopg.connect(POSTGRES, autocommit=True) as connection:
                    connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    loads["end"] = os.getloadavg()[0]
    print(f"{args.rounds} rounds of {args.requests} requests per endpoint, 32 concurrent, in {args.slices} slices "
          f"each taking turns with the trivial endpoint (GET /ping, same gunicorn settings); load average "
          f"{loads['start']:.2f} at the start, {loads['end']:.2f} at the end")
    print(f"{'':58} {'req/s':>6} {'p50 ms':>7} {'p99 ms':>7} {'trivial':>8}  ÷ trivial (range)  "
          f"{'CPU ms':>6} {'(trivial)':>9}  statuses")
    summaries = {}
    for backend, results in report.items():
        print(backend)
        for name, rounds in results.items():
            s = summaries.setdefault(backend, {})[name] = summary(rounds)
            low, high = s["vs_trivial_range"]
            print(f"  {name:56} {s['rps']:>6.0f} {s['p50_ms']:>7} {s['p99_ms']:>7} {s['trivial_rps']:>8.0f}  "
                  f"{s['vs_trivial']:>4.0%} ({low:.0%}-{high:.0%})  {s['cpu_ms']:>6.2f} {s['trivial_cpu_ms']:>9.2f}  "
                  f"{s['statuses']}")
    if args.json:
        args.json.write_text(json.dumps({"rounds": report, "summary": summaries, "load_average": loads}, indent=2))


if __name__ == "__main__":
    main()
