"""The service: the write side, the projections and the read queries of one store,
wired together so that a process reads its own writes.

After every write the service brings the projections up to the write's log position
before it returns. On SQLite it writes them in the transaction that stores the events,
so a write and its projection commit together, with one sync; on PostgreSQL (where the
library's save pipelines its statements) right after that transaction. Other processes
(more workers, ``timeline project --follow``) keep the same projection tables current;
a read that must see a write made elsewhere passes ``min_position`` and waits, bounded,
for the projections to reach it.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Mapping
from typing import Any

from events.chronicle import Chronicle, Receipt
from events.errors import RecordError
from timeline.projector import Projector
from timeline.queries import Reader

log = logging.getLogger(__name__)


class ProjectionsBehind(RecordError):
    """The projections did not reach a requested position in time."""

    def __init__(self, position: int, reached: int):
        self.position, self.reached = position, reached
        super().__init__(f"the read model is at position {reached}, not yet at {position}; retry shortly")


class Service:
    """One store: commands in, queries out."""

    def __init__(self, env: Mapping[str, str] | None = None, *, wait_timeout: float = 5.0):
        self.chronicle = Chronicle(env=dict(env or {}))
        self.projector = Projector(self.chronicle)
        self.reader = Reader(self.projector)
        self.wait_timeout = wait_timeout
        self.chronicle.within_save = self.projector.project_within
        self.chronicle.after_save = self._project
        self.projector.catch_up()

    def _project(self, position: int, saved: Mapping[int, Any]) -> None:
        """A group commit is projected by the thread that saved it, in one transaction,
        before the next group is saved: not by the first of its writers, up to that
        writer's own position only. The events it saved are not decoded again. Nothing
        is left to do here when the group was projected in its own transaction."""
        self.projector.catch_up(until=position, saved=saved)

    def execute(self, command: str, *args: Any, **kwargs: Any) -> Receipt:
        """Runs one :class:`Chronicle` command and projects it before answering. Once the
        command returns, its events are stored: if projecting them fails (a fault in a
        projection, a damaged read model), the failure is logged and the receipt is still
        the answer, since an error would invite a retry that records it twice. The
        projections stay behind (``/readyz`` shows the lag) until a catch-up succeeds."""
        receipt: Receipt = getattr(self.chronicle, command)(*args, **kwargs)
        try:
            self.projector.catch_up(until=receipt.position)  # done already, unless projecting the group failed
        except Exception:  # noqa: BLE001 - stored is stored; the read model catches up later
            log.exception("stored at position %s, but projecting it failed", receipt.position)
        return receipt

    def settle(self, min_position: int | None) -> None:
        """Waits until the projections show everything up to ``min_position``."""
        if min_position and not self.projector.wait_for(min_position, self.wait_timeout):
            raise ProjectionsBehind(min_position, self.projector.position())

    def close(self) -> None:
        self.projector.close()
        self.chronicle.close()


def freeze_startup_objects() -> None:
    """For a process that serves from now on: what it has made at start-up (modules, the
    app, its schemas and routes: ~60,000 objects or more) lives until it exits, so the
    garbage collector is told not to scan it again. Every full collection scanned it
    all, 10-30 ms, about once in a hundred actor-state answers, and that was their p99
    at a million developments (30.5 -> 17.7 ms)."""
    gc.collect()
    gc.freeze()
