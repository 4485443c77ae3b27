"""The API behind a real ``timeline serve`` (gunicorn, 2 gthread workers of 8 threads) on
127.0.0.1 and a SQLite file store: kept answers that end in every worker with a write,
concurrent writes with the same ``If-Match``, concurrent ``Idempotency-Key`` retries,
Server-Sent Events resumed with ``Last-Event-ID``, open streams that must not starve
other requests, and a write rate limit shared by the workers through Redis."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from tests.conftest import REDIS, redis_or_skip

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
TIMELINE = str(BIN / "timeline")
TIMEOUT = (5, 15)
"""(connect, read) seconds for every request: generous, never unbounded."""
DEVELOPMENT = {
    "title": "Armenia protests to the CSTO", "category": "accuse", "when": "2023-10-02", "certainty": "reported",
    "actors": [{"actor": "armenia", "role": "speaker"}, {"actor": "csto", "role": "target"}],
    "sources": [{"citation": "Test agency, 2 October 2023"}],
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    url: str
    pid: int
    tokens: dict[str, str]
    log: Path
    env: dict[str, str]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def auth(self, who: str = "historian", **headers: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **headers}

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=TIMEOUT, **kw)

    def post(self, path: str, body: Any, who: str = "historian", **headers: str) -> requests.Response:
        return requests.post(self.url + path, json=body, headers=self.auth(who, **headers), timeout=TIMEOUT)

    def log_length(self) -> int:
        items = self.get("/api/v1/events?after=0&limit=1000").json()["items"]
        return items[-1]["position"] if items else 0


def run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([TIMELINE, *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """``start_server(**env)``: a seeded store with tokens, served until the test ends."""
    processes: list[subprocess.Popen] = []

    def start(**settings: str) -> Server:
        env = {**os.environ, "TIMELINE_DATABASE_URL": f"sqlite:///{tmp_path}/timeline.db",
               **{f"TIMELINE_{k}": v for k, v in settings.items()}}
        run(["seed"], env)
        tokens = {role: run(["token", "create", role, "--role", role], env) for role in ("historian", "admin")}
        port, log = free_port(), tmp_path / "server.log"
        with log.open("w") as out:
            process = subprocess.Popen([TIMELINE, "serve", "--port", str(port), "--workers", "2", "--threads", "8"],
                                       env=env, stdout=out, stderr=subprocess.STDOUT)
        processes.append(process)
        server = Server(f"http://127.0.0.1:{port}", process.pid, tokens, log, env)
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"the server exited:\n{log.read_text()}"
            try:
                if server.get("/healthz").json() == {"status": "ok"} and listening_workers(server) == 2:
                    return server
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, f"the server did not answer /healthz:\n{log.read_text()}"
            time.sleep(0.1)

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def concurrently(count: int, call: Callable[[int], requests.Response]) -> list[requests.Response]:
    """``call(n)`` for n in range(count), from ``count`` threads released at the same moment."""
    barrier = threading.Barrier(count)

    def aligned(n: int) -> requests.Response:
        barrier.wait(timeout=30)
        return call(n)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(aligned, range(count)))


def test_each_request_is_logged_in_one_line_without_its_token(start_server):
    server = start_server()
    created = server.post("/api/v1/developments", DEVELOPMENT)
    read = server.get("/api/v1/timeline?actor=armenia&limit=2")
    assert created.status_code == 201 and read.status_code == 200
    deadline = time.monotonic() + 10
    while "GET /api/v1/timeline" not in server.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = server.log.read_text()
    assert f'127.0.0.1 "POST /api/v1/developments HTTP/1.1" 201 {len(created.content)} ' in log, log
    assert f'127.0.0.1 "GET /api/v1/timeline?actor=armenia&limit=2 HTTP/1.1" 200 {len(read.content)} ' in log, log
    assert all(token not in log for token in server.tokens.values())


def test_the_log_says_where_the_workers_listen_and_no_control_socket_is_made(start_server):
    """With a socket per worker, gunicorn's master listens on none, and its "Listening
    at: " line, which would name nothing, is left out. Its control socket would be at
    one path per user (``$HOME/.gunicorn/gunicorn.ctl``), which every other server on
    the machine would take over."""
    server = start_server()
    log = server.log.read_text()
    assert f"Workers listening at: {server.url}, each on its own socket" in log
    assert "Listening at:  (" not in log and "Listening at: \n" not in log
    assert "Control socket" not in log


def test_the_workers_share_the_connections_of_one_client(start_server):
    """Each worker listens on a socket of its own (``SO_REUSEPORT``). With one socket
    shared, the first worker to wake accepted every keep-alive connection of a client
    and served them alone, on one core, while the others idled: 32 writers' connections
    all went to one of three workers."""
    server = start_server()
    connections = open_connections(server, 16)
    try:
        for connection in connections:
            assert json.loads(ask(connection, "/healthz")) == {"status": "ok"}
        held = held_by_worker(server)
    finally:
        for connection in connections:
            connection.close()
    assert len(held) == 2 and sum(held.values()) == 16  # kept alive, each in the worker that accepted it
    assert all(held.values()), f"one worker holds every connection: {held}"  # chance 2 / 2**16


def open_connections(server: Server, count: int) -> list[http.client.HTTPConnection]:
    return [http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT[1]) for _ in range(count)]


def ask(connection: http.client.HTTPConnection, path: str) -> bytes:
    connection.request("GET", path)
    response = connection.getresponse()
    assert response.status == 200, response.status
    return response.read()


def sockets_by_worker(server: Server, status: str) -> dict[int, int]:
    """How many of the server's TCP sockets in ``status`` each worker holds."""
    return {worker.pid: sum(1 for c in worker.net_connections("tcp")
                            if c.laddr.port == server.port and c.status == status)
            for worker in psutil.Process(server.pid).children()}


