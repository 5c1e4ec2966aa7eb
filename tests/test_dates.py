"""Tests for mcp_server.dates: reading typed/spoken dates and times in the user's zone."""

import dataclasses
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from mcp_server.dates import When, WhenError, find_when, parse_time_of_day, parse_when

KARACHI = ZoneInfo("Asia/Karachi")
NEW_YORK = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 29, 10, 0, tzinfo=KARACHI)  # a Sunday morning


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """A Karachi wall-clock datetime."""
    return datetime(year, month, day, hour, minute, second, tzinfo=KARACHI)


def moment(text: str, now: datetime = NOW) -> datetime:
    """parse_when(text), checked to be a datetime rather than an all-day date."""
    value = parse_when(text, now=now)
    assert isinstance(value, datetime)
    return value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-15", date(2026, 12, 15)),
        ("today", date(2026, 11, 29)),
        ("tomorrow", date(2026, 11, 30)),
        ("tmrw", date(2026, 11, 30)),
        ("tmr", date(2026, 11, 30)),
        ("day after tomorrow", date(2026, 12, 1)),
        ("the day after tomorrow", date(2026, 12, 1)),
        ("yesterday", date(2026, 11, 28)),
        ("next week", date(2026, 11, 30)),
        ("next month", date(2026, 12, 1)),
        ("end of month", date(2026, 11, 30)),
        ("end of the month", date(2026, 11, 30)),
        ("this weekend", date(2026, 12, 5)),
        ("weekend", date(2026, 12, 5)),
    ],
)
def test_parse_when_reads_named_days(text: str, expected: date) -> None:
    assert parse_when(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("monday", date(2026, 11, 30)),
        ("mon", date(2026, 11, 30)),
        ("tue", date(2026, 12, 1)),
        ("tues", date(2026, 12, 1)),
        ("wednesday", date(2026, 12, 2)),
        ("wed", date(2026, 12, 2)),
        ("thu", date(2026, 12, 3)),
        ("thur", date(2026, 12, 3)),
        ("thurs", date(2026, 12, 3)),
        ("fri", date(2026, 12, 4)),
        ("saturday", date(2026, 12, 5)),
        ("this friday", date(2026, 12, 4)),
        ("next friday", date(2026, 12, 4)),
        ("on friday", date(2026, 12, 4)),
    ],
)
def test_parse_when_reads_weekdays_as_the_coming_one(text: str, expected: date) -> None:
    assert parse_when(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["sunday", "sun", "this sunday", "next sunday"])
def test_todays_weekday_means_next_week(text: str) -> None:
    assert parse_when(text, now=NOW) == date(2026, 12, 6)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dec 15", date(2026, 12, 15)),
        ("december 15", date(2026, 12, 15)),
        ("dec 15th", date(2026, 12, 15)),
        ("15 dec", date(2026, 12, 15)),
        ("15th of december", date(2026, 12, 15)),
        ("the 15th of december", date(2026, 12, 15)),
        ("january 12 2027", date(2027, 1, 12)),
        ("jan 12, 2027", date(2027, 1, 12)),
        ("sept 3", date(2027, 9, 3)),
        ("may 3", date(2027, 5, 3)),
        ("8 march", date(2027, 3, 8)),
        ("12/15", date(2026, 12, 15)),
        ("12/15/2027", date(2027, 12, 15)),
        ("dec 15 2025", date(2025, 12, 15)),
    ],
)
def test_parse_when_reads_month_and_day(text: str, expected: date) -> None:
    assert parse_when(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("jan 12", date(2027, 1, 12)), ("nov 28", date(2027, 11, 28)), ("nov 29", date(2026, 11, 29))],
)
def test_month_day_already_past_means_next_year(text: str, expected: date) -> None:
    assert parse_when(text, now=NOW) == expected


