"""Reading recurrence rules strictly: RFC 5545 RRULE text into a `Rule`, or InvalidRule naming what is wrong.

A task series takes one RRULE line without DTSTART (the series starts at the task's due), at most hourly, with
parts and values RFC 5545 allows together, and an INTERVAL that lets it occur within HORIZON_YEARS.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import MAXYEAR, UTC, date, datetime
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, HOURLY, MONTHLY, WEEKLY, YEARLY, weekday, weekdays

from mcp_server.errors import InvalidRule
from mcp_server.models import RECURRENCE_MAX

HORIZON_YEARS = 10  # the longest gap between occurrences a series may have
RULE_EXAMPLES = (
    "e.g. FREQ=DAILY, FREQ=WEEKLY;BYDAY=MO,TH, FREQ=MONTHLY;BYMONTHDAY=1, FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=8"
)

_FREQUENCIES = {"YEARLY": YEARLY, "MONTHLY": MONTHLY, "WEEKLY": WEEKLY, "DAILY": DAILY, "HOURLY": HOURLY}
PERIODS_PER_YEAR = {YEARLY: 1, MONTHLY: 12, WEEKLY: 52, DAILY: 365, HOURLY: 8760}  # about
_DAY_CODES = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}
# name: (dateutil keyword, highest value, whether -highest..-1 counts from the end)
_NUMBER_LISTS = {
    "BYMONTH": ("bymonth", 12, False),
    "BYMONTHDAY": ("bymonthday", 31, True),
    "BYYEARDAY": ("byyearday", 366, True),
    "BYWEEKNO": ("byweekno", 53, True),
    "BYHOUR": ("byhour", 23, False),
    "BYMINUTE": ("byminute", 59, False),
    "BYSETPOS": ("bysetpos", 366, True),
}
_PARTS = ("FREQ", "INTERVAL", "COUNT", "UNTIL", *_NUMBER_LISTS, "BYDAY", "WKST")
_NOT_WITH = {  # RFC 5545: parts a frequency must not carry
    "BYWEEKNO": (MONTHLY, WEEKLY, DAILY, HOURLY),
    "BYYEARDAY": (MONTHLY, WEEKLY, DAILY),
    "BYMONTHDAY": (WEEKLY,),
}
_NUMBER = re.compile(r"[+-]?[0-9]{1,4}")
_WHOLE = re.compile(r"[+-]?[0-9]+")
_DAY = re.compile(r"([+-]?[0-9]{1,2})?(MO|TU|WE|TH|FR|SA|SU)")
_UNTIL = re.compile(r"([0-9]{8})(?:T([0-9]{6})(Z?))?")
_UNTIL_YEARS = range(1900, MAXYEAR - HORIZON_YEARS - 1)


@dataclass(frozen=True)
class Rule:
    """A rule read by `parse_rule`: its parts as given (upper-case) and what dateutil needs to expand it."""

    parts: tuple[tuple[str, str], ...]
    freq: int
    interval: int
    count: int | None
    until: date | datetime | None  # a datetime given in UTC carries tzinfo=UTC; a floating one is naive
    options: Mapping[str, Any]  # the BY… parts and WKST as dateutil's rrule keywords

    @property
    def text(self) -> str:
        return ";".join(f"{name}={value}" for name, value in self.parts)

    def counted_down(self) -> Rule:
        """The rule one occurrence later: COUNT one lower."""
        if self.count is None:
            return self
        parts = tuple((name, str(self.count - 1) if name == "COUNT" else value) for name, value in self.parts)
        return replace(self, parts=parts, count=self.count - 1)

    def wall_until(self, zone: ZoneInfo, all_day: bool) -> datetime | None:
        """UNTIL in the series' naive wall-clock terms: a UTC UNTIL is converted; a bare day includes all of it."""
        until = self.until
        if until is None:
            return None
        if isinstance(until, datetime):
            local = until.astimezone(zone).replace(tzinfo=None) if until.tzinfo else until
            return datetime.combine(local.date(), clock(0)) if all_day else local
        return datetime.combine(until, clock(0) if all_day else clock(23, 59, 59))


def parse_rule(value: str) -> Rule:
    """Read an RRULE strictly; InvalidRule names the part that cannot make a task series and what would."""
    text = value.strip().upper().removeprefix("RRULE:")
    if len(text) > RECURRENCE_MAX:
        raise InvalidRule(f"is {len(text)} characters long; a rule has at most {RECURRENCE_MAX}")
    if "DTSTART" in text or "\n" in text or "\r" in text:
        raise InvalidRule(f"give one RRULE line without DTSTART; the series starts at due ({RULE_EXAMPLES})")
    given: dict[str, str] = {}
    for part in filter(None, text.split(";")):
        name, equals, part_value = part.partition("=")
        if not equals or not name or not part_value:
            raise InvalidRule(f"{part!r} is not a NAME=VALUE part ({RULE_EXAMPLES})")
        if name == "BYSECOND":
            raise InvalidRule("BYSECOND is not accepted: task series are timed to the minute")
        if name not in _PARTS:
            raise InvalidRule(f"unknown part {name[:30]!r}; a rule has FREQ and optionally {', '.join(_PARTS[1:])}")
        if name in given:
            raise InvalidRule(f"{name} is given twice")
        given[name] = part_value
    if "FREQ" not in given:
        raise InvalidRule(f"has no FREQ ({RULE_EXAMPLES})")
    freq = _frequency(given["FREQ"])
    for name, frequencies in _NOT_WITH.items():
        if name in given and freq in frequencies:
            raise InvalidRule(f"{name} cannot be used with FREQ={given['FREQ']} (RFC 5545)")
    if "COUNT" in given and "UNTIL" in given:
        raise InvalidRule("use COUNT or UNTIL, not both")
    if "BYSETPOS" in given and freq in (DAILY, HOURLY):
        raise InvalidRule("BYSETPOS picks among the days of a week, month or year: use FREQ=WEEKLY, MONTHLY or YEARLY")
    if "BYSETPOS" in given and not any(name.startswith("BY") and name != "BYSETPOS" for name in given):
        raise InvalidRule("BYSETPOS picks among the days other BY… parts give, e.g. FREQ=MONTHLY;BYDAY=MO;BYSETPOS=-1")
    options: dict[str, Any] = {}
    for name, (keyword, highest, negatives) in _NUMBER_LISTS.items():
        if name in given:
            options[keyword] = _numbers(name, given[name], highest, negatives)
    if len(options.get("byminute", ())) > 1:
        raise InvalidRule("BYMINUTE takes one minute: a task series occurs at most once an hour")
    if "BYDAY" in given:
        options["byweekday"] = _days(given["BYDAY"], freq, given)
    if "WKST" in given:
        if given["WKST"] not in _DAY_CODES:
            raise InvalidRule(f"WKST must be one of {', '.join(_DAY_CODES)} (got {given['WKST'][:30]!r})")
        options["wkst"] = _DAY_CODES[given["WKST"]]
    return Rule(
        parts=tuple(given.items()),
        freq=freq,
        interval=_interval(given.get("INTERVAL", "1"), freq, given["FREQ"]),
        count=_count(given["COUNT"]) if "COUNT" in given else None,
        until=_until(given["UNTIL"]) if "UNTIL" in given else None,
        options=options,
    )


