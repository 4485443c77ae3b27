"""SIGKILL `timeline import` and `timeline project --follow` halfway: running them again
gives the same end state as an uninterrupted run."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.synthetic import write_commands
from events.chronicle import Chronicle
from timeline import transfer
from timeline.projector import Projector, differences

pytestmark = pytest.mark.slow
TIMELINE = str(Path(sys.executable).parent / "timeline")


def env_for(path: Path) -> dict[str, str]:
    return {**os.environ, "TIMELINE_DATABASE_URL": f"sqlite:///{path}"}


def log_of(path: Path) -> list[tuple]:
    """The event log without positions and times: stream, version, type, payload."""
    chronicle = Chronicle(env={"TIMELINE_DATABASE_URL": f"sqlite:///{path}"})
    out = io.StringIO()
    transfer.export_events(chronicle, out)
    chronicle.close()
    events = []
    for line in out.getvalue().splitlines():
        event = json.loads(line)
        payload = {k: v for k, v in event["payload"].items() if k != "timestamp"}
        events.append((event["stream_id"], event["version"], event["type"], json.dumps(payload, sort_keys=True)))
    return sorted(events)


def kill_when(process: subprocess.Popen, ready, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def stored(path: Path) -> int:
    if not path.exists():
        return 0
    chronicle = Chronicle(env={"TIMELINE_DATABASE_URL": f"sqlite:///{path}"})
    try:
        return chronicle.recorder.max_notification_id() or 0
    finally:
        chronicle.close()


def test_an_import_killed_halfway_and_run_again_ends_like_an_uninterrupted_one(tmp_path):
    commands = write_commands(tmp_path / "commands.jsonl", 6000)
    whole, killed = tmp_path / "whole.db", tmp_path / "killed.db"
    subprocess.run([TIMELINE, "import", str(commands)], env=env_for(whole), check=True, capture_output=True)
    process = subprocess.Popen([TIMELINE, "import", "--batch-size", "500", str(commands)], env=env_for(killed),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_when(process, lambda: stored(killed) > 1000)
    halfway = stored(killed)
    assert 0 < halfway < 6500, "the kill should land in the middle of the import"
    assert halfway % 500 == 0, "only whole batches are stored"
    subprocess.run([TIMELINE, "import", str(commands)], env=env_for(killed), check=True, capture_output=True)
    assert stored(killed) == stored(whole) == 6500
    assert log_of(killed) == log_of(whole)


def test_a_follower_killed_halfway_and_run_again_converges(tmp_path):
    store = tmp_path / "store.db"
    commands = write_commands(tmp_path / "commands.jsonl", 6000)
    subprocess.run([TIMELINE, "import", str(commands)], env=env_for(store), check=True, capture_output=True)
    chronicle = Chronicle(env={"TIMELINE_DATABASE_URL": f"sqlite:///{store}"})
    projector = Projector(chronicle)  # creates the tables, projects nothing yet
    process = subprocess.Popen([TIMELINE, "project", "--follow"], env=env_for(store),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_when(process, lambda: 0 < projector.position() or projector.projections[1].position() > 0)
    assert projector.lag() > 0, "the kill should land before the follower caught up"
    process = subprocess.Popen([TIMELINE, "project", "--follow"], env=env_for(store),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while projector.lag() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert projector.lag() == 0
    projector.close()
    assert differences(chronicle) == []
    chronicle.close()
