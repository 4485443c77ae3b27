"""Soak: a real `timeline serve` (2 gthread workers x 8 threads) on SQLite and on
PostgreSQL, under a realistic mix from 32 concurrent historians for `--minutes`, with
the whole server SIGKILLed every `--kill-every` seconds and started again. At the end
it audits the record: what `make test` proves in seconds (tests/test_reliability.py),
proved again over minutes and many crashes. Figures go into docs/reliability.md.

    PYTHONPATH=. .venv/bin/python bench/soak.py [--backend sqlite|postgres|both] [--minutes 10]
        [--kill-every 60] [--json PATH]

The mix: recordings of new developments (most writes), corrections, further sources,
retractions and restorations with If-Match (one in five corrections deliberately stale:
412 expected), reads of timelines, actor state and single developments, and writes
with an Idempotency-Key sent twice (the second answer must be the first). A write
whose answer was lost in a kill is retried as a careful client would: a recording by
its client-chosen id, a keyed write with its key.

Every write carries a mark (the development's id, or a unique reason or citation), so
the audit can find each one in the event log:

- acknowledged writes (2xx) are in the log exactly once, at the position they answered;
- refused writes (412, 409, 422) are absent; writes whose answer was lost (connection
  reset or refused during a kill) are absent or whole (one event, with what was sent);
- no event on the soak's streams that no client sent; no 5xx at all; connection errors
  only while the server was down;
- log positions unique and increasing, stream versions contiguous;
- deliberately stale writes refused with 412; an Idempotency-Key retry gets the original
  answer, also when the first answer was lost in a kill;
- projections equal a clean rebuild (`timeline.projector.differences`), the hash chain
  verifies (`timeline verify`), and developments read back after the last restart show
  every event of their stream;
- every start boots at the first try and the server never exits unless killed (if it
  does, the soak starts it again, as a supervisor would, and says so).

Exit status 1 if any of these fails. Also reported: writes/s, p50/p99 latency of writes
and reads per minute, the time from each kill until /readyz answers 200, and the peak
memory of the server's processes (from /proc). The server's output goes to
bench/results/soak-BACKEND-TIME.log.

The store starts with the seed and `timeline project`, so that the projection tables
exist before two workers race to create them on a fresh PostgreSQL schema. The server
runs a copy of events/, timeline/ and api/ taken at the start, so that edits made
meanwhile in the working tree do not change the code under test between restarts; the
JSON names the commit and the diff's hash.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

import requests  # noqa: E402

ROOT = common.ROOT
BIN = Path(sys.executable).parent
WORKERS, THREADS, CLIENTS = 2, 8, 32
TIMEOUT = (5, 30)
"""(connect, read) seconds for every request: a hang shows up as an error, not a stall."""
RESULTS = ROOT / "bench" / "results"
ACTORS = ("armenia", "azerbaijan", "russia", "turkey", "united-states", "france", "european-union", "nato",
          "csto", "pashinyan", "putin", "karabakh-armenians", "russian-peacekeepers", "ukraine")
CATEGORIES = ("statement", "appeal", "agree", "consult", "support", "cooperate", "accuse", "demand", "reject",
              "threaten", "mobilize", "coerce", "assault", "retreat", "institutional")
CERTAINTIES = ("confirmed", "reported", "claimed", "disputed", "denied")
MIX = {"record": 45, "correct": 10, "source": 6, "retract": 3, "restore": 1.5,
       "timeline": 14, "actor state": 8, "development": 10}
"""Relative weights of what a historian does next."""
STALE = 0.2
"""Share of corrections sent with a deliberately stale If-Match."""
KEYED = 0.2
"""Share of writes sent with an Idempotency-Key and then sent again with the same key."""
RETRIES = 5
"""Attempts per write whose answer was lost, counting the first."""
RACE_SIGNS = ("pg_type_typname_nsp_index", "does not exist", "Worker failed to boot")
"""What the projection-table race at worker boot on a fresh PostgreSQL schema logs."""


# The code under test, fixed for the whole run


def snapshot(directory: Path) -> dict[str, str]:
    """Copies the packages the server imports; names the commit and the uncommitted diff."""
    for package in ("events", "timeline", "api"):
        shutil.copytree(ROOT / package, directory / package, ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    diff = subprocess.run([*git, "diff", "HEAD", "--", "events", "timeline", "api"], capture_output=True).stdout
    changed = subprocess.run([*git, "diff", "HEAD", "--name-only", "--", "events", "timeline", "api"],
                             capture_output=True, text=True).stdout.split()
    return {"commit": commit, "uncommitted_diff_sha256": hashlib.sha256(diff).hexdigest()[:16],
            "uncommitted_files": changed}


# The server


class BootFailure(RuntimeError):
    pass


class Server:
    """`timeline serve` in its own process group, so that one SIGKILL takes the gunicorn
    master and its workers down at once, with no clean shutdown."""

    def __init__(self, env: dict[str, str], log: Path):
        self.env, self.log = env, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.up = threading.Event()

    def start(self, timeout: float = 90) -> dict[str, Any]:
        """Starts the server and waits until /readyz answers 200; the time that took."""
        started = time.monotonic()
        with self.log.open("a") as out:
            out.write(f"=== soak: timeline serve started at {time.strftime('%H:%M:%S')}\n")
            out.flush()
            self.process = subprocess.Popen(
                [str(BIN / "timeline"), "serve", "--port", str(self.port), "--workers", str(WORKERS),
                 "--threads", str(THREADS)], env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        while time.monotonic() < started + timeout:
            if self.process.poll() is not None:
                raise BootFailure(f"timeline serve exited with {self.process.returncode}")
            try:
                answer = requests.get(self.url + "/readyz", timeout=2)
                if answer.status_code == 200:
                    self.up.set()
                    return {"seconds": round(time.monotonic() - started, 2), "lag": answer.json().get("projection_lag")}
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.kill()
        raise BootFailure(f"/readyz did not answer 200 within {timeout}s")

    def kill(self) -> None:
        self.up.clear()
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # the master and its workers, no clean shutdown
        except ProcessLookupError:  # the whole group is gone already
            pass
        self.process.wait(timeout=30)

    def start_again(self, failures: list[str], attempts: int = 3) -> dict[str, Any] | None:
        """Starts the server, trying again after a failed boot (each failure noted); None if it never came up."""
        for _ in range(attempts):
            try:
                return self.start()
            except BootFailure as error:
                failures.append(f"{error}; log: {self.tail()}")
                self.kill()
        return None

    def died(self) -> bool:
        """The master exited although nobody killed it (e.g. 'Worker failed to boot')."""
        return self.up.is_set() and self.process is not None and self.process.poll() is not None

    def tail(self, lines: int = 12) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return " | ".join(line for line in text[-200:] if not line.startswith("127.0.0.1 "))[-1500:]

    def memory(self) -> dict[str, float] | None:
        """RSS and PSS of the whole process group now, and the highest VmHWM of any of its processes."""
        if self.process is None or self.process.poll() is not None:
            return None
        rss = pss = hwm = 0.0
        for pid in group_members(self.process.pid):
            status = proc_fields(f"/proc/{pid}/status", ("VmRSS:", "VmHWM:"))
            rollup = proc_fields(f"/proc/{pid}/smaps_rollup", ("Pss:",))
            rss += status.get("VmRSS:", 0)
            hwm = max(hwm, status.get("VmHWM:", 0))
            pss += rollup.get("Pss:", 0)
        return {"rss_mb": rss / 1024, "pss_mb": pss / 1024, "hwm_mb": hwm / 1024}


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as stat:
                fields_ = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields_[2]) == pgid:  # state, ppid, pgrp
            members.append(int(entry.name))
    return members


def proc_fields(path: str, names: tuple[str, ...]) -> dict[str, float]:
    """kB values of some lines of a /proc file (empty if the process is gone)."""
    found = {}
    try:
        with open(path, encoding="ascii") as lines:
            for line in lines:
                if line.startswith(names):
                    name, value = line.split()[:2]
                    found[name] = float(value)
    except OSError:
        pass
    return found


# What the historians send, and what became of it


@dataclass
class Answer:
    status: int | None
    """None: no HTTP answer (connection refused or reset, timeout)."""
    started: float
    ended: float
    body: Any = None
    replayed: bool = False
    error: str | None = None
    retry_after: float = 1
    """Seconds to wait before sending it again (``Retry-After``), as a careful client does."""

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def refused(self) -> bool:
        """A definite no: nothing was stored."""
        return self.status in (400, 404, 412, 422, 428, 429) or (self.status == 409 and not self.pending)

    @property
    def pending(self) -> bool:
        """409 'Request in progress': the key is held by a request whose outcome is unknown."""
        return self.status == 409 and isinstance(self.body, dict) and self.body.get("title") == "Request in progress"


@dataclass
class Attempt:
    """One write as a historian means it, with every answer it got (retries included)."""

    kind: str
    """record, correct, source, retract or restore."""
    development: str
    mark: str
    """What identifies its event in the log: the development's id for a recording, else a
    unique reason (or citation, for a source)."""
    expected: dict[str, Any]
    """What its event must say, to tell a whole event from a torn one."""
    stale: bool = False
    key: str | None = None
    if_match: str | None = None
    answers: list[Answer] = field(default_factory=list)
    replay_mismatch: str | None = None

    @property
    def acknowledged(self) -> Answer | None:
        return next((a for a in self.answers if a.acknowledged), None)

    def outcome(self) -> str:
        if self.acknowledged:
            return "acknowledged"
        if self.answers and all(a.refused for a in self.answers):
            return "refused"
        return "unknown"


@dataclass
class Known:
    version: int | None
    """None: a write to it had no answer or was refused as stale; read it before writing."""
    retracted: bool
    position: int


class Notebook:
    """What the historians know of the developments they recorded (from answers only)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.known: dict[str, Known] = {}
        self.order: list[str] = []
        self.position = 0

    def learn(self, ident: str, version: int | None, retracted: bool | None = None, position: int | None = None):
        with self.lock:
            entry = self.known.get(ident)
            if entry is None:
                self.known[ident] = Known(version, bool(retracted), position or 0)
                self.order.append(ident)
            else:
                if version is None or entry.version is None or version >= entry.version:
                    entry.version = version
                if retracted is not None:
                    entry.retracted = retracted
                entry.position = max(entry.position, position or 0)
            self.position = max(self.position, position or 0)

    def pick(self, rng: random.Random) -> tuple[str, Known] | None:
        with self.lock:
            if not self.order:
                return None
            ident = rng.choice(self.order[-3000:])
            entry = self.known[ident]
            return ident, Known(entry.version, entry.retracted, entry.position)


