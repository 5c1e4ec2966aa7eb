"""Expanding recurrence rules within a bound. Every expansion of a rule goes through `scan`.

A series is expanded on naive wall-clock times in the owner's zone, so a 09:00 task stays at 09:00 across
daylight-saving changes.

dateutil's rrule looks for the next occurrence period by period and yields nothing until a day passes all of
its BY… filters, so a rule that never or rarely occurs (February 30, every 7 days on a weekday the start is
not on) makes it scan to the year 9999. `scan` therefore stands a budget in for the first of those filters,
the one dateutil consults for every day it scans: the scan covers HORIZON_YEARS and at most SCAN_CPU_SECONDS
of this thread's CPU time, and a rule with no occurrence in that span is refused as `InvalidRule`.
"""

from __future__ import annotations

import gc
import math
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import MAXYEAR, date, datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, HOURLY, MONTHLY, WEEKLY, YEARLY, rrule

from mcp_server.errors import InvalidRule
from mcp_server.rrules import HORIZON_YEARS, PERIODS_PER_YEAR, Rule, parse_rule

# A backstop for rules whose every scanned day costs much (many BY… values, hours far apart); the day budget
# bounds the others well below it.
SCAN_CPU_SECONDS = 0.03
_DAYS_PER_PERIOD = {YEARLY: 366, MONTHLY: 31, WEEKLY: 7, DAILY: 1, HOURLY: 1}  # most days dateutil checks in one


class _OutOfBudget(Exception):
    """The scan used up its days or its CPU time before finding an occurrence."""

    def __init__(self, timed_out: bool) -> None:
        self.timed_out = timed_out


class _ScanBudget:
    """Stands in for a day filter of dateutil's rrule (same values, same answers) and counts each day it checks.

    dateutil's `_iter` tests every day it scans against BYMONTH first, so a budget in its place sees the whole
    scan, including the periods that yield nothing; running out raises out of the scan. In BYMONTH's place it also
    counts the changes of month it sees, a calendar clock for scans whose checked days lie far apart.
    """

    __slots__ = ("_allowed", "_days", "_months", "_last", "_deadline")

    def __init__(self, allowed: Iterable[int], days: int, months: float) -> None:
        self._allowed = tuple(allowed)
        self._days = days
        self._months = months
        self._last: object = None
        self._deadline = time.thread_time() + SCAN_CPU_SECONDS

    def __bool__(self) -> bool:
        return True  # an active filter, even when it lets every value through

    def __iter__(self) -> Iterator[int]:
        return iter(self._allowed)

    def __contains__(self, value: object) -> bool:
        self._days -= 1
        if value != self._last:
            self._last, self._months = value, self._months - 1
            if self._months <= 0:
                raise _OutOfBudget(timed_out=False)
        if self._days % 64 == 0:
            if self._days <= 0:
                raise _OutOfBudget(timed_out=False)
            if time.thread_time() > self._deadline:
                raise _OutOfBudget(timed_out=True)
        return value in self._allowed


def scan(
    rule: Rule, dtstart: datetime, after: datetime, *, inclusive: bool, until: datetime | None = None
) -> datetime | None:
    """The first occurrence of the series anchored at naive `dtstart` that falls after `after` (or at it, if
    inclusive); None when `until` ends the series first. InvalidRule when there is none within HORIZON_YEARS.
    """
    last_year = MAXYEAR - HORIZON_YEARS - 2  # dateutil fails near the ends of the calendar
    if not 1 < dtstart.year <= after.year <= last_year:
        raise InvalidRule(f"cannot be expanded from {after:%Y-%m-%d}: dates must fall in the years 2 to {last_year}")
    try:
        expansion = rrule(rule.freq, dtstart=dtstart, interval=rule.interval, until=until, **rule.options)
    except ValueError as error:
        if rule.freq != HOURLY or "byhour" not in rule.options:
            raise
        hours = f"every {rule.interval} hours from {dtstart:%H:%M}"
        raise InvalidRule(f"BYHOUR is never reached counting {hours}") from error
    horizon = after + timedelta(days=round(HORIZON_YEARS * 365.25))
    # dateutil checks each day of a period once and then jumps INTERVAL periods (an HOURLY rule checks a day once
    # if it fails the filters), so it checks about one day in every `stride` of the calendar.
    stride = max(1.0, rule.interval * 365.25 / PERIODS_PER_YEAR[rule.freq] / _DAYS_PER_PERIOD[rule.freq])
    span = (horizon - dtstart).days
    try:
        with _without_gc_pauses():
            _install_budget(expansion, math.ceil(span / stride) + 2 * _DAYS_PER_PERIOD[rule.freq], span / 30.44 + 26)
            found = next((moment for moment in expansion if moment > after or inclusive and moment == after), None)
    except _OutOfBudget as out:
        if out.timed_out:
            raise InvalidRule(
                f"{rule.text} is too costly to expand (over {SCAN_CPU_SECONDS * 1000:.0f} ms); simplify its BY… parts"
            ) from None
        found = None
    if found is None and until is not None and until < horizon:
        return None
    if found is None or found > horizon:
        raise InvalidRule(
            f"{rule.text} has no occurrence within {HORIZON_YEARS} years after {after:%Y-%m-%d}; check that its BY… "
            "parts can meet (BYMONTH=2;BYMONTHDAY=30 never does) and that INTERVAL lands on them"
        )
    return found


