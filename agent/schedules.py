"""A task's repetition in words: 'every weekday at 9:00', 'on the first Monday of each month', 'every 2 weeks on
Tuesday'. The time of day comes from the task's due moment, which is the series' first occurrence."""

from __future__ import annotations

import re
from datetime import date, timedelta

_DAYS = {"MO": "Monday", "TU": "Tuesday", "WE": "Wednesday", "TH": "Thursday", "FR": "Friday", "SA": "Saturday",
         "SU": "Sunday"}  # fmt: skip
_UNITS = {"HOURLY": "hour", "DAILY": "day", "WEEKLY": "week", "MONTHLY": "month", "YEARLY": "year"}
_NTH = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", -1: "last", -2: "second-to-last"}
_MONTHS = "January February March April May June July August September October November December".split()
_BYDAY_RE = re.compile(r"([+-]?\d)?([A-Z]{2})")


def _ordinal(day: int) -> str:
    """1 -> '1st', 22 -> '22nd', -1 -> 'last'."""
    if day < 0:
        return "last" if day == -1 else f"{_NTH.get(day, str(day))}"
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def schedule_text(rule: str, due: str | None = None) -> str:
    """The rule read aloud; parts it does not name (rare hand-written rules) fall back to 'repeats'."""
    parts = dict(part.split("=", 1) for part in rule.removeprefix("RRULE:").split(";") if "=" in part)
    freq, interval = parts.get("FREQ", ""), int(parts.get("INTERVAL", "1") or 1)
    if freq not in _UNITS or set(parts) - {"FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "BYMONTH", "COUNT", "UNTIL"}:
        return "repeats"
    unit = _UNITS[freq]
    every = f"every {interval} {unit}s" if interval > 1 else f"every {unit}"
    days = [_BYDAY_RE.fullmatch(code) for code in parts["BYDAY"].split(",")] if "BYDAY" in parts else []
    if any(match is None or match[2] not in _DAYS for match in days):
        return "repeats"
    if days and any(match[1] for match in days):  # 'the first Monday'
        named = _join([f"{_NTH.get(int(m[1]), m[1])} {_DAYS[m[2]]}" for m in days])
        text = f"on the {named} of each month" if interval == 1 else f"on the {named} of every {interval} months"
    elif days:
        codes = [match[2] for match in days]
        names = (
            ["weekday"] if codes == ["MO", "TU", "WE", "TH", "FR"]
            else ["weekend"] if codes == ["SA", "SU"] else [_DAYS[code] for code in codes]
        )  # fmt: skip
        text = f"every {_join(names)}" if interval == 1 else f"{every} on {_join(names)}"
    elif "BYMONTHDAY" in parts and freq == "YEARLY" and "BYMONTH" in parts:
        text = f"{every} on {int(parts['BYMONTHDAY'])} {_MONTHS[int(parts['BYMONTH']) - 1]}"
    elif "BYMONTHDAY" in parts:
        day = int(parts["BYMONTHDAY"])
        text = f"on the {_ordinal(day)}{' day' if day < 0 else ''} of {'each month' if interval == 1 else every}"
    else:
        text = every
    if due and len(due) > 10:
        text += f" from {due[11:16]}" if freq == "HOURLY" else f" at {due[11:16]}"
    if "COUNT" in parts:
        text += f", {parts['COUNT']} times"
    elif "UNTIL" in parts:
        until = parts["UNTIL"][:8]
        text += f", until {int(until[6:8])} {_MONTHS[int(until[4:6]) - 1][:3]} {until[:4]}"
    return text


def moved_rule(rule: str, old: date, new: date) -> str:
    """The rule with its day moved along with the task's due date, so the new due date is one of its occurrences:
    every Sunday moved to a Saturday repeats every Saturday; the 5th of each month moved to the 8th repeats on the
    8th; the first Monday moved to a Tuesday, the first Tuesday. Rules the due date alone anchors stay as they are."""
    parts = dict(part.split("=", 1) for part in rule.removeprefix("RRULE:").split(";") if "=" in part)
    codes = list(_DAYS)
    if parts.get("FREQ") == "WEEKLY" and "BYDAY" in parts:
        days = [code for code in parts["BYDAY"].split(",") if code != codes[old.weekday()]]
        parts["BYDAY"] = ",".join(code for code in codes if code in {*days, codes[new.weekday()]})
    elif parts.get("FREQ") == "MONTHLY" and (nth := _BYDAY_RE.fullmatch(parts.get("BYDAY", ""))) and nth[1]:
        last_week = (new + timedelta(days=7)).month != new.month
        parts["BYDAY"] = f"{-1 if last_week and int(nth[1]) < 0 else (new.day - 1) // 7 + 1}{codes[new.weekday()]}"
    elif parts.get("FREQ") in ("MONTHLY", "YEARLY") and parts.get("BYMONTHDAY", "").isdecimal():
        parts["BYMONTHDAY"] = str(new.day)
        if "BYMONTH" in parts:
            parts["BYMONTH"] = str(new.month)
    else:
        return rule
    return ";".join(f"{key}={value}" for key, value in parts.items())
