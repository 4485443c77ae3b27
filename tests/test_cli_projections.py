"""The ``timeline`` command on an embedded SQLite store: seed, project, replay (and its
check), import and export, and a replay killed halfway."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from timeline.cli import main
from timeline.projections import PROJECTIONS

_spec = importlib.util.spec_from_file_location("synthetic", Path(__file__).parents[1] / "bench" / "synthetic.py")
synthetic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synthetic)

TIMELINE = [sys.executable, "-m", "timeline.cli"]
PROJECTED_TABLES = [table for projection in PROJECTIONS for table in projection.TABLES.values()]
SEED_COMMANDS = 58
SEED_ACTORS = 28


class Store:
    """One SQLite store, and the ``timeline`` command run against it."""

    def __init__(self, path: Path):
        self.path = path
        self.env = {"TIMELINE_DATABASE_URL": f"sqlite:///{path}"}

    def __call__(self, *args: str) -> Result:
        return CliRunner().invoke(main, list(args), env=self.env)

    def query(self, statement: str, params: tuple = ()) -> list[tuple]:
        with sqlite3.connect(self.path) as connection:
            return connection.execute(statement, params).fetchall()

    def events(self) -> int:
        return self.query("SELECT count(*) FROM stored_events")[0][0]

    def tracked(self, name: str) -> int | None:
        """The tracking position of the projection named ``name`` (its tables' version included)."""
        tracking = next(p for p in PROJECTIONS if p.name == name).tracking_key()
        return self.query("SELECT max(notification_id) FROM tracking WHERE application_name = ?", (tracking,))[0][0]

    def projected(self) -> dict[str, list[tuple]]:
        """Every row of every projected table, and the projections' positions."""
        rows = {table: sorted(self.query(f"SELECT * FROM {table}"), key=repr) for table in PROJECTED_TABLES}
        marks = ",".join("?" * len(PROJECTED_TABLES))
        schema = sorted(self.query(f"SELECT type, name, sql FROM sqlite_master WHERE tbl_name IN ({marks})",
                                   tuple(PROJECTED_TABLES)))
        return rows | {"schema": schema, "tracking": [(p.name, self.tracked(p.name)) for p in PROJECTIONS]}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "t.db")


@pytest.fixture
def seeded(store: Store) -> Store:
    assert store("seed").exit_code == 0
    return store


def messages(output: str) -> list[str]:
    """The lines of an output, without the progress bars that tqdm draws with \\r."""
    return [line for line in re.split(r"[\r\n]", output) if line.strip() and "|" not in line]


def write_lines(path: Path, *commands: dict | str) -> Path:
    path.write_text("".join((c if isinstance(c, str) else json.dumps(c, ensure_ascii=False)) + "\n"
                            for c in commands), encoding="utf-8")
    return path


def actor(slug: str, **overrides: str) -> dict:
    return {"register_actor": {"id": slug, "name": slug.title(), "kind": "state"} | overrides}


# --- seed and project -----------------------------------------------------------------------


def test_seed_twice_stores_the_seed_once(store):
    first, second = store("seed"), store("seed")
    assert (first.exit_code, second.exit_code) == (0, 0)
    assert first.stdout.startswith(f"Stored {SEED_COMMANDS}, already present 0, refused 0 lines")
    assert second.stdout.startswith(f"Stored 0, already present {SEED_COMMANDS}, refused 0 lines")
    assert store.events() == SEED_COMMANDS


def test_seed_if_empty_loads_into_an_empty_record_only(store, tmp_path):
    write_lines(tmp_path / "one.jsonl", actor("atlantis"))
    assert store("import", str(tmp_path / "one.jsonl")).exit_code == 0
    refused = store("seed", "--if-empty")
    assert refused.exit_code == 0 and refused.stdout == "The record is not empty; seed not loaded.\n"
    assert store.events() == 1
    other = Store(tmp_path / "other.db")
    loaded = other("seed", "--if-empty")
    assert loaded.exit_code == 0 and loaded.stdout.startswith(f"Stored {SEED_COMMANDS},")
    assert other.events() == SEED_COMMANDS


def applied(result: Result, position: int) -> int:
    """How many events ``timeline project`` says it applied; checks the position it names."""
    said = re.fullmatch(r"Applied (\d+) events; projections at position (\d+)\.\n", result.stdout)
    assert said and int(said[2]) == position, result.stdout
    return int(said[1])


