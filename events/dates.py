"""Fuzzy dates: EDTF strings (ISO 8601-2) as historians write them, with the bounds
that projections need.

The ``edtf`` package does the parsing, behind this module's one door,
:func:`parse_when`, because it raises all kinds of exceptions on some inputs and
accepts reversed intervals. Plain ISO days, months and years, which are nearly all
dates, take a fast path that never reaches it.
"""

from __future__ import annotations

import calendar
import contextlib
import io
import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import edtf

from events.errors import InvalidInput

MAX_LENGTH = 100
_ISO = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?([~?%])?", re.ASCII)
"""ASCII digits only: EDTF is ASCII, and ``int`` would read ``٢٠٢٣`` or ``２０２３`` as 2023."""
_QUALIFIERS = re.compile(r"[~?%]")


@dataclass(frozen=True)
class FuzzyDate:
    """A date as the record states it, and the days it may stand for."""

    edtf: str
    """The EDTF string exactly as given."""

    earliest: str
    """First day it may stand for (ISO 8601)."""

    latest: str
    """Last day it may stand for (ISO 8601)."""

    precision: str
    """``day``, ``month``, ``season``, ``year``, ``decade``, ``century``, ``range``
    (one day of several possible) or ``interval`` (something that lasted)."""

    qualified: bool
    """Marked approximate (``~``), uncertain (``?``) or both (``%``)."""


def parse_when(text: str, field: str = "when") -> FuzzyDate:
    """Parses an EDTF string, or raises :class:`InvalidInput` naming ``field``."""
    if not isinstance(text, str):
        raise InvalidInput.of(field, "must be a string in EDTF (e.g. 2023-09-19, 2023-09, 2023-09-05~)")
    try:
        return _parse(text)
    except ValueError as error:
        raise InvalidInput.of(field, str(error)) from None


@lru_cache(maxsize=4096)
def _parse(text: str) -> FuzzyDate:
    """Cached: a record repeats its dates. A cache of 65,536 dates held ~13 MB after a
    synthetic import of 100,000 developments (41,078 distinct dates), so that
    an import's peak memory grew with its length (53 MB at 10,000, 66 at 100,000); with
    4,096 it stays at 51-52 MB and the import is as fast."""
    if not text.strip():
        raise ValueError("a date is required, as EDTF (e.g. 2023-09-19, 2023-09, 2023-09-05~)")
    if text != text.strip():
        raise ValueError(f"{text!r} has spaces around it; give the EDTF date alone")
    if len(text) > MAX_LENGTH:
        raise ValueError(f"a date is at most {MAX_LENGTH} characters")
    return _parse_iso(text) or _parse_season(text) or _parse_composite(text) or _parse_edtf(text)


_SEASONS = {21: (3, 5), 22: (6, 8), 23: (9, 11), 24: (12, 2)}
"""EDTF seasons (northern hemisphere): first and last month; winter runs into the next year."""


def _parse_season(text: str) -> FuzzyDate | None:
    """Spring, summer, autumn and winter (``2023-21`` .. ``2023-24``), which edtf gets
    wrong for winter (it gives December only)."""
    match = re.fullmatch(r"(\d{4})-(2[1-4])([~?%])?", text, re.ASCII)
    if not match or int(match[1]) == 0:
        return None
    year, (first_month, last_month) = int(match[1]), _SEASONS[int(match[2])]
    last_year = year + 1 if last_month < first_month else year
    if last_year > 9999:
        raise ValueError(f"{text!r} runs into the year 10000; years run from 0001 to 9999")
    first = date(year, first_month, 1)
    last = date(last_year, last_month, calendar.monthrange(last_year, last_month)[1])
    return FuzzyDate(text, first.isoformat(), last.isoformat(), "season", match[3] is not None)


def _parse_iso(text: str) -> FuzzyDate | None:
    """A plain ISO day, month or year, possibly qualified; None for anything else."""
    match = _ISO.fullmatch(text)
    if not match or (match[2] is not None and not 1 <= int(match[2]) <= 12):
        return None
    year, month, day, qualifier = match.groups()
    y = int(year)
    if y == 0:
        raise ValueError("year 0000 is not supported; years run from 0001 to 9999")
    if month is None:
        first, last, precision = date(y, 1, 1), date(y, 12, 31), "year"
    elif day is None:
        m = int(month)
        first, last, precision = date(y, m, 1), date(y, m, calendar.monthrange(y, m)[1]), "month"
    else:
        try:
            first = last = date(y, int(month), int(day))
        except ValueError:
            raise ValueError(f"{text!r} is not a day of the calendar") from None
        precision = "day"
    return FuzzyDate(text, first.isoformat(), last.isoformat(), precision, qualifier is not None)


