"""Text folding for search: case-insensitive, accent-insensitive, any script."""

from __future__ import annotations

import unicodedata

_MARKS = {point: None for point in range(0x30000) if unicodedata.combining(chr(point))}
"""Every combining mark (accents, Arabic vowel marks, Hebrew points, ...), for str.translate."""


def fold(text: str) -> str:
    """Lower-cases (Unicode casefold) and strips combining marks of any script:
    'Paşinyan' -> 'pasinyan'. Case is folded again after the decomposition, which
    turns letters without a lower case into ones with it ('𝐁𝐑𝐄𝐀𝐊𝐈𝐍𝐆', 'ℌ' -> 'BREAKING',
    'H'): left so, PostgreSQL's LIKE, which heeds case, missed them where SQLite's did not."""
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFKD", text.casefold()).translate(_MARKS).casefold()
