"""Read how often a task repeats ('every monday and thursday', 'on the 1st of every month', 'until dec 3').

A small cursor grammar reads the words of one repetition ('every' + unit, weekday lists, monthly ordinals, yearly
month-days, adverbs such as 'daily'); its bounds ('until …', 'starting …', 'N times') may sit anywhere else. The
result is a `Repeat` with the character spans it used, so the caller can cut them out of the title.
"""

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time

from mcp_server.dates import FORTNIGHTS, WhenError, parse_when
from mcp_server.errors import InvalidRule
from mcp_server.recurrence import scan
from mcp_server.rrules import parse_rule

_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_DAY_GROUPS = {"weekday": (0, 1, 2, 3, 4), "weekend": (5, 6)}
_MONTH_STEMS = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
_UNITS = {"hour": "HOURLY", "day": "DAILY", "week": "WEEKLY", "month": "MONTHLY", "year": "YEARLY"}
_ADVERBS = {"daily": ("DAILY", 1), "everyday": ("DAILY", 1), "nightly": ("DAILY", 1), "weekly": ("WEEKLY", 1),
            "biweekly": ("WEEKLY", 2), "fortnightly": ("WEEKLY", 2), "monthly": ("MONTHLY", 1),
            "quarterly": ("MONTHLY", 3), "yearly": ("YEARLY", 1), "annually": ("YEARLY", 1)}  # fmt: skip
# After an adverb only these words keep it a repetition: 'daily at 8am' repeats, 'weekly report' is a title.
_ADVERB_FOLLOWERS = {"at", "on", "from", "starting", "beginning", "until", "till", "for", "and", "with", "in", "by"}
_PERIODS = {"morning": time(9), "afternoon": time(15), "evening": time(19), "night": time(20)}  # as dates.py
_NUMBERS = {w: n for n, w in enumerate("one two three four five six seven eight nine ten eleven twelve".split(), 1)}
_WORD_RE = re.compile(r"[\w']+|&")
_ORDINAL_RE = re.compile(r"(\d{1,2})(?:st|nd|rd|th)")
_NTH_WORDS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4, "last": -1}
_BOUNDS = {
    "until": re.compile(r"(?i)\b(?:until|till|til|through|thru|ending(?: on)?|ends(?: on)?)\s+"),
    "start": re.compile(r"(?i)\b(?:starting|beginning|begins|starts|from|effective|as of)(?: on| from)?\s+"),
}
_COUNT_RE = re.compile(r"(?i)(?:\bfor\s+)?\b(\w+)\s+(?:times|occurrences)\b")


@dataclass(frozen=True)
class Repeat:
    """A repetition read from text: the RRULE core, its bounds, and the character spans it came from."""

    freq: str
    interval: int = 1
    by_day: tuple[int, ...] = ()  # 0 is Monday
    by_month: int | None = None
    by_month_day: int | None = None  # -1 is the last day of the month
    nth: int | None = None  # with one day in by_day: 2 is the second such day of the month, -1 the last
    start: date | datetime | None = None  # 'starting march 13'
    until: date | datetime | None = None
    count: int | None = None
    clock: time | None = None  # 'every morning' implies a time of day
    spans: tuple[tuple[int, int], ...] = ()


def weekday(word: str) -> int | None:
    """0..6 for a weekday name, abbreviation or plural ('mon', 'tues', 'thursdays'), else None."""
    for stem in (word, word.removesuffix("s")):
        for day, name in enumerate(_DAY_NAMES):
            if len(stem) >= 3 and name.startswith(stem):
                return day
    return None


def number(word: str) -> int | None:
    """A small count written as digits or a word ('3', 'three'), else None."""
    return int(word) if word.isdecimal() and len(word) <= 3 else _NUMBERS.get(word.lower())


def phrase_at(text: str, start: int, now: datetime) -> tuple[date | datetime, int] | None:
    """The longest date phrase (up to six words, before any NUL) beginning at `start`, with its end."""
    for last in reversed(list(re.finditer(r"[^\s\0]+", text[start:].split("\0", 1)[0]))[:6]):
        try:
            return parse_when(text[start : start + last.end()], now=now), start + last.end()
        except WhenError:
            continue
    return None


