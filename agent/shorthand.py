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


def _hour(match: re.Match[str]) -> str:
    """The hour with its meridiem, keeping 'tonight' as the day it names."""
    period = (match["p"] or match["n"]).lower()
    meridiem = "am" if period == "morning" else "pm"
    if period != "morning" and match["h"] == "12":
        meridiem = "am" if period != "afternoon" else "pm"  # '12 at night' is midnight, '12 in the afternoon' noon
    clock = f"{match['h']}:{match['m']}{meridiem}" if match["m"] else f"{match['h']}{meridiem}"
    return f"tonight at {clock}" if period == "tonight" else clock


def _outside_quotes(text: str) -> str:
    """Shorthand rewritten in the parts of text that are not quoted."""
    text = _PERIOD_HOUR_RE.sub(_hour, text)
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
