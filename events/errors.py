"""What can go wrong when writing to the record, in the historian's terms.

Every error names what was wrong, so that the CLI and the API can say it plainly; none
of them leaves a partial write behind.
"""

from __future__ import annotations

from collections.abc import Mapping


class RecordError(Exception):
    """Base class: a write that was refused and changed nothing."""


class InvalidInput(RecordError):
    """Input that breaks a rule of the record; ``errors`` maps each bad field to why."""

    def __init__(self, errors: Mapping[str, list[str]]):
        self.errors = {field: list(messages) for field, messages in errors.items()}
        super().__init__(
            "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in self.errors.items())
        )

    @classmethod
    def of(cls, field: str, message: str) -> InvalidInput:
        return cls({field: [message]})


class NotFound(RecordError):
    """No development or actor has that id."""

    def __init__(self, kind: str, ident: object):
        self.kind, self.ident = kind, str(ident)
        super().__init__(f"no {kind} with id {self.ident!r}")


class Conflict(RecordError):
    """The id is already taken by a different record."""


class StaleVersion(RecordError):
    """The write expected an earlier version of the stream than the current one."""

    def __init__(self, ident: object, expected: int | None, current: int):
        self.ident, self.expected, self.current = str(ident), expected, current
        super().__init__(
            f"{self.ident} is at version {current}, not {expected}: reload it and try again"
        )
