"""Recurrence rules are refused with a reason or expanded within a bound, on input and when stored (no I/O but the
service tests, which run on PostgreSQL and SQLite)."""

from __future__ import annotations

import gc
import time
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from agent.recurrence_phrases import Repeat
from agent.recurrence_phrases import first_occurrence as first_phrase_occurrence
from mcp_server import service
from mcp_server.errors import InvalidField, InvalidRule
from mcp_server.models import RECURRENCE_MAX, Status, Task
from mcp_server.recurrence import first_occurrence, next_occurrence
from mcp_server.service import TaskChanges, TaskCreate
from mcp_server.validation import clean_recurrence
from tests.conftest import NOW

LOS_ANGELES = ZoneInfo("America/Los_Angeles")
START = date(2026, 12, 1)
BOUND = 0.5  # seconds of CPU per call: generous for a loaded machine; bench/recurrence_rules.py reports the truth


def cpu_seconds(call) -> float:
    began = time.process_time()
    call()
    return time.process_time() - began


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL must be a whole number from 1 to 3650 for FREQ=DAILY"),
        ("FREQ=DAILY;INTERVAL=-1", "INTERVAL must be a whole number from 1 to 3650 for FREQ=DAILY"),
        ("FREQ=YEARLY;INTERVAL=11", "INTERVAL must be a whole number from 1 to 10 for FREQ=YEARLY"),
        ("FREQ=WEEKLY;INTERVAL=2.5", "INTERVAL must be a whole number"),
        ("FREQ=DAILY;COUNT=0", "COUNT must be a whole number of at least 1 (got '0')"),
        ("FREQ=DAILY;COUNT=-3", "COUNT must be a whole number of at least 1"),
        ("FREQ=DAILY;COUNT=2;UNTIL=20270101", "use COUNT or UNTIL, not both"),
        ("DTSTART:20260101T000000\nRRULE:FREQ=DAILY", "without DTSTART"),
        ("FREQ=DAILY;DTSTART=20260101", "without DTSTART"),
        ("RRULE:FREQ=DAILY\nRRULE:FREQ=WEEKLY", "give one RRULE line"),
        ("FREQ=DAILY\nEXDATE:20261224", "give one RRULE line"),
        ("FREQ=SECONDLY", "FREQ=SECONDLY is finer than a task series allows; the finest is HOURLY"),
        ("FREQ=MINUTELY;INTERVAL=15", "FREQ=MINUTELY is finer than a task series allows"),
        ("FREQ=SOMETIMES", "FREQ must be one of YEARLY, MONTHLY, WEEKLY, DAILY, HOURLY"),
        ("BYDAY=MO", "has no FREQ"),
        ("FREQ=DAILY;" + "BYHOUR=9;" * 60, f"a rule has at most {RECURRENCE_MAX}"),
        ("FREQ=DAILY;BYEASTER=0", "unknown part 'BYEASTER'; a rule has FREQ and optionally INTERVAL"),
        ("FREQ=DAILY;FOO=1", "unknown part 'FOO'"),
        ("FREQ=DAILY;BYSECOND=0", "BYSECOND is not accepted"),
        ("FREQ=DAILY;INTERVAL", "'INTERVAL' is not a NAME=VALUE part"),
        ("FREQ=DAILY;FREQ=WEEKLY", "FREQ is given twice"),
        ("FREQ=MONTHLY;BYMONTHDAY=32", "BYMONTHDAY takes comma-separated numbers 1 to 31 or -31 to -1 (got '32')"),
        ("FREQ=YEARLY;BYMONTH=13", "BYMONTH takes comma-separated numbers 1 to 12 (got '13')"),
        ("FREQ=DAILY;BYHOUR=24", "BYHOUR takes comma-separated numbers 0 to 23"),
        ("FREQ=DAILY;BYHOUR=９", "BYHOUR takes comma-separated numbers"),  # a full-width digit
        ("FREQ=HOURLY;BYMINUTE=0,30", "BYMINUTE takes one minute: a task series occurs at most once an hour"),
        ("FREQ=WEEKLY;BYDAY=XX", "BYDAY takes days MO, TU, WE, TH, FR, SA, SU"),
        ("FREQ=WEEKLY;BYDAY=+1MO", "a numbered BYDAY (+1MO) needs FREQ=MONTHLY or FREQ=YEARLY"),
        ("FREQ=MONTHLY;BYDAY=+6MO", "the number counts within the month, 1 to 5"),
        ("FREQ=YEARLY;BYDAY=+54MO", "the number counts within the year, 1 to 53"),
        ("FREQ=YEARLY;BYWEEKNO=20;BYDAY=1MO", "without BYWEEKNO"),
        ("FREQ=MONTHLY;BYWEEKNO=20", "BYWEEKNO cannot be used with FREQ=MONTHLY"),
        ("FREQ=WEEKLY;BYMONTHDAY=1", "BYMONTHDAY cannot be used with FREQ=WEEKLY"),
        ("FREQ=MONTHLY;BYSETPOS=1", "BYSETPOS picks among the days other BY… parts give"),
        ("FREQ=DAILY;BYHOUR=9,17;BYSETPOS=1", "BYSETPOS picks among the days of a week, month or year"),
        ("FREQ=WEEKLY;WKST=XX", "WKST must be one of MO, TU"),
        ("FREQ=DAILY;UNTIL=20261301", "UNTIL must be a date YYYYMMDD or a UTC date-time YYYYMMDDTHHMMSSZ"),
        ("FREQ=DAILY;UNTIL=tomorrow", "UNTIL must be a date YYYYMMDD"),
        ("FREQ=DAILY;UNTIL=00010101", "UNTIL must fall in the years 1900 to"),
    ],
)
def test_a_rule_that_cannot_make_a_series_is_refused_naming_the_part(rule, reason):
    with pytest.raises(InvalidRule) as caught:
        clean_recurrence(rule)
    assert caught.value.field == "recurrence"
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("rule", "start", "reason"),
    [
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", START, "has no occurrence within 10 years after 2026-12-01"),
        ("FREQ=DAILY;BYMONTH=4;BYMONTHDAY=31", START, "has no occurrence within 10 years"),
        ("FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30", datetime(2026, 12, 1, 9, tzinfo=LOS_ANGELES), "no occurrence within"),
        ("FREQ=DAILY;INTERVAL=7;BYDAY=WE", START, "and that INTERVAL lands on them"),  # 2026-12-01 is a Tuesday
        ("FREQ=MONTHLY;INTERVAL=12;BYMONTH=3", START, "has no occurrence within 10 years"),  # Decembers only
        ("FREQ=YEARLY;BYDAY=+53MO;BYYEARDAY=1", START, "has no occurrence within 10 years"),
        ("FREQ=HOURLY;INTERVAL=23;BYHOUR=5;BYMONTH=2;BYMONTHDAY=30", START, "has no occurrence within 10 years"),
        ("FREQ=DAILY;UNTIL=20261130", START, "UNTIL=20261130 is before the series starts (2026-12-01)"),
        ("FREQ=DAILY;UNTIL=20261201T080000Z", datetime(2026, 12, 1, 9, tzinfo=LOS_ANGELES), "before the series"),
        ("FREQ=WEEKLY;BYDAY=MO;UNTIL=20261206", START, "has no occurrence between the series start 2026-12-01 and"),
        ("FREQ=HOURLY;INTERVAL=2;BYHOUR=1", START, "BYHOUR is never reached counting every 2 hours from 00:00"),
    ],
)
def test_a_rule_with_no_occurrence_from_the_series_start_is_refused(rule, start, reason):
    with pytest.raises(InvalidRule) as caught:
        first_occurrence(rule, start, LOS_ANGELES)
    assert reason in str(caught.value)


