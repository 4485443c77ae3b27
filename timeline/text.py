"""Text folding for search: case-insensitive, accent-insensitive, any script."""

from __future__ import annotations

import unicodedata


def fold(text: str) -> str:
    """Lower-cases (Unicode casefold) and strips combining marks of any script (accents,
    Arabic vowel marks, Hebrew points): 'Paşinyan' -> 'pasinyan'."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))