def test_feb_29_without_year_finds_the_next_leap_year() -> None:
    assert parse_when("feb 29", now=NOW) == date(2028, 2, 29)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("the 15th", date(2026, 12, 15)),
        ("the 29th", date(2026, 11, 29)),
        ("the 30th", date(2026, 11, 30)),
        ("the 31st", date(2026, 12, 31)),
        ("the 1st", date(2026, 12, 1)),
    ],
)
def test_the_nth_is_this_month_or_the_next_that_has_it(text: str, expected: date) -> None:
    assert parse_when(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-15T17:00", at(2026, 12, 15, 17, 0)),
        ("2026-12-15 17:00", at(2026, 12, 15, 17, 0)),
        ("2026-12-15T17:00:30", at(2026, 12, 15, 17, 0, 30)),
        ("2026-12-15T17:00+05:00", at(2026, 12, 15, 17, 0)),
        ("2026-12-15T17:00Z", at(2026, 12, 15, 22, 0)),
        ("2026-12-15t17:00z", at(2026, 12, 15, 22, 0)),
        ("2026-12-15 17:00:00-03:00", at(2026, 12, 16, 1, 0)),
    ],
)
def test_parse_when_reads_iso_datetimes_into_the_users_zone(text: str, expected: datetime) -> None:
    value = moment(text)
    assert value == expected
    assert value.tzinfo is KARACHI


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tomorrow at 5pm", at(2026, 11, 30, 17, 0)),
        ("tomorrow 5pm", at(2026, 11, 30, 17, 0)),
        ("tomorrow, 5pm", at(2026, 11, 30, 17, 0)),
        ("5pm tomorrow", at(2026, 11, 30, 17, 0)),
        ("friday at 1pm", at(2026, 12, 4, 13, 0)),
        ("noon on friday", at(2026, 12, 4, 12, 0)),
        ("on january 12 at 3:15pm", at(2027, 1, 12, 15, 15)),
        ("dec 15 at noon", at(2026, 12, 15, 12, 0)),
        ("next monday morning", at(2026, 11, 30, 9, 0)),
        ("tomorrow morning", at(2026, 11, 30, 9, 0)),
        ("friday afternoon", at(2026, 12, 4, 15, 0)),
        ("tomorrow evening", at(2026, 11, 30, 19, 0)),
        ("tomorrow night", at(2026, 11, 30, 20, 0)),
        ("this evening", at(2026, 11, 29, 19, 0)),
        ("tomorrow at 5", at(2026, 11, 30, 17, 0)),
        ("tomorrow 9:30", at(2026, 11, 30, 9, 30)),
        ("tomorrow at 21:15", at(2026, 11, 30, 21, 15)),
        ("12/15 at 3pm", at(2026, 12, 15, 15, 0)),
        ("2026-12-15 at 5pm", at(2026, 12, 15, 17, 0)),
        ("in 3 days at 5pm", at(2026, 12, 2, 17, 0)),
    ],
)
def test_parse_when_combines_day_and_time(text: str, expected: datetime) -> None:
    assert parse_when(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tomorrow 3:30", at(2026, 11, 30, 15, 30)),
        ("tomorrow 7:45", at(2026, 11, 30, 19, 45)),
        ("tomorrow 03:30", at(2026, 11, 30, 3, 30)),
        ("tomorrow 8:15", at(2026, 11, 30, 8, 15)),
        ("tomorrow 2-3pm", at(2026, 11, 30, 14, 0)),
        ("friday 9:30-10am", at(2026, 12, 4, 9, 30)),
        ("friday 11-1pm", at(2026, 12, 4, 11, 0)),
        ("friday 10am-11am", at(2026, 12, 4, 10, 0)),
        ("from 2 to 3pm tomorrow", at(2026, 11, 30, 14, 0)),
        ("tomorrow from 10 till 11:30 am", at(2026, 11, 30, 10, 0)),
        ("first thing monday", at(2026, 11, 30, 9, 0)),
        ("first thing in the morning tomorrow", at(2026, 11, 30, 9, 0)),
    ],
)
def test_times_read_as_people_say_them(text: str, expected: datetime) -> None:
    """A clock time under 8 without am/pm is the afternoon unless written with a leading zero; a span is due at
    its start, in the end's half of the day; 'first thing' is the morning."""
    assert parse_when(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["call bob 2-3", "add 2 to 3 apples", "buy 3-4 onions"])
