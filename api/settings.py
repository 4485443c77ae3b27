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


def from_environment(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Settings: defaults, then ``TIMELINE_*`` environment variables, then overrides."""
    settings = dict(DEFAULTS)
    for name, default in DEFAULTS.items():
        raw = os.environ.get(f"TIMELINE_{name}")
        if raw is None:
            continue
        if isinstance(default, bool):
            settings[name] = raw.strip().lower() not in ("0", "false", "no", "off", "")
        elif isinstance(default, (int, float)):
            settings[name] = type(default)(raw)
        else:
            settings[name] = raw
    settings.update(overrides or {})
    return settings
