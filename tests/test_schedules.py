"""Tests for agent.schedules: a task's repetition said in words."""

import pytest

from agent.schedules import schedule_text


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
