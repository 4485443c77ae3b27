"""Fuzzy dates: what events.dates.parse_when accepts, the bounds it derives, and how it
refuses what is not an EDTF date."""

from __future__ import annotations

from datetime import date

import pytest

from events.dates import MAX_LENGTH, FuzzyDate, parse_when
from events.errors import InvalidInput
from events.vocabulary import PRECISIONS


def refusal(value: object, field: str = "when") -> str:
    """The one message parse_when gives for ``value``, checking it names ``field``."""
    with pytest.raises(InvalidInput) as caught:
        parse_when(value, field)  # type: ignore[arg-type]
    assert list(caught.value.errors) == [field]
    (message,) = caught.value.errors[field]
    return message


def days(fuzzy: FuzzyDate) -> int:
    """How many calendar days a fuzzy date may stand for."""
    return (date.fromisoformat(fuzzy.latest) - date.fromisoformat(fuzzy.earliest)).days + 1


# --- accepted dates and what is derived from them ------------------------------------

VALID = [
    # text, earliest, latest, precision, qualified
    pytest.param("2023-09-19", "2023-09-19", "2023-09-19", "day", False, id="day"),
    pytest.param("2023-09", "2023-09-01", "2023-09-30", "month", False, id="month"),
    pytest.param("2023", "2023-01-01", "2023-12-31", "year", False, id="year"),
    pytest.param("2023-09-05~", "2023-09-05", "2023-09-05", "day", True, id="approximate-day"),
    pytest.param("2023-09-19?", "2023-09-19", "2023-09-19", "day", True, id="uncertain-day"),
    pytest.param("2023-09-19%", "2023-09-19", "2023-09-19", "day", True, id="approximate-and-uncertain"),
    pytest.param("2023-~09", "2023-09-01", "2023-09-30", "month", True, id="approximate-month-component"),
    pytest.param("2023-09~", "2023-09-01", "2023-09-30", "month", True, id="approximate-month"),
    pytest.param("2023~", "2023-01-01", "2023-12-31", "year", True, id="approximate-year"),
    pytest.param("[2023-09-01..2023-09-10]", "2023-09-01", "2023-09-10", "range", False, id="one-of-range"),
    pytest.param("[2023-09-01,2023-09-05]", "2023-09-01", "2023-09-05", "range", False, id="one-of-set"),
    pytest.param("{2023-09-01,2023-09-05}", "2023-09-01", "2023-09-05", "range", False, id="all-of-set"),
    pytest.param("2023-09-11/2023-09-20", "2023-09-11", "2023-09-20", "interval", False, id="interval"),
    pytest.param("2020/2023", "2020-01-01", "2023-12-31", "interval", False, id="interval-of-years"),
    pytest.param("2023-09-05~/2023-09-10", "2023-09-05", "2023-09-10", "interval", True, id="qualified-interval"),
    pytest.param("2023-09-01/2023-09-01", "2023-09-01", "2023-09-01", "interval", False, id="one-day-interval"),
    pytest.param("2023-21", "2023-03-01", "2023-05-31", "season", False, id="spring"),
    pytest.param("2023-22", "2023-06-01", "2023-08-31", "season", False, id="summer"),
    pytest.param("2023-23", "2023-09-01", "2023-11-30", "season", False, id="autumn"),
    pytest.param("2023-24", "2023-12-01", "2024-02-29", "season", False, id="winter-into-leap-february"),
    pytest.param("2022-24~", "2022-12-01", "2023-02-28", "season", True, id="approximate-winter"),
    pytest.param("2023-22/2023-24", "2023-06-01", "2024-02-29", "interval", False, id="summer-to-winter"),
    pytest.param("2023-09/2023-24", "2023-09-01", "2024-02-29", "interval", False, id="month-to-winter"),
    pytest.param("2023-22/2023-24~", "2023-06-01", "2024-02-29", "interval", True, id="to-approximate-winter"),
    pytest.param("2023-24/2023-24", "2023-12-01", "2024-02-29", "interval", False, id="winter-to-winter"),
    pytest.param("2022-24/2023-21", "2022-12-01", "2023-05-31", "interval", False, id="winter-to-spring"),
    pytest.param("2023-24?/2024-06", "2023-12-01", "2024-06-30", "interval", True, id="uncertain-winter-to-month"),
    pytest.param("202X", "2020-01-01", "2029-12-31", "decade", False, id="decade"),
    pytest.param("202X~", "2020-01-01", "2029-12-31", "decade", True, id="approximate-decade"),
    pytest.param("[2020..2029]", "2020-01-01", "2029-12-31", "decade", False, id="decade-as-range"),
    pytest.param("19XX", "1900-01-01", "1999-12-31", "century", False, id="century"),
    pytest.param("2023-XX", "2023-01-01", "2023-12-31", "year", False, id="unspecified-month"),
    pytest.param("2023-09-XX", "2023-09-01", "2023-09-30", "month", False, id="unspecified-day"),
    pytest.param("[2023-09-01..2023-09-30]", "2023-09-01", "2023-09-30", "month", False, id="range-of-whole-month"),
    pytest.param("2024-02-29", "2024-02-29", "2024-02-29", "day", False, id="leap-day"),
    pytest.param("2024-02", "2024-02-01", "2024-02-29", "month", False, id="february-leap-year"),
    pytest.param("2023-02", "2023-02-01", "2023-02-28", "month", False, id="february-common-year"),
    pytest.param("1900-02", "1900-02-01", "1900-02-28", "month", False, id="february-1900-not-leap"),
    pytest.param("2000-02", "2000-02-01", "2000-02-29", "month", False, id="february-2000-leap"),
    pytest.param("0001", "0001-01-01", "0001-12-31", "year", False, id="first-year"),
    pytest.param("9999-12-31", "9999-12-31", "9999-12-31", "day", False, id="last-day"),
]