class Historian(threading.Thread):
    """One of the 32 clients: a requests session and a loop over the mix."""

    def __init__(self, number: int, soak: Soak, seed: int):
        super().__init__(name=f"historian-{number}", daemon=True)
        self.soak = soak
        self.rng = random.Random(seed * 1000 + number)
        self.session = requests.Session()
        self.requests: list[tuple[str, float, float, int | None, str | None]] = []
        """(what, started, seconds, status, why no answer) of every request, for rates and latencies."""
        self.attempts: list[Attempt] = []
        self.retry: list[tuple[float, Attempt, dict, str]] = []
        """Writes whose answer was lost: (not before, attempt, body, path)."""
        self.errors: list[dict[str, Any]] = []
        self.no_answers: dict[str, str] = {}
        """One example of each kind of missing answer (refused, reset, timeout, other)."""
        self.kinds, self.weights = zip(*MIX.items())

    def run(self) -> None:
        soak = self.soak
        while not soak.stop.is_set():
            if not soak.server.up.wait(timeout=1):
                continue
            if self.retry and self.retry[0][0] <= time.monotonic():
                self.again(*self.retry.pop(0)[1:])
                continue
            kind = self.rng.choices(self.kinds, self.weights)[0]
            try:
                getattr(self, kind.replace(" ", "_"))()
            except Exception as error:  # noqa: BLE001 - a bug in the soak itself must not pass silently
                self.errors.append({"soak_error": f"{type(error).__name__}: {error}"})
                soak.stop.set()
                raise
        deadline = time.monotonic() + 60  # the load has stopped: settle the writes still unanswered
        while self.retry and time.monotonic() < deadline:
            not_before, attempt, body, path = self.retry.pop(0)
            time.sleep(max(0.0, not_before - time.monotonic()))
            if soak.server.up.wait(timeout=30):
                self.again(attempt, body, path)

    # Requests

    def call(self, what: str, method: str, path: str, body: Any = None, headers: dict | None = None) -> Answer:
        started = time.monotonic()
        try:
            response = self.session.request(method, self.soak.server.url + path, json=body, timeout=TIMEOUT,
                                            headers={**self.soak.auth, **(headers or {})})
        except requests.RequestException as error:
            answer = Answer(None, started, time.monotonic(), error=f"{type(error).__name__}: {str(error)[:300]}")
            self.soak.tally["no answer"] += 1
            self.no_answers.setdefault(no_answer_kind(answer.error), f"{what} {path}: {answer.error}")
        else:
            try:
                parsed = response.json()
            except ValueError:
                parsed = response.text[:500]
            answer = Answer(response.status_code, started, time.monotonic(), parsed,
                            response.headers.get("Idempotent-Replayed") == "true",
                            retry_after=float(response.headers.get("Retry-After") or 1))
            if response.status_code >= 500:
                self.soak.tally["5xx"] += 1
                self.errors.append({"what": what, "path": path, "status": response.status_code,
                                    "at": round(started - self.soak.began, 2), "body": str(parsed)[:500]})
        self.requests.append((what, started, answer.ended - started, answer.status, no_answer_kind(answer.error)))
        self.soak.tally["requests"] += 1
        if answer.status is None and not self.soak.stop.is_set():
            self.soak.server.up.wait(timeout=30)  # the server is down: wait for it, as a client with backoff would
        return answer

    def write(self, attempt: Attempt, path: str, body: dict, if_match: str | None = None) -> Answer:
        headers = {"If-Match": if_match} if if_match is not None else {}
        if attempt.key:
            headers["Idempotency-Key"] = attempt.key
        self.attempts.append(attempt)
        answer = self.call(attempt.kind, "POST", path, body, headers)
        attempt.answers.append(answer)
        if answer.acknowledged:
            self.soak.tally["acknowledged"] += 1
            self.note(attempt, answer)
            if attempt.key:  # the answer is lost, as far as the client knows: send it again
                again = self.call(attempt.kind + " (retry)", "POST", path, body, headers)
                attempt.answers.append(again)
                if again.status is not None and (again.status, again.body, again.replayed) != (
                        answer.status, answer.body, True):
                    attempt.replay_mismatch = (f"first {answer.status} {str(answer.body)[:200]}; retry {again.status} "
                                               f"replayed={again.replayed} {str(again.body)[:200]}")
        elif attempt.stale and answer.status == 412:
            self.soak.tally["stale 412"] += 1
        elif answer.status == 412:
            self.soak.notebook.learn(attempt.development, None)
        elif not answer.refused:
            if attempt.kind != "record":
                self.soak.notebook.learn(attempt.development, None)
            if attempt.kind == "record" or attempt.key:
                self.retry.append((time.monotonic() + (answer.retry_after if answer.pending else 0), attempt, body, path))
        self.unexpected(attempt, answer, path)
        return answer

    def unexpected(self, attempt: Attempt, answer: Answer, path: str) -> None:
        """Keeps 4xx other than 412 for the report: refused, stored nothing, but not part of the plan."""
        if answer.status is not None and 400 <= answer.status < 500 and answer.status != 412:
            self.errors.append({"what": attempt.kind, "path": path, "status": answer.status,
                                "at": round(answer.started - self.soak.began, 2), "body": str(answer.body)[:300]})

    def again(self, attempt: Attempt, body: dict, path: str) -> None:
        """A write whose answer was lost, sent again: a recording by its id, a keyed write with its key."""
        headers = {"Idempotency-Key": attempt.key} if attempt.key else {}
        if attempt.if_match is not None:
            headers["If-Match"] = attempt.if_match
        answer = self.call(attempt.kind + " (after a lost answer)", "POST", path, body, headers)
        attempt.answers.append(answer)
        self.unexpected(attempt, answer, path)
        if answer.acknowledged:
            self.soak.tally["acknowledged"] += 1
            self.note(attempt, answer)
        elif not answer.refused and len(attempt.answers) < RETRIES:
            self.retry.append((time.monotonic() + (answer.retry_after if answer.pending else 0), attempt, body, path))

    def note(self, attempt: Attempt, answer: Answer) -> None:
        body = answer.body if isinstance(answer.body, dict) else {}
        document = body.get("development") or {}
        self.soak.notebook.learn(attempt.development, body.get("version"), document.get("retracted"),
                                 body.get("position"))

    # What a historian does

    def mark(self) -> str:
        return uuid.uuid4().hex

    def key(self) -> str | None:
        return f"soak-{uuid.uuid4().hex}" if self.rng.random() < KEYED else None

    def record(self) -> None:
        ident = str(uuid.uuid4())
        first, second = self.rng.sample(ACTORS, 2)
        day = date(2023, 1, 1) + timedelta(days=self.rng.randrange(365))
        when = self.rng.choice([day.isoformat(), day.isoformat(), f"{day:%Y-%m}", f"{day.isoformat()}~",
                                f"[{day.isoformat()}..{(day + timedelta(days=5)).isoformat()}]"])
        body = {
            "id": ident, "title": f"Soak {ident[:8]}: {first} and {second}", "language": "en",
            "category": self.rng.choice(CATEGORIES), "when": when, "certainty": self.rng.choice(CERTAINTIES),
            "actors": [{"actor": first, "role": "initiator"}, {"actor": second, "role": "target"}],
            "sources": [{"citation": f"Soak wire, {day.isoformat()}", "quote": f"{first} and {second}"}],
            "tags": ["soak"],
        }
        if self.rng.random() < 0.3:
            body["effects"] = [{"actor": first, "attribute": f"soak.{second}", "value": self.rng.choice(
                ["tense", "calm", "broken", None])}]
        attempt = Attempt("record", ident, ident, {"title": body["title"], "when": when}, key=self.key())
        self.write(attempt, "/api/v1/developments", body)

    def existing(self, want_retracted: bool | None = None) -> tuple[str, Known] | None:
        """A development to write to, read first if a write to it went unanswered."""
        for _ in range(5):
            picked = self.soak.notebook.pick(self.rng)
            if picked is None:
                return None
            ident, known = picked
            if known.version is None:
                self.development(ident)
                continue
            if want_retracted is None or known.retracted == want_retracted:
                return picked
        return None

    def change(self, kind: str, suffix: str, body_of, expected_of, want_retracted: bool | None = None) -> None:
        picked = self.existing(want_retracted)
        if picked is None:
            return
        ident, known = picked
        stale = kind == "correct" and self.rng.random() < STALE
        mark = self.mark()
        body = body_of(ident, mark)
        if_match = f'"{known.version - 1}"' if stale else f'"{known.version}"'
        attempt = Attempt(kind, ident, mark, expected_of(body), stale=stale, key=self.key(), if_match=if_match)
        self.write(attempt, f"/api/v1/developments/{ident}/{suffix}", body, if_match)

    def correct(self) -> None:
        def body(ident: str, mark: str) -> dict:
            changes: dict[str, Any] = {"title": f"Soak {ident[:8]} corrected {mark[:12]}"}
            if self.rng.random() < 0.3:
                changes["certainty"] = self.rng.choice(CERTAINTIES)
            return {"changes": changes, "reason": f"soak {mark}"}

        self.change("correct", "corrections", body,
                    lambda b: {"changes.title": b["changes"]["title"], "reason": b["reason"]})

    def source(self) -> None:
        self.change("source", "sources", lambda ident, mark: {"citation": f"Soak agency {mark}", "locator": "p. 1"},
                    lambda b: {"source.citation": b["citation"]})

    def retract(self) -> None:
        self.change("retract", "retraction", lambda ident, mark: {"reason": f"soak {mark}"},
                    lambda b: {"reason": b["reason"]}, want_retracted=False)

    def restore(self) -> None:
        self.change("restore", "restoration", lambda ident, mark: {"reason": f"soak {mark}"},
                    lambda b: {"reason": b["reason"]}, want_retracted=True)

    def timeline(self) -> None:
        query = f"actor={self.rng.choice(ACTORS)}&limit=50"
        roll = self.rng.random()
        if roll < 0.3:
            query += "&from=2023-03-01&to=2023-09-30"
        elif roll < 0.45:
            query += f"&category={self.rng.choice(CATEGORIES)}"
        elif roll < 0.6 and self.soak.notebook.position:
            query += f"&as_of={self.rng.randint(1, self.soak.notebook.position)}"
        self.read("timeline", f"/api/v1/timeline?{query}")

    def actor_state(self) -> None:
        at = (date(2023, 1, 1) + timedelta(days=self.rng.randrange(400))).isoformat()
        self.read("actor state", f"/api/v1/actors/{self.rng.choice(ACTORS)}/state?at={at}")

    def development(self, ident: str | None = None) -> None:
        if ident is None:
            picked = self.soak.notebook.pick(self.rng)
            if picked is None:
                return
            ident = picked[0]
        known = self.soak.notebook.known[ident]
        answer = self.read("development", f"/api/v1/developments/{ident}?min_position={known.position}")
        if answer.status == 200 and isinstance(answer.body, dict):
            self.soak.notebook.learn(ident, answer.body["version"], answer.body.get("retracted"))

    def read(self, what: str, path: str) -> Answer:
        answer = self.call(what, "GET", path)
        if answer.status is not None and answer.status != 200 and answer.status < 500:
            self.errors.append({"what": what, "path": path, "status": answer.status,
                                "at": round(answer.started - self.soak.began, 2), "body": str(answer.body)[:300]})
        return answer


