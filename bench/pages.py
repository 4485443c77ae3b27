"""What a group commit writes to SQLite's log: the pages of each table and index that one
transaction of ``--size`` recordings dirties, and the CPU it costs, for developments
recorded with random ids (version 4, given by the client) and with the ids the record
gives them (time-ordered, version 7), taking turns in shuffled order.

    PYTHONPATH=. .venv/bin/python bench/pages.py [--developments 10000] [--groups 20] [--size 8]

Each group is one ``Chronicle.execute`` (validation, events, projections, one commit) on
a store of the seed plus ``--developments`` synthetic ones. Before each, the log is
checkpointed and emptied, so the log's frames afterwards are that group's pages; SQLite's
``dbstat`` table names the table or index each page belongs to.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import statistics
import struct
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from bench import common
from bench.http_load import prepare
from bench.synthetic import ONE_WRITE

MODES = {"random ids (v4)": lambda: {"id": str(uuid.uuid4())}, "ids the record gives (v7)": lambda: {}}


def logged_pages(path: Path) -> list[int]:
    """The page numbers of the frames in a SQLite log file."""
    data = path.read_bytes()
    if len(data) < 32:
        return []
    size = struct.unpack(">I", data[8:12])[0]
    return [struct.unpack(">I", data[offset:offset + 4])[0] for offset in range(32, len(data) - 23, size + 24)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--developments", type=int, default=10000, help="synthetic developments in the store")
    parser.add_argument("--groups", type=int, default=20, help="group commits measured per kind of id")
    parser.add_argument("--size", type=int, default=8, help="recordings per group commit")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp())
    database = directory / "pages.db"
    url = f"sqlite:///{database}"
    prepare({"TIMELINE_DATABASE_URL": url}, args.developments)

    from timeline.service import Service

    service = Service({"TIMELINE_DATABASE_URL": url})
    inspector = sqlite3.connect(database)
    pages: dict[str, Counter] = {mode: Counter() for mode in MODES}
    cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
    def group(ident) -> list[tuple[str, dict]]:
        return [("record_development", {**ONE_WRITE, **ident()}) for _ in range(args.size)]

    for ident in MODES.values():  # warm the caches with a few groups of each
        for _ in range(5):
            service.chronicle.execute(group(ident), recorded_by="bench")
    with common.progress_bar(total=args.groups * len(MODES), desc="group commits", unit="group") as bar:
        order = random.Random(7)
        for _ in range(args.groups):  # in shuffled turns: FTS5 merges its segments every few commits
            for mode, ident in order.sample(list(MODES.items()), len(MODES)):
                inspector.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                commands = group(ident)
                started = time.thread_time()
                service.chronicle.execute(commands, recorded_by="bench")
                cpu[mode].append((time.thread_time() - started) / args.size)
                owner = dict(inspector.execute("SELECT pageno, name FROM dbstat"))
                pages[mode].update(owner.get(page, "(new)") for page in set(logged_pages(Path(f"{database}-wal"))))
                bar.update()
    service.close()
    inspector.close()
    shutil.rmtree(directory)
    report = {}
    print(f"{args.groups} group commits of {args.size} recordings per kind of id, taking turns, on the seed plus "
          f"{args.developments} developments")
    for mode in MODES:
        report[mode] = {"pages_per_group": round(sum(pages[mode].values()) / args.groups, 1),
                        "cpu_us_per_recording": round(statistics.median(cpu[mode]) * 1e6),
                        "pages_by_table": {name: round(n / args.groups, 1) for name, n in pages[mode].most_common()}}
        print(f"{mode}: {report[mode]['pages_per_group']} pages per group; CPU {report[mode]['cpu_us_per_recording']}"
              f" µs per recording (median of groups); most pages: " + ", ".join(
                  f"{name} {n}" for name, n in list(report[mode]["pages_by_table"].items())[:6]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
