"""The offline interpreter: one English utterance about tasks -> one structured command, with no model and no network.

Commands are tried from the most constrained shape to the least: a yes/no answer, bulk deletion, moving many tasks,
a listing, a change to a named task, and finally a new task. A new task is read by a pipeline of small extractors that
each cut their phrase out of the text (verb -> quotes -> description -> recurrence -> reminder -> dates -> priority ->
tags); what remains is the title, in the person's own words.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal

from dateutil.relativedelta import relativedelta

from agent.recurrence_phrases import Repeat, find_repeat, first_occurrence, number, phrase_at, rrule_text
from agent.shorthand import expand
from mcp_server.dates import WhenError, find_when, parse_time_of_day, parse_when


@dataclass(frozen=True)
class AddTask:
    """Arguments for the add_task tool, already resolved."""

    title: str
    description: str | None = None
    priority: str = "medium"  # high | medium | low
    tags: tuple[str, ...] = ()
    due: str | None = None  # 'YYYY-MM-DD' (all-day) or ISO 8601 datetime with offset
    recurrence: str | None = None  # RFC 5545 RRULE without DTSTART; due is its first occurrence
    remind_at: str | None = None  # ISO 8601 datetime with offset


@dataclass(frozen=True)
class ListTasks:
    """Arguments for list_tasks (only the filters the person said), and how to answer: a count, or tasks completed
    within a span of days ('what did I finish this week?': the tool filters by due date, so the agent does that)."""

    arguments: dict = field(default_factory=dict)
    count_only: bool = False
    completed_between: tuple[str, str] | None = None  # first and last day, inclusive
    next_only: bool = False  # 'what's next?': the one open task due soonest


@dataclass(frozen=True)
class ChangeTask:
    """An action (complete | reopen | delete | update, or ask: whether it is done) on the task named by (part of)
    its title."""

    action: str
    name: str  # the words that name the task, as the person said them
    changes: dict = field(default_factory=dict)  # update_task arguments, plus add_tags and due_time
    otherwise: AddTask | None = None  # the task the sentence adds when none has that name ('the bins out' below)


@dataclass(frozen=True)
class MoveTasks:
    """Move every open task a listing selects to another day, each keeping its time of day ('push everything due
    today to tomorrow', 'move all overdue tasks to friday')."""

    selection: dict  # list_tasks arguments
    due: str  # the new day, YYYY-MM-DD, or an ISO 8601 datetime when a time was said
    otherwise: ChangeTask | None = None  # 'move the tax stuff to next week' with no tasks tagged tax: the one task


@dataclass(frozen=True)
class DeleteCompleted:
    """Delete every completed task (the agent asks for confirmation first)."""


@dataclass(frozen=True)
class Undo:
    """Undo the person's latest change ('undo that', 'revert my last change')."""


@dataclass(frozen=True)
class Answer:
    """Yes or no to a question the agent asked."""

    yes: bool


Pleasantry = Literal["hello", "thanks", "bye"]  # said to the agent rather than about tasks


@dataclass(frozen=True)
class Unclear:
    """Nothing to do: the agent says so, with what the person could say instead, or answers a pleasantry."""

    text: str
    suggestions: tuple[str, ...] = ()
    pleasantry: Pleasantry | None = None


Command = AddTask | ListTasks | ChangeTask | MoveTasks | DeleteCompleted | Undo | Answer | Unclear

REMINDER_HOUR = time(9)  # an all-day task reminds in the morning of its day
_YES = set(
    "yes|y|yeah|yea|yep|yup|sure|ok|okay|k|confirm|confirmed|do it|go ahead|please do|please|absolutely|"
    "of course|definitely|correct|right|proceed|go for it|sounds good|delete them|yes please".split("|")
)
_NO = set(
    "no|n|nope|nah|cancel|never mind|nevermind|stop|don't|dont|do not|abort|no thanks|not now|forget it|"
    "leave it|keep them|don't do it".split("|")
)
_LEVEL_SPELLINGS = {
    "high": "high top urgent important critical asap p1 1",
    "medium": "medium normal p2 2",
    "low": "low p3 3",
}
_LEVELS = {word: level for level, words in _LEVEL_SPELLINGS.items() for word in words.split()}
# Politeness and the words people start a correction with ('actually, …', 'oops, …') say nothing about the task.
_POLITE_RE = re.compile(
    r"(?i)^(?:(?:please|pls|plz|kindly|hey|hi|actually|oops|whoops|sorry|wait|ok(?:ay)?|hmm+|um+|uh+|ugh+|argh+|meh|"
    r"alright|oh|also|and|so|no,?\s+(?:i\s+meant|wait))\b[\s,:;-]*|(?:well|right),\s*"  # 'well water' is a title
    r"|(?:can|could|would|will) (?:you|u|ya)\s+(?:please\s+|pls\s+|plz\s+)?)+"
)
_THANKS_RE = re.compile(r"(?i)[\s,]*\b(?:please|pls|plz|thanks|thank you|thx|thanx|thnx|ty|cheers)\s*$")
_QUESTION_RE = re.compile(r"(?i)^(?:how|why|who|whose|what|what['’]?s|when|where|which|is|are|am|can|could|would|will|"
                          r"should|does|did|may|might)\b")  # fmt: skip
_REMIND_VERBS = (
    r"remind me(?:\s+(?:to|about|of|that)\b|(?!\s+\S+\s+\S+\s+(?:before|earlier|ahead|prior)))"
    r"|(?:add|set|create|make) (?:a |an )?reminder(?: to| for| about)?"
)
_ADD_VERBS = "|".join((
    r"(?:add|create|make|new|save)(?: a| an)?(?: new)? (?:task|todo|to-do|item)(?: to| for| called| named| titled)?",
    r"add(?: to my (?:list|tasks|to-?do list))?", r"(?:new )?(?:task|todo|to-do)", r"schedule",
    r"(?:i |we )?(?:need|have|got|want|ought) to", r"i['’]?ve got to|i must|i should|i gotta",
    r"(?:don['’]?t|do not) (?:let me )?forget(?: to| about)?", r"make sure (?:to|i)",
    r"(?:i |we )?(?:gotta|have got to|must)", r"remember to", r"(?:note|reminder|memo) to (?:self|me)",
))  # fmt: skip
# The verbs a to-do starts with: said alone with what follows ('buy eggs, milk and bread', 'call the plumber'),
# such a sentence is a task, as typed into a to-do app; 'take care', 'get well' or 'call you later' is talk.
_CHORE_VERBS = (
    "apply ask back bake book bring buy call change charge check clean clear collect confirm contact cook declutter "
    "draft email empty feed file fill fix follow get go grab hang help hire install invite iron learn mail make meet "
    "message mop mow order organise organize pack paint pay phone pick plan post practice practise prepare print rake "
    "read rebook register renew repair replace reply research reserve respond return review ring schedule send sign "
    "study submit sweep take text thank tidy unpack upload vacuum visit walk wash water wrap write"
)
_CHORE_RE = re.compile(
    rf"(?i)(?:{'|'.join(_CHORE_VERBS.split())})\s+(?!(?:you|u|ya|me|it|that|this|care|sense|well|lost|real)\b)\w"
)
_HAVE_A_RE = re.compile(
    r"(?i)^(?:i|we)(?:\s+(?:have|got)|['’]?ve\s+got|\s+have\s+got)\s+(?!to\b)(?:(?:an?|my|our)\s+)?"
)
# 'add milk to my shopping list', 'put oil change on the list': the list named is the task's tag, and only with it
# does 'put' or 'jot down' mean adding ('put the bins out' keeps its verb).
_LIST_PLACE_RE = re.compile(
    r"(?i)[\s,]*\b(?:to|on|onto|in|into)\s+(?:my|the|our)\s+(?:(?P<name>[\w-]+)\s+)?"
    r"(?:list|to-?dos?|tasks|task\s+list|to-?do\s+list)(?![\w-])"
)
_PUT_RE = re.compile(r"(?i)^\s*(?:put|stick|jot\s+down|write\s+down|pop)\s+")
_NOT_LIST_NAMES = {"todo", "to-do", "task", "tasks", "usual", "whole"}
_ADD_RE = re.compile(rf"(?i)^(?:(?P<remind>{_REMIND_VERBS})|{_ADD_VERBS})(?:\s*:|\s+|$)")
_QUOTED_RE = re.compile(r"\"([^\"\0]+)\"|“([^”\0]+)”|‘([^’\0]+)’|(?<!\w)'([^'\n\0]+)'(?!\w)")
_DESCRIPTION_RE = re.compile(
    r"(?i)[\s,;]*(?:\bwith\s+(?:a\s+|the\s+)?(?:notes?|description|details)\b\s*:?"
    r"|(?<![^\s,;\0])(?:notes?|description|details|desc)\s*:)\s*(?P<value>[^\0]*?)\s*$"
)
# A keyword is a whole word: one inside a hyphenated word ('alice-ping', 'x-urgent', 'p1-check') is the title's.
_START = r"(?<![\w-])"
_END = r"(?![\w-])"
_LEVEL_WORD = r"(?:high|medium|normal|low|top)"
_PRIORITY_RE = re.compile(
    rf"(?i)[\s,]*(?:\b(?:with|as|at|is|it['’]?s|it is|set to)\s+)?(?:\b(?:a|an)\s+)?(?:{_START}(?P<a>{_LEVEL_WORD})"
    rf"[\s-]*(?:priority|prio|pri){_END}|{_START}priority\s*[:=]?\s*(?P<b>{_LEVEL_WORD}|[123]){_END}"
    rf"|{_START}(?P<c>p[123]){_END})"
)
# Adjectives count only at an edge ('urgent: call bob', 'fix it asap'), so 'reply to urgent email' keeps its words.
_ADJECTIVE_RE = re.compile(
    rf"(?i)[\s,]*!*(?:\b(?:it['’]?s|it is|this is|that['’]?s|very|super|really|quite)\s+)*{_START}(?P<not>not\s+)?"
    rf"(?P<a>urgent|important|critical|asap){_END}(?=\s*(?:$|[\0,.;:!#@]|-(?!\w)))|{_START}(?P<b>asap){_END}"
)
_ANY_ADJECTIVE_RE = re.compile(rf"(?i){_START}(?P<not>not\s+)?(?P<a>urgent|important|critical){_END}")
_HASHTAG_RE = re.compile(r"(?<![\w&/])[#@](?P<tag>\w[\w-]*)")
_TAG_WORDS_RE = re.compile(
    r"(?i)[\s,]*(?:\band\s+)?(?:\b(?:tagged|labell?ed)\s+(?:(?:with|as)\s+)?|\b(?:tag|label)\s+(?:it|this)\s+"
    r"(?:(?:with|as)\s+)?|\bwith\s+(?:the\s+)?(?:tags?|labels?)\s*:?\s*|\b(?:tags?|labels?)\s*:\s*)"
    r"(?P<list>[\w-]+(?:\s*(?:,|\band\b|&)\s*[\w-]+)*)"
)
_LIST_SPLIT_RE = re.compile(r"(?i)\s*(?:,|\band\b|&)\s*")
_REMINDER_RE = re.compile(
    rf"(?i)[\s,;]*(?:\band\s+)?(?:\bwith\s+)?(?:\b(?:a|an)\s+)?{_START}(?:remind(?:er)?|alert|notify|ping)(?:\s+me)?\s+"
)
# How long before: '30 minutes', 'an hour', 'the day' ('the' first, or '\w+' would read it as a count).
_AHEAD = r"(?:the\s+(?P<the>day|week)|(?P<n>half an?|\w+)\s+(?P<unit>min(?:ute)?s?|m|hours?|hrs?|h|days?|weeks?))"
_OFFSET_RE = re.compile(rf"(?i){_AHEAD}\s+(?:before|earlier|ahead|prior|in advance)\b")
_UNIT_NAMES = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_EDGE_WORDS = r"(?:to|on|at|by|for|and|with|due|from|in|before|until|starting|also|then|that|is|are|it's|sometime)"
# A dash standing alone ('call mom - urgent') joins phrases; one inside a word ('e-mail') belongs to it.
_LEADING_RE = re.compile(
    rf"(?i)^(?:[\s,;:]+|[-–—](?=\s)|{_EDGE_WORDS}{_END}\s*|(?:an?\s+)?(?:new\s+)?(?:task|todo|to-do)\s*:)"
)
_TRAILING_RE = re.compile(rf"(?i)(?:[\s,;:]+|\s[-–—]|\s{_EDGE_WORDS})$")
_SHIELD = "\ue000"  # stands for a quoted character while the readers look for dates, tags and priorities


class _Draft:
    """The utterance being read: taken spans become NUL characters, so offsets stay put and date phrases break.

    Quoted passages can be shielded first: their characters become a private-use mark no reader takes, and come
    back as typed in `left()` and `original()`.
    """

    def __init__(self, text: str) -> None:
        self.text = self.rest = text

    def shield(self, pattern: re.Pattern[str]) -> int:
        """Hide every match of pattern from the readers; the number of matches."""
        matches = list(pattern.finditer(self.rest))
        for match in matches:
            start, end = match.span()
            self.rest = self.rest[:start] + _SHIELD * (end - start) + self.rest[end:]
        return len(matches)

    def original(self, start: int, end: int) -> str:
        """text[start:end] as typed, shielded characters included."""
        return self.text[start:end]

    def cut(self, start: int, end: int) -> None:
        """Mark text[start:end] as taken."""
        self.rest = self.rest[:start] + "\0" * (end - start) + self.rest[end:]

    def take(self, pattern: re.Pattern[str], accept: Callable[[re.Match[str]], bool] = bool) -> re.Match[str] | None:
        """The first match of pattern that `accept` likes, cut out of the text."""
        for match in pattern.finditer(self.rest):
            if match[0].strip(" ,\0") and accept(match):
                self.cut(*match.span())
                return match
        return None

    def left(self) -> str:
        """What nobody took, as typed, with the gaps closed."""
        kept = (typed if mark == _SHIELD else mark for mark, typed in zip(self.rest, self.text, strict=True))
        return " ".join("".join(kept).replace("\0", " ").split())


# ---------------------------------------------------------------- small readers shared by the command kinds


def _iso(value: date | datetime) -> str:
    """'YYYY-MM-DD' for a day, ISO 8601 with offset (to the second) for a moment."""
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else value.isoformat()


def _at(day: date, clock: time, zone: tzinfo | None) -> datetime:
    """Wall-clock `clock` on `day`; the UTC round trip moves a time inside a DST gap to a real one."""
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC).astimezone(zone)