# One soak on one backend


class Soak:
    def __init__(self, server: Server, token: str, seconds: float, kill_every: float, seed: int):
        self.server, self.seconds, self.kill_every, self.seed = server, seconds, kill_every, seed
        self.auth = {"Authorization": f"Bearer {token}"}
        self.stop = threading.Event()
        self.notebook = Notebook()
        self.tally: Counter[str] = Counter()
        self.kills: list[dict[str, Any]] = []
        self.deaths: list[dict[str, Any]] = []
        """Times the server exited on its own (the soak starts it again, as a supervisor would)."""
        self.lock = threading.Lock()
        """Held while the server is killed or started."""
        self.memory: list[dict[str, float]] = []
        self.loads: list[tuple[float, float]] = []
        self.began = time.monotonic()

    def run(self, backend: str) -> list[Historian]:
        historians = [Historian(n, self, self.seed) for n in range(CLIENTS)]
        self.began = time.monotonic()
        for historian in historians:
            historian.start()
        killer = threading.Thread(target=self.killer, daemon=True)
        killer.start()
        with common.progress_bar(total=int(self.seconds), unit="s", desc=f"soak {backend}") as bar:
            recent: list[tuple[float, int]] = []
            while (now := time.monotonic()) < self.began + self.seconds and not self.stop.is_set():
                time.sleep(1)
                if self.server.died():
                    self.recover()
                sample = self.server.memory()
                if sample:
                    self.memory.append(sample)
                if not self.loads or now - self.loads[-1][0] - self.began >= 10:
                    self.loads.append((now - self.began, os.getloadavg()[0]))
                recent.append((now, self.tally["acknowledged"]))
                recent = recent[-10:]
                rate = (recent[-1][1] - recent[0][1]) / max(recent[-1][0] - recent[0][0], 1e-9) if len(recent) > 1 else 0
                bar.set_postfix({"writes/s": f"{rate:.0f}", "acknowledged": self.tally["acknowledged"],
                                 "no answer": self.tally["no answer"], "5xx": self.tally["5xx"],
                                 "kills": len(self.kills), "up": "yes" if self.server.up.is_set() else "no"},
                                refresh=False)
                bar.update(int(now - self.began) - bar.n)
        self.stop.set()
        killer.join()
        for historian in historians:
            historian.join(timeout=120)
        return historians

    def recover(self) -> None:
        with self.lock:
            if not self.server.died():
                return
            death: dict[str, Any] = {"at": round(time.monotonic() - self.began, 1),
                                     "exit_code": self.server.process.returncode, "log": self.server.tail(),
                                     "boot_failures": []}
            self.server.kill()
            started = self.server.start_again(death["boot_failures"])
            death["ready_at"] = round(time.monotonic() - self.began, 1) if started else None
            self.deaths.append(death)
        if started is None:
            self.stop.set()

    def killer(self) -> None:
        """SIGKILLs the server every kill_every seconds (not in the last 10 s) and starts it again."""
        number = 1
        while not self.stop.wait(self.began + number * self.kill_every - time.monotonic()):
            if time.monotonic() > self.began + self.seconds - 10:
                return
            with self.lock:
                memory = self.server.memory()
                killed = time.monotonic()
                self.server.kill()
                kill: dict[str, Any] = {"at": round(killed - self.began, 1), "rss_before_mb": memory and
                                        round(memory["rss_mb"], 1), "boot_failures": []}
                started = self.server.start_again(kill["boot_failures"])
            if started is None:
                kill["ready_at"] = None
                self.kills.append(kill)
                self.stop.set()
                return
            kill["restart_seconds"] = started["seconds"]
            kill["down_seconds"] = round(time.monotonic() - killed, 2)
            kill["ready_at"] = round(time.monotonic() - self.began, 1)
            kill["lag_at_ready"] = started["lag"]
            self.kills.append(kill)
            number += 1


