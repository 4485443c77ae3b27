"""The fast paths of :func:`events.dates.parse_when` must agree with the ``edtf``
package, which parses everything else."""

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from events.dates import _parse, _parse_edtf

days = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))


def iso(day: date, precision: str) -> str:
    return {"day": day.isoformat(), "month": day.isoformat()[:7], "year": day.isoformat()[:4]}[precision]


precisions = st.sampled_from(["day", "month", "year"])
qualifiers = st.sampled_from(["", "~", "?", "%"])


@st.composite
def simple_dates(draw) -> str:
    return iso(draw(days), draw(precisions)) + draw(qualifiers)


@st.composite
def ordered_pairs(draw) -> tuple[date, date]:
    first = draw(st.dates(min_value=date(1000, 1, 1), max_value=date(9000, 1, 1)))
    return first, first + timedelta(days=draw(st.integers(0, 3000)))


@st.composite
def fuzzy_dates(draw) -> str:
    first, last = draw(ordered_pairs())
    precision = draw(precisions)
    shape = draw(st.sampled_from(["interval", "range", "set"]))
    if shape == "interval":
        return f"{iso(first, precision)}{draw(qualifiers)}/{iso(last, draw(precisions))}"
    if shape == "range":
        return f"[{iso(first, precision)}..{iso(last, precision)}]"
    return f"[{iso(first, precision)},{iso(last, precision)}]"


@settings(max_examples=300, deadline=None)
@given(simple_dates())
def test_plain_dates_agree_with_edtf(text):
    assert _parse(text) == _parse_edtf(text)


@settings(max_examples=300, deadline=None)
@given(fuzzy_dates())
def test_intervals_and_ranges_agree_with_edtf(text):
    assert _parse(text) == _parse_edtf(text)
