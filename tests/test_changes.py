"""The count of commits to a SQLite store's read tables (timeline/changes.py): every
process sees every other's additions, none is lost, and in-memory databases keep theirs
apart."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from pathlib import Path

from timeline.changes import ChangeCount

ADD = """
import sys, threading
from timeline.changes import ChangeCount
count = ChangeCount(sys.argv[1])
def adding():
    for _ in range(int(sys.argv[2])):
        count.add()
threads = [threading.Thread(target=adding) for _ in range(4)]
for thread in threads: thread.start()
for thread in threads: thread.join()
"""


def as_number(count: ChangeCount) -> int:
    return int.from_bytes(count.value(), "little")


def test_another_process_adding_is_seen_at_once_and_none_is_lost(tmp_path: Path):
    path = str(tmp_path / "timeline.db-changes")
    count = ChangeCount(path)
    try:
        before = count.value()
        adders = [subprocess.Popen([sys.executable, "-c", ADD, path, "250"]) for _ in range(3)]
        for _ in range(250):  # meanwhile, this process adds too
            count.add()
        assert [adder.wait(timeout=60) for adder in adders] == [0, 0, 0]
        assert count.value() != before
        assert as_number(count) == 3 * 4 * 250 + 250
    finally:
        count.close()


def test_opening_a_store_adds_one_and_keeps_what_was_counted(tmp_path: Path):
    """A process that died between a commit and its count leaves no answer kept from
    before that commit: the next process to open the store adds one."""
    database = str(tmp_path / "timeline.db")
    first = ChangeCount.of(database)
    try:
        first.add()
        assert as_number(first) == 2
        second = ChangeCount.of(database)
        assert as_number(first) == as_number(second) == 3
        second.close()
    finally:
        first.close()
    assert Path(f"{database}-changes").stat().st_size == 8


def test_each_in_memory_database_has_its_own_count_shared_by_its_views():
    name, other = (f"file:timeline-{uuid.uuid4().hex}?mode=memory&cache=shared" for _ in range(2))
    one, same, another = ChangeCount.of(name), ChangeCount.of(name), ChangeCount.of(other)
    assert one is same and another is not one
    before = another.value()
    one.add()
    assert as_number(one) == 3 and another.value() == before
    one.close()  # a view that closes leaves the count to the others
    same.add()
    assert as_number(same) == 4


def test_threads_adding_at_once_lose_nothing(tmp_path: Path):
    count = ChangeCount(str(tmp_path / "timeline.db-changes"))
    try:
        threads = [threading.Thread(target=lambda: [count.add() for _ in range(500)]) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert as_number(count) == 4000
    finally:
        count.close()