def test_the_first_occurrence_is_at_or_after_the_start_in_the_starts_kind():
    assert first_occurrence("FREQ=WEEKLY;BYDAY=FR", START, LOS_ANGELES) == date(2026, 12, 4)
    assert first_occurrence("FREQ=DAILY;UNTIL=20261201", START, LOS_ANGELES) == START  # UNTIL's day is included
    nine = datetime(2026, 12, 1, 9, tzinfo=LOS_ANGELES)
    assert first_occurrence("FREQ=DAILY;BYHOUR=8", nine, LOS_ANGELES) == datetime(2026, 12, 2, 8, tzinfo=LOS_ANGELES)
    assert first_occurrence("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", START, LOS_ANGELES) == date(2028, 2, 29)


@pytest.mark.parametrize("rule", ["FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29"])
def test_a_gap_within_the_horizon_is_crossed(rule):
    assert next_occurrence(rule, date(2096, 2, 29), LOS_ANGELES).due == date(2104, 2, 29)  # 2100 is no leap year


# Stored before rules were checked: each must end in InvalidRule at once, never loop or raise anything else.
POISON = [
    "FREQ=YEARLY;INTERVAL=0;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=DAILY;INTERVAL=0",
    "FREQ=DAILY;INTERVAL=-1",
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=31",
    "FREQ=DAILY;COUNT=0",
    "FREQ=DAILY;BYDAY=+1MO",
    "FREQ=DAILY;" + "BYHOUR=9;" * 60,
]