def test_numbers_joined_without_am_or_pm_are_not_a_time(text: str) -> None:
    assert find_when(text, now=NOW) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tonight", at(2026, 11, 29, 20, 0)),
        ("tonight at 9", at(2026, 11, 29, 21, 0)),
        ("tonight 9:30", at(2026, 11, 29, 21, 30)),
        ("tonight at 11pm", at(2026, 11, 29, 23, 0)),
    ],
)
def test_tonight_is_eight_pm_unless_a_time_is_given(text: str, expected: datetime) -> None:
    assert parse_when(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("at 6pm", at(2026, 11, 29, 18, 0)),
        ("6pm", at(2026, 11, 29, 18, 0)),
        ("6 pm", at(2026, 11, 29, 18, 0)),
        ("6 p.m.", at(2026, 11, 29, 18, 0)),
        ("5:30pm", at(2026, 11, 29, 17, 30)),
        ("5.30pm", at(2026, 11, 29, 17, 30)),
        ("17:00", at(2026, 11, 29, 17, 0)),
        ("17h", at(2026, 11, 29, 17, 0)),
        ("at noon", at(2026, 11, 29, 12, 0)),
        ("midday", at(2026, 11, 29, 12, 0)),
        ("by 5pm", at(2026, 11, 29, 17, 0)),
        ("at 9am", at(2026, 11, 30, 9, 0)),
        ("at 10am", at(2026, 11, 30, 10, 0)),
        ("9:30", at(2026, 11, 30, 9, 30)),
        ("midnight", at(2026, 11, 30, 0, 0)),
    ],
)
def test_time_alone_is_its_next_occurrence(text: str, expected: datetime) -> None:
    assert parse_when(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "hour"),
    [("at 1", 13), ("at 5", 17), ("at 7", 19), ("at 8", 8), ("at 11", 11), ("at 12", 12), ("by 5", 17)],
)
def test_bare_hour_after_at_reads_as_the_likely_half_of_the_day(text: str, hour: int) -> None:
    value = moment(text, now=datetime(2026, 11, 29, 0, 30, tzinfo=KARACHI))
    assert (value.date(), value.hour, value.minute) == (date(2026, 11, 29), hour, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("in 2 hours", at(2026, 11, 29, 12, 0)),
        ("in two hours", at(2026, 11, 29, 12, 0)),
        ("in 2h", at(2026, 11, 29, 12, 0)),
        ("in 10 minutes", at(2026, 11, 29, 10, 10)),
        ("in 10 mins", at(2026, 11, 29, 10, 10)),
        ("in 30 min", at(2026, 11, 29, 10, 30)),
        ("in an hour", at(2026, 11, 29, 11, 0)),
        ("in a minute", at(2026, 11, 29, 10, 1)),
        ("in half an hour", at(2026, 11, 29, 10, 30)),
        ("in 3 seconds", at(2026, 11, 29, 10, 0, 3)),
        ("in 3 secs", at(2026, 11, 29, 10, 0, 3)),
        ("in twelve hours", at(2026, 11, 29, 22, 0)),
    ],
)
def test_relative_time_is_exact_elapsed_time(text: str, expected: datetime) -> None:
    assert parse_when(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("in 3 days", date(2026, 12, 2)),
        ("in three days", date(2026, 12, 2)),
        ("in 2 weeks", date(2026, 12, 13)),
        ("in a month", date(2026, 12, 29)),
    ],
)
def test_relative_days_are_all_day_dates(text: str, expected: date) -> None:
    value = parse_when(text, now=NOW)
    assert type(value) is date
    assert value == expected


@pytest.mark.parametrize(
    "text", ["TOMORROW AT 5PM", "  tomorrow   at  5pm  ", "tomorrow at 5pm.", "tomorrow at 5pm!", "Tomorrow at 5pm?"]
)
def test_parse_when_ignores_case_spacing_and_trailing_punctuation(text: str) -> None:
    assert parse_when(text, now=NOW) == at(2026, 11, 30, 17, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("due by friday", date(2026, 12, 4)), ("for today", date(2026, 11, 29)), ("before dec 15", date(2026, 12, 15))],
)
def test_parse_when_accepts_prefix_words(text: str, expected: date) -> None:
    assert parse_when(text, now=NOW) == expected


def test_tomorrow_at_9am_across_spring_forward_stays_at_9_local() -> None:
    value = moment("tomorrow at 9am", now=datetime(2027, 3, 13, 10, 0, tzinfo=NEW_YORK))
    assert value == datetime(2027, 3, 14, 9, 0, tzinfo=NEW_YORK)
    assert value.utcoffset() == timedelta(hours=-4)


def test_time_inside_the_spring_forward_gap_moves_to_a_real_time() -> None:
    value = moment("tomorrow at 2:30am", now=datetime(2027, 3, 13, 10, 0, tzinfo=NEW_YORK))
    assert (value.hour, value.minute, value.utcoffset()) == (3, 30, timedelta(hours=-4))


def test_in_2_hours_across_spring_forward_is_elapsed_time() -> None:
    value = moment("in 2 hours", now=datetime(2027, 3, 14, 1, 30, tzinfo=NEW_YORK))
    assert (value.hour, value.minute, value.utcoffset()) == (4, 30, timedelta(hours=-4))