def _clock_only(phrase: str) -> time | None:
    """The time of day when a date phrase names only a time ('at 5pm', 'noon'), else None."""
    words = phrase.lower().replace("\0", " ").split()
    while words and words[0] in ("due", "on", "for", "before"):  # 'at' and 'by' stay: they make 'at 5' a time
        words.pop(0)
    return parse_time_of_day(" ".join(words)) if words else None


def _unquoted(text: str) -> str:
    """Text without one pair of quotes around all of it."""
    return text[1:-1] if len(text) > 1 and _QUOTED_RE.fullmatch(text) else text


def _tidy(text: str) -> str:
    """Drop connectors and stray punctuation left at the edges once phrases were cut out."""
    text, previous = " ".join(text.split()), None
    while previous != text:
        previous, text = text, _TRAILING_RE.sub("", _LEADING_RE.sub("", text))
    return text


def _take_priority(draft: _Draft, *, edges_only: bool = True) -> str | None:
    """'high priority', 'priority: low', 'p1', 'urgent', "it's important", 'not urgent' -> a level."""
    if match := draft.take(_PRIORITY_RE):
        return _LEVELS[(match["a"] or match["b"] or match["c"]).lower()]
    if match := draft.take(_ADJECTIVE_RE if edges_only else _ANY_ADJECTIVE_RE):
        return "low" if match["not"] else "high"
    return None


def _take_tags(draft: _Draft) -> tuple[str, ...]:
    """'#work', '@home', 'tagged a and b', 'tag it with a, b' -> lower-case tags in order ('#42' is no tag)."""
    tags: list[str] = []
    while match := draft.take(_HASHTAG_RE, lambda m: not m["tag"].isdecimal()):
        tags.append(match["tag"].lower())
    while match := draft.take(_TAG_WORDS_RE):
        tags.extend(tag.lower() for tag in _LIST_SPLIT_RE.split(match["list"]) if tag)
    return tuple(dict.fromkeys(tags))


def _take_whens(draft: _Draft, now: datetime) -> tuple[date | datetime | None, time | None]:
    """Every date/time phrase left, merged: (the day or moment meant, the time of day if one was given alone)."""
    day: date | None = None
    clock: time | None = None
    moment: datetime | None = None
    while found := find_when(draft.rest, now=now):
        alone = _clock_only(draft.rest[found.start : found.end])
        draft.cut(found.start, found.end)
        if alone is not None and isinstance(found.value, datetime):
            clock, moment = clock or alone, moment or found.value
        elif isinstance(found.value, datetime):
            return found.value, None  # a full moment ('tomorrow at 5pm', 'in 2 hours') wins
        else:
            day = day or found.value
    if day is not None:
        return (day if clock is None else _at(day, clock, now.tzinfo)), clock
    return moment, clock


# ---------------------------------------------------------------- adding


@dataclass(frozen=True)
class _Reminder:
    """'remind me 1 hour before' (an offset from due) or 'with a reminder at 5pm' (a day or moment of its own)."""

    offset: timedelta | None = None
    when: date | datetime | None = None
    clock_only: bool = False  # 'at 5pm' goes on the due day


def _take_reminder(draft: _Draft, now: datetime) -> _Reminder | None:
    """A reminder phrase: an offset before the due time, or its own date/time."""
    for match in _REMINDER_RE.finditer(draft.rest):
        if (offset := _OFFSET_RE.match(draft.rest, match.end())) and (amount := _offset(offset)):
            draft.cut(match.start(), offset.end())
            return _Reminder(offset=amount)
        if hit := phrase_at(draft.rest, match.end(), now):
            alone = _clock_only(draft.rest[match.end() : hit[1]]) is not None
            draft.cut(match.start(), hit[1])
            return _Reminder(when=hit[0], clock_only=alone)
    return None


def _offset(match: re.Match[str]) -> timedelta | None:
    """'30 minutes', 'an hour', 'half an hour', 'the day' (before) as a timedelta."""
    count, unit = (match["n"] or "1").lower(), (match["unit"] or match["the"]).lower()
    amount = 0.5 if count.startswith("half") else 1 if count in ("a", "an") else number(count)
    return None if amount is None else timedelta(**{_UNIT_NAMES[unit[0]]: amount})