def listening_workers(server: Server) -> int:
    """Workers that listen on a socket of their own: one that is still starting has none,
    and the first to listen would get every connection."""
    return sum(map(bool, sockets_by_worker(server, psutil.CONN_LISTEN).values()))


def held_by_worker(server: Server) -> dict[int, int]:
    """The keep-alive connections each worker holds."""
    return sockets_by_worker(server, psutil.CONN_ESTABLISHED)


def test_every_worker_answers_with_a_write_as_soon_as_its_writer_has(start_server):
    """Each worker keeps its answers while the read tables stand still (api/cache.py). A
    write through either worker must end them in both before its answer arrives: on
    SQLite the workers read a count of commits from shared memory, not the store."""
    server = start_server()
    connections = open_connections(server, 16)
    timeline, state = "/api/v1/timeline?actor=armenia&limit=500", "/api/v1/actors/armenia/state?at=2023-10-31"
    try:
        for _ in range(2):  # the second time, each worker answers from what it kept
            involved = {json.loads(ask(connection, state))["involvement"]["developments"] for connection in connections}
            listed = {len(json.loads(ask(connection, timeline))["items"]) for connection in connections}
        assert len(involved) == len(listed) == 1 and all(held_by_worker(server).values())
        for written in range(1, 4):
            created = server.post("/api/v1/developments", {**DEVELOPMENT, "title": f"Protest {written}"})
            assert created.status_code == 201
            for connection in connections:
                assert created.json()["id"] in {item["id"] for item in json.loads(ask(connection, timeline))["items"]}
                assert json.loads(ask(connection, state))["involvement"]["developments"] == min(involved) + written
    finally:
        for connection in connections:
            connection.close()