def test_project_applies_new_events_and_reports_the_position(seeded, tmp_path):
    assert applied(seeded("project"), SEED_COMMANDS) >= SEED_COMMANDS
    assert applied(seeded("project"), SEED_COMMANDS) == 0
    write_lines(tmp_path / "one.jsonl", actor("atlantis"))
    seeded("import", str(tmp_path / "one.jsonl"))
    assert applied(seeded("project"), SEED_COMMANDS + 1) >= 1
    assert seeded.tracked("actors") == seeded.tracked("developments") == SEED_COMMANDS + 1
    assert seeded.query("SELECT slug FROM actor_heads WHERE slug = 'atlantis'") == [("atlantis",)]
    assert seeded.query("SELECT count(*) FROM development_heads") == [(SEED_COMMANDS - SEED_ACTORS,)]


# --- replay ---------------------------------------------------------------------------------


def test_replay_rebuilds_the_projections_and_prints_a_rate(seeded):
    seeded("project")
    projected = seeded.projected()
    seeded.query("DELETE FROM development_tags")
    replayed = seeded("replay")
    assert replayed.exit_code == 0
    assert re.fullmatch(rf"Replayed {SEED_COMMANDS} events in \d+\.\ds \([\d,]+ events/s\)\.\n", replayed.stdout)
    assert seeded.projected() == projected
    assert projected["development_tags"]


def test_replay_of_one_projection_leaves_the_others_alone(seeded):
    seeded("project")
    seeded.query("DELETE FROM development_tags")
    assert seeded("replay", "actors").stdout.startswith(f"Replayed {SEED_ACTORS} events")
    assert seeded.query("SELECT count(*) FROM development_tags") == [(0,)]
    assert seeded.query("SELECT count(*) FROM actor_heads") == [(SEED_ACTORS,)]


def test_replay_check_passes_on_a_clean_store_and_names_a_tampered_table(seeded):
    seeded("project")
    clean = seeded("replay", "--check")
    assert clean.exit_code == 0 and clean.stdout.startswith("Projections equal a clean rebuild")
    with sqlite3.connect(seeded.path) as connection:
        changed = connection.execute(
            "UPDATE development_versions SET certainty = 'denied' WHERE certainty = 'confirmed'").rowcount
    assert changed >= 1
    tampered = seeded("replay", "--check")
    assert tampered.exit_code == 1
    named = [table for table in PROJECTED_TABLES if re.search(rf"\b{table}\b", tampered.stderr)]
    assert named == ["development_versions"]
    assert "Error: 1 tables differ from a clean rebuild" in tampered.stderr
    assert seeded.query("SELECT name FROM sqlite_master WHERE name LIKE 'scratch%'") == []
    assert seeded("replay").exit_code == 0
    assert seeded("replay", "--check").exit_code == 0


@pytest.mark.parametrize("args", [
    ("replay", "nope"),
    pytest.param(("replay", "--check", "nope"), id="replay-check-nope"),
    ("project", "nope"),
], ids=" ".join)
def test_an_unknown_projection_is_refused_in_one_line(seeded, args):
    result = seeded(*args)
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)
    known = ", ".join(projection.name for projection in PROJECTIONS)
    assert messages(result.stderr) == [f"Error: no projection named nope; known: {known}"]


# --- import and export ------------------------------------------------------------------------


@pytest.mark.parametrize("bad, field", [
    (json.dumps(actor("atlantis", kind="island")), "kind"),
    (json.dumps({"register_actor": {"id": "Not A Slug", "name": "x", "kind": "state"}}), "id"),
    (json.dumps({"record_development": {"title": "x"}}), "category"),
    (json.dumps({"dance": {}}), "command"),
    pytest.param("this is not JSON", "line", id="not-json"),
    pytest.param('["register_actor"]', "line", id="not-an-object"),
], ids=["bad-kind", "bad-slug", "missing-fields", "unknown-command", "not-json", "not-an-object"])
def test_an_invalid_line_names_its_number_and_field_and_its_batch_is_not_stored(store, tmp_path, bad, field):
    path = write_lines(tmp_path / "in.jsonl", actor("first"), actor("second"), bad, actor("fourth"))
    result = store("import", "--batch-size", "2", str(path))
    assert result.exit_code == 1
    problems = messages(result.stderr)
    assert [line.startswith(f"{path}:3: {field}: ") for line in problems] == [True, False], problems
    assert problems[-1].endswith("batches with a problem were not stored")
    assert result.stdout.startswith("Stored 2, already present 0, refused 1 lines")
    assert store.query("SELECT count(*) FROM stored_events") == [(2,)]  # the first batch only