def _moment(value: date | datetime | None, zone: tzinfo | None) -> datetime | None:
    """A moment as it is; a day as the time its reminder goes off."""
    return _at(value, REMINDER_HOUR, zone) if value is not None and not isinstance(value, datetime) else value


def _remind_at(due: date | datetime | None, reminder: _Reminder | None, now: datetime) -> datetime | None:
    """The reminder moment, or None when nothing anchors it or it would already have passed."""
    if reminder is None:
        return None
    anchor, when = _moment(due, now.tzinfo), reminder.when
    if reminder.offset is not None:
        moment = None if anchor is None else (anchor.astimezone(UTC) - reminder.offset).astimezone(now.tzinfo)
    elif reminder.clock_only and anchor is not None and isinstance(when, datetime):
        moment = _at(anchor.date(), when.time(), now.tzinfo)
        if isinstance(due, datetime) and moment > due:  # 'at 9pm' for a 10am meeting means the evening before
            moment -= timedelta(days=1)
    else:
        moment = _moment(when, now.tzinfo)
    return moment if moment is not None and moment > now else None


def _series_start(repeat: Repeat, when: date | datetime | None, clock: time | None, now: datetime) -> date | datetime:
    """The first occurrence of a repetition: from its start day (or today), at the time said, never in the past."""
    start = repeat.start if repeat.start is not None else when
    day = start.date() if isinstance(start, datetime) else start
    clock = clock or repeat.clock or (start.time() if isinstance(start, datetime) else None)
    if clock is None:
        midnight = datetime.combine(day or now.date(), time(0))
        first = first_occurrence(repeat, midnight, datetime.combine(now.date(), time(0)))
        return (first or midnight).date()
    if isinstance(start, datetime) and start > now:
        dtstart = start.replace(tzinfo=None)  # 'every 3 days at 8am': the series begins at the next 8am
    else:
        dtstart = datetime.combine(day or now.date(), clock)
    first = first_occurrence(repeat, dtstart, now.replace(tzinfo=None, microsecond=0) + timedelta(seconds=1))
    while first and _at(first.date(), clock, now.tzinfo).time() != clock:
        first = first_occurrence(repeat, dtstart, first + timedelta(seconds=1))  # that day lost the hour to DST
    return _at((first or dtstart).date(), clock, now.tzinfo)


def _adding(text: str, now: datetime, *, allow_verbless: bool) -> AddTask | None:
    """A new task; without a verb it must carry a date, repetition, reminder, priority, tag, note or quote."""
    draft = _Draft(text)
    verb = draft.take(_ADD_RE)
    place = draft.take(_LIST_PLACE_RE)
    if place and verb is None and (put := _PUT_RE.match(draft.rest)):
        draft.cut(*put.span())
        verb = _ADD_RE.match("add")
    if verb is None and not allow_verbless:
        return None
    if verb is None:
        draft.take(_HAVE_A_RE)  # 'i have a dentist appointment friday' is the appointment; a date must still come
    quoted = draft.shield(_QUOTED_RE)
    description = draft.take(_DESCRIPTION_RE)
    repeat = find_repeat(draft.rest, now=now)
    for span in repeat.spans if repeat else ():
        draft.cut(*span)
    reminder = _take_reminder(draft, now)
    if reminder is None and verb and verb["remind"] and (ahead := draft.take(_OFFSET_RE)):
        reminder = _Reminder(offset=_offset(ahead))  # 'remind me about the meeting at 3pm an hour before'
    when, clock = _take_whens(draft, now)
    priority = _take_priority(draft)
    tags = _take_tags(draft)
    if place and place["name"] and place["name"].lower() not in _NOT_LIST_NAMES:
        tags = tuple(dict.fromkeys((*tags, place["name"].lower())))
    title = _unquoted(_tidy(draft.left()))  # quotes around the whole title only protect it
    said_more = quoted or any(found is not None for found in (description, repeat, reminder, when, priority, place))
    said_more = said_more or tags or (allow_verbless and _CHORE_RE.match(text))
    if not title or not (verb or said_more):
        return None
    due = _series_start(repeat, when, clock, now) if repeat else when
    if verb and verb["remind"] and reminder is None:
        reminder = _Reminder(when=due)
    remind_at = _remind_at(due, reminder, now)
    return AddTask(
        title=title,
        description=_unquoted(draft.original(*description.span("value"))) or None if description else None,
        priority=priority or "medium",
        tags=tags,
        due=None if due is None else _iso(due),
        recurrence=rrule_text(repeat) if repeat else None,
        remind_at=None if remind_at is None else _iso(remind_at),
    )


# ---------------------------------------------------------------- listing

_LIST_VERB_RE = re.compile(
    r"(?i)^(?:(?:show|list|display|view|see|pull up|bring up|order|sort|arrange|organi[sz]e)(?:\s+me)?"
    r"|(?P<search>search(?:\s+for)?|find(?:\s+me)?|look\s+(?:for|up)|lookup))\b"
)
_LIST_QUESTION_RE = re.compile(
    r"(?i)^(?:what(?:['’]?s| is| are| do i have| have i got| else| remains)?|which|any|anything|do i have|are there"
    r"|how(?:['’]?s| is| does)"
    r"|is there|how many|tell me|give me)\b"
)
_LIST_NOUN_RE = re.compile(
    r"(?i)^(?:(?:my|all|the|any|(?:high|medium|low|top)[\s-]+priority|urgent|important|completed|done|finished"
    r"|open|pending|overdue|today|tomorrow|[#@][\w-]+)\s+)*(?:tasks|todos|to-?dos)\b"
)
_TASK_CONTEXT_RE = re.compile(
    r"(?i)\b(?:tasks?|todos?|to-?dos?|to do|list|due|overdue|late|agenda|plate|pending|left|remaining|scheduled"
    r"|planned|plan|complete|completed|finish|finished|done|open|tagged|priority|prio|urgent|coming up|do i have"
    r"|have i got"
    r"|i (?:should|need to|have to) do|should i do|what do i have)\b|[#@]\w"
    r"|\b(?:what(?:['’]?s|\s+is)|anything)\s+on\b"  # "what's on tomorrow?", 'anything on this weekend'
    r"|\blook(?:s|ing)?\b"  # 'what does my week look like', "how's tomorrow looking"
)
_STATUSES = (
    (re.compile(r"(?i)\b(?:including|with|and|plus)\s+(?:the\s+)?(?:completed|done|finished)(?:\s+ones)?\b"), "all"),
    (re.compile(r"(?i)\b(?:completed|complete|finished|closed|checked off|(?<!get )(?<!be )done)\b"), "completed"),
    (re.compile(r"(?i)\b(?:open|pending|incomplete|unfinished|outstanding|not done|active)\b"
                r"|(?<![\w-])(?:left|remaining)(?![\w-])"), "open"),
)
_OVERDUE_RE = re.compile(r"(?i)\b(?:overdue|late|past due|missed)\b")
_DAY_POSSESSIVE_RE = re.compile(r"(?i)\b(today|tonight|tomorrow|yesterday)['’]s\b")
_RANGE_RE = re.compile(
    r"(?i)\b(?P<which>this|next|the coming)\s+(?P<unit>week|month|weekend)\b"
    r"|\b(?:in\s+)?(?:the\s+)?next\s+(?P<n>\w+)\s+days\b"
)
_WHEN_IS_RE = re.compile(
    r"(?i)(?:when(?:['’]?s|\s+is|\s+was|\s+do\s+i\s+have(?:\s+to)?)|what\s+(?:day|time|date)\s+is)\s+"
    r"(?P<name>.+?)(?:\s+(?:due|happening|scheduled|set\s+for|again))?"
)
# 'is the report done?', 'did i finish the slides': asked, not told; the task found answers with its state.
_STATE_QUESTION_RE = re.compile(
    r"(?i)(?:is|are|was|were|has|have)\s+(?P<name>.+?)\s+(?:been\s+|already\s+|all\s+)?"
    r"(?:done|finished|complete[d]?|sorted)(?:\s+yet)?"
    r"|(?:did|have|had)\s+(?:i|we)\s+(?:already\s+)?(?:do|done|finish(?:ed)?|complete[d]?)\s+(?P<asked>.+?)(?:\s+yet)?"
)
_ASKING_RE = re.compile(r"(?i)^(?:is|are|was|were|has)\b|^(?:did|do|have|had)\s+(?:i|we|you)\b")
_AFTER_RE = re.compile(r"(?i)\b(?:after|since|from)\s*$")
_QUERY_RE = re.compile(
    r"(?i)\b(?:about|regarding|containing|mentioning|matching|related to|called|named|titled|that mention"
    r"|with the words?|with)\s+(?P<query>[^\0]*[^\s\0])"
)
_FILLERS = set(
    "task tasks todo todos to-dos items my all the for me any anything everything that in title due of list "
    "on i have is are there".split()
)
_NEXT_RE = re.compile(
    r"(?i)(?:when(?:['’]?s|\s+is)|what(?:['’]?s|\s+is))\s+(?:my\s+|the\s+)?(?:next|up\s+next|upcoming)"
    r"(?:\s+(?:task|thing|to-?do|one|due|up|on\s+my\s+list))?"
)
_NOT_NAMES = _FILLERS | {"next", "first", "last", "it", "that"}  # 'when is my next task' asks for a list
# One word before 'tasks' or 'list' that no reader took names the list they keep ('my work tasks', 'my shopping
# list', as 'add milk to my shopping list' tags it), unless it is one of these.
_LIST_TAG_RE = re.compile(r"(?i)(?<![\w#@-])(?P<tag>[a-z][\w-]*)\s+(?:tasks|todos|to-?dos|items|stuff|list)\b")
_NOT_TAGS = {*_FILLERS, *_NOT_LIST_NAMES, *"new recent other remaining upcoming current latest old these those".split()}
_NOT_TAGS |= set("some few more every each your our next last first what which whose how many".split())