def test_concurrent_corrections_with_the_same_if_match(start_server):
    server = start_server()
    ident = server.post("/api/v1/developments", DEVELOPMENT).json()["id"]
    length = server.log_length()
    path = f"/api/v1/developments/{ident}/corrections"
    responses = concurrently(16, lambda n: server.post(
        path, {"changes": {"title": f"Correction {n}"}, "reason": f"attempt {n}"}, **{"If-Match": '"1"'}))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [412] * 15, [r.text for r in responses if r.status_code not in (200, 412)]
    for refused in (r for r in responses if r.status_code == 412):
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert refused.json()["current_version"] == 2 and refused.headers["ETag"] == '"2"'
    winner = next(r for r in responses if r.status_code == 200).json()
    assert winner["version"] == 2 and server.log_length() == length + 1
    current = server.get(f"/api/v1/developments/{ident}")
    assert current.headers["ETag"] == '"2"' and current.json()["title"] == winner["development"]["title"]
    history = server.get(f"{path.rsplit('/', 1)[0]}/history").json()["history"]
    assert [e["version"] for e in history] == [1, 2]


def test_concurrent_idempotency_key_retries_write_once(start_server):
    server = start_server()
    length = server.log_length()
    body = {**DEVELOPMENT, "tags": ["retried"]}
    responses = concurrently(8, lambda n: server.post("/api/v1/developments", body, **{"Idempotency-Key": "retry-1"}))
    assert [r.status_code for r in responses] == [201] * 8, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert sorted(r.headers.get("Idempotent-Replayed", "") for r in responses) == [""] + ["true"] * 7
    assert server.log_length() == length + 1
    assert [i["id"] for i in server.get("/api/v1/timeline?tag=retried").json()["items"]] == [responses[0].json()["id"]]


@dataclass
class Message:
    id: int | None
    event: str | None
    data: str | None
    comments: list[str]


def messages(response: requests.Response) -> Iterator[Message]:
    """Server-Sent Events as they arrive (blocks, within the request's read timeout)."""
    buffer = ""
    for chunk in response.iter_content(chunk_size=None, decode_unicode=True):
        buffer += chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            fields: dict[str, str] = {}
            comments = []
            for line in block.split("\n"):
                if line.startswith(":"):
                    comments.append(line)
                else:
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
            yield Message(int(fields["id"]) if "id" in fields else None, fields.get("event"), fields.get("data"),
                          comments)


def stream(server: Server, **headers: str) -> requests.Response:
    return requests.get(server.url + "/api/v1/events/stream", stream=True, timeout=TIMEOUT, headers=headers)


def read_until(received: Iterator[Message], position: int) -> tuple[list[Message], list[Message]]:
    """Events up to ``position``, and the keep-alive comments seen meanwhile."""
    events, comments = [], []
    for message in received:
        (events if message.id is not None else comments).append(message)
        if events and events[-1].id >= position:
            return events, comments
    raise AssertionError("the stream ended")


def test_event_stream_resumes_with_last_event_id(start_server):
    server = start_server(STREAM_POLL_INTERVAL="0.1", STREAM_KEEPALIVE="1")
    first = stream(server)
    assert first.status_code == 200 and first.headers["Content-Type"].startswith("text/event-stream")
    assert first.headers["Cache-Control"] == "no-cache"
    received = messages(first)
    events, _ = read_until(received, 20)
    first.close()
    assert [e.id for e in events] == list(range(1, 21))
    assert json.loads(events[0].data)["payload"]["slug"] == "armenia" and events[0].event == "timeline:Actor.Registered"

    for n in range(3):
        assert server.post("/api/v1/developments", {**DEVELOPMENT, "title": f"Written offline {n}"}).status_code == 201
    end = server.log_length()
    expected = server.get("/api/v1/events?after=20&limit=1000").json()["items"]
    assert [e["position"] for e in expected] == list(range(21, end + 1))

    again = stream(server, **{"Last-Event-ID": str(events[-1].id)})
    received = messages(again)
    resumed, _ = read_until(received, end)
    assert [e.id for e in resumed] == list(range(21, end + 1))  # no gap, no repeat
    assert [json.loads(e.data) for e in resumed] == expected
    assert [e.event for e in resumed] == [e["type"] for e in expected]
    quiet = next(received)  # nothing more to send: a keep-alive comment, not an event
    assert quiet.id is None and quiet.comments == [": keep-alive"]
    assert all(c.startswith(":") for c in quiet.comments)
    again.close()


