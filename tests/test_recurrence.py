"""Next occurrences in the owner's wall-clock time (no I/O)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from mcp_server.recurrence import next_occurrence

NEW_YORK = ZoneInfo("America/New_York")
KARACHI = ZoneInfo("Asia/Karachi")


def test_daily_at_nine_stays_at_nine_across_the_spring_dst_change():
    following = next_occurrence("FREQ=DAILY", datetime(2027, 3, 13, 9, 0, tzinfo=NEW_YORK), NEW_YORK)
    assert following.due == datetime(2027, 3, 14, 9, 0, tzinfo=NEW_YORK)
    assert following.due.utcoffset().total_seconds() == -4 * 3600


def test_daily_at_nine_stays_at_nine_across_the_autumn_dst_change():
    following = next_occurrence("FREQ=DAILY", datetime(2026, 10, 31, 9, 0, tzinfo=NEW_YORK), NEW_YORK)
    assert following.due.isoformat() == "2026-11-01T09:00:00-05:00"


def test_a_due_given_in_another_offset_is_read_in_the_owners_wall_clock():
    utc_due = datetime.fromisoformat("2027-03-13T14:00:00+00:00")  # 09:00 in New York
    assert next_occurrence("FREQ=DAILY", utc_due, NEW_YORK).due.isoformat() == "2027-03-14T09:00:00-04:00"


def test_monthly_on_the_31st_skips_months_without_one():
    assert next_occurrence("FREQ=MONTHLY;BYMONTHDAY=31", date(2027, 1, 31), KARACHI).due == date(2027, 3, 31)


def test_monthly_on_the_last_day_uses_minus_one():
    assert next_occurrence("FREQ=MONTHLY;BYMONTHDAY=-1", date(2027, 1, 31), KARACHI).due == date(2027, 2, 28)


def test_weekdays_skip_the_weekend():
    friday = datetime(2026, 12, 4, 9, 30, tzinfo=KARACHI)
    following = next_occurrence("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", friday, KARACHI)
    assert following.due == datetime(2026, 12, 7, 9, 30, tzinfo=KARACHI)


def test_every_other_week_counts_from_this_occurrence():
    assert next_occurrence("FREQ=WEEKLY;INTERVAL=2;BYDAY=TU", date(2026, 12, 1), KARACHI).due == date(2026, 12, 15)


def test_all_day_tasks_stay_all_day():
    following = next_occurrence("FREQ=WEEKLY;BYDAY=FR", date(2026, 12, 4), KARACHI)
    assert following.due == date(2026, 12, 11)
    assert not isinstance(following.due, datetime)


@pytest.mark.parametrize(
    ("rule", "due", "expected"),
    [
        ("FREQ=DAILY;UNTIL=20261203T185959Z", datetime(2026, 12, 2, 7, tzinfo=KARACHI), "2026-12-03T07:00:00+05:00"),
        ("FREQ=DAILY;UNTIL=20261203T185959Z", datetime(2026, 12, 3, 7, tzinfo=KARACHI), None),
        ("FREQ=DAILY;UNTIL=20261203", datetime(2026, 12, 2, 7, tzinfo=KARACHI), "2026-12-03T07:00:00+05:00"),
        ("FREQ=DAILY;UNTIL=20261203", datetime(2026, 12, 3, 7, tzinfo=KARACHI), None),
        ("FREQ=DAILY;UNTIL=20261203", date(2026, 12, 3), None),
    ],
)
def test_until_ends_the_series_after_its_last_day(rule, due, expected):
    following = next_occurrence(rule, due, KARACHI)
    assert (following.due.isoformat() if following else None) == expected


def test_count_counts_down_and_ends_the_series():
    second = next_occurrence("FREQ=DAILY;COUNT=3", date(2026, 12, 1), KARACHI)
    assert (second.due, second.rule) == (date(2026, 12, 2), "FREQ=DAILY;COUNT=2")
    third = next_occurrence(second.rule, second.due, KARACHI)
    assert third.rule == "FREQ=DAILY;COUNT=1"
    assert next_occurrence(third.rule, third.due, KARACHI) is None
