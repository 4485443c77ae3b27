"""Nothing lost under load or crashes: a real `timeline serve` (2 gthread workers) on a
SQLite file and on PostgreSQL takes 5,000 writes from 32 concurrent clients mixed with
reads, and is SIGKILLed in the middle of them; every acknowledged write is in the log
exactly once and the projections converge to a clean rebuild. Bounded in time, loopback
only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from events.chronicle import Chronicle
from tests.test_api_server import DEVELOPMENT, free_port, run
from timeline.projector import Projector, differences

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
WRITES = int(os.environ.get("TIMELINE_LOAD_WRITES", "5000"))
CLIENTS = 32


def serve(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([str(BIN / "timeline"), "serve", "--port", str(port), "--workers", "2",
                                "--threads", "8"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/healthz", timeout=1).ok:
                return process, url
        except requests.RequestException:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the server did not come up")


def kill(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)  # the gunicorn master and its workers, no clean shutdown
    process.wait(timeout=10)


@pytest.fixture
def store(database_url):
    env = {**os.environ, "TIMELINE_DATABASE_URL": database_url, "TIMELINE_WRITE_RATE_LIMIT": "1000000 per minute"}
    run(["seed"], env)
    token = run(["token", "create", "load", "--role", "historian"], env)
    return env, {"Authorization": f"Bearer {token}"}


def write(session: requests.Session, url: str, headers: dict, ident: str) -> int | str:
    """One write (and, every tenth, a read); the status, or what failed."""
    try:
        response = session.post(f"{url}/api/v1/developments", json={**DEVELOPMENT, "id": ident,
                                "title": f"Load {ident}"}, headers=headers, timeout=(5, 30))
        if int(ident[-1], 16) == 0:
            session.get(f"{url}/api/v1/timeline?actor=armenia&limit=20", timeout=(5, 30))
        return response.status_code
    except requests.RequestException as error:
        return f"{type(error).__name__}: {error}"


def load(url: str, headers: dict, idents: list[str]) -> dict[str, int | str]:
    """The writes from CLIENTS threads, each with a session (a kept-alive connection) of
    its own: a session shared by two threads opens a second connection, which can idle
    in the pool past the server's keep-alive (2 s) and be closed just as it is reused."""
    local = threading.local()

    def one(ident: str) -> int | str:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return write(local.session, url, headers, ident)

    with ThreadPoolExecutor(CLIENTS) as pool:
        return dict(zip(idents, pool.map(one, idents)))


def recorded(env: dict[str, str]) -> dict[str, list[int]]:
    """Every development stream in the log, with the positions of its events."""
    chronicle = Chronicle(env={"TIMELINE_DATABASE_URL": env["TIMELINE_DATABASE_URL"]})
    streams: dict[str, list[int]] = {}
    after = 0
    while notes := chronicle.recorder.select_notifications(after, 1000, inclusive_of_start=False):
        for note in notes:
            streams.setdefault(str(note.originator_id), []).append(note.id)
        after = notes[-1].id
    chronicle.close()
    return streams


def converged(env: dict[str, str]) -> list[str]:
    chronicle = Chronicle(env={"TIMELINE_DATABASE_URL": env["TIMELINE_DATABASE_URL"]})
    projector = Projector(chronicle)
    projector.catch_up()
    projector.close()
    found = differences(chronicle)
    chronicle.close()
    return found


def test_concurrent_writes_are_each_stored_exactly_once(store):
    env, headers = store
    process, url = serve(env)
    idents = [str(uuid.uuid4()) for _ in range(WRITES)]
    try:
        started = time.monotonic()
        statuses = load(url, headers, idents)
        elapsed = time.monotonic() - started
    finally:
        kill(process)
    assert all(status == 201 for status in statuses.values()), {s for s in statuses.values() if s != 201}
    streams = recorded(env)
    assert all(streams.get(ident) and len(streams[ident]) == 1 for ident in idents)
    positions = sorted(p for ps in streams.values() for p in ps)
    assert len(positions) == len(set(positions))
    assert converged(env) == []
    print(f"{WRITES} writes from {CLIENTS} clients in {elapsed:.1f}s ({WRITES / elapsed:.0f}/s)")