def test_a_refused_batch_of_one_stores_nothing(store, tmp_path):
    path = write_lines(tmp_path / "in.jsonl", actor("first"), actor("second", kind="island"), actor("third"))
    result = store("import", str(path))
    assert result.exit_code == 1 and f"{path}:2: kind:" in result.stderr
    assert result.stdout.startswith("Stored 0, already present 0, refused 1 lines")
    assert store.events() == 0


def test_bytes_that_are_not_utf8_are_a_refused_line_not_a_crash(store, tmp_path):
    path = write_lines(tmp_path / "in.jsonl", actor("first"), actor("second"))
    with path.open("ab") as stream:
        stream.write(b'{"register_actor": {"id": "third", "name": "Bad \xff\xfe name", "kind": "state"}}\n')
    result = store("import", str(path))
    assert result.exit_code == 1
    assert f"{path}:3: name: must not contain NUL characters or unpaired surrogates" in result.stderr
    assert store.events() == 0


def test_an_event_log_that_is_not_utf8_is_refused_in_one_line(seeded, tmp_path):
    assert seeded("export", str(tmp_path / "log.jsonl")).exit_code == 0
    damaged = (tmp_path / "log.jsonl").read_bytes().replace(b"Armenia", b"Armen\xffa", 1)
    (tmp_path / "damaged.jsonl").write_bytes(damaged)
    copy = Store(tmp_path / "copy.db")
    result = copy("import", str(tmp_path / "damaged.jsonl"))
    assert result.exit_code == 1 and "is not UTF-8" in result.stderr
    assert isinstance(result.exception, SystemExit), "a one-line error, not a traceback"


def test_export_then_import_into_an_empty_store_gives_an_identical_export(seeded, tmp_path):
    ident = "0bda98ca-c662-5d86-a01a-3b84ca5e52f8"
    more = write_lines(
        tmp_path / "more.jsonl",
        {"correct_development": {"id": ident, "changes": {"title": "Берг-Karabach, korrigiert"}, "reason": "typo"}},
        {"add_source": {"id": ident, "source": {"citation": "Zweite Quelle"}}},
        {"retract_development": {"id": ident, "reason": "Test"}},
        {"correct_development": {"id": ident, "changes": {"certainty": "disputed"}, "reason": "while retracted"}},
        {"restore_development": {"id": ident, "reason": "Test"}},
        {"correct_actor": {"id": "armenia", "changes": {"aliases": ["Hayastan"]}, "reason": "more"}},
    )
    assert seeded("import", str(more)).exit_code == 0
    exported = seeded("export", str(tmp_path / "a.jsonl"))
    assert exported.exit_code == 0
    assert exported.stdout == f"Exported {SEED_COMMANDS + 6} events to {tmp_path / 'a.jsonl'}.\n"
    records = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["position"] for r in records] == list(range(1, SEED_COMMANDS + 7))
    assert all(datetime.fromisoformat(r["recorded_at"]).tzinfo for r in records)
    assert [r["type"].rsplit(".", 1)[-1] for r in records[-6:]] == [
        "Corrected", "SourceAdded", "Retracted", "Corrected", "Restored", "Corrected"]
    copy = Store(tmp_path / "copy.db")
    imported = copy("import", str(tmp_path / "a.jsonl"))
    assert imported.exit_code == 0 and imported.stdout == f"Copied {SEED_COMMANDS + 6} stored events.\n"
    assert copy("export", str(tmp_path / "b.jsonl")).exit_code == 0
    assert (tmp_path / "b.jsonl").read_bytes() == (tmp_path / "a.jsonl").read_bytes()
    seeded("project")
    copy("project")
    assert copy.projected() == seeded.projected()


