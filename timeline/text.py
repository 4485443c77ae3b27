"""Text folding for search: case-insensitive, accent-insensitive, any script."""

from __future__ import annotations

import unicodedata

_MARKS = {point: None for point in range(0x30000) if unicodedata.combining(chr(point))}
"""Every combining mark (accents, Arabic vowel marks, Hebrew points, ...), for str.translate."""


def fold(text: str) -> str:
    """Lower-cases (Unicode casefold) and strips combining marks of any script:
    'Paşinyan' -> 'pasinyan'."""
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFKD", text.casefold()).translate(_MARKS)
