"""How many times the read tables of a SQLite store have been committed to, by any
process, counted in shared memory so that a reader learns it without a statement.

A worker keeps its answers while this count stands still (api/cache.py). It used to ask
the store for the projections' positions on every request instead: one SQL statement,
and Python's ``sqlite3`` lets go of the interpreter lock for each. In a worker whose 16
threads are busy, each let-go hands the lock to another thread and waits to get it back.
That made a kept actor state cost 239-273 µs of CPU under 16 threads where it cost
117 µs alone; with the count read from memory it costs 88-89 µs (docs/benchmarks.md).

Every process that commits to the read tables adds one after the commit, before it
answers anyone, so a read that starts after a write's answer sees a new count. The
count lives in ``<database>-changes`` beside the database (like SQLite's own ``-wal`` and
``-shm`` files, leave it in place while the service runs). Adding takes a lock (a lock on
the file for processes, a mutex for threads), so that the count never repeats a value.
A process also adds one when it opens the store: one that died between a commit and its
count leaves no answer kept from before that commit.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

SIZE = 8
"""One unsigned 64-bit count, read and written as one machine word."""

_in_memory: weakref.WeakValueDictionary[str, ChangeCount] = weakref.WeakValueDictionary()
"""The count of each in-memory database, shared by the views of this process that use it."""
_in_memory_lock = threading.Lock()


class ChangeCount:
    """The count of one store, mapped into this process's memory (``path``), or of an
    in-memory database, which only this process sees (no path)."""

    def __init__(self, path: str | None = None):
        self.path = path
        self._threads = threading.Lock()
        self._file: int | None = None
        """The open count file, locked while one is added."""
        if path is None:
            self._memory = mmap.mmap(-1, SIZE)
            return
        self._file = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        if os.fstat(self._file).st_size < SIZE:  # never shrink it: reading a map past its file's end faults
            os.ftruncate(self._file, SIZE)
        self._memory = mmap.mmap(self._file, SIZE)

    @classmethod
    def of(cls, database: str) -> ChangeCount:
        """The count of the SQLite database named ``database`` (a path, or a ``file:`` URI
        of an in-memory one), with one added for the process that opens it."""
        if database == ":memory:" or "mode=memory" in database:
            with _in_memory_lock:
                count = _in_memory.get(database)
                if count is None:
                    count = _in_memory[database] = cls()
        else:
            count = cls(f"{database}-changes")
        count.add()
        return count

    def value(self) -> bytes:
        """The count as it stands: a read of memory, no system call."""
        return self._memory[:SIZE]

    def add(self) -> None:
        """Adds one: after a commit to the read tables, before anyone hears of it."""
        with self._locked():
            now = int.from_bytes(self._memory[:SIZE], "little")
            self._memory[:SIZE] = ((now + 1) % 2**64).to_bytes(SIZE, "little")

    def close(self) -> None:
        """Unmaps a store's count; an in-memory database's goes with its last view."""
        if self._file is not None:
            self._memory.close()
            os.close(self._file)
            self._file = None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._threads:
            if self.path is None:
                yield
                return
            fcntl.flock(self._file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._file, fcntl.LOCK_UN)
