"""Tests for agent.schedules: a task's repetition said in words."""

from datetime import date

import pytest

from agent.schedules import moved_rule, schedule_text


@pytest.mark.parametrize(
    ("rule", "due", "words"),
    [
        ("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", "2026-12-01T09:00:00+05:00", "every weekday at 09:00"),
        ("FREQ=MONTHLY;BYDAY=1MO", "2026-12-07", "on the first Monday of each month"),
        ("FREQ=MONTHLY;BYDAY=-1FR", "2026-12-25", "on the last Friday of each month"),
        ("FREQ=WEEKLY;INTERVAL=2;BYDAY=TU", None, "every 2 weeks on Tuesday"),
        ("FREQ=WEEKLY;BYDAY=TU,TH", "2026-12-01T17:00:00+05:00", "every Tuesday and Thursday at 17:00"),
        ("FREQ=WEEKLY;BYDAY=SA,SU;COUNT=5", None, "every weekend, 5 times"),
        ("FREQ=DAILY", "2026-12-01T08:00:00+05:00", "every day at 08:00"),
        ("FREQ=MONTHLY;BYMONTHDAY=-1", None, "on the last day of each month"),
        ("FREQ=MONTHLY;BYMONTHDAY=15;UNTIL=20270301", None, "on the 15th of each month, until 1 Mar 2027"),
        ("FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=8", "2027-03-08", "every year on 8 March"),
        ("FREQ=HOURLY;INTERVAL=4", "2026-12-01T09:00:00+05:00", "every 4 hours from 09:00"),
        ("FREQ=WEEKLY;BYSETPOS=1;BYDAY=MO", None, "repeats"),
    ],
)
def test_schedules_read_in_words(rule: str, due: str | None, words: str) -> None:
    assert schedule_text(rule, due) == words


@pytest.mark.parametrize(
    ("rule", "days", "moved"),
    [
        ("FREQ=WEEKLY;BYDAY=SU", "2026-11-29 to 2026-12-05", "FREQ=WEEKLY;BYDAY=SA"),
        ("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE", "2026-11-30 to 2026-12-04", "FREQ=WEEKLY;INTERVAL=2;BYDAY=WE,FR"),
        ("FREQ=MONTHLY;BYMONTHDAY=1", "2026-12-01 to 2026-12-03", "FREQ=MONTHLY;BYMONTHDAY=3"),
        ("FREQ=MONTHLY;BYDAY=-1FR", "2026-12-25 to 2027-01-01", "FREQ=MONTHLY;BYDAY=1FR"),
        ("FREQ=MONTHLY;BYDAY=-1FR", "2026-12-25 to 2026-12-28", "FREQ=MONTHLY;BYDAY=-1MO"),
        ("FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=8", "2027-03-08 to 2027-04-02", "FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=2"),
        ("FREQ=DAILY", "2026-11-29 to 2026-12-05", "FREQ=DAILY"),
    ],
)
def test_a_moved_series_repeats_on_its_new_day(rule: str, days: str, moved: str) -> None:
    old, new = (date.fromisoformat(day) for day in days.split(" to "))
    assert moved_rule(rule, old, new) == moved