def _window(match: re.Match[str], today: date) -> tuple[date, date]:
    """First and last day of 'this week' (today and the six days after), 'next week', 'this month', 'next 3 days'."""
    if match["n"]:
        return today, today + timedelta(days=number(match["n"]) or 7)
    unit, upcoming = match["unit"].lower(), match["which"].lower() == "next"
    if unit == "week":
        monday = today + timedelta(days=7 - today.weekday())  # the Monday of the next ISO week, as dates.py reads it
        return (monday, monday + timedelta(days=6)) if upcoming else (today, today + timedelta(days=6))
    if unit == "weekend":
        saturday = today + timedelta(days=(5 - today.weekday()) % 7 + 7 * upcoming)  # as dates.py reads 'weekend'
        return saturday, saturday + timedelta(days=1)
    if upcoming:
        return today + relativedelta(months=1, day=1), today + relativedelta(months=1, day=31)
    return today, today + relativedelta(day=31)


def _take_due_window(draft: _Draft, now: datetime) -> dict:
    """'due today', 'this week', 'before friday', 'after dec 1' -> due_after / due_before days."""
    if match := draft.take(_RANGE_RE, lambda m: not m["n"] or number(m["n"]) is not None):
        first, last = _window(match, now.date())
        return {"due_after": first.isoformat(), "due_before": last.isoformat()}
    if (found := find_when(draft.rest, now=now)) is None:
        return {}
    day = (found.value.date() if isinstance(found.value, datetime) else found.value).isoformat()
    before = draft.rest[found.start : found.end].lower().removeprefix("due").split()[0] in ("by", "before")
    after = _AFTER_RE.search(draft.rest[: found.start])
    draft.cut(after.start() if after else found.start, found.end)
    return {"due_before": day} if before else {"due_after": day} if after else {"due_after": day, "due_before": day}


def _take_filters(draft: _Draft, now: datetime) -> dict:
    """The list_tasks filters said: tags, priority, overdue, status, due days, and the list named before 'tasks'."""
    filters: dict = {}
    if tags := _take_tags(draft):
        filters["tags"] = list(tags)
    if priority := _take_priority(draft, edges_only=False):
        filters["priority"] = priority
    if draft.take(_OVERDUE_RE):
        filters["overdue"] = True
    if status := next((status for pattern, status in _STATUSES if draft.take(pattern)), None):
        filters["status"] = status
    filters.update(_take_due_window(draft, now))
    if "tags" not in filters and (named := draft.take(_LIST_TAG_RE, lambda m: m["tag"].lower() not in _NOT_TAGS)):
        filters["tags"] = [named["tag"].lower()]
    return filters


def _unfilled(draft: _Draft) -> str:
    """The words left after a search verb, without filler such as 'tasks', 'my', 'for'."""
    return " ".join(word for word in re.findall(r"[^\s\0,?]+", draft.rest) if word.lower() not in _FILLERS)


_SORT_RE = re.compile(
    r"(?i)\b(?:(?:order(?:ed)?|sort(?:ed)?|arrange[d]?)\s+(?:\w+\s+){0,3}?)?(?:by|in)\s+(?:the\s+)?(?P<key>due\s+dates?|due"
    r"|deadlines?|dates?|priority|importance|urgency|titles?|names?|alphabetical(?:\s+order)?|creation(?:\s+date)?"
    r"|(?:date\s+)?(?:created|added))(?:\s+order)?\b|\b(?P<alpha>alphabetically|a\s*-\s*z)\b"
    r"|\b(?P<recent>newest|latest|most\s+recent|oldest)(?:\s+(?:ones?|tasks?))?\s+first\b"
)
_SORT_KEYS = {"due": "due", "dea": "due", "dat": "due", "pri": "priority", "imp": "priority", "urg": "priority",
              "tit": "title", "nam": "title", "alp": "title", "cre": "created", "add": "created"}  # fmt: skip
_ORDER_WORDS_RE = re.compile(r"(?i)\b(?:my\s+)?(?:list|tasks|to-?dos?)\b|\b(?:order|sort|arrange)\b")
_COUNT_RE = re.compile(r"(?i)^how\s+many\b|\bcount\b|\bnumber\s+of\b")
_DONE_QUESTION_RE = re.compile(
    r"(?i)\b(?:did|have|had)\s+i\s+(?:\w+\s+)?(?:complete|completed|finish|finished|do|done|check(?:ed)?\s+off)\b"
    r"|\bi\s+(?:completed|finished|did|got\s+done)\b|\b(?:completed|finished|done)\s+(?:this|last|today|yesterday)\b"
)
_LAST_WEEK_RE = re.compile(r"(?i)\b(?:this|last|past)\s+(?P<unit>week|month)\b|\b(?P<day>today|yesterday)\b")


def _take_sort(draft: _Draft) -> dict:
    """'order my list by due date', 'sorted by priority', 'alphabetically', 'newest first' -> sort_by and order."""
    if (match := draft.take(_SORT_RE)) is None:
        return {}
    if match["recent"]:
        return {"sort_by": "created", "order": "asc" if match["recent"].lower() == "oldest" else "desc"}
    key = (match["key"] or "alphabetical").lower()
    return {"sort_by": "due" if key.startswith("due") else _SORT_KEYS[key[:3]]}


def _completed_window(text: str, today: date) -> tuple[str, str] | None:
    """The days a question about finished work looks back over: this week is Monday to today, last week the one
    before; today, yesterday, this month."""
    if not _DONE_QUESTION_RE.search(text) or (match := _LAST_WEEK_RE.search(text)) is None:
        return None
    if match["day"]:
        day = today - timedelta(days=match["day"].lower() == "yesterday")
        return day.isoformat(), day.isoformat()
    past = match[0].lower().startswith("last")
    if match["unit"].lower() == "week":
        monday = today - timedelta(days=today.weekday() + 7 * past)
        return monday.isoformat(), (monday + timedelta(days=6) if past else today).isoformat()
    first = today.replace(day=1) - relativedelta(months=past)
    return first.isoformat(), (first + relativedelta(day=31) if past else today).isoformat()


def _finished(days: tuple[str, str], arguments: dict) -> ListTasks:
    """The tasks completed within those days (the agent filters a page of completed tasks by when)."""
    return ListTasks({**arguments, "status": "completed", "sort_by": "created", "limit": 200}, False, days)


def _listing(text: str, now: datetime) -> ListTasks | None:
    """'show my high priority tasks', "what's due today?", 'find tasks about lisbon', 'tasks tagged work'."""
    if _NEXT_RE.fullmatch(text):
        return ListTasks({"status": "open", "sort_by": "due", "limit": 1}, next_only=True)
    if (asked := _WHEN_IS_RE.fullmatch(text)) and (name := _name(asked["name"])).lower() not in _NOT_NAMES:
        return ListTasks({"query": name})  # the task found answers with its date
    if _ASKING_RE.match(text) and (completed := _completed_window(text, now.date())):
        return _finished(completed, {})  # 'did i finish anything today?'
    if (asked := _STATE_QUESTION_RE.fullmatch(text)) and not find_when(asked["name"] or asked["asked"], now=now):
        name = _name(asked["name"] or asked["asked"])
        return None if name.lower() in _NOT_NAMES else ListTasks({"query": name, "status": "all"})
    text = _DAY_POSSESSIVE_RE.sub(r"\1", text)  # "today's tasks" are those due today
    text = re.sub(r"(?i)\bmy\s+(?=(?:week|month|weekend)\b)", "this ", text)  # 'what does my week look like'
    verb = _LIST_VERB_RE.match(text)
    head = verb or _LIST_NOUN_RE.match(text) or _LIST_QUESTION_RE.match(text)
    if head is None or head.re is _LIST_QUESTION_RE and not _TASK_CONTEXT_RE.search(text):
        return None
    draft = _Draft(text)
    if head.re is not _LIST_NOUN_RE:  # a noun phrase keeps its words: they are the filters
        draft.cut(*head.span())
    arguments: dict = _take_sort(draft)
    if completed := _completed_window(text, now.date()):
        return _finished(completed, arguments)
    arguments.update(_take_filters(draft, now))
    if query := draft.take(_QUERY_RE):
        arguments["query"] = query["query"]
    elif verb and verb["search"] and (words := _unfilled(draft)):
        arguments["query"] = words  # 'search for dentist': what is left is what to find
    if counting := _COUNT_RE.search(text) is not None:
        arguments["limit"] = 200  # count a whole page, not the default one
    return ListTasks(arguments, count_only=counting)


# ---------------------------------------------------------------- moving many tasks

