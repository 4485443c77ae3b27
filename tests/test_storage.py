"""How a database URL becomes the library's persistence settings."""

from __future__ import annotations

import sqlite3

import pytest

from events.chronicle import Chronicle
from events.storage import library_settings


def _pool(url: str):
    chronicle = Chronicle(env={"TIMELINE_DATABASE_URL": url})
    try:
        return chronicle.recorder.datastore.pool.pool_size
    finally:
        chronicle.close()


def test_a_sqlite_pool_keeps_a_connection_for_each_thread_of_a_worker(tmp_path):
    assert _pool(f"sqlite:///{tmp_path}/default.db") == 16
    assert _pool(f"sqlite:///{tmp_path}/custom.db?pool_size=40") == 40


def test_a_sqlite_connection_compiles_each_statement_once(tmp_path):
    """The library opens its connections with ``cached_statements=True``, a cache of one
    statement: two statements taking turns were compiled at every turn. SQLite asks the
    authorizer while it compiles a statement, never while it runs one."""
    chronicle = Chronicle(env={"TIMELINE_DATABASE_URL": f"sqlite:///{tmp_path}/cached.db"})
    try:
        with chronicle.recorder.datastore.get_connection(commit=False) as connection:
            compiled: list[int] = []
            connection._sqlite_conn.set_authorizer(lambda action, *_: compiled.append(action) or sqlite3.SQLITE_OK)
            cursor = connection.cursor()
            for _ in range(10):
                for statement in ("SELECT COUNT(*) FROM stored_events", "SELECT MAX(rowid) FROM stored_events"):
                    cursor.execute(statement)
                    cursor.fetchall()
            connection._sqlite_conn.set_authorizer(None)
    finally:
        chronicle.close()
    assert compiled.count(sqlite3.SQLITE_SELECT) == 2


@pytest.mark.parametrize("size", ["0", "-1", "many"])
def test_a_pool_size_that_is_not_a_positive_integer_is_refused(tmp_path, size):
    with pytest.raises(ValueError, match="pool_size must be a positive integer"):
        Chronicle(env={"TIMELINE_DATABASE_URL": f"sqlite:///{tmp_path}/bad.db?pool_size={size}"})
    with pytest.raises(ValueError, match="pool_size must be a positive integer"):
        library_settings(f"postgresql://postgres@127.0.0.1:5432/test?pool_size={size}")


def test_postgres_takes_its_pool_size_from_the_url():
    settings = library_settings("postgresql://postgres@127.0.0.1:5432/test?pool_size=7")
    assert settings["POSTGRES_POOL_SIZE"] == "7" and settings["PERSISTENCE_MODULE"] == "eventsourcing.postgres"


@pytest.mark.parametrize("url", ["postgresql+psycopg://postgres:S3cret@127.0.0.1:5432/test", "mysql://u:S3cret@h/db",
                                 "S3cret"])
def test_an_unsupported_database_url_is_refused_without_quoting_its_password(url):
    with pytest.raises(ValueError, match="must start with sqlite:// or postgresql://") as refused:
        library_settings(url)
    assert "S3cret" not in str(refused.value)


@pytest.mark.parametrize("url", ["instance/timeline.db", "mysql://u:S3cret@127.0.0.1/test"])
def test_a_store_is_not_opened_with_an_unsupported_url(url):
    """Opening the record used to try it as PostgreSQL first, and said that a database
    named like the path does not exist, or that its host does not resolve."""
    with pytest.raises(ValueError, match="must start with sqlite:// or postgresql://") as refused:
        Chronicle(env={"TIMELINE_DATABASE_URL": url})
    assert "S3cret" not in str(refused.value)


def test_a_sqlite_url_with_a_host_is_refused_rather_than_kept_in_memory(tmp_path, monkeypatch):
    """``sqlite://timeline.db`` (two slashes) was a private in-memory database, lost at exit."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="sqlite:///relative.db or sqlite:////absolute.db"):
        Chronicle(env={"TIMELINE_DATABASE_URL": "sqlite://timeline.db"})


def test_a_store_lock_makes_its_folder_when_missing_and_excludes_another_holder(tmp_path):
    import fcntl

    from events.storage import store_lock

    url = f"sqlite:///{tmp_path}/not/yet/timeline.db"
    with store_lock(url, "write"):
        lock_file = tmp_path / "not" / "yet" / "timeline.db.write-lock"
        assert lock_file.exists()
        with open(lock_file) as other:
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(lock_file) as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released with the block
