"""Text folding for search: case-insensitive, accent-insensitive, any script."""

from __future__ import annotations

import re
import unicodedata


_ACCENTS = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")
"""The Unicode blocks of combining diacritical marks."""


def fold(text: str) -> str:
    """Lower-cases (Unicode casefold) and strips combining accents: 'Paşinyan' -> 'pasinyan'."""
    if text.isascii():
        return text.lower()
    return _ACCENTS.sub("", unicodedata.normalize("NFKD", text.casefold()))