_MOVE_ALL_RE = re.compile(
    r"(?i)^(?:move|push|shift|reschedule|postpone|bump|defer|carry|roll)(?:\s+(?:back|forward|over|out))?\s+"
    r"(?P<which>[^\0]+?)\s+(?:to|till|until|for|onto)\s+(?P<to>[^\0]+)"
)
_COLLECTIVE_RE = re.compile(
    r"(?i)\b(?:all|everything|every\s+(?:task|to-?do|thing)|the\s+rest|tasks|todos|to-?dos|things|stuff)\b"
)
_MOVE_FILLERS = {"every", "rest", "thing", "things", "stuff", "of"}
_WEEKDAY_POSSESSIVE_RE = re.compile(r"(?i)\b((?:mon|tues|wednes|thurs|fri|satur|sun)day)['’]s\b")


def _moving(text: str, now: datetime) -> MoveTasks | None:
    """'move all tasks due today to tomorrow', "push friday's tasks to monday", 'postpone everything to next week';
    without a day or other filter, 'everything' is what is due by today (what the person has to get through)."""
    match = _MOVE_ALL_RE.fullmatch(text)
    if match is None or not _COLLECTIVE_RE.search(match["which"]):
        return None
    try:
        target = parse_when(match["to"], now=now)
    except WhenError:
        return None
    which = _WEEKDAY_POSSESSIVE_RE.sub(r"\1", _DAY_POSSESSIVE_RE.sub(r"\1", match["which"]))
    draft = _Draft(re.sub(r"(?i)\bfrom\s+", "on ", which))  # tasks 'from friday' are those due that day
    selection = _take_filters(draft, now)
    selection.pop("status", None)  # only open tasks move
    if any(word.lower() not in _MOVE_FILLERS for word in _unfilled(draft).split()):
        return None  # words no filter read: 'move the tasks for the party' names tasks another way
    # 'the tax stuff' may be the task about tax rather than the tasks tagged tax; 'my work tasks' are those
    vague = list(selection) == ["tags"] and re.search(r"(?i)\b(?:stuff|things?)\b", match["which"])
    otherwise = _changing(text, now) if vague else None
    return MoveTasks(selection or {"due_before": now.date().isoformat()}, _iso(target), otherwise)


# ---------------------------------------------------------------- changing a named task

_Handler = Callable[[re.Match[str], datetime], ChangeTask | None]
_NAME = r"(?:the\s+task\s+|task\s+|my\s+)?(?!an?\s+reminder\b)(?P<name>.+?)"  # 'set a reminder …' adds a task
_DONE = r"(?:done|complete[d]?|finished|sorted|taken\s+care\s+of|dealt\s+with|handled)"
_LEVEL_PHRASE = r"(?P<value>(?:an?\s+)?(?:high|medium|normal|low|top)(?:[\s-]*priority)?|urgent|important|p[123])"
_NAME_CONNECTOR_RE = re.compile(
    r"(?i)(?:'s)?(?:\s+(?:back|forward|out|over|off)|\s+(?:due\s+)?(?:date|deadline|time))?\s+(?:to|for|until|till|on|due)$"
)


# 'it', 'that one', 'the last one' name the task the conversation last touched; the agent knows which.
PREVIOUS = "it"
_PRONOUN_RE = re.compile(
    r"(?i)(?:it|that|this|(?:that|this|the\s+(?:last|latest|same|previous))\s+(?:one|task|thing|item|to-?do))"
)
_PRONOUN_STATE = r"(?P<name>it|that|this)(?:['’]?s|\s+is|\s+has\s+been|\s+was)"  # "that's done", "it's not done"
_NAME_FILLER_RE = re.compile(
    r"(?i)^(?:(?:the|my|that|this|our)\s+)*(?:task\s+|to-?do\s+)?|(?:\s+(?:thing|task|one|item|to-?do|stuff|already"
    r"|now|today|for me|from my list|off my list))+$"
)


def _name(text: str) -> str:
    """The task's name as said, without filler ('the gym thing', 'the visa task') or quotes around it; PREVIOUS
    for 'it', 'that one', 'the last one'."""
    if _PRONOUN_RE.fullmatch(text.strip()):
        return PREVIOUS
    return _unquoted(_NAME_FILLER_RE.sub("", text.strip())).strip() or text.strip()


def _act(action: str) -> _Handler:
    """A handler for actions that need only the name."""
    return lambda match, _now: ChangeTask(action, _name(match["name"]))


def _complete_unless_dated(match: re.Match[str], now: datetime) -> ChangeTask | None:
    """'complete the report' closes a task, but 'complete the tax form by friday' is a new one."""
    return None if find_when(match["name"], now=now) else ChangeTask("complete", _name(match["name"]))


def _update(changes: Callable[[str], dict | None]) -> _Handler:
    """A handler for updates: `changes` reads the new values from the value group, None when they do not fit."""

    def handle(match: re.Match[str], _now: datetime) -> ChangeTask | None:
        found = changes(match["value"])
        return ChangeTask("update", _name(match["name"]), found) if found else None

    return handle


def _priority_change(value: str) -> dict | None:
    """{'priority': level} when the whole value is a priority ('high', 'p1', 'low priority')."""
    draft = _Draft(value.strip())
    level = _LEVELS.get(value.strip().lower()) or _take_priority(draft, edges_only=False)
    return {"priority": level} if level and (value.strip().lower() in _LEVELS or not _tidy(draft.left())) else None


def _tag_change(value: str) -> dict:
    """{'add_tags': [...]} from 'travel', '#a and #b', 'a, b & c'."""
    return {"add_tags": [word.lower().lstrip("#@") for part in _LIST_SPLIT_RE.split(value) for word in part.split()]}


def _due_change(*, strict: bool) -> _Handler:
    """'move X to monday' -> due, 'push X to 2pm' -> due_time (the day stays); the date ends the sentence.

    Strict verbs ('set', 'make') need 'due' or 'to' before the date, so 'make dinner reservations for friday' is
    left for adding.
    """

    def handle(match: re.Match[str], now: datetime) -> ChangeTask | None:
        for head, tail in _splits(match["rest"]):
            changes = _new_due(tail, now)
            if changes and head and (
                not strict or re.match(r"(?i)due\b", tail) or re.search(r"(?i)\s(?:to|due)$", f" {head}")
            ):
                return ChangeTask("update", _name(_NAME_CONNECTOR_RE.sub("", head)), changes)
        return None

    return handle


def _splits(rest: str) -> list[tuple[str, str]]:
    """Every way to cut the words in two, the shortest head first: where the name ends and the date begins."""
    return [(rest[: word.start()].strip(), rest[word.start() :]) for word in re.finditer(r"\S+", rest)]


def _remind_change(match: re.Match[str], now: datetime) -> ChangeTask | None:
    """'remind me about the dentist tomorrow at 9': a reminder at that moment (a day reminds in the morning)."""
    for head, tail in _splits(match["rest"]):
        try:
            value = parse_when(tail, now=now)
        except WhenError:
            continue
        moment = _moment(value, now.tzinfo)
        return ChangeTask("update", _name(head), {"remind_at": _iso(moment)}) if head and moment else None
    return None


def _or_new(handler: _Handler) -> _Handler:
    """A sentence that changes the task it names, or adds the task it describes when none has that name
    ('the report is urgent', 'put the bins out on thursday'); one saying more than a change can (a repetition,
    a note) adds."""

    def handle(match: re.Match[str], now: datetime) -> ChangeTask | None:
        if (change := handler(match, now)) is None or _LIST_PLACE_RE.search(match.string):
            return None  # 'put oil change on the list for friday' adds to a list
        added = _adding(match.string, now, allow_verbless=True)
        return None if added and (added.recurrence or added.description) else replace(change, otherwise=added)

    return handle


def _statement(handler: _Handler) -> _Handler:
    """'the report is urgent', 'the dentist is on friday': a change told about the task named first, or the task
    it adds; a sentence that begins by adding ('i need to finish the report by friday, it's urgent') or names a day
    before the change is a new task."""
    update = _or_new(handler)

    def handle(match: re.Match[str], now: datetime) -> ChangeTask | None:
        name = match["name"]
        return None if _ADD_RE.match(name) or find_when(name, now=now) else update(match, now)

    return handle


def _stated_priority(value: str) -> dict | None:
    """'urgent', 'not important', 'low priority', 'a priority', 'my top priority' -> {'priority': level}."""
    if re.match(r"(?i)not\b", value):
        return {"priority": "low"}
    return _priority_change(value) or ({"priority": "high"} if value.lower().endswith("priority") else None)


def _untag(match: re.Match[str], _now: datetime) -> ChangeTask:
    """'untag X', 'clear the tags on X', 'remove the work tag' (from the task last touched): tags taken off."""
    said = match.groupdict()
    name = _name(said["name"]) if said.get("name") else PREVIOUS
    if said.get("value"):
        return ChangeTask("update", name, {"remove_tags": _tag_change(said["value"])["add_tags"]})
    return ChangeTask("update", name, {"tags": []})


_DID_I_RE = re.compile(
    r"(?i)(?:did|have|had)\s+(?:i|we)\s+(?:already\s+|ever\s+|actually\s+)?(?P<verb>[a-z]+)\s+(?P<name>.+?)"
    r"(?:\s+(?:yet|already|today))?"
)
_IS_DONE_RE = re.compile(
    r"(?i)(?:is|are|was|were|has|have)\s+(?P<name>.+?)\s+(?:been\s+|already\s+|all\s+)?(?P<verb>[a-z]+)"
    r"(?:\s+(?:yet|already))?"
)
_NOT_ASKED = {"have", "get", "need", "want", "add", "forget", "say", "tell", "ask", "mean"}