@pytest.mark.parametrize("rule", POISON)
@pytest.mark.parametrize("due", [date(2026, 12, 1), datetime(2026, 12, 1, 9, tzinfo=LOS_ANGELES)])
def test_next_occurrence_of_a_poisoned_stored_rule_raises_invalid_rule_quickly(rule, due):
    def expand() -> None:
        with pytest.raises(InvalidRule):
            next_occurrence(rule, due, LOS_ANGELES)

    assert cpu_seconds(expand) <= BOUND


def test_next_occurrence_stops_at_a_gap_longer_than_the_horizon():
    with pytest.raises(InvalidRule, match="no occurrence within 10 years after 2044-02-29"):
        next_occurrence("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", date(2044, 2, 29), LOS_ANGELES)  # next: 2072


@pytest.mark.parametrize(
    ("rule", "due", "expected"),
    [
        ("FREQ=HOURLY", date(2026, 12, 1), date(2026, 12, 2)),
        ("FREQ=DAILY;BYHOUR=9", date(2026, 12, 1), date(2026, 12, 2)),
        ("FREQ=HOURLY;INTERVAL=6", datetime(2026, 12, 1, 21, tzinfo=LOS_ANGELES), "2026-12-02T03:00:00-08:00"),
    ],
)
def test_an_all_day_series_moves_on_to_a_later_day(rule, due, expected):
    following = next_occurrence(rule, due, LOS_ANGELES).due
    assert (following if isinstance(expected, date) else following.isoformat()) == expected


def test_a_yearly_rule_with_numbered_weekdays_counts_them_within_the_year():
    # The scan's budget sits on another of dateutil's filters for this kind of rule; the meaning must not change.
    assert first_occurrence("FREQ=YEARLY;BYDAY=+1MO", START, LOS_ANGELES) == date(2027, 1, 4)
    assert first_occurrence("FREQ=YEARLY;BYDAY=-1FR", START, LOS_ANGELES) == date(2026, 12, 25)
    assert first_occurrence("FREQ=YEARLY;BYDAY=+20MO", START, LOS_ANGELES) == date(2027, 5, 17)


def test_garbage_collection_pauses_do_not_spend_a_rules_budget():
    """In a large process a full collection costs more of the thread's CPU time than a scan's backstop; a good rule
    must not be refused for it. Each collection here burns 40 ms, as a large heap's would."""

    def costly_collection(phase: str, _info: dict) -> None:
        if phase == "start":
            started = time.thread_time()
            while time.thread_time() - started < 0.04:
                pass

    thresholds = gc.get_threshold()
    gc.set_threshold(1, 1, 1)  # collect at every allocation of a container object
    gc.callbacks.append(costly_collection)
    try:
        # The scan from 29 November checks its budget on its third day: a collection before then would spend it.
        found = first_occurrence("FREQ=MONTHLY;BYMONTHDAY=1", date(2026, 11, 29), ZoneInfo("Europe/Lisbon"))
    finally:
        gc.callbacks.remove(costly_collection)
        gc.set_threshold(*thresholds)
    assert found == date(2026, 12, 1)
    assert gc.isenabled()


def test_the_interpreter_leaves_a_rule_that_never_occurs_to_the_tools_without_scanning_for_it():
    midnight = datetime(2026, 11, 30)
    found: list[datetime | None] = []

    def first() -> None:
        found.append(first_phrase_occurrence(Repeat("MONTHLY", by_month_day=45), midnight, midnight))
        found.append(first_phrase_occurrence(Repeat("YEARLY", by_month=2, by_month_day=30), midnight, midnight))

    assert cpu_seconds(first) <= BOUND
    assert found == [None, None]
    assert first_phrase_occurrence(Repeat("MONTHLY", by_month_day=31), midnight, midnight) == datetime(2026, 12, 31)


_EXTREMES = [-(10**30), -367, -366, -54, -53, -32, -31, -6, -5, -1, 0, 1, 2, 4, 5, 7, 12, 13, 23, 24, 29, 30, 31]
_EXTREMES += [52, 53, 54, 59, 60, 365, 366, 367, 3650, 3651, 87600, 10**9, 10**30]
_NUMBERS = st.integers(1, 31) | st.integers(-400, 400) | st.sampled_from(_EXTREMES)
_DAY_CODES = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


def _numbers(size: int = 6) -> st.SearchStrategy[str]:
    return st.lists(_NUMBERS, min_size=1, max_size=size).map(lambda values: ",".join(map(str, values)))