def _parse_composite(text: str) -> FuzzyDate | None:
    """An interval (``A/B``) of plain ISO dates or seasons, or a one-of range (``[A..B]``,
    ``[A,B]``) of plain ISO dates, the common fuzzy forms, without the slow general
    parser; None otherwise.

    Seasons at either end of an interval are read here, not by edtf, which ends winter
    in December: ``2023-22/2023-24`` must end on the last day of ``2023-24`` as given
    alone (February 2024). edtf refuses seasons in sets and ranges, and so does this
    module: they are left to it."""
    if text.count("/") == 1:
        start, end = (_parse_iso(part) or _parse_season(part) for part in text.split("/"))
        if start and end:
            return _bounded(text, [start, end], "interval")
    elif text.startswith("[") and text.endswith("]") and not text.startswith("[..") and not text.endswith("..]"):
        members: list[FuzzyDate | None] = []
        for member in text[1:-1].split(","):
            ends = member.split("..")
            if len(ends) > 2:
                return None
            if len(ends) == 2 and len(ends[0]) != len(ends[1]):
                return None  # mixed precisions: leave it to the general parser
            members += [_parse_iso(end) for end in ends]
            if len(ends) == 2 and all(members[-2:]) and members[-2].earliest > members[-1].latest:
                raise ValueError(f"{text!r} has a range that ends before it begins")
        if all(members):
            return _bounded(text, members, None)
    return None


def _bounded(text: str, parts: list[FuzzyDate], precision: str | None) -> FuzzyDate:
    if precision == "interval":
        first, last = parts[0].earliest, parts[-1].latest
        if first > last:
            raise ValueError(f"{text!r} ends before it begins")
    else:
        first, last = min(p.earliest for p in parts), max(p.latest for p in parts)
    precision = precision or _precision_of(date.fromisoformat(first), date.fromisoformat(last))
    return FuzzyDate(text, first, last, precision, any(p.qualified for p in parts))


def _parse_edtf(text: str) -> FuzzyDate:
    if text.startswith(("/", "..")) or text.endswith(("/", "..")) or "[.." in text or "..]" in text:
        raise ValueError(
            f"{text!r} has an open or unknown end; give both ends, e.g. 2023-09-11/2023-09-20"
        )
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # edtf prints on some failures
            parsed = edtf.parse_edtf(text)
        low, high = parsed.lower_strict(), parsed.upper_strict()
        first, last = date(*low[:3]), date(*high[:3])
    except Exception:  # edtf raises TypeError, AttributeError, ValueError... on bad input
        raise ValueError(
            f"{text!r} is not a valid EDTF date (e.g. 2023-09-19, 2023-09, 2023-09-05~, "
            "[2023-09-01..2023-09-10], 2023-09-11/2023-09-20)"
        ) from None
    if first > last:
        raise ValueError(f"{text!r} ends before it begins")
    return FuzzyDate(
        text,
        first.isoformat(),
        last.isoformat(),
        _precision(parsed, first, last),
        bool(_QUALIFIERS.search(text)),
    )


def _precision(parsed: object, first: date, last: date) -> str:
    if isinstance(parsed, edtf.Interval):
        return "interval"
    if isinstance(parsed, edtf.Season):
        return "season"
    return _precision_of(first, last)


def _precision_of(first: date, last: date) -> str:
    """The granularity that a span of days amounts to."""
    if first == last:
        return "day"
    whole_years = (first.month, first.day, last.month, last.day) == (1, 1, 12, 31)
    if whole_years and first.year == last.year:
        return "year"
    if whole_years and first.year % 10 == 0 and last.year == first.year + 9:
        return "decade"
    if whole_years and first.year % 100 == 0 and last.year == first.year + 99:
        return "century"
    if (first.year, first.month) == (last.year, last.month) and first.day == 1 and (
        last.day == calendar.monthrange(last.year, last.month)[1]
    ):
        return "month"
    return "range"