def run_backend(backend: str, args: argparse.Namespace, code: Path, stamp: str) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="timeline-soak-"))
    schema = f"soak_{uuid.uuid4().hex[:10]}"
    url = f"sqlite:///{directory}/soak.db" if backend == "sqlite" else f"{common.POSTGRES}?schema={schema}"
    env = {**os.environ, "PYTHONPATH": str(code), "TIMELINE_DATABASE_URL": url,
           "TIMELINE_WRITE_RATE_LIMIT": "100000000 per minute"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = RESULTS / f"soak-{backend}-{stamp}.log"
    server = Server(env, log)
    result: dict[str, Any] = {"backend": backend, "server_log": str(log.relative_to(ROOT)),
                              "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
                              "uptime_at_start": uptime()}
    try:
        timeline(env, "seed")
        timeline(env, "project")  # creates the projection tables before two workers race to (fresh schema)
        token = timeline(env, "token", "create", "soak", "--role", "historian")
        boot_failures: list[str] = []
        result["first_start"] = server.start_again(boot_failures) or {}
        result["first_start"]["boot_failures"] = boot_failures
        if not server.up.is_set():
            raise BootFailure(f"the server never came up: {boot_failures}")
        soak = Soak(server, token, args.minutes * 60, args.kill_every, args.seed)
        historians = soak.run(backend)
        served = read_back(server, soak, historians)
        server.kill()
        result.update(audit(url, env, soak, historians, served, log, boot_failures))
        result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        result["uptime_at_end"] = uptime()
        result["load_average_samples"] = [round(load, 2) for _, load in soak.loads]
    except Exception as error:  # noqa: BLE001 - reported as a failed run, with the server log kept
        import traceback

        traceback.print_exc()
        result["invariants"] = {"the soak completed": check(False, 1, [f"{type(error).__name__}: {error}"])}
    finally:
        server.kill()
        if backend == "postgres":
            common.drop_schemas([schema])
        shutil.rmtree(directory, ignore_errors=True)
    return result


def timeline(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(BIN / "timeline"), *args], env=env, capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise RuntimeError(f"timeline {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout.strip()


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def read_back(server: Server, soak: Soak, historians: list[Historian], sample: int = 300) -> dict[str, Any]:
    """Some acknowledged developments as the server serves them after its last restart:
    their versions, which the audit compares with their streams in the log."""
    acknowledged = sorted({a.development for h in historians for a in h.attempts if a.acknowledged})
    chosen = random.Random(soak.seed).sample(acknowledged, min(sample, len(acknowledged)))
    served: dict[str, Any] = {}
    with requests.Session() as session:
        for ident in chosen:
            try:
                answer = session.get(f"{server.url}/api/v1/developments/{ident}", headers=soak.auth,
                                     params={"min_position": soak.notebook.position}, timeout=TIMEOUT)
                served[ident] = answer.json().get("version") if answer.status_code == 200 else answer.status_code
            except requests.RequestException as error:
                served[ident] = type(error).__name__
    return served


# The audit

WRITES = ("record", "correct", "source", "retract", "restore")
READS = ("timeline", "actor state", "development")


def no_answer_kind(error: str | None) -> str | None:
    """Why a request got no HTTP answer: refused (server down), reset (killed mid-request or
    mid-answer), timeout."""
    if error is None:
        return None
    if "refused" in error:
        return "refused"
    if "Timeout" in error or "timed out" in error:
        return "timeout"
    if any(sign in error for sign in ("reset", "RemoteDisconnected", "aborted", "IncompleteRead")):
        return "reset"
    return "other"


def read_log(url: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Every stored event, read with the library as tests/test_reliability.py does:
    position, stream, version, type, and the fields the audit compares."""
    from events.chronicle import Chronicle

    chronicle = Chronicle(env={"TIMELINE_DATABASE_URL": url})
    events, problems, after = [], [], 0
    try:
        while notes := chronicle.recorder.select_notifications(after, 1000, inclusive_of_start=False):
            for note in notes:
                entry = {"position": note.id, "stream": str(note.originator_id), "version": note.originator_version,
                         "type": note.topic.rsplit(".", 1)[-1]}
                if note.topic.startswith("timeline:Development."):
                    event = chronicle.mapper.to_domain_event(note)
                    entry["fields"] = {
                        "title": getattr(event, "title", None), "when": getattr(event, "when", None),
                        "reason": getattr(event, "reason", None),
                        "changes.title": (getattr(event, "changes", None) or {}).get("title"),
                        "source.citation": (getattr(event, "source", None) or {}).get("citation"),
                    }
                events.append(entry)
            if notes[-1].id <= after:
                problems.append(f"select_notifications went backwards after position {after}")
                break
            after = notes[-1].id
    finally:
        chronicle.close()
    return events, problems


def mark_of(event: dict[str, Any]) -> str | None:
    kind, found = event["type"], event.get("fields") or {}
    if kind == "Recorded":
        return event["stream"]
    if kind == "SourceAdded":
        citation = found.get("source.citation") or ""
        return citation.removeprefix("Soak agency ") if citation.startswith("Soak agency ") else None
    reason = found.get("reason") or ""
    return reason.removeprefix("soak ") if reason.startswith("soak ") else None


def converged(url: str) -> list[str]:
    """Projections caught up, then compared with a clean rebuild (as tests/test_reliability.py)."""
    from events.chronicle import Chronicle
    from timeline.projector import Projector, differences

    chronicle = Chronicle(env={"TIMELINE_DATABASE_URL": url})
    projector = Projector(chronicle)
    projector.catch_up()
    projector.close()
    found = differences(chronicle)
    chronicle.close()
    return found


def during(request: tuple, soak: Soak, outages: list[dict[str, Any]], slack: float) -> bool:
    """Whether a request overlapped an outage (from its start to the server answering /readyz again)."""
    start = request[1] - soak.began
    return any(o["at"] - slack <= start + request[2] and start <= (o.get("ready_at") or 1e9) + 0.5 for o in outages)


def check(ok: bool, count: int, examples: list | None = None, **extra: Any) -> dict[str, Any]:
    return {"ok": ok, "count": count, "examples": (examples or [])[:10], **extra}


def audit(url: str, env: dict[str, str], soak: Soak, historians: list[Historian], served: dict[str, Any],
          log: Path, first_boot_failures: list[str]) -> dict[str, Any]:
    """Checks every invariant, each as {ok, count, examples}, and computes the figures."""
    attempts = [a for h in historians for a in h.attempts]
    by_mark = {a.mark: a for a in attempts}
    events, read_problems = read_log(url)
    ours = {a.development for a in attempts}
    stored: dict[str, list[dict[str, Any]]] = defaultdict(list)
    unexplained, streams = [], defaultdict(list)
    for event in events:
        if event["stream"] not in ours:
            continue  # the seed's actors and developments
        streams[event["stream"]].append(event)
        mark = mark_of(event)
        if mark in by_mark and by_mark[mark].development == event["stream"]:
            stored[mark].append(event)
        else:
            unexplained.append(event)

    lost, duplicated, refused_stored, torn, misplaced = [], [], [], [], []
    answer_lost: Counter[str] = Counter()
    for mark, attempt in by_mark.items():
        found, outcome = stored.get(mark, []), attempt.outcome()
        statuses = [(a.status, round(a.started - soak.began, 2)) for a in attempt.answers]
        if len(found) > 1:
            duplicated.append({"mark": mark, "kind": attempt.kind, "development": attempt.development,
                               "positions": [e["position"] for e in found], "answers": statuses})
        if outcome == "acknowledged" and not found:
            lost.append({"mark": mark, "kind": attempt.kind, "development": attempt.development, "answers": statuses})
        if outcome == "refused" and found:
            refused_stored.append({"mark": mark, "kind": attempt.kind, "development": attempt.development,
                                   "answers": statuses, "position": found[0]["position"]})
        if outcome == "unknown":
            answer_lost["stored" if found else "absent"] += 1
        for event in found:
            differing = {k: (v, event["fields"].get(k)) for k, v in attempt.expected.items()
                         if event["fields"].get(k) != v}
            if differing:
                torn.append({"mark": mark, "position": event["position"], "sent_and_stored": differing})
        first = attempt.acknowledged
        said = first.body if first and isinstance(first.body, dict) else {}
        if found and said.get("position") is not None and \
                (found[0]["position"], found[0]["version"]) != (said["position"], said.get("version")):
            misplaced.append({"mark": mark, "answered": (said["position"], said.get("version")),
                              "stored": (found[0]["position"], found[0]["version"])})

    positions = [e["position"] for e in events]
    increasing = all(b > a for a, b in zip(positions, positions[1:]))
    broken = [{"development": s, "versions": [e["version"] for e in items][:20], "first": items[0]["type"]}
              for s, items in streams.items()
              if [e["version"] for e in items] != list(range(1, len(items) + 1)) or items[0]["type"] != "Recorded"]
    behind = [{"development": ident, "served": version, "in_log": len(streams.get(ident, []))}
              for ident, version in served.items() if version != len(streams.get(ident, []))]

    requests_ = [r for h in historians for r in h.requests]
    no_answer = [r for r in requests_ if r[3] is None]
    outside = [r for r in no_answer if not during(r, soak, soak.kills, 0.5)]
    unplanned = [r for r in outside if during(r, soak, soak.deaths, 1.5)]  # counted as deaths, not twice
    outside = [r for r in outside if r not in unplanned]
    boot_failures = [*first_boot_failures, *(f for k in soak.kills + soak.deaths for f in k["boot_failures"])]
    server_errors = [e for h in historians for e in h.errors if e.get("status", 0) >= 500]
    stale = [a for a in attempts if a.stale]
    stale_taken = [{"mark": a.mark, "answers": [x.status for x in a.answers]} for a in stale  # 409: its key is held
                   if any(x.status not in (None, 412) and not x.pending for x in a.answers)]
    keyed = [a for a in attempts if a.key]
    mismatched = [{"mark": a.mark, "key": a.key, "detail": a.replay_mismatch} for a in keyed if a.replay_mismatch]
    # A keyed write held by a dead request ends acknowledged, or refused with nothing stored
    # (its stream may have moved on during the lease): a refusal of a write that is in the
    # log is no answer.
    stuck = [a for a in keyed if not a.acknowledged and any(x.pending for x in a.answers)
             and not (a.answers[-1].refused and not stored.get(a.mark))]
    soak_errors = [e for h in historians for e in h.errors if "soak_error" in e]

    print("audit: projections against a clean rebuild, then the hash chain ...", file=sys.stderr)
    differences = converged(url)
    verify = subprocess.run([str(BIN / "timeline"), "verify"], env=env, capture_output=True, text=True, timeout=1800)
    log_text = log.read_text(errors="replace")
    access_5xx = len(re.findall(r'" 5\d\d \d', log_text))

    invariants = {
        "acknowledged writes are in the log (none lost)": check(not lost, len(lost), lost),
        "no write is in the log twice": check(not duplicated, len(duplicated), duplicated),
        "acknowledged writes are at the position they answered": check(not misplaced, len(misplaced), misplaced),
        "refused writes are not in the log": check(not refused_stored, len(refused_stored), refused_stored),
        "writes whose answer was lost are absent or whole": check(not torn, len(torn), torn),
        "no event that no client sent": check(not unexplained, len(unexplained), unexplained),
        "log positions unique and increasing": check(increasing and not read_problems, int(not increasing),
                                                     read_problems),
        "stream versions contiguous from a recording": check(not broken, len(broken), broken),
        "no 5xx": check(not server_errors and not access_5xx, len(server_errors), server_errors,
                        in_access_log=access_5xx),
        "no connection errors while the server was up": check(
            not outside, len(outside), [(r[0], round(r[1] - soak.began, 2), r[4]) for r in outside]),
        "deliberately stale writes refused with 412": check(not stale_taken, len(stale_taken), stale_taken,
                                                            sent=len(stale)),
        "an Idempotency-Key retry gets the original answer": check(not mismatched, len(mismatched), mismatched,
                                                                  retried=len(keyed)),
        "an Idempotency-Key retry after a kill gets an answer": check(
            not stuck, len(stuck), [{"key": a.key, "kind": a.kind, "development": a.development,
                                     "stored": bool(stored.get(a.mark)),
                                     "answers": [(x.status, round(x.started - soak.began, 1)) for x in a.answers]}
                                    for a in stuck],
            stored_nevertheless=sum(1 for a in stuck if stored.get(a.mark))),
        "developments read back after the last restart show their whole stream": check(
            not behind, len(behind), behind, read=len(served)),
        "projections equal a clean rebuild": check(not differences, len(differences), differences),
        "the hash chain verifies (timeline verify)": check(verify.returncode == 0, verify.returncode,
                                                           [(verify.stdout + verify.stderr).strip()[-500:]]),
        "every restart became ready": check(all(k.get("ready_at") for k in soak.kills),
                                            sum(1 for k in soak.kills if not k.get("ready_at"))),
        "every start booted at the first try": check(not boot_failures, len(boot_failures), boot_failures),
        "the server never exited on its own": check(not soak.deaths, len(soak.deaths), soak.deaths,
                                                    no_answer_meanwhile=len(unplanned)),
        "the soak itself ran without errors": check(not soak_errors, len(soak_errors), soak_errors),
    }
    return {"invariants": invariants,
            "figures": figures(soak, historians, attempts, events, answer_lost, no_answer, outside, log_text)}


def taken_over(attempts: list[Attempt]) -> dict[str, int]:
    """How the keyed writes held by a killed request ended, once their lease ran out. One
    that finds itself in the record answers without a log position: a recording by its id
    derived from the key, a write to an existing stream by its own event
    (``Chronicle.landed``). One run afresh answers with its position."""
    ended: Counter[str] = Counter()
    for attempt in attempts:
        if not attempt.key or not any(answer.pending for answer in attempt.answers):
            continue
        last = attempt.answers[-1]
        if last.acknowledged:
            body = last.body if isinstance(last.body, dict) else {}
            ended["found itself in the record" if body.get("position") is None else "run again"] += 1
        else:
            ended["refused" if last.refused else "no answer"] += 1
    return dict(ended)


def figures(soak: Soak, historians: list[Historian], attempts: list[Attempt], events: list[dict[str, Any]],
            answer_lost: Counter, no_answer: list, outside: list, log_text: str) -> dict[str, Any]:
    requests_ = [r for h in historians for r in h.requests]
    is_write = lambda what: what.split(" (")[0] in WRITES and not what.endswith("(retry)")  # noqa: E731
    minutes: list[dict[str, Any]] = []
    for minute in range(int(-(-soak.seconds // 60))):
        lo, hi = soak.began + 60 * minute, min(soak.began + 60 * (minute + 1), soak.began + soak.seconds)
        done = [r for r in requests_ if lo <= r[1] + r[2] < hi]
        acknowledged = [r for r in done if is_write(r[0]) and r[3] is not None and 200 <= r[3] < 300]
        minutes.append({
            "minute": minute + 1, "writes_acknowledged": len(acknowledged),
            "writes_per_s": round(len(acknowledged) / (hi - lo), 1),
            "write_ms": pick(common.summary([r[2] for r in done if r[0] in WRITES and r[3]])),
            "read_ms": pick(common.summary([r[2] for r in done if r[0] in READS and r[3]])),
            "no_answer": sum(1 for r in done if r[3] is None),
            "kills": sum(1 for k in soak.kills if 60 * minute <= k["at"] < 60 * (minute + 1)),
            "load_1min": next((round(load, 2) for at, load in soak.loads if at >= 60 * minute), None)})
    by_kind: dict[str, Counter] = defaultdict(Counter)
    for attempt in attempts:
        by_kind[attempt.kind][attempt.outcome()] += 1
    restarts = [k["restart_seconds"] for k in soak.kills if k.get("restart_seconds") is not None]
    acknowledged = sum(1 for a in attempts if a.acknowledged)
    return {
        "seconds": soak.seconds,
        "kills": len(soak.kills),
        "kill_details": soak.kills,
        "requests": len(requests_),
        "statuses": dict(sorted(Counter(str(r[3]) for r in requests_).items())),
        "writes_acknowledged": acknowledged,
        "writes_by_kind": {k: dict(v) for k, v in sorted(by_kind.items())},
        "answer_lost": {"stored": answer_lost["stored"], "absent": answer_lost["absent"]},
        "retried_after_a_lost_answer": sum(1 for r in requests_ if r[0].endswith("(after a lost answer)")),
        "stale_412": sum(1 for a in attempts if a.stale and any(x.status == 412 for x in a.answers)),
        "other_412": sum(1 for a in attempts if not a.stale and any(x.status == 412 for x in a.answers)),
        "idempotent_retries": sum(1 for r in requests_ if r[0].endswith("(retry)")),
        "idempotent_retries_replayed": sum(1 for a in attempts if a.key and len(a.answers) > 1 and a.answers[1].replayed),
        "keys_taken_over_after_a_kill": taken_over(attempts),
        "no_answer_during_kills": len(no_answer) - len(outside),
        "no_answer_outside_kills": len(outside),
        "no_answer_why": dict(Counter(r[4] for r in no_answer)),
        "no_answer_examples": {k: v for h in historians for k, v in h.no_answers.items()},
        "server_exits_on_its_own": len(soak.deaths),
        "other_non_2xx": [e for h in historians for e in h.errors if 0 < e.get("status", 0) < 500][:10],
        "events_in_log": len(events),
        "writes_per_s": round(acknowledged / soak.seconds, 1),
        "write_ms": common.summary([r[2] for r in requests_ if r[0] in WRITES and r[3]]),
        "read_ms": common.summary([r[2] for r in requests_ if r[0] in READS and r[3]]),
        "ms_by_request": {k: pick(common.summary([r[2] for r in requests_ if r[0] == k and r[3]]))
                          for k in sorted({r[0] for r in requests_})},
        "per_minute": minutes,
        "restart_seconds": {"n": len(restarts), "min": min(restarts, default=None),
                            "median": round(statistics.median(restarts), 2) if restarts else None,
                            "max": max(restarts, default=None)},
        "peak_memory_mb": {"group_rss": round(max((m["rss_mb"] for m in soak.memory), default=0), 1),
                           "group_pss": round(max((m["pss_mb"] for m in soak.memory), default=0), 1),
                           "one_process_hwm": round(max((m["hwm_mb"] for m in soak.memory), default=0), 1)},
        "boot_race_signs_in_log": {sign: log_text.count(sign) for sign in RACE_SIGNS},
        "tracebacks_in_log": log_text.count("Traceback (most recent call last)"),
    }


def pick(summary: dict[str, float]) -> dict[str, float]:
    return {k: summary[k] for k in ("n", "p50", "p99") if k in summary}


# Report


def report(results: dict[str, Any]) -> None:
    for backend, result in results["backends"].items():
        f, inv = result.get("figures", {}), result.get("invariants", {})
        print(f"\n== {backend}: {f.get('seconds', 0) / 60:.1f} min, {f.get('kills')} kills, "
              f"load {result.get('load_average_at_start')} -> {result.get('load_average_at_end')}")
        print(common.table(["invariant", "holds", "count"], [(name, v["ok"], v["count"]) for name, v in inv.items()]))
        for name, v in inv.items():
            if not v["ok"]:
                print(f"FAILED: {name}: {json.dumps(v['examples'][:3], default=str)[:1500]}")
        if not f:
            continue
        rows = [
            ("writes acknowledged", f.get("writes_acknowledged")),
            ("writes by kind (outcomes)", json.dumps(f.get("writes_by_kind"))),
            ("answer lost in a kill, never acknowledged: stored / absent", f"{f['answer_lost']['stored']} / "
                                                                          f"{f['answer_lost']['absent']}"),
            ("retries after a lost answer", f.get("retried_after_a_lost_answer")),
            ("deliberately stale (412) / other 412", f"{f.get('stale_412')} / {f.get('other_412')}"),
            ("Idempotency-Key retries", f.get("idempotent_retries")),
            ("no answer during kills / outside", f"{f.get('no_answer_during_kills')} / "
                                                 f"{f.get('no_answer_outside_kills')}"),
            ("statuses", json.dumps(f.get("statuses"))),
            ("writes/s (whole run)", f.get("writes_per_s")),
            ("write ms p50 / p99", ms(f["write_ms"])),
            ("read ms p50 / p99", ms(f["read_ms"])),
            ("restart s min / median / max", f"{f['restart_seconds']['min']} / {f['restart_seconds']['median']} / "
                                             f"{f['restart_seconds']['max']}"),
            ("peak memory MB (group RSS / PSS / one process)",
             f"{f['peak_memory_mb']['group_rss']} / {f['peak_memory_mb']['group_pss']} / "
             f"{f['peak_memory_mb']['one_process_hwm']}"),
            ("boot race signs in the server log", json.dumps(f.get("boot_race_signs_in_log"))),
        ]
        print(common.table(["figure", "value"], rows))
        print(common.table(["minute", "writes/s", "write p50/p99 ms", "read p50/p99 ms", "no answer", "kills", "load"],
                           [(m["minute"], m["writes_per_s"], ms(m["write_ms"]), ms(m["read_ms"]), m["no_answer"],
                             m["kills"], m["load_1min"]) for m in f.get("per_minute", [])]))


def ms(summary: dict[str, float]) -> str:
    return f"{summary['p50']:.0f} / {summary['p99']:.0f}" if summary.get("n") else "–"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--minutes", type=float, default=10, help="load per backend")
    parser.add_argument("--kill-every", type=float, default=60, help="seconds between SIGKILLs of the server")
    parser.add_argument("--seed", type=int, default=7, help="seed of the historians' random choices")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    args = parser.parse_args()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    code = Path(tempfile.mkdtemp(prefix="timeline-soak-code-"))
    results: dict[str, Any] = {"command": common.command_line(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                               "code": snapshot(code), "clients": CLIENTS, "workers": WORKERS, "threads": THREADS,
                               "minutes": args.minutes, "kill_every": args.kill_every, "mix": MIX,
                               "stale_share_of_corrections": STALE, "keyed_share_of_writes": KEYED}
    sys.path.insert(0, str(code))  # the audit reads the record with the same code the server ran
    results["machine"] = common.machine(args.backend != "sqlite")
    common.print_machine(results["machine"])
    print(f"code under test: {results['code']['commit'][:12]} + uncommitted diff "
          f"{results['code']['uncommitted_diff_sha256']} ({', '.join(results['code']['uncommitted_files']) or 'none'})")
    results["backends"] = {}
    try:
        for backend in common.backends(args.backend):
            results["backends"][backend] = run_backend(backend, args, code, stamp)
    finally:
        shutil.rmtree(code, ignore_errors=True)
        results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
        common.write_json(args.json, results)
    report(results)
    failed = [f"{b}: {n}" for b, r in results["backends"].items() for n, v in r["invariants"].items() if not v["ok"]]
    if failed:
        print("\nINVARIANTS FAILED:\n  " + "\n  ".join(failed))
        sys.exit(1)
    print("\nEvery invariant holds.")


if __name__ == "__main__":
    main()