_DAY = st.tuples(st.none() | _NUMBERS, st.sampled_from([*_DAY_CODES, "XX"])).map(
    lambda day: f"{'' if day[0] is None else f'{day[0]:+d}'}{day[1]}"
)
_UNTIL = st.datetimes(datetime(1800, 1, 1), datetime(9999, 12, 31)).flatmap(
    lambda moment: st.sampled_from(
        [f"{moment:%Y%m%d}", f"{moment:%Y%m%dT%H%M%S}", f"{moment:%Y%m%dT%H%M%S}Z", f"{moment:%Y-%m-%d}"]
    )
)
_PART = st.one_of(
    st.tuples(st.just("INTERVAL"), _NUMBERS.map(str)),
    st.tuples(st.just("COUNT"), _NUMBERS.map(str)),
    st.tuples(st.just("UNTIL"), _UNTIL),
    st.tuples(st.sampled_from(["BYMONTH", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYSETPOS"]), _numbers()),
    st.tuples(st.just("BYHOUR"), _numbers(24)),
    st.tuples(st.just("BYMINUTE"), _numbers(2)),
    st.tuples(st.just("BYDAY"), st.lists(_DAY, min_size=1, max_size=7).map(",".join)),
    st.tuples(st.just("WKST"), st.sampled_from([*_DAY_CODES, "XX"])),
    st.tuples(st.text(max_size=8), st.text(max_size=8)),
)
_FREQ = st.sampled_from(["YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY", "NEVER"])
_RULES = st.one_of(
    st.builds(
        lambda freq, parts: ";".join([f"FREQ={freq}", *(f"{name}={value}" for name, value in parts)]),
        _FREQ,
        st.lists(_PART, max_size=5),
    ),
    st.text(max_size=600),
)
_STARTS = st.dates(date(1950, 1, 1), date(2150, 12, 31)) | st.datetimes(
    datetime(1950, 1, 1), datetime(2150, 12, 31), timezones=st.just(LOS_ANGELES)
)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule=_RULES, start=_STARTS)
def test_any_rule_is_refused_with_a_reason_or_has_an_occurrence_within_the_bound(rule, start):
    """Validation as add_task runs it: the rule's parts, then its first occurrence from the series start."""
    outcome: list[object] = []

    def validate() -> None:
        try:
            text = clean_recurrence(rule)
            outcome.append(text and (text, first_occurrence(text, start, LOS_ANGELES)))
        except InvalidField as refused:
            outcome.append(refused)

    assert cpu_seconds(validate) <= BOUND
    [answer] = outcome
    event("refused" if isinstance(answer, InvalidField) else "accepted" if answer else "blank")
    if isinstance(answer, InvalidField):
        assert answer.field == "recurrence"
        assert str(answer).removeprefix("recurrence: ")
        return
    if not answer:
        return  # blank: no recurrence
    text, first = answer
    assert len(text) <= RECURRENCE_MAX
    assert type(first) is type(start)
    assert first >= start

    def expand_next() -> None:
        try:
            next_occurrence(text, first, LOS_ANGELES)
        except InvalidRule:
            pass  # a gap longer than the horizon after the first occurrence

    assert cpu_seconds(expand_next) <= BOUND


def _add(session, actor, **fields) -> Task:
    return service.add_task(session, actor=actor, data=TaskCreate(title="water plants", **fields), now=NOW)


@pytest.mark.parametrize("due", [None, "2026-12-01", "2026-12-01T09:00"])
def test_add_task_refuses_february_30_with_or_without_a_due(session, actor, due):
    rule = "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"
    with pytest.raises(InvalidField, match="has no occurrence within 10 years"):
        _add(session, actor, due=due, recurrence=rule)


def test_add_task_refuses_an_until_before_the_due(session, actor):
    with pytest.raises(InvalidField, match="UNTIL=20261130 is before the series starts"):
        _add(session, actor, due="2026-12-01", recurrence="FREQ=DAILY;UNTIL=20261130")


def test_moving_the_due_past_until_is_refused_and_other_changes_leave_an_old_rule_alone(session, actor):
    task = _add(session, actor, due="2026-12-01", recurrence="FREQ=DAILY;UNTIL=20261210")
    with pytest.raises(InvalidField, match="UNTIL=20261210 is before the series starts"):
        service.update_task(session, actor=actor, task_id=task.id, changes=TaskChanges(due="2026-12-11"), now=NOW)
    task.recurrence = "FREQ=DAILY;INTERVAL=0"  # as a row stored before rules were checked
    changes = TaskChanges(title="water the plants")
    assert service.update_task(session, actor=actor, task_id=task.id, changes=changes, now=NOW).title == changes.title


def test_completing_a_stored_poisoned_rule_raises_invalid_rule_for_the_consumer(session, actor):
    task = _add(session, actor, due="2026-12-01", recurrence="FREQ=DAILY")
    task.recurrence = "FREQ=DAILY;INTERVAL=0"  # as a row stored before rules were checked
    task.status = Status.completed.value
    completed = service.to_public(task, actor.zone)
    with pytest.raises(InvalidRule, match="INTERVAL must be a whole number from 1 to 3650"):
        service.add_next_occurrence(session, actor=actor, completed=completed, now=NOW, caused_by="test-event")