def test_open_streams_do_not_starve_other_requests(start_server):
    server = start_server(MAX_STREAMS="2", STREAM_POLL_INTERVAL="0.2", STREAM_KEEPALIVE="1")
    opened, refused = [], None
    try:
        for _ in range(2 * 2 + 1):  # 2 workers x 2 streams, then one too many for at least one worker
            response = stream(server)
            if response.status_code != 200:
                refused = response
                break
            opened.append(response)
        assert refused is not None and 2 <= len(opened) <= 4
        assert refused.status_code == 503 and refused.headers["Content-Type"] == "application/problem+json"
        assert refused.json()["status"] == 503 and int(refused.headers["Retry-After"]) >= 1
        for _ in range(10):  # both workers: each still has free threads
            started = time.monotonic()
            answer = server.get("/api/v1/timeline?limit=5")
            assert answer.status_code == 200 and len(answer.json()["items"]) == 5
            assert time.monotonic() - started < 2
    finally:
        for response in opened:
            response.close()
    deadline = time.monotonic() + 15  # a closed stream frees its slot at its next keep-alive
    while True:
        response = stream(server)
        response.close()
        if response.status_code == 200:
            break
        assert time.monotonic() < deadline, "closed streams never gave their slots back"
        time.sleep(0.5)


def test_replay_without_a_body_from_a_real_client(start_server):
    server = start_server()
    with_length = requests.post(server.url + "/api/v1/admin/replay", headers=server.auth("admin"), timeout=TIMEOUT)
    assert with_length.status_code == 200 and with_length.json()["replayed"] == server.log_length()
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=15)
    try:
        connection.putrequest("POST", "/api/v1/admin/replay")  # like curl -X POST: no body, no Content-Length
        connection.putheader("Authorization", server.auth("admin")["Authorization"])
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 200, response.read()
    finally:
        connection.close()


@pytest.mark.redis
def test_the_write_rate_limit_is_shared_by_the_workers_through_redis(start_server):
    """With ``memory://`` each worker counts alone (the README says so); with Redis the
    two workers share one budget per token."""
    redis_or_skip()
    server = start_server(RATELIMIT_STORAGE_URI=REDIS, WRITE_RATE_LIMIT="10 per minute")
    name = f"limited-{uuid.uuid4().hex[:8]}"  # a fresh budget in the shared store
    token = run(["token", "create", name, "--role", "historian"], server.env)
    before = server.log_length()
    answers = concurrently(40, lambda n: requests.post(
        server.url + "/api/v1/developments", json={**DEVELOPMENT, "title": f"Limited {n}"},
        headers={"Authorization": f"Bearer {token}", "Connection": "close"}, timeout=TIMEOUT))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] * 10 + [429] * 30
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert int(refused.headers["Retry-After"]) > 0
    assert server.log_length() == before + 10, "a refused write stores nothing"


def test_a_worker_keeps_its_start_up_objects_out_of_the_garbage_collectors_scans(tmp_path, monkeypatch):
    """A full collection scanned every module, schema and route of the app, 10-30 ms, and
    that was the p99 of reads (timeline.service.freeze_startup_objects)."""
    import gc

    from timeline.cli import worker_app

    monkeypatch.setenv("TIMELINE_DATABASE_URL", f"sqlite:///{tmp_path}/timeline.db")
    app = worker_app()
    try:
        assert gc.get_freeze_count() > 10_000
        assert not any(o is app for o in gc.get_objects())  # the collector's generations no longer hold it
        later = [app]
        assert any(o is later for o in gc.get_objects())  # what the worker makes later is collected as before
    finally:
        gc.unfreeze()  # the other tests' objects are collected as usual
        app.extensions["timeline"].service.close()