@pytest.mark.parametrize(("text", "earliest", "latest", "precision", "qualified"), VALID)
def test_valid_dates_derive_bounds_precision_and_qualification(text, earliest, latest, precision, qualified):
    assert parse_when(text) == FuzzyDate(text, earliest, latest, precision, qualified)


@pytest.mark.parametrize("text", [p.values[0] for p in VALID])
def test_derived_values_are_consistent(text):
    fuzzy = parse_when(text)
    assert fuzzy.edtf == text, "the date is kept exactly as given"
    assert date.fromisoformat(fuzzy.earliest) <= date.fromisoformat(fuzzy.latest)
    assert fuzzy.precision in PRECISIONS


@pytest.mark.parametrize(
    ("plain", "qualified"),
    [("2023-09-19", "2023-09-19~"), ("2023-09", "2023-09?"), ("2023", "2023%"), ("202X", "202X~")],
    ids=["day", "month", "year", "decade"],
)
def test_qualifiers_mark_the_date_but_do_not_move_its_bounds(plain, qualified):
    a, b = parse_when(plain), parse_when(qualified)
    assert (a.earliest, a.latest, a.precision) == (b.earliest, b.latest, b.precision)
    assert (a.qualified, b.qualified) == (False, True)


@pytest.mark.parametrize("season", ["2023-21", "2023-22", "2023-23"], ids=["spring", "summer", "autumn"])
def test_a_season_stands_for_about_three_months(season):
    assert 89 <= days(parse_when(season)) <= 92


def test_winter_stands_for_three_months_like_the_other_seasons():
    winter = parse_when("2023-24")
    assert winter.precision == "season"
    assert days(winter) >= 89


SEASONS = ["2023-21", "2023-22", "2023-23", "2023-24", "2023-24~"]


@pytest.mark.parametrize("season", SEASONS, ids=["spring", "summer", "autumn", "winter", "approximate-winter"])
def test_a_season_ending_an_interval_ends_where_the_season_alone_ends(season):
    assert parse_when(f"2023-01/{season}").latest == parse_when(season).latest


@pytest.mark.parametrize("season", SEASONS, ids=["spring", "summer", "autumn", "winter", "approximate-winter"])
def test_a_season_starting_an_interval_starts_and_ends_as_the_season_alone(season):
    """An interval from a season to itself covers the season, and no more or less."""
    alone, interval = parse_when(season), parse_when(f"{season}/{season}")
    assert (interval.earliest, interval.latest) == (alone.earliest, alone.latest)
    assert interval.qualified == alone.qualified


@pytest.mark.parametrize(
    "value", ["[2023-21..2023-24]", "[2023-21,2023-24]", "{2023-21,2023-24}", "[2023-24]"],
    ids=["range", "one-of-set", "all-of-set", "one-member"],
)
def test_seasons_in_sets_and_ranges_are_refused_not_given_edtf_bounds(value):
    """edtf refuses them; were they read, winter would have to end in February, as above."""
    assert "is not a valid EDTF date" in refusal(value)


# --- refused dates -----------------------------------------------------------------