class _Cursor:
    """The grammar of one repetition over the lowercased words of a run."""

    def __init__(self, words: list[str], now: datetime) -> None:
        self.words, self.now = words, now

    def word(self, i: int) -> str:
        """The word at i, or '' outside the run."""
        return self.words[i] if 0 <= i < len(self.words) else ""

    def phrase(self, i: int) -> tuple[Repeat, int] | None:
        """A repetition starting at word i, with the index after it."""
        found = self.every(i + 1) if self.word(i) in ("every", "each") else None
        found = found or self.adverb(i) or self.ordinal_of_month(i, alone=True) or self.plural_days(i)
        if found and found[0].by_day and found[0].clock is None and self.word(found[1]) in _PERIODS:
            return replace(found[0], clock=_PERIODS[self.word(found[1])]), found[1] + 1  # 'every thursday night'
        return found

    def every(self, i: int) -> tuple[Repeat, int] | None:
        """After 'every': ['other' | N] then a unit, weekdays, a month-day, an ordinal or a part of the day."""
        interval = 1
        if self.word(i) == "other":
            interval, i = 2, i + 1
        elif (n := number(self.word(i))) and self.word(i + 1).removesuffix("s") in _UNITS:
            interval, i = n, i + 1
        if self.word(i) in _PERIODS:
            return Repeat("DAILY", interval, clock=_PERIODS[self.word(i)]), i + 1
        if self.word(i) in FORTNIGHTS:
            return self.anchored(Repeat("WEEKLY", 2 * interval), i + 1)
        if (unit := self.word(i).removesuffix("s")) in _UNITS:
            return self.anchored(Repeat(_UNITS[unit], interval), i + 1)
        return self.days(i, interval) or self.month_day(i) or self.ordinal_of_month(i)

    def adverb(self, i: int) -> tuple[Repeat, int] | None:
        """'daily', 'weekly on mondays', 'monthly on the 15th', but not 'the weekly report'."""
        following = self.word(i + 1)
        if self.word(i) not in _ADVERBS or self.word(i - 1) in ("the", "a", "my", "our", "your"):
            return None
        if following and following not in _ADVERB_FOLLOWERS:
            return None
        return self.anchored(Repeat(*_ADVERBS[self.word(i)]), i + 1)

    def anchored(self, repeat: Repeat, i: int) -> tuple[Repeat, int]:
        """An optional '[on] …' after a unit: weekdays for weeks, 'the 15th' for months, 'march 8' for years."""
        j = i + (self.word(i) == "on")
        if repeat.freq == "WEEKLY":
            found = self.days(j)
        elif repeat.freq == "MONTHLY":
            found = self.ordinal_of_month(j)
        else:
            found = self.month_day(j) if repeat.freq == "YEARLY" else None
        return (replace(found[0], interval=repeat.interval), found[1]) if found else (repeat, i)

    def days(self, i: int, interval: int = 1) -> tuple[Repeat, int] | None:
        """'monday and thursday', 'mon, wed & fri', 'weekdays': a weekly rule on those days."""
        found: list[int] = []
        while (group := self.day_group(i)) is not None:
            found.extend(group)
            i += 1 + (self.word(i + 1) in ("and", "&", "or") and self.day_group(i + 2) is not None)
        return (Repeat("WEEKLY", interval, by_day=tuple(sorted(set(found)))), i) if found else None

    def day_group(self, i: int) -> tuple[int, ...] | None:
        """The weekdays one word names: 'friday' -> (4,), 'weekdays' -> Monday..Friday."""
        if (group := _DAY_GROUPS.get(self.word(i).removesuffix("s"))) is not None:
            return group
        day = weekday(self.word(i))
        return None if day is None else (day,)

    def plural_days(self, i: int) -> tuple[Repeat, int] | None:
        """'mondays and thursdays', 'on weekdays': plural day names repeat without 'every'."""
        j = i + (self.word(i) == "on")
        word = self.word(j)
        plural = word.endswith("days") and word[:-1] in (*_DAY_NAMES, "weekday") or word == "weekends"
        if plural:
            return self.days(j)
        # 'tue and thu at 5pm': two or more days joined by 'and' name a weekly habit ('mon or tue' does not)
        found = self.days(j) if weekday(word) is not None and (
            self.word(j + 1) in ("and", "&") or weekday(self.word(j + 1)) is not None
        ) else None
        return found if found and len(found[0].by_day) > 1 and "or" not in self.words[j : found[1]] else None

    def nth_weekday(self, i: int, *, alone: bool) -> tuple[Repeat, int] | None:
        """'the second tuesday of each month', 'the first thursday of the month': said alone too, such a day names one
        that comes back each month (a book club, a board meeting)."""
        nth, day = _NTH_WORDS.get(self.word(i)), weekday(self.word(i + 1))
        if nth is None or day is None:
            return None
        of = i + 2 + (self.word(i + 2) == "of")
        if self.word(of) in ("every", "each", "the") and self.word(of + 1) == "month":
            return Repeat("MONTHLY", by_day=(day,), nth=nth), of + 2
        return None if alone else (Repeat("MONTHLY", by_day=(day,), nth=nth), i + 2)

    def ordinal_of_month(self, i: int, *, alone: bool = False) -> tuple[Repeat, int] | None:
        """'the 15th', '1st of the month'; alone (without 'every' before it) only '[on] the 1st of every month'."""
        i += alone and self.word(i) == "on"
        i += self.word(i) == "the"
        if found := self.nth_weekday(i, alone=alone):
            return found
        match = _ORDINAL_RE.fullmatch(self.word(i))
        day = int(match[1]) if match else {"first": 1, "last": -1}.get(self.word(i))
        if day is None:
            return None
        end = i + 1 + (self.word(i + 1) == "day")
        of = end + (self.word(end) == "of")
        if self.word(of) in (("every", "each") if alone else ("every", "each", "the")) and self.word(of + 1) == "month":
            return Repeat("MONTHLY", by_month_day=day), of + 2
        return None if alone else (Repeat("MONTHLY", by_month_day=day), end)

    def month_day(self, i: int) -> tuple[Repeat, int] | None:
        """'march 8', '8th of march': a yearly rule on that day."""
        for size in (3, 2):
            words = self.words[i : i + size]
            if len(words) == size and any(word[:3] in _MONTH_STEMS for word in words):
                try:
                    value = parse_when(" ".join(words), now=self.now)
                except WhenError:
                    continue
                if not isinstance(value, datetime):
                    return Repeat("YEARLY", by_month=value.month, by_month_day=value.day), i + size
        return None