def _asked_state(text: str) -> ChangeTask | None:
    """'did i pay the rent?', 'is the rent paid?', 'have i booked the flights': whether a task is done, asked;
    the task is named by its verb and object, as 'just paid the rent' names it."""
    if match := _DID_I_RE.fullmatch(text):
        verb = _base_verb(match["verb"]) or match["verb"].lower()
    elif match := _IS_DONE_RE.fullmatch(text):
        verb = _base_verb(match["verb"])
    else:
        return None
    if verb is None or verb in _NOT_ASKED or _PRONOUN_RE.fullmatch(match["name"]):
        return None
    return ChangeTask("ask", _name(f"{verb} {_NAME_FILLER_RE.sub('', match['name'])}"))


def _new_due(phrase: str, now: datetime) -> dict | None:
    """{'due': day or moment} for a date phrase, {'due_time': 'HH:MM'} for a time alone (the day stays); None."""
    try:
        value = parse_when(phrase, now=now)
    except WhenError:
        return None
    clock = _clock_only(phrase)
    return {"due_time": f"{clock:%H:%M}"} if clock else {"due": _iso(value)}


def _moved(match: re.Match[str], now: datetime) -> ChangeTask | None:
    """'the dentist is moved to dec 12', 'yoga is now at 6pm': the name comes first, the new date last."""
    changes = _new_due(match["when"], now)
    return ChangeTask("update", _name(match["name"]), changes) if changes else None


def _done_after_name(match: re.Match[str], _now: datetime) -> ChangeTask | None:
    """'dentist done', 'laundry all finished' close a task; 'add get it done' and longer sentences are not this."""
    name = match["name"]
    if _ADD_RE.match(name) or len(name.split()) > 5:
        return None
    return ChangeTask("complete", _name(name))


_IRREGULAR_PAST = dict(
    pair.split(":")
    for pair in "paid:pay bought:buy sent:send wrote:write made:make took:take went:go got:get did:do gave:give "
    "met:meet ran:run told:tell found:find brought:bring sold:sell fed:feed drove:drive swept:sweep hung:hang "
    "taught:teach caught:catch built:build spent:spend won:win sang:sing flew:fly".split()
)
# Past tenses that do not say a task is done: 'i wanted to call mom', 'i missed the bus', 'i forgot the keys'.
_NOT_DONE = {"used", "needed", "wanted", "forgot", "missed", "failed", "started", "tried", "meant", "hoped", "planned",
             "decided", "added", "moved", "changed", "asked"}  # fmt: skip


def _base_verb(past: str) -> str | None:
    """'booked' -> 'book', 'emptied' -> 'empty', 'submitted' -> 'submit', 'paid' -> 'pay'; None if not a past tense.
    A stem missing its final 'e' ('updat') still finds 'update the doc': titles are matched by spelling distance."""
    past = past.lower()
    if past in _IRREGULAR_PAST:
        return _IRREGULAR_PAST[past]
    if past in _NOT_DONE or not past.endswith("ed") or len(past) < 5:
        return None
    if past.endswith("ied"):
        return past[:-3] + "y"
    stem = past[:-2]
    return stem[:-1] if stem[-1] == stem[-2] and stem[-1] not in "lsfz" else stem


def _done_in_past(match: re.Match[str], _now: datetime) -> ChangeTask | None:
    """'i already booked the flights', 'just paid the rent': a task told as done, named by its verb in the past."""
    verb, name = _base_verb(match["verb"]), match["name"]
    if verb is None or re.match(r"(?i)(?:that|it|so|a|an)\b", name) or _ADD_RE.match(name):
        return None
    if verb != "go" and re.match(r"(?i)to\b", name):
        return None  # 'i wanted to', 'i used to'; but 'i went to the gym' is 'go to the gym' done
    return ChangeTask("complete", _name(f"{verb} {name}"))


_AMOUNT = (
    r"(?P<n>an?(?:\s+couple(?:\s+of)?)?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|\d{1,3})\s+"
    r"(?P<unit>days?|weeks?|months?|fortnights?)"
)
_STEPS = {"less": -1, "lower": -1, "more": 1, "higher": 1}


def _shift(sign: int) -> _Handler:
    """'move X forward by two days', 'delay X by a month' -> a shift of the due day, made concrete by the agent."""

    def handle(match: re.Match[str], _now: datetime) -> ChangeTask | None:
        said = match["n"].lower()
        amount = 2 if "couple" in said else 1 if said in ("a", "an") else number(said)
        unit = match["unit"].lower().removesuffix("s") + "s"
        if amount is not None and unit == "fortnights":
            amount, unit = 2 * amount, "weeks"
        return None if amount is None else ChangeTask("update", _name(match["name"]), {"shift": {unit: sign * amount}})

    return handle


def _step(match: re.Match[str], _now: datetime) -> ChangeTask:
    """'make X less important' -> one priority level down; 'more urgent' -> one up."""
    return ChangeTask("update", _name(match["name"]), {"priority_step": _STEPS[match["value"].lower()]})


def _new_schedule(match: re.Match[str], now: datetime) -> ChangeTask | None:
    """'change water the plants to every 2 days', 'make standup repeat weekly': the whole value is a repetition."""
    value = match["value"].strip()
    repeat = find_repeat(value, now=now)
    if repeat is None or any(value[:start].strip() or value[end:].strip() for start, end in repeat.spans[:1]):
        return None
    return ChangeTask("update", _name(match["name"]), {"recurrence": rrule_text(repeat)})


def _remind_before(match: re.Match[str], now: datetime) -> ChangeTask | None:
    """'remind me 30 min before the dentist': a reminder ahead of a task's own due time; with a date of its own
    ('… before the meeting at 3pm tomorrow') it is a new task instead."""
    amount = _offset(match)
    if amount is None or find_when(match["name"], now=now):
        return None
    return ChangeTask("update", _name(match["name"]), {"remind_before": int(amount.total_seconds())})


def _undate(match: re.Match[str], _now: datetime) -> ChangeTask:
    """'clear the date on X': the task keeps everything but its due date."""
    return ChangeTask("update", _name(match["name"]), {"due": ""})