def test_a_killed_server_loses_no_acknowledged_write(store):
    env, headers = store
    process, url = serve(env)
    idents = [str(uuid.uuid4()) for _ in range(WRITES)]
    with ThreadPoolExecutor(1) as killer:
        killer.submit(lambda: (time.sleep(2.0), kill(process)))
        statuses = load(url, headers, idents)
    acknowledged = [i for i, s in statuses.items() if s in (200, 201)]
    failed = [i for i, s in statuses.items() if s not in (200, 201)]
    assert acknowledged and failed, "the kill should land in the middle of the load"
    assert not [s for s in statuses.values() if isinstance(s, int) and s >= 500]
    streams = recorded(env)
    assert all(len(streams.get(ident, [])) == 1 for ident in acknowledged)
    assert all(len(streams.get(ident, [])) <= 1 for ident in failed)  # absent, or whole: one Recorded event
    # Restarted, the service catches its projections up and serves every acknowledged write.
    process, url = serve(env)
    try:
        for ident in acknowledged[:50]:
            assert requests.get(f"{url}/api/v1/developments/{ident}", timeout=10).json()["id"] == ident
    finally:
        kill(process)
    assert converged(env) == []


def test_processes_starting_at_once_on_a_fresh_store_all_come_up(database_url):
    """What gunicorn's workers do at boot: each makes the projection, token and key
    tables. They take turns; none drops the tables another has just made."""
    env = {**os.environ, "TIMELINE_DATABASE_URL": database_url}
    run(["seed"], env)
    commands = [["project"]] * 4 + [["token", "list"]] * 2
    processes = [subprocess.Popen([str(BIN / "timeline"), *command], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for command in commands]
    failures = [p.communicate(timeout=120)[1] for p in processes if p.wait(timeout=120) != 0]
    assert failures == []
    assert converged(env) == []


@pytest.mark.postgres
def test_postgres_stopped_answers_503_and_recovers_without_a_restart():
    """The database goes away under a running app: reads and writes answer 503 problem+json
    with Retry-After within a bounded time; when it is back, the same app serves again."""
    from api import create_app
    from tests.conftest import POSTGRES, drop_schema, postgres_or_skip

    postgres_or_skip()
    cluster = subprocess.run("ls /etc/postgresql", shell=True, capture_output=True, text=True).stdout.strip()
    control = ["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main"]
    app = create_app({"DATABASE_URL": f"{POSTGRES}?schema=outage&connect_timeout=2&lock_timeout=2",
                      "WAIT_TIMEOUT": 1})
    client = app.test_client()
    token = app.extensions["timeline"].tokens.create("outage", "historian")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/timeline").status_code == 200
    subprocess.run([*control, "stop", "-m", "fast"], check=True, capture_output=True)
    try:
        started = time.monotonic()
        read = client.get("/api/v1/timeline")
        write = client.post("/api/v1/actors", json={"id": "outage", "name": "Outage", "kind": "other"},
                            headers=headers)
        elapsed = time.monotonic() - started
    finally:
        subprocess.run([*control, "start"], check=True, capture_output=True)
    for response in (read, write):
        assert response.status_code in (401, 503), response.status_code  # no token check without a database
        assert response.mimetype == "application/problem+json"
    assert read.status_code == 503 and read.headers["Retry-After"]
    assert elapsed < 60
    deadline = time.monotonic() + 30
    while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert client.get("/api/v1/timeline").status_code == 200
    written = client.post("/api/v1/actors", json={"id": "outage", "name": "Outage", "kind": "other"},
                          headers=headers)
    assert written.status_code == 201
    app.extensions["timeline"].service.close()
    drop_schema("outage")


def test_a_sqlite_file_locked_beyond_the_busy_timeout_answers_503_and_stays_sound(tmp_path):
    """Another process holds the write lock longer than the busy timeout: the write answers
    503 (not 500, no corruption); once the lock is gone the write goes through."""
    import sqlite3

    from api import create_app

    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/locked.db?timeout=1"})
    client = app.test_client()
    headers = {"Authorization": f"Bearer {app.extensions['timeline'].tokens.create('locked', 'historian')}"}
    actor = {"id": "locked", "name": "Locked", "kind": "other"}
    other = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        refused = client.post("/api/v1/actors", json=actor, headers=headers)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert refused.status_code == 503 and refused.mimetype == "application/problem+json"
    assert refused.headers["Retry-After"]
    assert client.post("/api/v1/actors", json=actor, headers=headers).status_code == 201
    check = sqlite3.connect(tmp_path / "locked.db")
    assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    check.close()


def test_a_read_the_sqlite_store_fails_answers_503_as_a_failing_write_does(tmp_path):
    """A read that SQLite itself fails (here a read table dropped by another connection
    under the running app) answers 503 problem+json, as a failing write does: a store
    error is never a 500, on any path."""
    import sqlite3

    from api import create_app

    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/damaged.db"})
    client = app.test_client()
    assert client.get("/api/v1/actors/nobody").status_code == 404
    other = sqlite3.connect(tmp_path / "damaged.db")
    other.execute("DROP TABLE actor_heads")
    other.commit()
    other.close()
    refused = client.get("/api/v1/actors/nobody")
    assert refused.status_code == 503 and refused.mimetype == "application/problem+json"
    assert refused.json["status"] == 503 and refused.headers["Retry-After"]
    app.extensions["timeline"].service.close()


def test_a_write_stored_but_not_projected_answers_its_receipt_and_is_projected_later(tmp_path, monkeypatch):
    """A projection that fails on a write (here one made to fail) must not turn a stored
    write into an error, which invites a retry that records it twice: the answer is 201
    with the write's position and no document (the read model does not have it yet),
    /readyz shows the lag, and the next catch-up projects it."""
    import sqlite3

    from api import create_app
    from timeline.projections import Actors, Developments

    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/faulty.db"})
    client = app.test_client()
    headers = {"Authorization": f"Bearer {app.extensions['timeline'].tokens.create('faulty', 'historian')}"}
    assert client.post("/api/v1/actors", json={"id": "armenia", "name": "Armenia", "kind": "state"},
                       headers=headers).status_code == 201
    development = {"title": "A statement", "category": "statement", "when": "2023-09-19", "certainty": "reported",
                   "actors": [{"actor": "armenia", "role": "speaker"}], "sources": [{"citation": "a source"}]}

    def fails(self, events):
        raise RuntimeError("a fault in the projection")

    for projection in (Developments, Actors):
        monkeypatch.setattr(projection, "operations", fails)
    answer = client.post("/api/v1/developments", json=development, headers=headers)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    assert answer.json["development"] is None and answer.json["position"] == int(answer.headers["X-Timeline-Position"])
    ident = answer.json["id"]
    renamed = client.post("/api/v1/actors/armenia/corrections", json={"changes": {"name": "Republic of Armenia"},
                          "reason": "official name"}, headers={**headers, "If-Match": '"1"'})
    assert renamed.status_code == 200 and renamed.json["version"] == 2 and renamed.json["actor"] is None
    assert client.get("/readyz").json["projection_lag"] >= 2
    assert client.get(f"/api/v1/developments/{ident}").status_code == 404

    monkeypatch.undo()
    app.extensions["timeline"].service.projector.catch_up()
    assert client.get("/readyz").json["projection_lag"] == 0
    shown = client.get(f"/api/v1/developments/{ident}")
    assert shown.status_code == 200 and shown.json["title"] == "A statement"
    assert client.get("/api/v1/actors/armenia").json["name"] == "Republic of Armenia"
    store = sqlite3.connect(tmp_path / "faulty.db")
    assert store.execute("SELECT originator_id FROM stored_events WHERE topic = 'timeline:Development.Recorded'"
                         ).fetchall() == [(ident.replace("-", ""),)]  # recorded once
    store.close()
    app.extensions["timeline"].service.close()
