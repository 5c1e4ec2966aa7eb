"""Read the dates and times people type or say ('tomorrow at 5pm', 'next friday', 'in 2 hours') in their own zone.

Text is split into runs of words (only spaces and commas may sit between the words of one phrase; quoted passages
are blanked out first), and a small recursive-descent grammar over those words recognises one phrase at a time:

    phrase := ['due'] ['on' | 'by' | 'at' | 'for' | 'before'] core
    core   := iso-datetime | 'in' N sub-day-unit | day [time] | time [['on'] day]

Choices worth knowing:
- a bare weekday, 'this X' and 'next X' all mean the next such day strictly after today;
- 'next week' is the Monday of the next ISO week (so on a Sunday it is tomorrow);
- 'weekend' / 'this weekend' is the first Saturday on or after today;
- in free text, a lone word that is usually not a date ('sat', 'sun', 'wed', 'weekend', 'morning', ...) only counts
  with a prefix ('on sat'), 'this'/'next', or an attached date or time ('sat 5pm').
"""

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple

from dateutil.relativedelta import relativedelta

ACCEPTED_FORMS = "use YYYY-MM-DD, YYYY-MM-DDTHH:MM, or a phrase like 'tomorrow 5pm', 'next friday', 'in 2 hours'"
# Dates far from today are typos, and near year 1 or 9999 a zone's offset would leave the calendar altogether.
EARLIEST, LATEST = date(1900, 1, 1), date(2200, 12, 31)
SHOWN = 60  # characters of unreadable text echoed back


@dataclass(frozen=True)
class When:
    """A date/time phrase found in text, with the character span it came from."""

    value: date | datetime  # a date is all-day; a datetime is aware, in the zone of `now`
    start: int
    end: int


class WhenError(ValueError):
    """Text that could not be read as a date or time."""


def _spellings(groups: str, first: int = 0) -> dict[str, int]:
    """Map every spelling in the k-th comma-separated group to first + k."""
    return {word: first + k for k, group in enumerate(groups.split(",")) for word in group.split()}


_WEEKDAYS = _spellings(
    "monday mon, tuesday tue tues, wednesday wed, thursday thu thur thurs, friday fri, saturday sat, sunday sun"
)
_MONTHS = _spellings(
    "january jan, february feb, march mar, april apr, may, june jun, july jul, august aug, september sep sept,"
    "october oct, november nov, december dec",
    first=1,
)
_NUMBERS = _spellings("a an one, two, three, four, five, six, seven, eight, nine, ten, eleven, twelve", first=1)
# Canonical names double as timedelta/relativedelta keyword arguments.
_UNITS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), "seconds"),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), "minutes"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "hours"),
    **dict.fromkeys(("d", "day", "days"), "days"),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), "weeks"),
    **dict.fromkeys(("mo", "month", "months"), "months"),
}
FORTNIGHTS = ("fortnight", "fortnights")  # two weeks each
_VAGUE_AMOUNTS = {"couple": 2, "few": 3}  # 'in a few days' is three of them
_ELAPSED_UNITS = {"seconds", "minutes", "hours"}  # offsets in these give an exact instant; longer ones give a day
_CLOCK_WORDS = {"noon": time(12), "midday": time(12), "midnight": time(0)}
_PERIODS = {"morning": time(9), "afternoon": time(15), "evening": time(19), "night": time(20)}
_COMMON_WORDS = {"sat", "sun", "wed", "weekend"}  # also ordinary English, so not a date on their own in free text


def _friday(day: date) -> date:
    """The Friday of the working week `day` is in: that day itself on a Friday, the next one at a weekend."""
    return day + timedelta(days=(4 - day.weekday()) % 7)


_FIXED_DAYS: dict[tuple[str, ...], Callable[[date], date]] = {
    ("today",): lambda d: d,
    ("tomorrow",): lambda d: d + timedelta(days=1),
    ("tmrw",): lambda d: d + timedelta(days=1),
    ("tmr",): lambda d: d + timedelta(days=1),
    ("yesterday",): lambda d: d - timedelta(days=1),
    ("day", "after", "tomorrow"): lambda d: d + timedelta(days=2),
    ("next", "week"): lambda d: d + timedelta(days=7 - d.weekday()),
    ("next", "month"): lambda d: d + relativedelta(months=1, day=1),
    ("end", "of", "month"): lambda d: d + relativedelta(day=31),
    ("end", "of", "the", "month"): lambda d: d + relativedelta(day=31),
    ("end", "of", "next", "month"): lambda d: d + relativedelta(months=1, day=31),
    # the working week ends on Friday: this one's (the next one's at a weekend), or next week's
    **dict.fromkeys((("end", "of", "week"), ("end", "of", "the", "week"), ("end", "of", "this", "week")), _friday),
    ("end", "of", "next", "week"): lambda d: _friday(d) + timedelta(days=7),
}