class _GcHold:
    """Holds off the cyclic garbage collector while any scan runs (each takes milliseconds): a full collection in a
    large process costs tens of milliseconds of the scanning thread's CPU time, which would spend a legitimate
    rule's budget."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._reenable = False

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            self._holders += 1
            if self._holders == 1:
                self._reenable = gc.isenabled()  # leave a collector someone else turned off as it is
                gc.disable()
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0 and self._reenable:
                    gc.enable()


_without_gc_pauses = _GcHold()


def _install_budget(expansion: rrule, days: int, months: float) -> None:
    """Put a budget of `days` checked (and, in BYMONTH's place, `months` seen) in place of the first filter dateutil
    applies to each scanned day."""
    # A yearly rule with numbered weekdays (+1MO) and no BYMONTH counts them within the year; dateutil reads
    # BYMONTH to tell, so there the weekday filter, next in its order and then always consulted, takes the budget.
    if expansion._bymonth is None and expansion._freq == YEARLY and expansion._bynweekday:
        expansion._byweekday = _ScanBudget(expansion._byweekday or range(7), days, months=math.inf)
    else:
        expansion._bymonth = _ScanBudget(expansion._bymonth or range(1, 13), days, months)


@dataclass(frozen=True)
class Occurrence:
    due: date | datetime  # a date for all-day series, else an aware datetime in the owner's zone
    rule: str  # the rule as the next occurrence carries it (COUNT counts down)


def first_occurrence(text: str, start: date | datetime, zone: ZoneInfo) -> date | datetime:
    """The series' first occurrence at or after its start (a day for an all-day start, else an aware moment).

    InvalidRule when the rule cannot make a series from there: UNTIL before the start, or no occurrence.
    """
    rule = parse_rule(text)
    all_day = not isinstance(start, datetime)
    begin = _wall_clock(start, zone)
    until = rule.wall_until(zone, all_day)
    if until is not None and until < begin:
        given = dict(rule.parts)["UNTIL"]
        raise InvalidRule(f"UNTIL={given} is before the series starts ({start.isoformat()}), so it never occurs")
    found = scan(rule, begin, begin, inclusive=True, until=until)
    if found is None:
        raise InvalidRule(f"{rule.text} has no occurrence between the series start {start.isoformat()} and UNTIL")
    return found.date() if all_day else found.replace(tzinfo=zone)


def next_occurrence(text: str, due: date | datetime, zone: ZoneInfo) -> Occurrence | None:
    """The occurrence after `due`, or None when COUNT or UNTIL has ended the series. InvalidRule for a stored rule
    that cannot be expanded (it was stored before rules were checked, or never has a next occurrence).

    An all-day series moves on to a later day; each occurrence carries the COUNT that remains.
    """
    rule = parse_rule(text)
    if rule.count is not None and rule.count <= 1:
        return None
    all_day = not isinstance(due, datetime)
    start = _wall_clock(due, zone)
    after = datetime.combine(due, clock(23, 59, 59)) if all_day else start  # occurrences are whole seconds
    following = scan(rule, start, after, inclusive=False, until=rule.wall_until(zone, all_day))
    if following is None:
        return None
    return Occurrence(following.date() if all_day else following.replace(tzinfo=zone), rule.counted_down().text)


def _wall_clock(moment: date | datetime, zone: ZoneInfo) -> datetime:
    """The naive wall-clock time a series is expanded on: midnight for a day, else the moment in the zone."""
    if isinstance(moment, datetime):
        return moment.astimezone(zone).replace(tzinfo=None)
    return datetime.combine(moment, clock(0))