def test_an_interrupted_copy_resumes_where_it_stopped(seeded, tmp_path):
    assert seeded("export", str(tmp_path / "a.jsonl")).exit_code == 0
    lines = (tmp_path / "a.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "half.jsonl").write_text("".join(lines[:20]), encoding="utf-8")
    copy = Store(tmp_path / "copy.db")
    assert copy("import", str(tmp_path / "half.jsonl")).stdout == "Copied 20 stored events.\n"
    assert copy("import", str(tmp_path / "a.jsonl")).stdout == f"Copied {SEED_COMMANDS - 20} stored events.\n"
    assert copy("import", str(tmp_path / "a.jsonl")).stdout == "Copied 0 stored events.\n"
    copy("export", str(tmp_path / "b.jsonl"))
    assert (tmp_path / "b.jsonl").read_bytes() == (tmp_path / "a.jsonl").read_bytes()


def test_an_event_log_is_refused_by_a_store_that_does_not_hold_its_beginning(seeded, tmp_path):
    other = Store(tmp_path / "other.db")
    other("import", str(write_lines(tmp_path / "one.jsonl", actor("atlantis"))))
    other("seed")
    other("export", str(tmp_path / "other.jsonl"))
    result = seeded("import", str(tmp_path / "other.jsonl"))
    assert result.exit_code == 1
    assert "does not hold the beginning of this event log" in result.stderr


# --- a replay killed halfway --------------------------------------------------------------------


def timeline(store: Store, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*TIMELINE, *args], env={**os.environ, **store.env},
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("restart", ["replay", "project"])
def test_a_replay_killed_halfway_recovers(store, tmp_path, restart):
    """SIGKILL a replay while it is between batches of developments; a new replay (or just
    catching up) leaves tables equal to a clean rebuild, and ``replay --check`` passes."""
    commands = synthetic.write_commands(tmp_path / "synthetic.jsonl", 5000)
    assert timeline(store, "import", str(commands)).returncode == 0
    end = store.query("SELECT max(rowid) FROM stored_events")[0][0]
    assert timeline(store, "project").returncode == 0
    assert timeline(store, "replay").returncode == 0
    clean = store.projected()
    assert clean["tracking"] == [(projection.name, end) for projection in PROJECTIONS]

    process = subprocess.Popen([*TIMELINE, "replay"], env={**os.environ, **store.env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while not 0 < (store.tracked("developments") or 0) < end:
            assert process.poll() is None, "the replay finished before it could be killed"
            assert time.monotonic() < deadline, "the replay made no progress"
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    killed_at = store.tracked("developments")
    assert process.returncode == -signal.SIGKILL
    assert 0 < killed_at < end
    assert store.projected() != clean

    assert timeline(store, restart).returncode == 0
    check = timeline(store, "replay", "--check")
    assert check.returncode == 0, check.stderr
    assert store.projected() == clean


@pytest.mark.parametrize("target", ["missing/dir/copy.db", "not-a-database.db"])
def test_a_backup_that_cannot_be_written_is_refused_in_one_line(seeded, tmp_path, target):
    """An sqlite3 error from the copy was a traceback."""
    (tmp_path / "not-a-database.db").write_text("some notes, not SQLite\n" * 100)
    result = seeded("backup", str(tmp_path / target))
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), "a one-line error, not a traceback"
    assert messages(result.stderr) == [f"Error: cannot write the backup to {tmp_path / target}: "
                                       + ("unable to open database file" if "missing" in target
                                          else "file is not a database")]


def test_an_unreachable_store_is_reported_in_one_line():
    """psycopg's message runs on over two lines ("Is the server running ...")."""
    result = CliRunner().invoke(main, ["verify"], env={"TIMELINE_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/test"})
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: cannot open the record: ") and "refused" in lines[0], lines


@pytest.mark.parametrize("names", [(), ("actors",)], ids=["all", "one"])
def test_the_progress_of_a_check_ends_at_its_total(seeded, names):
    """Each projection's rebuild applies only its own events: the bar, counting the
    events applied against the log's length, ended at 116 of 58."""
    seeded("project")
    result = seeded("replay", "--check", *names)
    assert result.exit_code == 0
    done, total = re.findall(r"(\d+)/(\d+) \[", result.stderr)[-1]
    assert done == total == str(SEED_COMMANDS * (len(names) or len(PROJECTIONS)))


def test_verify_names_the_events_not_yet_chained(seeded, tmp_path):
    """A log copied into an empty store is chained by the next ``timeline project``;
    until then "0 stored events match their hash chain" alone read as a clean bill."""
    assert seeded("export", str(tmp_path / "log.jsonl")).exit_code == 0
    copy = Store(tmp_path / "copy.db")
    assert copy("import", str(tmp_path / "log.jsonl")).exit_code == 0
    result = copy("verify")
    assert result.exit_code == 0
    assert messages(result.stdout) == [
        "0 stored events match their hash chain.",
        f"{SEED_COMMANDS} later events are not in the chain yet, so not verified; "
        "`timeline project` chains them as they are now."]
    copy("project")
    assert messages(copy("verify").stdout) == [f"{SEED_COMMANDS} stored events match their hash chain."]
