"""The ``TIMELINE_*`` settings: the README's defaults, and a value the service cannot use
refused in one line that names it, before anything is served."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from api import create_app
from api.settings import DEFAULTS, SettingError, from_environment

TIMELINE = [sys.executable, "-m", "timeline.cli"]

BAD = {
    "TIMELINE_WAIT_TIMEOUT": "abc",
    "TIMELINE_MAX_STREAMS": "1.5",
    "TIMELINE_IDEMPOTENCY_TTL_HOURS": "0",
    "TIMELINE_TOKEN_CACHE_SECONDS": "-1",
    "TIMELINE_READ_CACHE_MB": "-5",
    "TIMELINE_PUBLIC_READS": "O",
    "TIMELINE_WRITE_RATE_LIMIT": "lots",
    "TIMELINE_RATELIMIT_STORAGE_URI": "bogus://somewhere",
}


def test_the_defaults_are_the_readmes():
    assert {name: DEFAULTS[name] for name in ("DATABASE_URL", "PUBLIC_READS", "WRITE_RATE_LIMIT",
                                              "RATELIMIT_STORAGE_URI", "WAIT_TIMEOUT", "MAX_STREAMS",
                                              "IDEMPOTENCY_TTL_HOURS", "TOKEN_CACHE_SECONDS", "READ_CACHE_MB")} == {
        "DATABASE_URL": "sqlite:///instance/timeline.db", "PUBLIC_READS": True, "WRITE_RATE_LIMIT": "600 per minute",
        "RATELIMIT_STORAGE_URI": "memory://", "WAIT_TIMEOUT": 5, "MAX_STREAMS": 4, "IDEMPOTENCY_TTL_HOURS": 48,
        "TOKEN_CACHE_SECONDS": 1, "READ_CACHE_MB": 64}


@pytest.mark.parametrize("variable", BAD)
def test_a_setting_the_service_cannot_use_is_refused_by_name(monkeypatch, variable):
    """Not a worker's traceback, and not, for the rate limit, every write let through."""
    monkeypatch.setenv(variable, BAD[variable])
    with pytest.raises(SettingError, match=variable):
        from_environment()


def test_an_unreadable_rate_limit_does_not_start_an_app_without_one(monkeypatch, tmp_path):
    """Flask-Limiter only logs a limit it cannot parse, and lets every write through."""
    monkeypatch.setenv("TIMELINE_WRITE_RATE_LIMIT", "lots")
    with pytest.raises(SettingError, match="TIMELINE_WRITE_RATE_LIMIT"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/timeline.db"})


@pytest.mark.parametrize("value, expected", [("0", False), ("off", False), ("1", True), ("Yes", True)])
def test_public_reads_takes_yes_and_no(monkeypatch, value, expected):
    monkeypatch.setenv("TIMELINE_PUBLIC_READS", value)
    assert from_environment()["PUBLIC_READS"] is expected


def test_serve_refuses_a_bad_setting_in_one_line_before_starting_workers(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"PATH": "/usr/bin:/bin", "TIMELINE_DATABASE_URL": f"sqlite:///{tmp_path}/timeline.db",
           "TIMELINE_WAIT_TIMEOUT": "abc"}
    result = subprocess.run([*TIMELINE, "serve", "--port", str(port), "--workers", "1"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["Error: TIMELINE_WAIT_TIMEOUT must be a number, not 'abc'"]


@pytest.mark.parametrize("reuse_port", [False, True], ids=["plain", "reuse-port"])
def test_serve_refuses_a_port_another_server_listens_on(tmp_path, reuse_port):
    """Its workers listen with ``SO_REUSEPORT``: without a look first, a second ``timeline
    serve`` on the same port started, and each server answered some of the requests."""
    env = {"PATH": "/usr/bin:/bin", "TIMELINE_DATABASE_URL": f"sqlite:///{tmp_path}/timeline.db"}
    with socket.socket() as other:
        if reuse_port:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = subprocess.run([*TIMELINE, "serve", "--port", str(port), "--workers", "1"], env=env,
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"Error: cannot listen on 127.0.0.1:{port}: Address already in use"]


@pytest.mark.parametrize("option, allowed", [("--workers", "x>=1"), ("--threads", "x>=1"), ("--port", "1<=x<=65535")])
def test_serve_refuses_no_workers_threads_or_port(tmp_path, option, allowed):
    """``--workers 0`` listened on the port and answered nothing, for ever; ``--port 0``
    gave each worker, binding a socket of its own, another port."""
    env = {"PATH": "/usr/bin:/bin", "TIMELINE_DATABASE_URL": f"sqlite:///{tmp_path}/timeline.db"}
    result = subprocess.run([*TIMELINE, "serve", option, "0"], env=env, capture_output=True, text=True, timeout=20)
    assert result.returncode == 2 and f"Invalid value for '{option}': 0 is not in the range {allowed}" in result.stderr