_ISO_DATETIME = r"\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?)?(?![\w:])"
# '@' and '#' stay attached so tags like '@5pm' or '#42' never read as times.
_TOKEN_RE = re.compile(rf"{_ISO_DATETIME}|[@#]?\w+(?:[:./'’-]\w+)*")
_QUOTED_RE = re.compile(r"\"[^\"]*\"|“[^”]*”|‘[^’]*’|(?<!\w)'[^\n]*?'(?!\w)")
_GAP_RE = re.compile(r"[\s,]*")
_ISO_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CLOCK_RE = re.compile(r"(?P<h>\d{1,2})(?:(?P<sep>[:.h])(?P<m>\d{2})(?::(?P<s>\d{2}))?|(?P<hh>h))?(?P<ap>[ap]\.?m)?")
_MERIDIEM_RE = re.compile(r"[ap]\.?m")
_SPAN_WORDS = ("to", "until", "till", "through")
_DAY_RE = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?")
_ORDINAL_RE = re.compile(r"(\d{1,2})(?:st|nd|rd|th)")
_NUMERIC_DATE_RE = re.compile(r"(\d{1,2})/(\d{1,2})(?:/(\d{4}))?")
_YEAR_RE = re.compile(r"\d{4}")
_COMPACT_OFFSET_RE = re.compile(r"(\d{1,4})([a-z]+)")


class _Word(NamedTuple):
    text: str  # lowercased
    start: int
    end: int


@dataclass(frozen=True)
class _Hit:
    """A whole phrase read from words[i:end] for some start i."""

    value: date | datetime
    end: int
    weak: bool = False  # a lone common word ('sat', 'morning'): not a date in free text without more context


@dataclass(frozen=True)
class _Day:
    """A calendar day read from words[i:end]."""

    value: date
    end: int
    weak: bool = False
    default: time | None = None  # the time of day it implies ('tonight')


@dataclass(frozen=True)
class _Clock:
    """A time of day read from words[i:end]."""

    value: time
    end: int
    weak: bool = False
    loose: bool = False  # given without am/pm


def _runs(text: str) -> list[list[_Word]]:
    """Split text into runs of words separated only by spaces or commas; quoted passages break runs."""
    masked = _QUOTED_RE.sub(lambda m: "\0" * len(m[0]), text)  # same offsets, but nothing quoted is a word
    runs: list[list[_Word]] = []
    for m in _TOKEN_RE.finditer(masked):
        word = _Word(m[0].lower(), m.start(), m.end())
        if runs and _GAP_RE.fullmatch(masked, runs[-1][-1].end, word.start):
            runs[-1].append(word)
        else:
            runs.append([word])
    return runs


def _whole(text: str) -> list[str] | None:
    """The words of text when they form one run covering all of it (trailing punctuation aside), else None."""
    body = text.strip().rstrip(".,;:!?").rstrip()
    runs = _runs(body)
    if len(runs) != 1 or runs[0][0].start != 0 or runs[0][-1].end != len(body):
        return None
    return [word.text for word in runs[0]]


def _hour(digits: str, meridiem: str, separator: str | None, marked: bool) -> int | None:
    """The 24-hour clock hour, or None when the digits should not count as a time."""
    hour = int(digits)
    if meridiem:
        return hour % 12 + 12 * meridiem.startswith("p") if 1 <= hour <= 12 else None
    if separator == "." and not marked:
        return None  # '5.30' alone is more likely a decimal; 'at 5.30' is a time
    if separator in (":", ".") and 1 <= hour <= 7 and not digits.startswith("0"):
        return hour + 12  # 'at 3:30' is said of the afternoon; '03:30' is written on a 24-hour clock
    if separator in (":", ".", "h"):
        return hour  # '9:30' and '17h' are 24-hour readings
    if separator is None and marked:
        return hour + 12 if 1 <= hour <= 7 else hour  # 'at 5' means 17:00 far more often than 05:00
    return None  # a bare number, or '5.30' without am/pm (more likely a decimal)