def test_in_2_hours_across_fall_back_is_elapsed_time() -> None:
    value = moment("in 2 hours", now=datetime(2027, 11, 7, 0, 30, tzinfo=NEW_YORK))
    assert (value.hour, value.minute, value.utcoffset()) == (1, 30, timedelta(hours=-5))


def test_results_are_in_the_zone_of_now() -> None:
    value = moment("tomorrow 5pm", now=datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=3))))
    assert value.isoformat() == "2026-01-02T17:00:00+03:00"


def test_datetimes_come_back_aware_and_dates_come_back_plain() -> None:
    assert type(parse_when("tomorrow", now=NOW)) is date
    assert moment("tomorrow 5pm").utcoffset() == timedelta(hours=5)


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_when("tomorrow", now=datetime(2026, 1, 1))


def test_when_error_names_the_text_and_the_accepted_forms() -> None:
    with pytest.raises(WhenError) as caught:
        parse_when("blah", now=NOW)
    assert str(caught.value) == (
        "could not read 'blah' as a date; use YYYY-MM-DD, YYYY-MM-DDTHH:MM, "
        "or a phrase like 'tomorrow 5pm', 'next friday', 'in 2 hours'"
    )


def test_when_error_is_a_value_error() -> None:
    assert issubclass(WhenError, ValueError)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "tomorrow blah",
        "buy milk tomorrow",
        "feb 30",
        "2026-13-45",
        "every monday",
        "42",
        "may",
        "march",
        "the 15",
        "at 99",
        "13pm",
        "@5pm",
        "'tomorrow'",
        "1 hour before",
        "in 2 boxes",
    ],
)
def test_parse_when_rejects_anything_but_one_whole_phrase(text: str) -> None:
    with pytest.raises(WhenError, match="could not read"):
        parse_when(text, now=NOW)


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("buy milk tomorrow at 5pm high priority", "tomorrow at 5pm"),
        ("pay bill due by friday", "due by friday"),
        ("add 'x' for today", "for today"),
        ("rent due on the 1st", "due on the 1st"),
        ("call mom on sat", "on sat"),
        ("gym sat 5pm", "sat 5pm"),
        ("dentist dec 15 at noon, bring forms", "dec 15 at noon"),
        ("submit report 5pm tomorrow please", "5pm tomorrow"),
        ("standup next monday morning", "next monday morning"),
        ("water plants in 2 days", "in 2 days"),
        ("renew passport before jan 12, 2027", "before jan 12, 2027"),
        ("Tomorrow: call bob", "Tomorrow"),
        ("meeting 2026-12-15 17:00 room 4", "2026-12-15 17:00"),
        ("finish by the end of the month", "by the end of the month"),
        ("take a break in half an hour", "in half an hour"),
        ("ping alice at 5", "at 5"),
        ("every day at 8am stretch", "at 8am"),
        ("every monday at 9am standup", "at 9am"),
        ("clean garage this weekend", "this weekend"),
        ("plant tulips may 3", "may 3"),
        ("visit 8 march", "8 march"),
        ("lunch at noon with sam", "at noon"),
        ("book flight sunday", "sunday"),
        ("review PR 42 tomorrow", "tomorrow"),
    ],
)
def test_find_when_spans_the_most_complete_phrase(text: str, phrase: str) -> None:
    found = find_when(text, now=NOW)
    assert found is not None
    assert text[found.start : found.end] == phrase


def test_find_when_returns_the_value_with_its_span() -> None:
    assert find_when("buy milk tomorrow at 5pm", now=NOW) == When(at(2026, 11, 30, 17, 0), 9, 24)


def test_find_when_prefers_the_longest_phrase() -> None:
    found = find_when("call today or else friday at 1pm", now=NOW)
    assert found is not None
    assert found.value == at(2026, 12, 4, 13, 0)


def test_find_when_offsets_cut_the_phrase_out() -> None:
    text = "buy milk tomorrow at 5pm high priority"
    found = find_when(text, now=NOW)
    assert found is not None
    assert " ".join((text[: found.start] + text[found.end :]).split()) == "buy milk high priority"


@pytest.mark.parametrize(
    "text",
    [
        "buy sunscreen",
        "fix monitor stand",
        "maybe call later",
        "marching band practice",
        "march forward",
        "it may rain",
        "review PR 42",
        "PR #42 p1",
        "rename 'friday notes' to summary",
        'tag "meet tomorrow at 5pm" as done',
        "enjoy the sun",
        "sat exam prep",
        "plan weekend trip",
        "morning routine",
        "every monday standup",
        "every other friday review",
        "remind me 1 hour before",
        "read chapter 12",
        "ping @5pm channel",
        "today's notes",
        "version 5.30 release",
    ],
)
def test_find_when_ignores_things_that_are_not_dates(text: str) -> None:
    assert find_when(text, now=NOW) is None