_CHANGES: list[tuple[str, _Handler]] = [
    (rf"(?:remind|alert|notify|ping)\s+me\s+{_AHEAD}\s+(?:before|ahead\s+of|prior\s+to)\s+{_NAME}", _remind_before),
    (rf"(?:(?:remind|alert|notify|ping)\s+me|(?:set|add)\s+an?\s+(?:reminder|alert))\s+(?:about|of|for|re)\s+{_NAME}\s+"
     rf"{_AHEAD}\s+(?:before(?:hand)?|earlier|ahead|early|in\s+advance|prior)", _remind_before),
    (r"(?:remind|alert|notify|ping)\s+me\s+(?:about|of|re|regarding)\s+(?P<rest>.+)", _or_new(_remind_change)),
    (rf"(?:delay|postpone|defer|push\s+back|push\s+out|put\s+off)\s+{_NAME}\s+(?:by\s+|for\s+)?{_AMOUNT}",
     _shift(1)),
    (rf"(?:move|push|shift|bump|reschedule)\s+{_NAME}\s+(?:forward|back|out|later|ahead)?\s*(?:by\s+)?{_AMOUNT}"
     r"(?:\s+later)?", _shift(1)),
    (rf"(?:move|bring|pull)\s+{_NAME}\s+(?:earlier|up|in)\s+(?:by\s+)?{_AMOUNT}", _shift(-1)),
    (rf"(?:move|bring|pull)\s+{_NAME}\s+(?:by\s+)?{_AMOUNT}\s+earlier", _shift(-1)),
    (rf"(?:make|mark|set)\s+{_NAME}\s+(?P<value>less|more)\s+(?:important|urgent|of\s+a\s+priority|pressing)", _step),
    (rf"(?P<value>lower|higher)\s+(?:the\s+)?priority\s+(?:of|for|on)\s+{_NAME}\s+by\s+one", _step),
    (rf"(?:clear|remove|delete|drop|unset|take\s+off|get\s+rid\s+of)\s+(?:the\s+)?(?:due\s+)?(?:date|deadline)\s+"
     rf"(?:on|of|for|from)\s+{_NAME}", _undate),
    (rf"(?:make|set)\s+{_NAME}\s+(?:undated|without\s+a\s+(?:due\s+)?date)", _undate),
    (rf"(?:untag|unlabel)\s+{_NAME}\s+(?:from|as)\s+(?P<value>.+)",
     _update(lambda value: {"remove_tags": _tag_change(value)["add_tags"]})),
    (rf"(?:remove|delete|drop|take\s+off)\s+(?:the\s+)?(?:tags?|labels?)\s+(?P<value>[#@\w][\w\s,&#@-]*?)\s+(?:from|on)\s+"
     rf"{_NAME}", _update(lambda value: {"remove_tags": _tag_change(value)["add_tags"]})),
    (rf"(?:remove|delete|drop|take\s+off)\s+(?:the\s+)?(?P<value>[#@]?[\w-]+)\s+(?:tag|label)\s+(?:from|on)\s+{_NAME}",
     _update(lambda value: {"remove_tags": _tag_change(value)["add_tags"]})),
    (rf"(?:untag|unlabel)\s+{_NAME}", _untag),
    (rf"(?:remove|delete|drop|clear|take\s+off)\s+(?:all\s+)?(?:the\s+|its\s+)?(?:tags|labels)(?:\s+(?:from|on|of)\s+{_NAME})?",
     _untag),
    (r"(?:remove|delete|drop|take\s+off)\s+(?:the\s+)?(?:tags?|labels?)\s+(?P<value>[#@]?[\w-]+(?:(?:\s*,\s*|\s+and\s+)"
     r"[#@]?[\w-]+)*)", _untag),
    (r"(?:remove|delete|drop|take\s+off)\s+(?:the\s+)?(?P<value>[#@]?[\w-]+)\s+(?:tag|label)", _untag),
    (rf"(?:add|attach|put|leave|write)\s+(?:a\s+)?(?:note|description|comment)\s+(?:to|on)\s+{_NAME}\s*"
     r"(?:saying|that says|reading|:)\s*(?P<value>.+)", _update(lambda value: {"description": _unquoted(value)})),
    (rf"(?:mark|set|flag)\s+{_NAME}\s+(?:as\s+)?(?:not\s+{_DONE}|undone|incomplete|unfinished|open|pending|to\s*do)",
     _act("reopen")),
    (rf"(?:re-?open|un-?check|un-?mark|un-?complete|undo|restore|reactivate)\s+{_NAME}", _act("reopen")),
    (rf"{_NAME}\s+is(?:n['’]?t|\s+not)\s+{_DONE}(?:\s+yet)?", _act("reopen")),
    (rf"{_PRONOUN_STATE}\s+not\s+{_DONE}(?:\s+yet)?", _act("reopen")),
    (rf"{_PRONOUN_STATE}\s+(?:now\s+|all\s+)?{_DONE}", _act("complete")),
    (rf"(?:mark|set|flag)\s+{_NAME}\s+(?:as\s+)?{_DONE}", _act("complete")),
    (rf"(?:check|tick|cross)\s+{_NAME}\s+off(?:\s+(?:my\s+|the\s+)?list)?", _act("complete")),
    (rf"(?:check|tick|cross)\s+off\s+{_NAME}", _act("complete")),
    (rf"{_NAME}(?:\s+is|['’]s|\s+has\s+been|\s+was|\s+got)\s+(?:now\s+|all\s+)?{_DONE}", _act("complete")),
    (rf"{_NAME}\s+(?:now\s+|all\s+)?{_DONE}", _done_after_name),
    (rf"{_NAME}\s+(?:is|has\s+been|was|got|'s)\s+(?:now\s+)?(?:moved|pushed(?:\s+back)?|rescheduled|postponed|"
     r"changed|delayed|brought\s+forward)\s+(?:to|till|until|for)\s+(?P<when>.+)", _moved),
    (rf"{_NAME}(?:\s+is|['’]s)?\s+now\s+(?:(?:on|at|due|for)\s+)?(?P<when>.+)", _moved),
    (rf"{_NAME}(?:\s+(?:is|are)|['’]s)\s+(?:due|on|at|for|happening|(?:set|scheduled|planned)\s+for)\s+(?P<when>.+)",
     _statement(_moved)),
    (rf"{_NAME}(?:\s+(?:is|are)|['’]s)\s+(?:(?:now|also|really|very|super|quite|pretty|so)\s+)*(?P<value>(?:not\s+)?"
     rf"(?:urgent|important|critical|(?:an?\s+|my\s+|the\s+)?(?:{_LEVEL_WORD}[\s-]*)?(?:priority|prio)|p[123]))"
     r"(?:\s+(?:now|anymore|any\s+more|today))?", _statement(_update(_stated_priority))),
    (rf"{_NAME}(?:\s+(?:is|are)(?:n['’]?t|\s+no\s+longer)|['’]s\s+no\s+longer)\s+(?:(?:that|so|very|really)\s+)?"
     r"(?P<value>urgent|important|pressing|critical|(?:a\s+|my\s+)?(?:high\s+|top\s+)?priority)"
     r"(?:\s+(?:now|anymore|any\s+more|yet))?", _statement(_update(lambda _: {"priority": "low"}))),
    (rf"{_NAME}\s+can\s+(?P<value>wait)(?:\s+(?:a\s+bit|a\s+while|for\s+now|till\s+later|until\s+later))?",
     _statement(_update(lambda _: {"priority": "low"}))),
    (rf"(?:i(?:['’]?ve|\s+have)\s+(?:just\s+|already\s+)?(?:done|finished|completed)|(?:i(?:['’]?m|\s+am)\s+)?(?:just\s+)?"
     rf"done\s+w(?:ith|/)?|(?:i\s+)?(?:just\s+)?(?:finished|completed|did))\s+{_NAME}", _act("complete")),
    (rf"(?:i(?:['’]?ve|\s+have)?\s+(?:(?:just|already|finally|now)\s+)*|(?:(?:just|already|finally)\s+)+)"
     rf"(?P<verb>[a-z]+)\s+{_NAME}", _done_in_past),
    (rf"(?:complete|finish)\s+{_NAME}", _complete_unless_dated),
    (rf"(?:rename|retitle)\s+{_NAME}\s+(?:to|as|into)\s+(?P<value>.+)", _update(lambda value: {"title": value})),
    (rf"(?:change|update|set)\s+(?:the\s+)?(?:title|name)\s+(?:of|for|on)\s+{_NAME}\s+to\s+(?P<value>.+)",
     _update(lambda value: {"title": value})),
    (rf"(?:change|set|update|make|bump|move)\s+(?:the\s+)?priority\s+(?:of|for|on)\s+{_NAME}\s+(?:to|as)\s+(?P<value>.+)",
     _update(_priority_change)),
    (rf"(?:change|set|update|make|bump)\s+{_NAME}(?:'s)?\s+priority\s+(?:to|as)\s+(?P<value>.+)",
     _update(_priority_change)),
    (rf"(?:make|mark|set|flag|bump|move|change)\s+{_NAME}\s+(?:as\s+|to\s+)?{_LEVEL_PHRASE}",
     _update(_priority_change)),
    (rf"(?:make|mark|set)\s+{_NAME}\s+(?P<value>(?:a|my|the)\s+(?:top\s+)?priority)",
     _update(lambda _: {"priority": "high"})),
    (rf"(?P<value>prioriti[sz]e|(?:raise|increase)\s+(?:the\s+)?priority\s+(?:of|for|on))\s+{_NAME}",
     _update(lambda _: {"priority": "high"})),
    (rf"(?P<value>de-?prioriti[sz]e|(?:lower|decrease|reduce)\s+(?:the\s+)?priority\s+(?:of|for|on))\s+{_NAME}",
     _update(lambda _: {"priority": "low"})),
    (rf"(?:tag|label)\s+{_NAME}\s+(?:with|as)\s+(?P<value>.+)", _update(_tag_change)),
    (rf"(?:tag|label)\s+{_NAME}\s+(?P<value>[#@]?[\w-]+)", _update(_tag_change)),
    (rf"add\s+{_NAME}\s+to\s+(?:the\s+)?(?P<value>[#@]?[\w-]+)\s+(?:tag|label)", _update(_tag_change)),
    (rf"add\s+(?:the\s+)?(?:tags?|labels?)\s+(?P<value>.+?)\s+to\s+{_NAME}", _update(_tag_change)),
    (rf"add\s+(?:a|the)\s+(?P<value>[#@]?[\w-]+)\s+(?:tag|label)\s+to\s+{_NAME}", _update(_tag_change)),
    (rf"add\s+(?P<value>[#@][\w-]+(?:(?:\s*,\s*|\s+and\s+|\s+)[#@][\w-]+)*)\s+to\s+{_NAME}", _update(_tag_change)),
    (r"(?:move|push|reschedule|postpone|delay|defer|shift|bump|put\s+off)\s+(?:(?:back|forward|out)\s+)?(?P<rest>.+)",
     _due_change(strict=False)),
    (r"(?:put|stick|pop)\s+(?P<rest>.+)", _or_new(_due_change(strict=False))),
    (r"(?:set|change|update|make)\s+(?:the\s+)?(?:due\s+)?(?:date|time|deadline)\s+(?:of|for|on)\s+(?P<rest>.+)",
     _due_change(strict=False)),
    (r"(?:set|change|update|make)\s+(?P<rest>.+)", _due_change(strict=True)),
    (rf"(?:change|set|update|make|switch)\s+{_NAME}\s+to\s+(?:(?:repeat|recur)\s+)?(?P<value>.+)", _new_schedule),
    (rf"(?:make|set|have)\s+{_NAME}\s+(?:repeat|recur)\s+(?P<value>.+)", _new_schedule),
    (rf"(?:change|set|update)\s+{_NAME}\s+to\s+(?P<value>.+)", _update(lambda value: {"title": value})),
    (rf"(?:delete|remove|erase|drop|trash|cancel|call\s+off|scrap|scratch|get\s+rid\s+of|forget(?:\s+about)?(?!\s+to\b))"
     rf"\s+{_NAME}"
     r"(?:\s+from\s+(?:my\s+|the\s+)?(?:list|tasks|to-?do\s+list))?", _act("delete")),
]  # fmt: skip
_CHANGE_RES = [(re.compile(pattern, re.I), handler) for pattern, handler in _CHANGES]


_AND_IT_RE = re.compile(r"(?i)(?P<first>.+?),?\s+(?:and|then|also)\s+(?P<second>\w+(?:\s+\w+)?\s+it\b.*)")
# 'finish slides - tag it work', 'the dentist: move it to friday': a task named, then what to do with 'it'.
_THEN_IT_RE = re.compile(r"(?i)(?P<name>[^,;:]+?)(?:\s+[-–—]+|\s*[,;:])\s+(?P<second>(?:\w+\s+)?it\b.*)")