INVALID = [
    # value, fragment of the message
    pytest.param("2023-1X", "is not a valid EDTF date", id="unspecified-month-digit"),
    pytest.param("2023-09-1X", "is not a valid EDTF date", id="unspecified-day-digit"),
    pytest.param("", "a date is required", id="empty"),
    pytest.param("   ", "a date is required", id="blank"),
    pytest.param("2023-09-20/2023-09-11", "ends before it begins", id="reversed-interval"),
    pytest.param("2023-02-30", "is not a day of the calendar", id="february-30"),
    pytest.param("2023-02-29", "is not a day of the calendar", id="february-29-common-year"),
    pytest.param("2023-09-31", "is not a day of the calendar", id="september-31"),
    pytest.param("2023-09-00", "is not a day of the calendar", id="day-00"),
    pytest.param("2023-13", "is not a valid EDTF date", id="month-13"),
    pytest.param("2023-00", "is not a valid EDTF date", id="month-00"),
    pytest.param("../2023", "has an open or unknown end", id="open-start"),
    pytest.param("2023-09-19/", "has an open or unknown end", id="unknown-end"),
    pytest.param("/2023", "has an open or unknown end", id="unknown-start"),
    pytest.param("2023/..", "has an open or unknown end", id="open-end"),
    pytest.param("[..2023-09-10]", "has an open or unknown end", id="range-open-start"),
    pytest.param("[2023-09-01..]", "has an open or unknown end", id="range-open-end"),
    pytest.param("0000", "year 0000 is not supported", id="year-0000"),
    pytest.param("0000-01-01", "year 0000 is not supported", id="day-in-year-0000"),
    pytest.param("9999-24", "'9999-24' runs into the year 10000", id="winter-9999"),
    pytest.param("9999-22/9999-24", "'9999-24' runs into the year 10000", id="interval-to-winter-9999"),
    pytest.param("2" * (MAX_LENGTH + 1), f"at most {MAX_LENGTH} characters", id="too-long"),
    pytest.param("2023-09-19T10:00", "is not a valid EDTF date", id="with-time"),
    pytest.param("2023-9-5", "is not a valid EDTF date", id="unpadded"),
    pytest.param("19 September 2023", "is not a valid EDTF date", id="prose"),
    pytest.param("-0500", "is not a valid EDTF date", id="before-common-era"),
    pytest.param("2023-09-05\x00", "is not a valid EDTF date", id="nul"),
    pytest.param(None, "must be a string in EDTF", id="none"),
    pytest.param(2023, "must be a string in EDTF", id="int"),
    pytest.param(2023.0, "must be a string in EDTF", id="float"),
    pytest.param(b"2023", "must be a string in EDTF", id="bytes"),
]


@pytest.mark.parametrize(("value", "fragment"), INVALID)
def test_invalid_dates_are_refused_with_a_clear_message(value, fragment):
    assert fragment in refusal(value)


@pytest.mark.parametrize(
    "value",
    ["2023-1X", "2023-13", "2023-09-20/2023-09-11", "../2023"],
    ids=["not-edtf", "bad-month", "reversed", "open"],
)
def test_the_message_quotes_the_date_given(value):
    assert repr(value) in refusal(value)


def test_invalid_edtf_message_shows_examples():
    message = refusal("2023-1X")
    assert "2023-09-19" in message and "2023-09-11/2023-09-20" in message


def test_exactly_max_length_is_not_refused_for_length():
    message = refusal("2" * MAX_LENGTH)
    assert "characters" not in message and "is not a valid EDTF date" in message


def test_errors_name_the_given_field():
    assert "is not a valid EDTF date" in refusal("2023-13", field="sources[0].published")


def test_a_refusal_is_repeated_not_cached_as_a_success():
    first, second = refusal("2023-02-30"), refusal("2023-02-30")
    assert first == second
    assert parse_when("2023-02-28").latest == "2023-02-28"


@pytest.mark.parametrize("value", [["2023-09-19"], {"when": "2023-09-19"}], ids=["list", "dict"])
def test_unhashable_non_strings_are_refused_as_invalid_input(value):
    assert "must be a string in EDTF" in refusal(value)


@pytest.mark.parametrize(
    "value", [" 2023-09-19", "2023-09-19 ", "2023-09-19~ "], ids=["leading", "trailing", "qualified"]
)
def test_surrounding_whitespace_is_not_edtf(value):
    assert "has spaces around it" in refusal(value)