def _frequency(value: str) -> int:
    if value in ("MINUTELY", "SECONDLY"):
        raise InvalidRule(f"FREQ={value} is finer than a task series allows; the finest is HOURLY")
    if value not in _FREQUENCIES:
        raise InvalidRule(f"FREQ must be one of {', '.join(_FREQUENCIES)} (got {value[:30]!r}); {RULE_EXAMPLES}")
    return _FREQUENCIES[value]


def _interval(value: str, freq: int, freq_name: str) -> int:
    """At least 1, and small enough that an occurrence falls within the horizon."""
    highest = HORIZON_YEARS * PERIODS_PER_YEAR[freq]
    number = int(value) if _WHOLE.fullmatch(value) else None
    if number is None or not 1 <= number <= highest:
        raise InvalidRule(
            f"INTERVAL must be a whole number from 1 to {highest} for FREQ={freq_name}, so that the series occurs "
            f"at least every {HORIZON_YEARS} years (got {value[:30]!r})"
        )
    return number


def _count(value: str) -> int:
    number = int(value) if _WHOLE.fullmatch(value) else None
    if number is None or number < 1:
        raise InvalidRule(f"COUNT must be a whole number of at least 1 (got {value[:30]!r})")
    return number


def _until(value: str) -> date | datetime:
    """UNTIL as a day, a floating date-time, or a UTC date-time (ending in Z)."""
    match = _UNTIL.fullmatch(value)
    try:
        if match is None:
            raise ValueError
        if match[2] is None:
            until: date | datetime = datetime.strptime(match[1], "%Y%m%d").date()
        else:
            until = datetime.strptime(match[1] + match[2], "%Y%m%d%H%M%S").replace(tzinfo=UTC if match[3] else None)
    except ValueError:
        raise InvalidRule(
            f"UNTIL must be a date YYYYMMDD or a UTC date-time YYYYMMDDTHHMMSSZ (got {value[:30]!r})"
        ) from None
    if until.year not in _UNTIL_YEARS:
        raise InvalidRule(f"UNTIL must fall in the years {_UNTIL_YEARS[0]} to {_UNTIL_YEARS[-1]} (got {value})")
    return until


def _numbers(name: str, value: str, highest: int, negatives: bool) -> tuple[int, ...]:
    items = value.split(",")
    lowest = 0 if name in ("BYHOUR", "BYMINUTE") else 1
    numbers = [int(item) if _NUMBER.fullmatch(item) else None for item in items]
    if any(n is None or not (lowest <= n <= highest or negatives and -highest <= n <= -1) for n in numbers):
        accepted = f"{lowest} to {highest}" + (f" or -{highest} to -1" if negatives else "")
        raise InvalidRule(f"{name} takes comma-separated numbers {accepted} (got {value[:40]!r})")
    return tuple(n for n in numbers if n is not None)


def _days(value: str, freq: int, given: Mapping[str, str]) -> tuple[weekday, ...]:
    """BYDAY: MO..SU, each optionally numbered (+1MO, -1FR) within the month or year of a MONTHLY or YEARLY rule."""
    within_month = freq == MONTHLY or "BYMONTH" in given
    highest = 5 if within_month else 53
    days = []
    for item in value.split(","):
        match = _DAY.fullmatch(item)
        if match is None:
            raise InvalidRule(f"BYDAY takes days MO, TU, WE, TH, FR, SA, SU, optionally numbered as +1MO or -1FR "
                              f"(got {item[:30]!r})")  # fmt: skip
        nth = int(match[1]) if match[1] else None
        if nth is not None:
            if freq not in (MONTHLY, YEARLY) or "BYWEEKNO" in given:
                raise InvalidRule(f"a numbered BYDAY ({item}) needs FREQ=MONTHLY or FREQ=YEARLY without BYWEEKNO")
            if not 1 <= abs(nth) <= highest:
                scope = "month" if within_month else "year"
                raise InvalidRule(f"BYDAY {item}: the number counts within the {scope}, 1 to {highest} or -{highest} "
                                  "to -1")  # fmt: skip
        days.append(weekdays[_DAY_CODES[match[2]]](nth))
    return tuple(days)