def _changing(text: str, now: datetime) -> ChangeTask | None:
    """The first change pattern that reads the whole sentence; or two updates of one task joined by 'and … it'
    ('make the report high priority and tag it work'), merged into one."""
    if (joined := _AND_IT_RE.fullmatch(text)) and (first := _changing(joined["first"], now)):
        second = _changing(re.sub(r"(?i)\bit\b", first.name, joined["second"], count=1), now)
        if first.action == "update" and second is not None and second.action == "update" and second.name == first.name:
            return ChangeTask("update", first.name, {**first.changes, **second.changes})
    if (named := _THEN_IT_RE.fullmatch(text)) and not _ADD_RE.match(named["name"]):
        change = _changing(re.sub(r"(?i)\bit\b", named["name"], named["second"], count=1), now)
        if change is not None:
            return replace(change, otherwise=change.otherwise or _adding(text, now, allow_verbless=True))
    for pattern, handler in _CHANGE_RES:
        if (match := pattern.fullmatch(text)) and (change := handler(match, now)):
            return change
    return None


# ---------------------------------------------------------------- answers, bulk deletion and the entry point

_BULK_RE = re.compile(
    r"(?i)(?:delete|remove|clear|purge|erase|wipe|clean\s+(?:up|out)|get\s+rid\s+of)\s+(?:out\s+)?(?:all\s+)?"
    r"(?:of\s+)?(?:my\s+|the\s+)?(?:(?:completed|complete|done|finished|checked[- ]off)"
    r"(?:\s+(?:tasks|todos|to-?dos|items|ones))?|(?:tasks|todos|items|everything|all)\s+(?:that\s+(?:are|is)\s+"
    r"|that's\s+|which\s+are\s+|i've\s+|i\s+have\s+)?(?:already\s+)?(?:completed|done|finished|checked off))"
)


_UNDO_RE = re.compile(
    r"(?i)(?:oops[\s,!.]*|whoops[\s,!.]*)?(?:undo|revert|reverse|roll\s*back|take\s+back)"
    r"(?:\s+(?:that|this|it|(?:my|the)\s+(?:last|latest|previous|most\s+recent)\s+(?:change|edit|action|step|one"
    r"|thing)|what\s+i\s+(?:just\s+)?did|the\s+change))?(?:\s+(?:again|too))?"
)


def _answer(text: str) -> Answer | None:
    """Yes or no when every word belongs to phrases of one kind ('yep, do it', 'no, cancel')."""
    words = re.findall(r"[a-z']+", text.lower())
    for vocabulary, yes in ((_YES, True), (_NO, False)):
        if words and _covered(words, vocabulary):
            return Answer(yes)
    return None


def _covered(words: list[str], vocabulary: set[str]) -> bool:
    """Whether the words split into phrases (of up to three words) that are all in the vocabulary."""
    i = 0
    while i < len(words):
        size = next((n for n in (3, 2, 1) if " ".join(words[i : i + n]) in vocabulary and i + n <= len(words)), 0)
        if not size:
            return False
        i += size
    return True


def _clean(text: str) -> str:
    """The request without politeness around it or sentence punctuation after it."""
    return _THANKS_RE.sub("", _POLITE_RE.sub("", text.strip()).rstrip(" .!?")).rstrip(" .!?")


_HELP_RE = re.compile(
    r"(?i)(?:help(?:\s+me)?|\?+|(?:what|how)\s+(?:can|do)\s+(?:you|i)\s+(?:do|say|ask|use\s+(?:this|you|it))"
    r"|how\s+do(?:es)?\s+(?:this|it|you)\s+work|how\s+do\s+i\s+.+|what\s+are\s+(?:the|your)\s+commands"
    r"|commands|usage)[\s?!.]*"
)
_GREETING_RE = re.compile(
    r"(?i)(?:hello|hi|hey|hiya|howdy|yo|greetings|good\s+(?:morning|afternoon|evening|day))(?:\s+there)?"
    r"(?:\s+(?:taskflow|assistant|bot))?[\s,.!]*"
)
_GRATITUDE_RE = re.compile(
    r"(?i)(?:(?:ok(?:ay)?|great|cool|perfect|nice|awesome|lovely|brilliant)[\s,.!]+)?"
    r"(?:thanks|thank\s+(?:you|u)|thanx|thx|ty|cheers|many\s+thanks|much\s+appreciated|appreciate\s+it)"
    r"(?:\s+(?:so\s+much|very\s+much|a\s+lot|a\s+bunch|again|taskflow|assistant|bot"
    r"|for\s+(?:the\s+|your\s+|all\s+the\s+)?(?:help|that|this|everything)))*[\s,.!]*"
)
_FAREWELL_RE = re.compile(
    r"(?i)(?:(?:ok(?:ay)?|alright|thanks)[\s,.!]+)?"
    r"(?:bye(?:[\s-]+bye)?|good\s*bye|see\s+(?:you|ya|u)(?:\s+(?:later|soon|tomorrow|then))?|cya|later|laters"
    r"|good\s*night|night|ttyl|talk\s+(?:to\s+you\s+)?(?:later|soon|tomorrow))"
    r"(?:\s+(?:taskflow|assistant|bot))?[\s,.!]*"
)
_PLEASANTRIES: tuple[tuple[Pleasantry, re.Pattern[str]], ...] = (
    ("hello", _GREETING_RE),
    ("thanks", _GRATITUDE_RE),
    ("bye", _FAREWELL_RE),
)


def _suggestions(said: str, now: datetime, *, question: bool = False) -> tuple[str, str]:
    """Two things the person could say instead, built from what could be read: a date, a tag, or only words."""
    if question and find_when(said, now=now) is None:
        return "what's due today?", "how many open tasks are there?"
    draft = _Draft(said)
    when = find_when(said, now=now)
    if when is not None:
        draft.cut(when.start, when.end)
    tags = _take_tags(draft)
    words = _tidy(re.sub(r"[?!]", " ", draft.left())) or "call the bank"
    if when is not None:
        phrase = said[when.start : when.end].strip()
        return f"add {words} {phrase}", f"what's due {phrase}?"
    if tags:
        return f"add {words} #{tags[0]}", f"show my #{tags[0]} tasks"
    return f"add {words}", "what's due today?"


# Deleting needs the person's own word for it (agent/loop.py), so no verb that deletes is guessed from a slip.
_COMMAND_VERBS = (
    "add complete finish mark move push reschedule postpone rename change update show list find search reopen remind "
    "make set"
).split()


def _misspells(word: str, verb: str) -> bool:
    """Whether word is a slip of the verb: two slips in a long verb; in a short one a letter left out, added or swapped
    (a letter changed too often makes another word: 'lost', 'snow'), never the verb with an ending ('lists', 'marked')
    and never a word of three letters or fewer, but for a doubled letter typed once ('ad')."""
    if word.startswith(verb):
        return False
    from rapidfuzz.distance import OSA  # only for a first word that is no verb: most commands never load it

    if len(verb) > 6:
        return OSA.distance(word, verb) <= 2
    if len(word) < 4:
        return any(verb[:k] + verb[k + 1 :] == word for k in range(1, len(verb)) if verb[k] == verb[k - 1])
    return OSA.distance(word, verb) == 1 and (len(word) != len(verb) or sorted(word) == sorted(verb))


def _retyped(said: str) -> str | None:
    """The request with its first word corrected to the one command verb it misspells ('delte', 'remvoe', 'ad',
    'shwo', 'resheduel'); None when no single verb is that close."""
    first, _, rest = said.partition(" ")
    word = first.lower()
    if not rest or word in _COMMAND_VERBS or not word.isalpha():
        return None
    close = [verb for verb in _COMMAND_VERBS if _misspells(word, verb)]
    return f"{close[0]} {rest}" if len(close) == 1 else None


def interpret(text: str, *, now: datetime) -> Command:
    """One utterance -> one command; `now` is aware, in the person's zone."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if answer := _answer(text):
        return answer
    if pleasantry := next((kind for kind, said in _PLEASANTRIES if said.fullmatch(text.strip())), None):
        return Unclear(text, pleasantry=pleasantry)
    if _HELP_RE.fullmatch(text.strip()):
        return Unclear(text)  # with nothing to suggest instead, the agent says what it can do
    said = _clean(expand(text))
    if not said:
        return Unclear(text, _suggestions("", now))
    if _BULK_RE.fullmatch(said):
        return DeleteCompleted()
    if _UNDO_RE.fullmatch(said):
        return Undo()
    asking = _ASKING_RE.match(said) is not None  # 'is the report done?' changes nothing
    if command := _moving(said, now) or _listing(said, now) or (_asked_state(said) if asking else _changing(said, now)):
        return command
    question = text.strip().endswith("?") or _QUESTION_RE.match(said) is not None
    added = _adding(said, now, allow_verbless=not question)
    corrected = interpret(retyped, now=now) if (retyped := _retyped(said)) else None
    if corrected is not None and not isinstance(corrected, Unclear) and not (added and isinstance(corrected, AddTask)):
        return corrected  # 'mvoe the dentist to friday' is a move, not a task called 'mvoe the dentist'
    return added or Unclear(text, _suggestions(said, now, question=question))