def test_find_when_does_not_join_across_a_quote() -> None:
    found = find_when("add 'buy milk' tomorrow", now=NOW)
    assert found is not None
    assert (found.start, found.end) == (15, 23)


def test_when_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        When(date(2026, 1, 1), 0, 1).start = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5pm", time(17, 0)),
        ("5 pm", time(17, 0)),
        ("5:30 pm", time(17, 30)),
        ("5:30PM", time(17, 30)),
        ("12am", time(0, 0)),
        ("12pm", time(12, 0)),
        ("17:00", time(17, 0)),
        ("17h", time(17, 0)),
        ("9:30", time(9, 30)),
        ("noon", time(12, 0)),
        ("midnight", time(0, 0)),
        ("morning", time(9, 0)),
        ("at 5", time(17, 0)),
    ],
)
def test_parse_time_of_day_reads_times(text: str, expected: time) -> None:
    assert parse_time_of_day(text) == expected


@pytest.mark.parametrize("text", ["", "5", "p1", "25:00", "13pm", "5.30", "tomorrow", "5pm tomorrow", "blah", "@5pm"])
def test_parse_time_of_day_returns_none_for_non_times(text: str) -> None:
    assert parse_time_of_day(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("in a fortnight", date(2026, 12, 13)),
        ("in 2 fortnights", date(2026, 12, 27)),
        ("in a couple of days", date(2026, 12, 1)),
        ("in a couple weeks", date(2026, 12, 13)),
        ("in a few days", date(2026, 12, 2)),
        ("in a few weeks", date(2026, 12, 20)),
    ],
)
def test_a_fortnight_a_couple_and_a_few_are_counted(text: str, expected: date) -> None:
    assert parse_when(text, now=NOW) == expected


def test_in_a_couple_of_hours_is_elapsed_time() -> None:
    assert parse_when("in a couple of hours", now=NOW) == at(2026, 11, 29, 12, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("at 3.30", at(2026, 11, 29, 15, 30)), ("tomorrow at 10.15", at(2026, 11, 30, 10, 15))],
)
def test_a_dotted_time_after_at_is_a_time(text: str, expected: datetime) -> None:
    assert parse_when(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fri 11th", date(2026, 12, 11)),
        ("friday the 11th", date(2026, 12, 11)),
        ("monday 3rd jan", date(2027, 1, 3)),
        ("on tue 15 dec", date(2026, 12, 15)),
    ],
)
def test_a_weekday_with_a_date_is_that_date(text: str, expected: date) -> None:
    assert parse_when(text, now=NOW) == expected


def test_a_numeric_date_that_only_fits_day_first_is_read_day_first() -> None:
    assert parse_when("19/12", now=NOW) == date(2026, 12, 19)
    assert parse_when("12/11", now=NOW) == date(2026, 12, 11)  # month first when both fit


@pytest.mark.parametrize(
    ("text", "now", "expected"),
    [
        ("by end of the week", NOW, date(2026, 12, 4)),  # on a Sunday: the coming Friday
        ("end of next week", NOW, date(2026, 12, 11)),
        ("end of week", datetime(2026, 12, 2, 9, tzinfo=KARACHI), date(2026, 12, 4)),
        ("end of this week", datetime(2026, 12, 4, 9, tzinfo=KARACHI), date(2026, 12, 4)),  # a Friday: today
        ("end of next week", datetime(2026, 12, 2, 9, tzinfo=KARACHI), date(2026, 12, 11)),
        ("end of next month", NOW, date(2026, 12, 31)),
    ],
)
def test_the_end_of_the_week_is_its_friday(text: str, now: datetime, expected: date) -> None:
    assert parse_when(text, now=now) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("at half 2", at(2026, 11, 29, 14, 30)),
        ("half past 9", at(2026, 11, 30, 9, 30)),  # 09:30 has passed today
        ("tomorrow at quarter past 10", at(2026, 11, 30, 10, 15)),
        ("at quarter to 7", at(2026, 11, 29, 18, 45)),
        ("quarter to 1am tomorrow", at(2026, 11, 30, 0, 45)),
    ],
)
def test_half_and_quarter_past_and_to_the_hour(text: str, expected: datetime) -> None:
    assert parse_when(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["half 2", "buy half 2 litres", "a quarter of the cake"])
def test_half_alone_is_no_time(text: str) -> None:
    assert find_when(text, now=NOW) is None