def _first_real(candidates: Iterable[tuple[int, int, int]], not_before: date | None) -> date | None:
    """The first (year, month, day) candidate that is a real date on or after `not_before`."""
    for year, month, day in candidates:
        try:
            found = date(year, month, day)
        except ValueError:
            continue
        if not_before is None or found >= not_before:
            return found
    return None


def _clock_on(day: _Day, clock: _Clock) -> time:
    """The clock time, read in the evening when the day implies it: 'tonight at 9' is 21:00."""
    evening = day.default is not None and day.default.hour >= 12
    if clock.loose and evening and 1 <= clock.value.hour < 12:
        return clock.value.replace(hour=clock.value.hour + 12)
    return clock.value


class _Words:
    """Cursor helpers and the time-of-day grammar over one run of lowercased words."""

    def __init__(self, words: list[str]) -> None:
        self.words = words

    def word(self, i: int) -> str:
        """The word at i, or '' outside the run."""
        return self.words[i] if 0 <= i < len(self.words) else ""

    def has(self, i: int, *options: str) -> bool:
        """Whether the word at i is one of options (a bool, so adding it to i skips an optional word)."""
        return self.word(i) in options

    def seq(self, i: int, *words: str) -> int | None:
        """The index after `words` if they appear at i, else None."""
        return i + len(words) if self.words[i : i + len(words)] == list(words) else None

    def clock(self, i: int, marked: bool = False) -> _Clock | None:
        """A time of day at i: '5pm', '5 pm', '17:00', '17h', 'noon', 'morning', or a bare hour after 'at'/'by';
        of a span ('2-3pm', 'from 10 to 11:30am') the start, which is what a task is due at."""
        if self.has(i, "at", "by"):
            i, marked = i + 1, True
        if span := self.span(i):
            return span
        word = self.word(i)
        if word == "first" and self.has(i + 1, "thing"):  # 'first thing monday', 'first thing in the morning'
            end = i + 2 + 3 * (self.words[i + 2 : i + 5] == ["in", "the", "morning"])
            return _Clock(_PERIODS["morning"], end, weak=True)
        if word in ("half", "quarter"):
            return self.past_or_to(i, marked)
        if word in _CLOCK_WORDS:
            return _Clock(_CLOCK_WORDS[word], i + 1)
        if word in _PERIODS:
            return _Clock(_PERIODS[word], i + 1, weak=True)
        match = _CLOCK_RE.fullmatch(word)
        if match is None:
            return None
        end, meridiem = i + 1, match["ap"] or ""
        if not meridiem and _MERIDIEM_RE.fullmatch(self.word(end)):
            end, meridiem = end + 1, self.word(end)
        hour = _hour(match["h"], meridiem, match["sep"] or match["hh"], marked)
        if hour is None:
            return None
        try:
            return _Clock(time(hour, int(match["m"] or 0), int(match["s"] or 0)), end, loose=not meridiem)
        except ValueError:
            return None

    def past_or_to(self, i: int, marked: bool) -> _Clock | None:
        """'half past 2', 'quarter past 10', 'quarter to 3'; after 'at' or 'by' also the British 'half 2' (2:30). The
        hour is read as a bare hour after 'at' is: 'at quarter to 7' is 18:45."""
        minutes = {"half": 30, "quarter": 15}[self.word(i)]
        j = i + 1
        if self.has(j, "past", "to"):
            if self.word(j) == "to":
                minutes = -minutes
            j += 1
        elif minutes != 30 or not marked:
            return None
        match = _CLOCK_RE.fullmatch(self.word(j))
        if match is None or match["sep"] or match["hh"]:
            return None
        hour = _hour(match["h"], match["ap"] or "", None, marked=True)
        if hour is None:
            return None
        total = (hour * 60 + minutes) % (24 * 60)
        return _Clock(time(total // 60, total % 60), j + 1, loose=not match["ap"])

    def span(self, i: int) -> _Clock | None:
        """The start of a span of time whose end has am/pm ('2-3pm', '2 to 3pm', 'from 11 till 1pm'): the start
        takes the end's half of the day unless that would put it after the end ('11-1pm' starts at 11:00)."""
        j = i + self.has(i, "from")
        first, _, last = self.word(j).partition("-")
        end = j + 1
        if not last and self.has(j + 1, *_SPAN_WORDS):
            first, last, end = self.word(j), self.word(j + 2), j + 3
        if _MERIDIEM_RE.fullmatch(self.word(end)) and not _MERIDIEM_RE.search(last):
            last, end = last + self.word(end), end + 1
        start, finish = _CLOCK_RE.fullmatch(first), _CLOCK_RE.fullmatch(last)
        if start is None or finish is None or not finish["ap"] or start["hh"] or finish["hh"]:
            return None
        ending = _hour(finish["h"], finish["ap"], finish["sep"], marked=True)
        meridiem = start["ap"] or finish["ap"]
        if not start["ap"] and int(start["h"]) % 12 > int(finish["h"]) % 12:
            meridiem = "pm" if finish["ap"].startswith("a") else "am"
        hour = _hour(start["h"], meridiem, start["sep"], marked=True)
        if ending is None or hour is None:
            return None
        try:
            return _Clock(time(hour, int(start["m"] or 0)), end)
        except ValueError:
            return None


class _Reader(_Words):
    """The date grammar over one run of words, resolved against `now`."""

    def __init__(self, words: list[str], now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        super().__init__(words)
        self.now = now
        self.today = now.date()

    def phrase(self, i: int) -> _Hit | None:
        """The date/time phrase starting at i, including prefix words ('due by', 'on', 'at', ...)."""
        j = i + self.has(i, "due")
        j += self.has(j, "on", "by", "at", "for", "before")
        hit = self.core(j, marked=j > i and self.has(j - 1, "at", "by"))
        return hit and replace(hit, weak=hit.weak and j == i)

    def core(self, i: int, marked: bool) -> _Hit | None:
        """A date/time without prefix words."""
        return self.iso_datetime(i) or self.in_time(i) or self.day_then_time(i) or self.time_then_day(i, marked)

    def iso_datetime(self, i: int) -> _Hit | None:
        """'2026-12-15T17:00', '2026-12-15 17:00:30+05:00': aware input keeps its instant, naive is local."""
        word = self.word(i)
        if ":" not in word or not _ISO_DATE_RE.match(word):
            return None
        try:
            value = datetime.fromisoformat(word.upper())
        except ValueError:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.now.tzinfo)
        return _Hit(self.normalized(value), i + 1)

    def in_time(self, i: int) -> _Hit | None:
        """'in 2 hours', 'in 10 mins', 'in 3 secs': exact elapsed time, so counted in UTC across DST changes."""
        offset = self.offset(i)
        if offset is None or offset[1] not in _ELAPSED_UNITS:
            return None
        amount, unit, end = offset
        moment = self.now.astimezone(UTC) + timedelta(**{unit: amount})
        return _Hit(moment.astimezone(self.now.tzinfo), end)

    def day_then_time(self, i: int) -> _Hit | None:
        """A day with an optional time after it: 'tomorrow', 'tomorrow at 5pm', 'dec 15, noon'."""
        day = self.day(i)
        if day is None:
            return None
        clock = self.clock(day.end)
        if clock is None:
            value = day.value if day.default is None else self.at(day.value, day.default)
            return _Hit(value, day.end, weak=day.weak)
        return _Hit(self.at(day.value, _clock_on(day, clock)), clock.end)

    def time_then_day(self, i: int, marked: bool) -> _Hit | None:
        """A time with an optional day after it ('5pm tomorrow', 'noon on friday'); alone, its next occurrence."""
        clock = self.clock(i, marked)
        if clock is None:
            return None
        day = self.day(clock.end + self.has(clock.end, "on"))
        if day is not None:
            return _Hit(self.at(day.value, _clock_on(day, clock)), day.end)
        today = self.at(self.today, clock.value)
        soonest = today if today > self.now else self.at(self.today + timedelta(days=1), clock.value)
        return _Hit(soonest, clock.end, weak=clock.weak)

    def day(self, i: int) -> _Day | None:
        """A calendar day at i, with an optional leading 'the' ('the 15th', 'the day after tomorrow')."""
        k = i + self.has(i, "the")
        ordinal = self.ordinal_day(k) if k > i else None  # a lone '15th' is too often not a date
        return self.named_day(k) or self.in_days(k) or self.calendar_day(k) or ordinal

    def named_day(self, i: int) -> _Day | None:
        """'today', 'tonight', 'next week', 'end of month', 'this evening', 'friday', 'next fri', 'this weekend'."""
        for words, resolve in _FIXED_DAYS.items():
            if (end := self.seq(i, *words)) is not None:
                return _Day(resolve(self.today), end)
        if self.has(i, "tonight"):
            return _Day(self.today, i + 1, default=_PERIODS["night"])
        if self.has(i, "this") and self.word(i + 1) in _PERIODS:
            return _Day(self.today, i + 2, default=_PERIODS[self.word(i + 1)])
        j = i + self.has(i, "this", "next")
        word = self.word(j)
        weak = j == i and word in _COMMON_WORDS
        if word in _WEEKDAYS:
            k = j + 1 + self.has(j + 1, "the")  # 'fri 19th', 'friday the 19th', 'monday 3rd jan': the date decides
            if dated := self.calendar_day(k) or self.ordinal_day(k):
                return dated
            ahead = (_WEEKDAYS[word] - self.today.weekday() - 1) % 7 + 1  # 1..7: strictly after today
            return _Day(self.today + timedelta(days=ahead), j + 1, weak=weak)
        if word == "weekend" and not self.has(i, "next"):
            return _Day(self.today + timedelta(days=(5 - self.today.weekday()) % 7), j + 1, weak=weak)
        return None

    def in_days(self, i: int) -> _Day | None:
        """'in 3 days', 'in 2 weeks', 'in a month': an all-day date."""
        offset = self.offset(i)
        if offset is None or offset[1] in _ELAPSED_UNITS:
            return None
        amount, unit, end = offset
        return _Day(self.today + relativedelta(**{unit: amount}), end)

    def calendar_day(self, i: int) -> _Day | None:
        """'2026-12-15', '12/15', '12/15/2027', 'dec 15', 'december 15th, 2027', '15 dec', '15th of december'."""
        word = self.word(i)
        if _ISO_DATE_RE.fullmatch(word):
            try:
                return _Day(date.fromisoformat(word), i + 1)
            except ValueError:
                return None
        if numeric := _NUMERIC_DATE_RE.fullmatch(word):
            month, day = int(numeric[1]), int(numeric[2])
            if month > 12 >= day:  # '19/3' can only be day/month
                month, day = day, month
            return self.month_day(month, day, numeric[3], i + 1)
        if word in _MONTHS and (day := _DAY_RE.fullmatch(self.word(i + 1))):
            return self.month_day(_MONTHS[word], int(day[1]), None, i + 2)
        month_at = i + 1 + self.has(i + 1, "of")
        if (day := _DAY_RE.fullmatch(word)) and self.word(month_at) in _MONTHS:
            return self.month_day(_MONTHS[self.word(month_at)], int(day[1]), None, month_at + 1)
        return None

    def month_day(self, month: int, day: int, year: str | None, end: int) -> _Day | None:
        """That day in the given year (or a year word at `end`), else its next occurrence from today."""
        if year is None and _YEAR_RE.fullmatch(self.word(end)):
            year, end = self.word(end), end + 1
        if year is not None:
            found = _first_real([(int(year), month, day)], None)
        else:  # up to four years ahead, so 'feb 29' finds a leap year
            found = _first_real(((y, month, day) for y in range(self.today.year, self.today.year + 5)), self.today)
        return None if found is None else _Day(found, end)

    def ordinal_day(self, i: int) -> _Day | None:
        """'15th' (after 'the'): this month's 15th, or the next month that has one if it is past."""
        ordinal = _ORDINAL_RE.fullmatch(self.word(i))
        if ordinal is None:
            return None
        months = (self.today.replace(day=1) + relativedelta(months=k) for k in range(13))
        found = _first_real(((m.year, m.month, int(ordinal[1])) for m in months), self.today)
        return None if found is None else _Day(found, i + 1)

    def offset(self, i: int) -> tuple[int, str, int] | None:
        """'in 2 hours', 'in two days', 'in an hour', 'in half an hour', 'in 10m' at i, as (amount, unit, end)."""
        if not self.has(i, "in"):
            return None
        if (end := self.seq(i + 1, "half", "an", "hour")) is not None:
            return 30, "minutes", end
        if self.has(i + 1, "a") and (amount := _VAGUE_AMOUNTS.get(self.word(i + 2))):  # 'in a couple of days'
            end = i + 3 + self.has(i + 3, "of")  # 'in a few hours'
            unit = _UNITS.get(self.word(end))
            return None if unit is None else (amount, unit, end + 1)
        word = self.word(i + 1)
        if (compact := _COMPACT_OFFSET_RE.fullmatch(word)) and compact[2] in _UNITS:
            return int(compact[1]), _UNITS[compact[2]], i + 2
        amount = int(word) if word.isdecimal() and len(word) <= 4 else _NUMBERS.get(word)
        if amount is not None and self.word(i + 2) in FORTNIGHTS:
            return 2 * amount, "weeks", i + 3
        unit = _UNITS.get(self.word(i + 2))
        return None if amount is None or unit is None else (amount, unit, i + 3)

    def at(self, day: date, clock: time) -> datetime:
        """The wall-clock time `clock` on `day` in the user's zone, so 'tomorrow 9am' stays 09:00 across DST."""
        return self.normalized(datetime.combine(day, clock, tzinfo=self.now.tzinfo))

    def normalized(self, value: datetime) -> datetime:
        """`value` in the user's zone; the UTC round trip moves a time inside a DST gap forward to a real one."""
        return value.astimezone(UTC).astimezone(self.now.tzinfo)


def in_range(value: date | datetime) -> bool:
    """Whether the day (in the value's own zone) lies within the years dates may be given for."""
    return EARLIEST <= (value.date() if isinstance(value, datetime) else value) <= LATEST


def check_range(value: date | datetime) -> None:
    if not in_range(value):
        raise WhenError(f"{value.isoformat()} is outside the years {EARLIEST.year}-{LATEST.year}")


def _shown(text: str) -> str:
    text = text.strip()
    return repr(text if len(text) <= SHOWN else text[:SHOWN] + "…")


def parse_when(text: str, *, now: datetime) -> date | datetime:
    """The whole text as one date/time between the years 1900 and 2200; raise WhenError otherwise."""
    words = _whole(text)
    try:
        hit = _Reader(words, now).phrase(0) if words else None
    except OverflowError:
        raise WhenError(f"{_shown(text)} is outside the years {EARLIEST.year}-{LATEST.year}") from None
    if hit is None or hit.end != len(words or ()):
        raise WhenError(f"could not read {_shown(text)} as a date; {ACCEPTED_FORMS}")
    check_range(hit.value)
    return hit.value


def find_when(text: str, *, now: datetime) -> When | None:
    """The longest date/time phrase inside free text (e.g. 'buy milk tomorrow at 5pm' -> 'tomorrow at 5pm'), or None."""
    best: When | None = None
    for run in _runs(text):
        reader = _Reader([word.text for word in run], now)
        for i in range(len(run)):
            if reader.has(i - 1, "every", "each", "other"):
                continue  # recurrence ('every monday', 'every other friday') is parsed elsewhere
            try:
                hit = reader.phrase(i)
            except OverflowError:
                continue
            if hit is None or hit.weak or not in_range(hit.value):
                continue
            start, end = run[i].start, run[hit.end - 1].end
            if best is None or end - start > best.end - best.start:
                best = When(hit.value, start, end)
    return best


def parse_time_of_day(text: str) -> time | None:
    """'5pm', '5:30 pm', '17:00', 'noon', 'midnight', '9:30' -> time; None if not a time."""
    words = _whole(text)
    hit = _Words(words).clock(0) if words else None
    return hit.value if hit is not None and hit.end == len(words or ()) else None


def when_text(value: str | None, today: date | None = None) -> str:
    """'2026-11-30T17:00:00+05:00' reads 'Mon 30 Nov 17:00' (already in the person's zone); years but this one show."""
    if not value:
        return ""
    moment = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
    day = moment.date() if isinstance(moment, datetime) else moment
    text = f"{day:%a} {day.day} {day:%b}"
    if today is None or day.year != today.year:
        text += f" {day.year}"
    return f"{text} {moment:%H:%M}" if isinstance(moment, datetime) else text
