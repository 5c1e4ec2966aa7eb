"""Rewrite the shorthand people type into the words the interpreter reads ('2moro' -> 'tomorrow', 'eod' -> '5pm').

The conventions applied here are written down in docs/conventions.md: an hour said with 'morning' is before noon,
one said with 'afternoon', 'evening' or 'night' after it, and the end of the day is 17:00. Quoted passages are
left exactly as typed, and a message typed wholly in capitals is read in lower case.
"""

import re

_QUOTED_RE = re.compile(r"\"[^\"]*\"|“[^”]*”|‘[^’]*’|(?<!\w)'[^'\n]*'(?!\w)")
_WORDS = {
    "tomorrow": r"2mor+ow|2mor+o|2moro|2mrw|tmw|tmrow|tomoz|tomor+ow|tom+or+ow|tmrrw",
    "today": r"2day|tdy",
    "tonight": r"2nite|2night|tonite",
    "5pm": r"eod|cob|(?:the\s+)?end\s+of\s+(?:the\s+)?(?:work(?:ing)?\s+)?day|close\s+of\s+business",
    "next week": r"nxt\s+wk|next\s+wk",
    "this week": r"this\s+wk",
    "weekend": r"wkend|wknd",
    "afternoon": r"arvo",
    # weekdays as they are often misspelt
    "monday": r"mondy|monady|mnoday",
    "tuesday": r"tuseday|tueday|teusday|tuesdya|tusday|tuesdy",
    "wednesday": r"wendesday|wensday|wednsday|wedensday|wendsday|wednseday|wedsday|wenesday|wednesdy",
    "thursday": r"thrusday|thursady|thurday|thurdsay|thusday|thurstday|thursdy",
    "friday": r"firday|fridya|frday|friady|fridy",
    "saturday": r"saterday|satuday|saturady|satruday|saturdy",
    "sunday": r"sundya|sudnay|sundy",
    "end of the week": r"eow",
    "high priority": r"asap|a\.s\.a\.p\.?",
}
# Whole words only: a hyphenated word ('ping-asap', 'eod-report') is part of a title, not shorthand.
_WORD_RES = [
    (re.compile(rf"(?i)(?<![\w#@-])(?:{pattern})(?![\w]|-\w)"), word) for word, pattern in _WORDS.items()
]
# '7 in the morning' -> '7am'; '3 in the afternoon', '8 in the evening', '10 at night' -> pm.
_PERIOD_HOUR_RE = re.compile(
    r"(?i)\b(?P<h>1[0-2]|[1-9])(?::(?P<m>[0-5]\d))?(?:\s*o'?clock)?\s+(?:in\s+the\s+(?P<p>morning|afternoon|evening)"
    r"|(?P<n>at\s+night|tonight))\b"
)
# The part of the day said before the hour: 'tomorrow morning at 7' -> 'tomorrow at 7am', 'every evening at 9' ->
# 'every day at 9pm', 'this afternoon at 3' -> 'today at 3pm', 'tonight at 10' -> 'tonight at 10pm'.
_DAY_PART_HOUR_RE = re.compile(
    r"(?i)\b(?:(?P<lead>this|every|each)\s+)?(?P<p>morning|afternoon|evening|night|tonight)s?,?\s+"
    r"(?P<prep>at|around|by|@)\s+(?P<h>1[0-2]|0?[1-9])(?::(?P<m>[0-5]\d))?(?P<ampm>\s*[ap]\.?m\b\.?)?(?![:\w])"
)


# The hour before the part of the day: 'at 6 tomorrow morning' -> 'at 6am tomorrow', 'at 9 this evening' -> 'at 9pm
# today'.
_HOUR_DAY_PART_RE = re.compile(
    r"(?i)\b(?P<prep>at|by|around)\s+(?P<h>1[0-2]|0?[1-9])(?::(?P<m>[0-5]\d))?\s+(?P<day>tomorrow|today|this)\s+"
    r"(?P<p>morning|afternoon|evening|night)\b"
)
_AT_SIGN_RE = re.compile(r"(?<![\w@#])@\s+(?=\d)")  # 'lunch @ 1pm'; '@home' is a tag


def _hour_day_part(match: re.Match[str]) -> str:
    """The hour with its meridiem, then the day the part of the day was said with."""
    day = "today" if match["day"].lower() == "this" else match["day"].lower()
    return f"{match['prep']} {_clock(match['h'].lstrip('0'), match['m'], match['p'].lower())} {day}"


def _clock(hour: str, minute: str | None, period: str) -> str:
    """'7', '30', 'morning' -> '7:30am': before noon in the morning, after it otherwise ('12 at night' is 0:00)."""
    meridiem = "am" if period == "morning" else "pm"
    if period != "morning" and hour == "12":
        meridiem = "am" if period != "afternoon" else "pm"  # '12 at night' is midnight, '12 in the afternoon' noon
    return f"{hour}:{minute}{meridiem}" if minute else f"{hour}{meridiem}"


def _hour(match: re.Match[str]) -> str:
    """The hour with its meridiem, keeping 'tonight' as the day it names."""
    period = (match["p"] or match["n"]).lower()
    clock = _clock(match["h"], match["m"], "night" if period == "at night" else period)
    return f"tonight at {clock}" if period == "tonight" else clock


def _day_part_hour(match: re.Match[str]) -> str:
    """The part of the day folded into the hour; the day it names ('tonight', 'this …' = today) stays."""
    period, lead = match["p"].lower(), (match["lead"] or "").lower()
    hour = match["h"].lstrip("0")
    clock = f"{hour}{':' + match['m'] if match['m'] else ''}{match['ampm'].strip()}" if match["ampm"] else None
    clock = clock or _clock(hour, match["m"], period)
    day = {"this": "today ", "every": "every day ", "each": "every day "}.get(lead, "")
    if period == "tonight":
        day = "tonight "
    preposition = "by" if match["prep"].lower() == "by" else "at"  # 'around 3' and '@ 3' are read as 'at 3'
    return f"{day}{preposition} {clock}"


def _outside_quotes(text: str) -> str:
    """Shorthand rewritten in the parts of text that are not quoted."""
    text = _AT_SIGN_RE.sub("at ", text)
    text = _HOUR_DAY_PART_RE.sub(_hour_day_part, text)
    text = _PERIOD_HOUR_RE.sub(_hour, text)
    text = _DAY_PART_HOUR_RE.sub(_day_part_hour, text)
    for pattern, word in _WORD_RES:
        text = pattern.sub(word, text)
    return text


def expand(text: str) -> str:
    """The message with shorthand spelled out; quoted passages untouched; all-capitals read in lower case."""
    letters = [char for char in text if char.isalpha()]
    if len(letters) > 1 and all(char.isupper() for char in letters if char.lower() != char.upper()):
        text = text.lower()
    parts, last = [], 0
    for quoted in _QUOTED_RE.finditer(text):
        parts += [_outside_quotes(text[last : quoted.start()]), quoted[0]]
        last = quoted.end()
    return "".join([*parts, _outside_quotes(text[last:])])
