"""The next occurrence of a recurring task, computed in the owner's wall-clock time."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

_UNTIL_UTC = re.compile(r"UNTIL=(\d{8}T\d{6})Z")
_UNTIL_DAY = re.compile(r"UNTIL=(\d{8})(?=;|$)")
_COUNT = re.compile(r"COUNT=(\d+)")


@dataclass(frozen=True)
class Occurrence:
    due: date | datetime  # a date for all-day series, else an aware datetime in the owner's zone
    rule: str  # the rule as the next occurrence carries it (COUNT counts down)


def next_occurrence(rule: str, due: date | datetime, zone: ZoneInfo) -> Occurrence | None:
    """The first occurrence strictly after `due`, or None when COUNT or UNTIL has ended the series.

    Rules are expanded on naive wall-clock times, so a 09:00 task stays at 09:00 across daylight-saving
    changes. Each occurrence carries the COUNT that remains, so the series ends where it should.
    """
    count = _COUNT.search(rule)
    if count and int(count[1]) <= 1:
        return None
    all_day = not isinstance(due, datetime)
    start = datetime.combine(due, time(0)) if all_day else due.astimezone(zone).replace(tzinfo=None)
    following = rrulestr(_wall_clock_until(rule, zone, all_day), dtstart=start).after(start)
    if following is None:
        return None
    next_rule = _COUNT.sub(f"COUNT={int(count[1]) - 1}", rule) if count else rule
    return Occurrence(following.date() if all_day else following.replace(tzinfo=zone), next_rule)


def _wall_clock_until(rule: str, zone: ZoneInfo, all_day: bool) -> str:
    """UNTIL in the naive wall-clock terms of dtstart: a UTC UNTIL is converted; a bare day includes all of it."""

    def from_utc(match: re.Match[str]) -> str:
        moment = datetime.strptime(match[1], "%Y%m%dT%H%M%S").replace(tzinfo=UTC).astimezone(zone)
        return "UNTIL=" + moment.strftime("%Y%m%d" if all_day else "%Y%m%dT%H%M%S")

    rule = _UNTIL_UTC.sub(from_utc, rule)
    return rule if all_day else _UNTIL_DAY.sub(r"UNTIL=\1T235959", rule)