def find_repeat(text: str, *, now: datetime) -> Repeat | None:
    """The first repetition in text (NUL characters mark parts already taken) with its bounds, or None."""
    for run in _runs(text):
        cursor = _Cursor([word.lower() for word, _, _ in run], now)
        for i in range(len(run)):
            if found := cursor.phrase(i):
                return _bounded(replace(found[0], spans=((run[i][1], run[found[1] - 1][2]),)), text, now)
    return None


def _runs(text: str) -> list[list[tuple[str, int, int]]]:
    """Words with their spans, split where anything but spaces and commas sits between two words."""
    runs: list[list[tuple[str, int, int]]] = []
    for match in _WORD_RE.finditer(text):
        if runs and re.fullmatch(r"[\s,]*", text[runs[-1][-1][2] : match.start()]):
            runs[-1].append((match[0], match.start(), match.end()))
        else:
            runs.append([(match[0], match.start(), match.end())])
    return runs


def _bounded(repeat: Repeat, text: str, now: datetime) -> Repeat:
    """Add 'until …', 'starting …' and 'N times' found anywhere outside the repetition itself."""
    start, end = repeat.spans[0]
    text = text[:start] + "\0" * (end - start) + text[end:]
    bounds: dict = {"spans": repeat.spans}
    for name, pattern in _BOUNDS.items():
        hits = ((match.start(), phrase_at(text, match.end(), now)) for match in pattern.finditer(text))
        if found := next(((begin, hit) for begin, hit in hits if hit), None):
            bounds[name], bounds["spans"] = found[1][0], (*bounds["spans"], (found[0], found[1][1]))
    if match := next((m for m in _COUNT_RE.finditer(text) if number(m[1])), None):
        bounds["count"], bounds["spans"] = number(match[1]), (*bounds["spans"], match.span())
    return replace(repeat, **bounds)


def first_occurrence(repeat: Repeat, dtstart: datetime, not_before: datetime) -> datetime | None:
    """The rule's first naive wall time from `dtstart` that is not before `not_before`; None if it has none.

    The interval and bounds are left out on purpose: 'every other tuesday' starts on the next Tuesday, then skips a
    week. A rule that cannot occur is left for the task tools to refuse with their reason.
    """
    core = replace(repeat, interval=1, count=None, until=None)
    try:
        return scan(parse_rule(rrule_text(core)), dtstart, max(dtstart, not_before), inclusive=True)
    except InvalidRule:
        return None


def rrule_text(repeat: Repeat) -> str:
    """The RFC 5545 RRULE without DTSTART, e.g. FREQ=WEEKLY;INTERVAL=2;BYDAY=TU or FREQ=DAILY;COUNT=5."""
    parts = {
        "FREQ": repeat.freq,
        "INTERVAL": repeat.interval if repeat.interval != 1 else None,
        "BYMONTH": repeat.by_month,
        "BYMONTHDAY": repeat.by_month_day,
        "BYDAY": ",".join(f"{repeat.nth or ''}{_DAY_CODES[day]}" for day in repeat.by_day) or None,
        "COUNT": repeat.count,
        "UNTIL": _until(repeat.until) if repeat.until and not repeat.count else None,
    }
    return ";".join(f"{name}={value}" for name, value in parts.items() if value is not None)


def _until(value: date | datetime) -> str:
    """The last day, as a floating local date: series are expanded in the person's wall-clock time, so the day
    named is included whatever the time of the occurrences (TaskFlow reads a bare UNTIL day as its end)."""
    return (value.date() if isinstance(value, datetime) else value).strftime("%Y%m%d")
