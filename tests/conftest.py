"""Fixtures: every persistence test runs on the embedded SQLite store and on the real
PostgreSQL server (127.0.0.1:5432, database ``test``), each test in its own schema."""

from __future__ import annotations

import os
import uuid

import pytest

from events.chronicle import Chronicle

POSTGRES = os.environ.get("TIMELINE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("TIMELINE_TEST_REDIS", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def postgres_or_skip() -> None:
    """Skips when PostgreSQL is not reachable; under CI that is a failure instead."""
    import psycopg

    try:
        psycopg.connect(POSTGRES, connect_timeout=3).close()
    except psycopg.OperationalError as error:
        unreachable(f"PostgreSQL at {POSTGRES}", error,
                    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start")


def redis_or_skip() -> None:
    """Skips when Redis is not reachable; under CI that is a failure instead."""
    import redis

    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=3).ping()
    except redis.ConnectionError as error:
        unreachable(f"Redis at {REDIS}", error,
                    "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no")


def unreachable(service: str, error: Exception, start: str) -> None:
    message = f"{service} is not reachable ({error}); start it with: {start}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/timeline.db"
        return
    postgres_or_skip()
    schema = f"test_{uuid.uuid4().hex[:12]}"
    yield f"{POSTGRES}?schema={schema}"
    drop_schema(schema)


@pytest.fixture
def chronicle(database_url: str) -> Chronicle:
    chronicle = Chronicle(env={"TIMELINE_DATABASE_URL": database_url})
    yield chronicle
    chronicle.close()


@pytest.fixture
def memory_chronicle() -> Chronicle:
    """A chronicle in a private in-memory SQLite database, for domain-level tests."""
    chronicle = Chronicle(env={"TIMELINE_DATABASE_URL": "sqlite:///:memory:"})
    yield chronicle
    chronicle.close()


_skipped_services: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and ("postgres" in report.keywords or "redis" in report.keywords):
        _skipped_services.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI a skipped PostgreSQL or Redis test fails the run: the scale-out store and
    the shared rate limit must be tested."""
    if IN_CI and _skipped_services:
        print(f"\nCI: {len(_skipped_services)} PostgreSQL/Redis tests were skipped, e.g. {_skipped_services[0]}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
