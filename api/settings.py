"""Configuration from the environment (Flask's ``from_prefixed_env`` convention:
``TIMELINE_<NAME>``), with defaults that work on a fresh machine."""

from __future__ import annotations

import os
from typing import Any

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": "sqlite:///instance/timeline.db",
    "PUBLIC_READS": True,
    "WRITE_RATE_LIMIT": "600 per minute",
    "RATELIMIT_STORAGE_URI": "memory://",
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "WAIT_TIMEOUT": 5.0,
    "STREAM_POLL_INTERVAL": 0.5,
    "STREAM_KEEPALIVE": 15.0,
    "MAX_STREAMS": 4,
    "IDEMPOTENCY_TTL_HOURS": 48,
    "TOKEN_CACHE_SECONDS": 1.0,
    "READ_CACHE_MB": 64.0,
}

BOOLEANS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
"""What a yes/no setting may say: a typo (``TIMELINE_PUBLIC_READS=O``) is refused, not
taken for yes, which would open the reads it was meant to close."""

POSITIVE = ("MAX_CONTENT_LENGTH", "STREAM_POLL_INTERVAL", "STREAM_KEEPALIVE", "IDEMPOTENCY_TTL_HOURS")
"""Settings of which 0 makes no sense (nothing accepted, a busy loop, keys forgotten at once)."""


class SettingError(ValueError):
    """A ``TIMELINE_*`` setting the service cannot use, said in one line that names it."""


def from_environment(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Settings: defaults, then ``TIMELINE_*`` environment variables, then overrides;
    a value the service cannot use is a :class:`SettingError` before anything starts,
    instead of a worker's traceback or, for the rate limit, no limit at all."""
    settings = dict(DEFAULTS)
    for name, default in DEFAULTS.items():
        raw = os.environ.get(f"TIMELINE_{name}")
        if raw is not None:
            settings[name] = _parse(name, raw, default)
    settings.update(overrides or {})
    _check(settings)
    return settings


def _parse(name: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        if raw.strip().lower() not in BOOLEANS:
            raise SettingError(f"TIMELINE_{name} must be 1 or 0 (true/false, yes/no, on/off), not {raw!r}")
        return BOOLEANS[raw.strip().lower()]
    if isinstance(default, (int, float)):
        try:
            return type(default)(raw)
        except ValueError:
            kind = "a whole number" if isinstance(default, int) else "a number"
            raise SettingError(f"TIMELINE_{name} must be {kind}, not {raw!r}") from None
    return raw


def _check(settings: dict[str, Any]) -> None:
    """Numbers in range, and a rate limit and its storage that Flask-Limiter can use (it
    would otherwise log the error and let every write through)."""
    from limits import parse_many
    from limits.storage import SCHEMES

    for name, default in DEFAULTS.items():
        value = settings[name]
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            continue
        if value != value or value < 0 or (name in POSITIVE and value == 0):  # NaN, negative
            least = "more than 0" if name in POSITIVE else "0 or more"
            raise SettingError(f"TIMELINE_{name} must be {least}, not {value!r}")
    try:
        if not parse_many(settings["WRITE_RATE_LIMIT"]):
            raise ValueError
    except ValueError:
        raise SettingError("TIMELINE_WRITE_RATE_LIMIT must be a rate limit such as '600 per minute', "
                           f"not {settings['WRITE_RATE_LIMIT']!r}") from None
    uri = str(settings["RATELIMIT_STORAGE_URI"])
    scheme = uri.partition("://")[0] if "://" in uri else ""
    if scheme not in SCHEMES or scheme.startswith("async+"):  # only the scheme is quoted: a password may follow
        raise SettingError("TIMELINE_RATELIMIT_STORAGE_URI must be a storage such as memory:// or "
                           f"redis://127.0.0.1:6379; its scheme is {scheme!r}")
