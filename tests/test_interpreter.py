"""Tests for agent.interpreter: one English utterance -> one structured command, offline and deterministic."""

from datetime import date, datetime
from itertools import islice
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import given
from hypothesis import strategies as st

from agent.interpreter import (
    PREVIOUS,
    AddTask,
    Answer,
    ChangeTask,
    DeleteCompleted,
    ListTasks,
    MoveTasks,
    Unclear,
    Undo,
    interpret,
)
from mcp_server.recurrence import next_occurrence

KARACHI = ZoneInfo("Asia/Karachi")
NEW_YORK = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 29, 10, 0, tzinfo=KARACHI)  # a Sunday morning
NY_BEFORE_DST = datetime(2027, 3, 13, 10, 0, tzinfo=NEW_YORK)  # clocks spring forward at 02:00 the next day


def add(text: str, now: datetime = NOW) -> AddTask:
    """interpret(text), checked to be an AddTask."""
    command = interpret(text, now=now)
    assert isinstance(command, AddTask), command
    return command


def occurrences(task: AddTask, zone: ZoneInfo = KARACHI, count: int = 3) -> list[str]:
    """The series' first wall times ('YYYY-MM-DDTHH:MM', or days for all-day tasks), as TaskFlow expands it."""
    assert task.due is not None
    assert task.recurrence is not None
    due: date | datetime = date.fromisoformat(task.due) if len(task.due) == 10 else datetime.fromisoformat(task.due)
    found, rule = [due], task.recurrence
    while len(found) < count and (following := next_occurrence(rule, found[-1], zone)) is not None:
        found.append(following.due)
        rule = following.rule
    if isinstance(due, datetime):
        return [moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M") for moment in found]
    return [day.isoformat() for day in found]


# ---------------------------------------------------------------- adding: titles


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("add buy milk", "buy milk"),
        ("Add buy milk tomorrow at 5pm high priority #errands", "buy milk"),
        ("create a task to renew passport on dec 15 with low priority", "renew passport"),
        ("new task: Email Sarah about the Q4 budget", "Email Sarah about the Q4 budget"),
        ("I need to finish the quarterly report by friday, it's urgent", "finish the quarterly report"),
        ("don't forget to pick up the dry cleaning tomorrow", "pick up the dry cleaning"),
        ("I have to call the landlord on monday", "call the landlord"),
        ("please add water the ferns", "water the ferns"),
        ("can you add order new glasses?", "order new glasses"),
        ("in 2 hours check the oven", "check the oven"),
        ("call the bank on friday about the loan", "call the bank about the loan"),
        ("add 📞 call grandma tomorrow", "📞 call grandma"),
        ("add '; DROP TABLE tasks; --", "'; DROP TABLE tasks; --"),
        ("add reply to urgent email from Dana", "reply to urgent email from Dana"),
        ("add prepare the weekly report", "prepare the weekly report"),
        ("add send invoice to bob@example.com", "send invoice to bob@example.com"),
        ("add research flights to Lisbon", "research flights to Lisbon"),
        ("make dinner reservations for friday", "make dinner reservations"),
        ("set a reminder for 5pm to call the pharmacy", "call the pharmacy"),
        ("note to self: book flights", "book flights"),
        ("remember to buy stamps", "buy stamps"),
        ("gotta clean the garage this weekend", "clean the garage"),
        ("we must fix the roof", "fix the roof"),
        ("add call Bob to my todo list for friday", "call Bob"),
        ("put oil change on the list for next week", "oil change"),
    ],
)
def test_add_keeps_the_persons_words_as_title(text: str, title: str) -> None:
    assert add(text).title == title


def test_add_without_details_leaves_defaults() -> None:
    assert add("add buy milk") == AddTask(title="buy milk")


# ---------------------------------------------------------------- adding: dates


@pytest.mark.parametrize(
    ("text", "due"),
    [
        ("add buy milk tomorrow at 5pm", "2026-11-30T17:00:00+05:00"),
        ("submit the form by friday", "2026-12-04"),
        ("dentist on january 12 at 3:15pm", "2027-01-12T15:15:00+05:00"),
        ("in 2 hours check the oven", "2026-11-29T12:00:00+05:00"),
        ("lunch with Ali at noon", "2026-11-29T12:00:00+05:00"),
        ("add pay electricity bill for today", "2026-11-29"),
        ("add renew insurance on dec 15", "2026-12-15"),
        ("take out the trash at 7am", "2026-11-30T07:00:00+05:00"),  # 7am has passed today
        ("add book club next wednesday 6:30pm", "2026-12-02T18:30:00+05:00"),
        ("add call the vet monday, 4pm", "2026-11-30T16:00:00+05:00"),
    ],
)
def test_add_reads_due(text: str, due: str) -> None:
    assert add(text).due == due


def test_add_without_a_date_has_no_due() -> None:
    assert add("add learn the ukulele").due is None


# ---------------------------------------------------------------- adding: priorities, tags, descriptions, quotes


@pytest.mark.parametrize(
    ("text", "priority"),
    [
        ("add buy milk high priority", "high"),
        ("create a task to renew passport with low priority", "low"),
        ("I need to file taxes by friday, it's urgent", "high"),
        ("fix the leaking tap asap", "high"),
        ("important: sign the lease", "high"),
        ("add fix login bug p1 tomorrow at 9am", "high"),
        ("submit timesheet every friday p2", "medium"),
        ("add tidy the garage p3", "low"),
        ("low priority: clean the fridge", "low"),
        ("add update the wiki, priority: low", "low"),
        ("add walk the dog low priority", "low"),
        ("add defrost freezer, not urgent", "low"),
        ("add reply to urgent email from Dana", "medium"),
    ],
)
def test_add_reads_priority(text: str, priority: str) -> None:
    assert add(text).priority == priority


@pytest.mark.parametrize(
    ("text", "tags"),
    [
        ("add plan sprint #work #planning", ("work", "planning")),
        ("team standup every weekday at 9:30 @work", ("work",)),
        ("add buy a gift tomorrow, tag it with family and xmas", ("family", "xmas")),
        ("add book hotel tagged travel", ("travel",)),
        ("add fix bug #42 in the parser #Backend", ("backend",)),
    ],
)
def test_add_reads_tags(text: str, tags: tuple[str, ...]) -> None:
    assert add(text).tags == tags


@pytest.mark.parametrize(
    ("text", "title", "description"),
    [
        ("add prepare slides with note: include Q3 numbers", "prepare slides", "include Q3 numbers"),
        (
            "add call the plumber tomorrow note: the sink, not the shower",
            "call the plumber",
            "the sink, not the shower",
        ),
        ("add draft the memo, notes: keep it short", "draft the memo", "keep it short"),
        ('add call Bob note: "bring the contract"', "call Bob", "bring the contract"),
        ("add plan offsite description: two days, near Lahore", "plan offsite", "two days, near Lahore"),
    ],
)
def test_add_reads_description(text: str, title: str, description: str) -> None:
    task = add(text)
    assert (task.title, task.description) == (title, description)


@pytest.mark.parametrize(
    ("text", "title", "due"),
    [
        ("add 'review PR #42' for today", "review PR #42", "2026-11-29"),
        ('add "Call mom tomorrow" on friday', "Call mom tomorrow", "2026-12-04"),
        ("add “p1: ship it”", "p1: ship it", None),
    ],
)
def test_add_keeps_quoted_titles_verbatim(text: str, title: str, due: str | None) -> None:
    task = add(text)
    assert (task.title, task.due, task.tags, task.priority) == (title, due, (), "medium")


@pytest.mark.parametrize(
    ("text", "title", "due"),
    [
        ('add call "Acme Corp" about the renewal', 'call "Acme Corp" about the renewal', None),
        ('add 🎉 plan Mom\'s "surprise" party friday', '🎉 plan Mom\'s "surprise" party', "2026-12-04"),
        ("email ‘Q4 #plan tomorrow’ deck to Raj on monday", "email ‘Q4 #plan tomorrow’ deck to Raj", "2026-11-30"),
        ("remind me to read “The Hobbit” tonight 🐉", "read “The Hobbit” 🐉", "2026-11-29T20:00:00+05:00"),
    ],
)
def test_quotes_inside_a_title_stay_in_it_and_shield_their_words(text: str, title: str, due: str | None) -> None:
    task = add(text)
    assert (task.title, task.due, task.tags) == (title, due, ())


# ---------------------------------------------------------------- adding: shorthand and shouting


@pytest.mark.parametrize(
    ("text", "title", "due", "priority"),
    [
        ("add pay rent 2moro", "pay rent", "2026-11-30", "medium"),
        ("water plants tmrw", "water plants", "2026-11-30", "medium"),
        ("CALL THE PLUMBER TOMORROW AT 7 IN THE MORNING", "call the plumber", "2026-11-30T07:00:00+05:00", "medium"),
        ("run 6 in the morning on friday", "run", "2026-12-04T06:00:00+05:00", "medium"),
        ("add pick up kids at 3 in the afternoon", "pick up kids", "2026-11-29T15:00:00+05:00", "medium"),
        ("call dad at 9 at night", "call dad", "2026-11-29T21:00:00+05:00", "medium"),
        ("send the invoice before end of day", "send the invoice", "2026-11-29T17:00:00+05:00", "medium"),
        ("send the deck by eod friday", "send the deck", "2026-12-04T17:00:00+05:00", "medium"),
        ("fix the login bug asap", "fix the login bug", None, "high"),
        ("urgent: renew the domain", "renew the domain", None, "high"),
        ("ADD BOOK FLIGHTS URGENT", "book flights", None, "high"),
    ],
)
def test_shorthand_and_capitals_are_read(text: str, title: str, due: str | None, priority: str) -> None:
    task = add(text)
    assert (task.title, task.due, task.priority) == (title, due, priority)


@pytest.mark.parametrize(
    ("text", "title", "due", "rule"),
    [
        ("add stretch tomorrow morning at 7", "stretch", "2026-11-30T07:00:00+05:00", None),
        ("call mom tomorrow evening at 8", "call mom", "2026-11-30T20:00:00+05:00", None),
        ("call the bank this afternoon at 2:30", "call the bank", "2026-11-29T14:30:00+05:00", None),
        ("take pills tonight at 10", "take pills", "2026-11-29T22:00:00+05:00", None),
        ("party friday night at 11", "party", "2026-12-04T23:00:00+05:00", None),
        ("nap saturday afternoon around 3pm", "nap", "2026-12-05T15:00:00+05:00", None),
        ("run every morning at 6", "run", "2026-11-30T06:00:00+05:00", "FREQ=DAILY"),
        ("read every evening at 9", "read", "2026-11-29T21:00:00+05:00", "FREQ=DAILY"),
        ("standup every weekday morning at 9:30", "standup", "2026-11-30T09:30:00+05:00",
         "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"),
        ("write morning pages at 7am", "write morning pages", "2026-11-30T07:00:00+05:00", None),
    ],
)  # fmt: skip
def test_an_hour_after_the_part_of_the_day_is_read_in_it(text: str, title: str, due: str, rule: str | None) -> None:
    task = add(text)
    assert (task.title, task.due, task.recurrence) == (title, due, rule)


@pytest.mark.parametrize(
    ("text", "title", "tags"),
    [
        ("add milk to my shopping list", "milk", ("shopping",)),
        ("add eggs to the grocery list tomorrow #urgent-ish", "eggs", ("urgent-ish", "grocery")),
        ("jot down call the vet on my list", "call the vet", ()),
        ("add tickets to the list", "tickets", ()),
    ],
)
def test_the_list_a_task_is_put_on_names_its_tag(text: str, title: str, tags: tuple[str, ...]) -> None:
    task = add(text)
    assert (task.title, task.tags) == (title, tags)


def test_adding_an_existing_task_to_a_tag_still_tags_it() -> None:
    assert interpret("add gym to the work tag", now=NOW) == ChangeTask("update", "gym", {"add_tags": ["work"]})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("the dentist is moved to dec 12", ChangeTask("update", "dentist", {"due": "2026-12-12"})),
        ("yoga is now at 6pm", ChangeTask("update", "yoga", {"due_time": "18:00"})),
        ("the standup got pushed back to thursday", ChangeTask("update", "standup", {"due": "2026-12-03"})),
        ("dentist done", ChangeTask("complete", "dentist")),
        ("laundry all finished", ChangeTask("complete", "laundry")),
        ("actually, move the dentist to friday", ChangeTask("update", "dentist", {"due": "2026-12-04"})),
        ("oops mark gym as done", ChangeTask("complete", "gym")),
        ("ugh, mark gym as done", ChangeTask("complete", "gym")),
        (
            "change water the plants to every 2 days",
            ChangeTask("update", "water the plants", {"recurrence": "FREQ=DAILY;INTERVAL=2"}),
        ),
        ("make standup repeat weekly", ChangeTask("update", "standup", {"recurrence": "FREQ=WEEKLY"})),
        ("change gym to go running", ChangeTask("update", "gym", {"title": "go running"})),
        (
            "make the report high priority and tag it work",
            ChangeTask("update", "report", {"priority": "high", "add_tags": ["work"]}),
        ),
        (
            "move the report to friday and make it urgent",
            ChangeTask("update", "report", {"due": "2026-12-04", "priority": "high"}),
        ),
        ("remind me 30 min before the dentist", ChangeTask("update", "dentist", {"remind_before": 1800})),
        ("remind me the day before my flight", ChangeTask("update", "flight", {"remind_before": 86400})),
        ("i have a dentist appointment on friday", AddTask("dentist appointment", due="2026-12-04")),
        ("what does my week look like", ListTasks({"due_after": "2026-11-29", "due_before": "2026-12-05"})),
        ("how's tomorrow looking?", ListTasks({"due_after": "2026-11-30", "due_before": "2026-11-30"})),
        ("help", Unclear("help")),
        ("i already booked the flights", ChangeTask("complete", "book the flights")),
        ("just paid the rent", ChangeTask("complete", "pay the rent")),
        ("I submitted the report", ChangeTask("complete", "submit the report")),
        ("i emptied the dishwasher", ChangeTask("complete", "empty the dishwasher")),
        ("i went to the gym", ChangeTask("complete", "go to the gym")),
        ("i have dinner with sam friday", AddTask("dinner with sam", due="2026-12-04")),
        ("how do I add a task?", Unclear("how do I add a task?")),
        ("well, mark gym as done", ChangeTask("complete", "gym")),
        ("add well water test", AddTask("well water test")),
        ("add right turn signal", AddTask("right turn signal")),
        ("when is the dentist?", ListTasks({"query": "dentist"})),
        ("when do I have to pay rent", ListTasks({"query": "pay rent"})),
        ("what's next?", ListTasks({"status": "open", "sort_by": "due", "limit": 1}, next_only=True)),
        ("when is my next task", ListTasks({"status": "open", "sort_by": "due", "limit": 1}, next_only=True)),
        ("add get it done", AddTask("get it done")),
        ("remind me to get it done", AddTask("get it done")),
    ],
)
def test_changes_and_questions_said_name_first(text: str, expected: object) -> None:
    assert interpret(text, now=NOW) == expected


def test_shorthand_inside_quotes_stays_as_typed() -> None:
    assert add('add "2moro eod" playlist').title == '"2moro eod" playlist'


# ---------------------------------------------------------------- adding: recurrence


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("water the plants every day at 8am", "FREQ=DAILY"),
        ("take vitamins daily", "FREQ=DAILY"),
        ("team standup every weekday at 9:30", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"),
        ("gym every monday and thursday at 7pm", "FREQ=WEEKLY;BYDAY=MO,TH"),
        ("swim on tuesdays and saturdays", "FREQ=WEEKLY;BYDAY=TU,SA"),
        ("submit timesheet every friday", "FREQ=WEEKLY;BYDAY=FR"),
        ("review goals weekly", "FREQ=WEEKLY"),
        ("take out recycling every other tuesday", "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU"),
        ("water the cactus every 3 days", "FREQ=DAILY;INTERVAL=3"),
        ("pay rent on the 1st of every month", "FREQ=MONTHLY;BYMONTHDAY=1"),
        ("back up the laptop monthly", "FREQ=MONTHLY"),
        ("pay the card every month on the 15th", "FREQ=MONTHLY;BYMONTHDAY=15"),
        ("mom's birthday every year on march 8", "FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=8"),
        ("anniversary every june 21", "FREQ=YEARLY;BYMONTH=6;BYMONTHDAY=21"),
        ("stretch every day at 7am until dec 3", "FREQ=DAILY;UNTIL=20261203"),
        ("clean the filter every friday until dec 25", "FREQ=WEEKLY;BYDAY=FR;UNTIL=20261225"),
        ("physio every monday for 5 times", "FREQ=WEEKLY;BYDAY=MO;COUNT=5"),
    ],
)
def test_add_reads_recurrence_rule(text: str, rule: str) -> None:
    assert add(text).recurrence == rule


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("water the plants every day at 8am", ["2026-11-30T08:00", "2026-12-01T08:00", "2026-12-02T08:00"]),
        ("read every day at 9pm", ["2026-11-29T21:00", "2026-11-30T21:00", "2026-12-01T21:00"]),
        ("team standup every weekday at 9:30", ["2026-11-30T09:30", "2026-12-01T09:30", "2026-12-02T09:30"]),
        ("gym every monday and thursday at 7pm", ["2026-11-30T19:00", "2026-12-03T19:00", "2026-12-07T19:00"]),
        ("submit timesheet every friday", ["2026-12-04", "2026-12-11", "2026-12-18"]),
        ("take out recycling every other tuesday", ["2026-12-01", "2026-12-15", "2026-12-29"]),
        ("water the cactus every 3 days at 8am", ["2026-11-30T08:00", "2026-12-03T08:00", "2026-12-06T08:00"]),
        ("pay rent on the 1st of every month", ["2026-12-01", "2027-01-01", "2027-02-01"]),
        ("pay bills on the last day of each month", ["2026-11-30", "2026-12-31", "2027-01-31"]),
        ("mom's birthday every year on march 8", ["2027-03-08", "2028-03-08", "2029-03-08"]),
        ("yoga every day at 7am starting march 13", ["2027-03-13T07:00", "2027-03-14T07:00", "2027-03-15T07:00"]),
        ("run every saturday from dec 12", ["2026-12-12", "2026-12-19", "2026-12-26"]),
        ("stretch every day at 7am until dec 3", ["2026-11-30T07:00", "2026-12-01T07:00", "2026-12-02T07:00"]),
    ],
)
def test_recurring_due_is_the_first_occurrence(text: str, first: list[str]) -> None:
    assert occurrences(add(text)) == first


def test_until_ends_the_series_on_that_local_day() -> None:
    assert occurrences(add("stretch every day at 7am until dec 3"), count=10)[-1] == "2026-12-03T07:00"


def test_count_limits_the_series() -> None:
    assert len(occurrences(add("physio every monday at 5pm 4 times"), count=10)) == 4


def test_recurrence_is_cut_from_the_title() -> None:
    assert add("mom's birthday every year on march 8").title == "mom's birthday"


def test_adjective_use_is_not_recurrence() -> None:
    assert add("add finish the quarterly report by friday").recurrence is None


# ---------------------------------------------------------------- adding: reminders


@pytest.mark.parametrize(
    ("text", "due", "remind_at"),
    [
        ("remind me to call mom at 6pm", "2026-11-29T18:00:00+05:00", "2026-11-29T18:00:00+05:00"),
        ("remind me to stretch in 10 minutes", "2026-11-29T10:10:00+05:00", "2026-11-29T10:10:00+05:00"),
        (
            "dentist appointment on january 12 at 3:15pm, remind me 1 hour before",
            "2027-01-12T15:15:00+05:00",
            "2027-01-12T14:15:00+05:00",
        ),
        ("call Sam tomorrow 5pm, remind me 30 min before", "2026-11-30T17:00:00+05:00", "2026-11-30T16:30:00+05:00"),
        ("buy flowers tomorrow with a reminder at 5pm", "2026-11-30", "2026-11-30T17:00:00+05:00"),
        ("remind me to pay rent tomorrow", "2026-11-30", "2026-11-30T09:00:00+05:00"),
        ("remind me 15 minutes before the call at 3pm", "2026-11-29T15:00:00+05:00", "2026-11-29T14:45:00+05:00"),
        ("set a reminder for 5pm to call the pharmacy", "2026-11-29T17:00:00+05:00", "2026-11-29T17:00:00+05:00"),
        ("add standup every weekday at 9:30, remind me 10 min before", "2026-11-30T09:30:00+05:00",
         "2026-11-30T09:20:00+05:00"),
    ],
)  # fmt: skip
def test_add_reads_reminders(text: str, due: str, remind_at: str) -> None:
    task = add(text)
    assert (task.due, task.remind_at) == (due, remind_at)


def test_reminder_in_the_past_is_dropped() -> None:
    assert add("remind me to water the plants today").remind_at is None  # 09:00 has passed


def test_reminder_phrase_is_cut_from_the_title() -> None:
    assert add("call Sam tomorrow at 5pm, remind me 30 minutes before").title == "call Sam"


# Words the interpreter reads as reminders, priorities or connectors: inside a hyphenated word they are the title's.
KEYWORDS = (
    "ping remind reminder alert notify urgent important critical asap p1 priority "
    "to at in on by for and with due today tomorrow friday noon"
).split()


def test_a_hyphenated_word_in_a_reminder_stays_whole() -> None:
    task = add("remind me to alice-ping in 1 minute")
    assert (task.title, task.remind_at) == ("alice-ping", "2026-11-29T10:01:00+05:00")


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("add e-mail the landlord tomorrow", "e-mail the landlord"),
        ("remind me to book the follow-up at 5pm", "book the follow-up"),
        ("add x-ray on friday, urgent", "x-ray"),
        ("add check-in with the p1-team", "check-in with the p1-team"),
        ("add call mom - urgent", "call mom"),
        ("add - call mom tomorrow", "call mom"),
        ("add ping-asap and the eod-report tomorrow", "ping-asap and the eod-report"),
    ],
)
def test_hyphens_inside_words_belong_to_them_and_a_lone_dash_joins_phrases(text: str, title: str) -> None:
    assert add(text).title == title


@given(
    left=st.sampled_from(KEYWORDS) | st.from_regex(r"[a-z]{1,8}", fullmatch=True),
    right=st.sampled_from(KEYWORDS) | st.from_regex(r"[a-z]{1,8}", fullmatch=True),
)
def test_a_keyword_inside_a_hyphenated_word_is_part_of_the_title(left: str, right: str) -> None:
    word = f"{left}-{right}"
    assert add(f"remind me to {word} in 5 minutes").title == word
    assert add(f"add {word} tomorrow").title == word


# ---------------------------------------------------------------- another zone and date, across a DST change


def test_daily_series_starts_after_the_dst_change_at_local_time() -> None:
    task = add("walk the dog every day at 9am", now=NY_BEFORE_DST)
    assert task.due == "2027-03-14T09:00:00-04:00"


def test_daily_series_stays_at_local_time_across_dst() -> None:
    task = add("walk the dog every day at 9am", now=datetime(2027, 3, 12, 10, 0, tzinfo=NEW_YORK))
    due = datetime.fromisoformat(task.due or "")
    series = list(islice(rrulestr(task.recurrence or "", dtstart=due.astimezone(NEW_YORK)), 3))
    assert [(m.hour, m.utcoffset().total_seconds() / 3600) for m in series] == [(9, -5), (9, -4), (9, -4)]


@pytest.mark.parametrize(
    ("text", "due", "remind_at"),
    [
        ("remind me to check the oven in 2 hours", "2027-03-13T12:00:00-05:00", "2027-03-13T12:00:00-05:00"),
        ("call Ana tomorrow at 9am", "2027-03-14T09:00:00-04:00", None),
        ("pay tolls by tuesday", "2027-03-16", None),
        ("flight sunday 8am, remind me 2 hours before", "2027-03-14T08:00:00-04:00", "2027-03-14T06:00:00-04:00"),
    ],
)
def test_add_in_new_york_around_dst(text: str, due: str, remind_at: str | None) -> None:
    task = add(text, now=NY_BEFORE_DST)
    assert (task.due, task.remind_at) == (due, remind_at)


def test_timed_until_is_the_named_local_day_in_new_york() -> None:
    task = add("stretch every day at 7am until mar 20", now=NY_BEFORE_DST)
    assert task.recurrence == "FREQ=DAILY;UNTIL=20270320"
    assert occurrences(task, NEW_YORK, count=10)[-1] == "2027-03-20T07:00"


def test_listing_dates_are_days_in_the_persons_zone() -> None:
    late_evening = datetime(2027, 3, 13, 22, 0, tzinfo=NEW_YORK)  # already the 14th in UTC
    assert interpret("what's due today?", now=late_evening) == ListTasks(
        {"due_after": "2027-03-13", "due_before": "2027-03-13"}
    )


def test_series_skips_a_wall_time_lost_to_dst() -> None:
    task = add("feed the cat every day at 2:30am", now=datetime(2027, 3, 14, 1, 0, tzinfo=NEW_YORK))
    assert task.due == "2027-03-15T02:30:00-04:00"


# ---------------------------------------------------------------- listing


@pytest.mark.parametrize(
    ("text", "arguments"),
    [
        ("show my tasks", {}),
        ("what's on my list", {}),
        ("list completed tasks", {"status": "completed"}),
        ("show my open tasks", {"status": "open"}),
        ("show all tasks including done ones", {"status": "all"}),
        ("show my high priority tasks", {"priority": "high"}),
        ("any urgent tasks?", {"priority": "high"}),
        ("what's due today?", {"due_after": "2026-11-29", "due_before": "2026-11-29"}),
        ("what do I have tomorrow", {"due_after": "2026-11-30", "due_before": "2026-11-30"}),
        ("what's due this week", {"due_after": "2026-11-29", "due_before": "2026-12-05"}),
        ("show tasks for next week", {"due_after": "2026-11-30", "due_before": "2026-12-06"}),
        ("anything due before friday?", {"due_before": "2026-12-04"}),
        ("show tasks due after dec 10", {"due_after": "2026-12-10"}),
        ("what's overdue", {"overdue": True}),
        ("find tasks about lisbon", {"query": "lisbon"}),
        ("search for dentist", {"query": "dentist"}),
        ("look for Passport", {"query": "Passport"}),
        ("tasks tagged work", {"tags": ["work"]}),
        ("show #work", {"tags": ["work"]}),
        ("low priority tasks tagged home", {"tags": ["home"], "priority": "low"}),
        ("show today's tasks", {"due_after": "2026-11-29", "due_before": "2026-11-29"}),
        ("tomorrow's todos", {"due_after": "2026-11-30", "due_before": "2026-11-30"}),
        ("what's on for tomorrow?", {"due_after": "2026-11-30", "due_before": "2026-11-30"}),
        ("anything on this weekend?", {"due_after": "2026-12-05", "due_before": "2026-12-06"}),
        ("show my work tasks", {"tags": ["work"]}),
        (
            "what are my home tasks due tomorrow",
            {"tags": ["home"], "due_after": "2026-11-30", "due_before": "2026-11-30"},
        ),
        ("show my shopping list", {"tags": ["shopping"]}),
        ("show my to-do list", {}),
        ("show my new tasks", {}),
    ],
)
def test_listing_passes_only_what_was_said(text: str, arguments: dict) -> None:
    assert interpret(text, now=NOW) == ListTasks(arguments)


# ---------------------------------------------------------------- changing a task by name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mark buy milk as done", ChangeTask("complete", "buy milk", {})),
        ("complete call", ChangeTask("complete", "call", {})),
        ("done with the report", ChangeTask("complete", "report", {})),
        ("I finished Slides for Monday review", ChangeTask("complete", "Slides for Monday review", {})),
        ("check off pick up parcel", ChangeTask("complete", "pick up parcel", {})),
        ("the laundry is done", ChangeTask("complete", "laundry", {})),
        ("finish the slides", ChangeTask("complete", "slides", {})),
        ("mark 'Buy Milk' done", ChangeTask("complete", "Buy Milk", {})),
        ("reopen buy milk", ChangeTask("reopen", "buy milk", {})),
        ("mark water plants as not done", ChangeTask("reopen", "water plants", {})),
        ("delete clean garage", ChangeTask("delete", "clean garage", {})),
        ("remove call Ahmed from my list", ChangeTask("delete", "call Ahmed", {})),
        ("cancel the task yoga class", ChangeTask("delete", "yoga class", {})),
    ],
)
def test_actions_on_a_named_task(text: str, expected: ChangeTask) -> None:
    assert interpret(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "name", "changes"),
    [
        ("move call the bank to monday", "call the bank", {"due": "2026-11-30"}),
        ("push team lunch to 2pm", "team lunch", {"due_time": "14:00"}),
        ("reschedule dentist for friday at 11am", "dentist", {"due": "2026-12-04T11:00:00+05:00"}),
        ("move talk to Bob to tomorrow", "talk to Bob", {"due": "2026-11-30"}),
        ("postpone the demo until dec 20", "demo", {"due": "2026-12-20"}),
        ("set pay rent due tomorrow", "pay rent", {"due": "2026-11-30"}),
        ("push back the report to monday", "report", {"due": "2026-11-30"}),
        ("change call mom's due date to dec 2", "call mom", {"due": "2026-12-02"}),
        ("set taxes to low", "taxes", {"priority": "low"}),
        ("rename buy milk to buy oat milk", "buy milk", {"title": "buy oat milk"}),
        ("change the priority of write blog post to high", "write blog post", {"priority": "high"}),
        ("set buy groceries priority to low", "buy groceries", {"priority": "low"}),
        ("make taxes low priority", "taxes", {"priority": "low"}),
        ("mark the report as urgent", "report", {"priority": "high"}),
        ("prioritize renew visa", "renew visa", {"priority": "high"}),
        ("tag book flights with travel", "book flights", {"add_tags": ["travel"]}),
        ("tag budget with finance and q4", "budget", {"add_tags": ["finance", "q4"]}),
        ("add #errands to buy stamps", "buy stamps", {"add_tags": ["errands"]}),
        ("add a note to the report: include charts", "report", {"description": "include charts"}),
    ],
)
def test_updates_to_a_named_task(text: str, name: str, changes: dict) -> None:
    assert interpret(text, now=NOW) == ChangeTask("update", name, changes)


def test_complete_with_a_date_is_a_new_task() -> None:
    assert add("complete the tax form by friday").title == "complete the tax form"


# ---------------------------------------------------------------- bulk deletion, answers, the rest


@pytest.mark.parametrize(
    "text",
    ["delete all completed tasks", "clear completed", "clear done tasks", "remove finished tasks",
     "delete everything that's done", "please purge all my completed tasks"],
)  # fmt: skip
def test_bulk_deletion_of_completed_tasks(text: str) -> None:
    assert interpret(text, now=NOW) == DeleteCompleted()


@pytest.mark.parametrize(
    ("text", "yes"),
    [("yes", True), ("y", True), ("Sure!", True), ("ok", True), ("confirm", True), ("do it", True),
     ("yep, do it", True), ("Yes please.", True), ("no", False), ("cancel", False), ("never mind", False),
     ("nope, cancel", False)],
)  # fmt: skip
def test_answers(text: str, yes: bool) -> None:
    assert interpret(text, now=NOW) == Answer(yes)


@pytest.mark.parametrize(
    "text",
    ["how are you?", "hello", "thanks!", "", "what's the weather tomorrow?", "tell me a joke", "asdfgh",
     "is it going to rain on friday?", "add", "every day at 8am"],
)  # fmt: skip
def test_anything_else_is_unclear(text: str) -> None:
    command = interpret(text, now=NOW)
    assert isinstance(command, Unclear)
    assert command.text == text


@pytest.mark.parametrize("text", ["hello", "Hi there!", "hey", "good morning", "Hello TaskFlow"])
def test_a_greeting_is_greeted(text: str) -> None:
    assert interpret(text, now=NOW) == Unclear(text, pleasantry="hello")


@pytest.mark.parametrize(
    "text", ["thanks", "Thank you so much!", "thx", "ok thanks", "great, thanks!", "cheers", "thanks for the help"]
)
def test_thanks_are_taken_as_thanks(text: str) -> None:
    assert interpret(text, now=NOW) == Unclear(text, pleasantry="thanks")


@pytest.mark.parametrize("text", ["bye", "Goodbye!", "see you later", "see ya", "good night", "ttyl", "ok bye"])
def test_a_farewell_is_taken_as_one(text: str) -> None:
    assert interpret(text, now=NOW) == Unclear(text, pleasantry="bye")


@pytest.mark.parametrize("text", ["thanks for buying milk", "thank the team for the launch", "see my tasks"])
def test_pleasantries_with_more_said_are_not_taken_as_pleasantries_alone(text: str) -> None:
    assert getattr(interpret(text, now=NOW), "pleasantry", None) is None


@pytest.mark.parametrize(
    ("text", "suggestions"),
    [
        ("zxcvb", ("add zxcvb", "what's due today?")),
        ("blorp qwerty?", ("what's due today?", "how many open tasks are there?")),
        ("what's the weather tomorrow?", ("add what's the weather tomorrow", "what's due tomorrow?")),
        ("is it going to rain on friday?", ("add it going to rain on friday", "what's due on friday?")),
    ],
)
def test_unclear_text_gets_two_suggestions_from_what_was_read(text: str, suggestions: tuple[str, str]) -> None:
    command = interpret(text, now=NOW)
    assert isinstance(command, Unclear)
    assert (command.suggestions, command.pleasantry) == (suggestions, None)


@pytest.mark.parametrize("text", ["gym every monday", "tomorrow 5pm dinner with Zoe", "#home fix the shelf"])
def test_statements_without_a_verb_are_tasks(text: str) -> None:
    assert isinstance(interpret(text, now=NOW), AddTask)


@pytest.mark.parametrize(
    "text",
    [
        "buy eggs, milk and bread",
        "call the plumber about the leak",
        "fix the leaking tap",
        "walk the dog",
        "go to the gym",
    ],
)
def test_a_to_do_said_alone_is_a_task(text: str) -> None:
    assert add(text).title == text


@pytest.mark.parametrize(
    "text", ["take care", "hows it going", "ok cool", "call you later", "is the rent paid?", "get well soon"]
)
def test_talk_and_questions_add_no_task(text: str) -> None:
    assert not isinstance(interpret(text, now=NOW), AddTask)


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        interpret("add buy milk", now=datetime(2026, 11, 29, 10, 0))


# ---------------------------------------------------------------- references, questions and ordering


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("change the gym thing to 7pm", ChangeTask("update", "gym", {"due_time": "19:00"})),
        ("remove the visa task", ChangeTask("delete", "visa", {})),
        ("call off lunch with Ana", ChangeTask("delete", "lunch with Ana", {})),
        ("I've done the laundry already", ChangeTask("complete", "laundry", {})),
        ("scrap that dentist thing", ChangeTask("delete", "dentist", {})),
    ],
)
def test_references_lose_their_filler_words(text: str, expected: ChangeTask) -> None:
    assert interpret(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "arguments", "count_only", "completed"),
    [
        ("what's due on friday?", {"due_after": "2026-12-04", "due_before": "2026-12-04"}, False, None),
        ("how many open tasks are there?", {"status": "open", "limit": 200}, True, None),
        ("what did I complete this week?", {"status": "completed", "sort_by": "created", "limit": 200}, False,
         ("2026-11-23", "2026-11-29")),
        ("what did I finish this week?", {"status": "completed", "sort_by": "created", "limit": 200}, False,
         ("2026-11-23", "2026-11-29")),
        ("what have I finished today?", {"status": "completed", "sort_by": "created", "limit": 200}, False,
         ("2026-11-29", "2026-11-29")),
        ("order my list by due date", {"sort_by": "due"}, False, None),
        ("sort my tasks by priority", {"sort_by": "priority"}, False, None),
        ("show my tasks alphabetically", {"sort_by": "title"}, False, None),
        ("list tasks newest first", {"sort_by": "created", "order": "desc"}, False, None),
    ],
)  # fmt: skip
def test_questions_about_days_states_and_order(text, arguments, count_only, completed) -> None:
    assert interpret(text, now=NOW) == ListTasks(arguments, count_only, completed)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("move the dentist forward by two days", ChangeTask("update", "dentist", {"shift": {"days": 2}})),
        ("push back the report by one week", ChangeTask("update", "report", {"shift": {"weeks": 1}})),
        ("delay rent by a month", ChangeTask("update", "rent", {"shift": {"months": 1}})),
        ("move gym 3 days earlier", ChangeTask("update", "gym", {"shift": {"days": -3}})),
        ("make the gym thing less important", ChangeTask("update", "gym", {"priority_step": -1})),
        ("make taxes more urgent", ChangeTask("update", "taxes", {"priority_step": 1})),
        ("clear the date on taxes", ChangeTask("update", "taxes", {"due": ""})),
        ("remove the due date from the taxes task", ChangeTask("update", "taxes", {"due": ""})),
        ("untag taxes from work", ChangeTask("update", "taxes", {"remove_tags": ["work"]})),
        ("remove the work tag from taxes", ChangeTask("update", "taxes", {"remove_tags": ["work"]})),
        ("tag taxes with home", ChangeTask("update", "taxes", {"add_tags": ["home"]})),
        ("attach a note to taxes saying bring the receipts",
         ChangeTask("update", "taxes", {"description": "bring the receipts"})),
    ],
)  # fmt: skip
def test_relative_changes(text: str, expected: ChangeTask) -> None:
    assert interpret(text, now=NOW) == expected


# ---------------------------------------------------------------- schedules said in other ways


@pytest.mark.parametrize(
    ("text", "rule", "first"),
    [
        ("gym tue and thu at 5pm", "FREQ=WEEKLY;BYDAY=TU,TH",
         ["2026-12-01T17:00", "2026-12-03T17:00", "2026-12-08T17:00"]),
        ("yoga on mon, wed and fri at 7 in the morning", "FREQ=WEEKLY;BYDAY=MO,WE,FR",
         ["2026-11-30T07:00", "2026-12-02T07:00", "2026-12-04T07:00"]),
        ("book club the second tuesday of each month at 7pm", "FREQ=MONTHLY;BYDAY=2TU",
         ["2026-12-08T19:00", "2027-01-12T19:00", "2027-02-09T19:00"]),
        ("pay rent on the last friday of every month", "FREQ=MONTHLY;BYDAY=-1FR",
         ["2026-12-25", "2027-01-29", "2027-02-26"]),
        ("clean every saturday and sunday", "FREQ=WEEKLY;BYDAY=SA,SU", ["2026-11-29", "2026-12-05", "2026-12-06"]),
        ("stretch every 4 hours from 9am", "FREQ=HOURLY;INTERVAL=4",
         ["2026-11-30T09:00", "2026-11-30T13:00", "2026-11-30T17:00"]),
    ],
)  # fmt: skip
def test_schedules_in_other_words(text: str, rule: str, first: list[str]) -> None:
    task = add(text)
    assert task.recurrence == rule
    assert occurrences(task) == first


def test_call_on_one_day_or_another_is_no_schedule() -> None:
    assert add("call bob mon or tue").recurrence is None


def test_a_reminder_an_hour_before_is_relative_to_due() -> None:
    task = add("dentist friday 3pm and remind me an hour before")
    assert (task.due, task.remind_at) == ("2026-12-04T15:00:00+05:00", "2026-12-04T14:00:00+05:00")


def test_a_reminder_the_day_before_is_relative_to_due() -> None:
    task = add("dentist friday 3pm, remind me the day before")
    assert (task.title, task.remind_at) == ("dentist", "2026-12-03T15:00:00+05:00")


@pytest.mark.parametrize(
    "text",
    [
        "undo",
        "undo that",
        "Undo my last change",
        "revert that",
        "please undo the last change",
        "oops, undo that!",
        "can you roll back what I just did?",
        "undo it again",
        "take back my most recent edit",
    ],
)
def test_undo_is_read_in_other_words(text: str) -> None:
    assert interpret(text, now=NOW) == Undo()


@pytest.mark.parametrize("text", ["undo the report task", "add revert the migration tomorrow", "reverse the car in"])
def test_undo_words_inside_a_request_about_a_task_are_not_an_undo(text: str) -> None:
    assert interpret(text, now=NOW) != Undo()


# ---------------------------------------------------------------- moving many tasks

TODAY = {"due_after": "2026-11-29", "due_before": "2026-11-29"}
FRIDAY = {"due_after": "2026-12-04", "due_before": "2026-12-04"}


@pytest.mark.parametrize(
    ("text", "selection", "due"),
    [
        ("push everything to tomorrow", {"due_before": "2026-11-29"}, "2026-11-30"),
        ("move everything due today to friday", {"due_after": "2026-11-29", "due_before": "2026-11-29"}, "2026-12-04"),
        (
            "move all of today's tasks to tomorrow",
            {"due_after": "2026-11-29", "due_before": "2026-11-29"},
            "2026-11-30",
        ),
        ("move friday's tasks to monday", {"due_after": "2026-12-04", "due_before": "2026-12-04"}, "2026-11-30"),
        ("move my tasks from friday to monday", {"due_after": "2026-12-04", "due_before": "2026-12-04"}, "2026-11-30"),
        ("reschedule all overdue tasks for tomorrow 9am", {"overdue": True}, "2026-11-30T09:00:00+05:00"),
        ("push back all my work tasks to next week", {"tags": ["work"]}, "2026-11-30"),
        ("postpone the rest of my tasks to tomorrow", {"due_before": "2026-11-29"}, "2026-11-30"),
    ],
)
def test_moving_many_tasks_selects_them_as_a_listing_would(text: str, selection: dict, due: str) -> None:
    assert interpret(text, now=NOW) == MoveTasks(selection, due)


@pytest.mark.parametrize(
    "text", ["move the dentist to friday", "push the report back to friday", "move the tasks for the party to saturday"]
)
def test_moving_one_named_task_is_not_moving_many(text: str) -> None:
    assert isinstance(interpret(text, now=NOW), ChangeTask)


@pytest.mark.parametrize("text", ["i wanted to call mom", "i missed the bus", "i have a cold", "i used to run"])
def test_things_said_of_the_past_that_finish_no_task(text: str) -> None:
    assert not isinstance(interpret(text, now=NOW), ChangeTask | AddTask)


# ---------------------------------------------------------------- as people really type


@pytest.mark.parametrize(
    ("text", "title", "due"),
    [
        ("hey can u add pick up dry cleaning on friday", "pick up dry cleaning", "2026-12-04"),
        ("could you plz add renew the permit", "renew the permit", None),
        ("add grab coffee beans thx", "grab coffee beans", None),
        ("add water the lawn cheers", "water the lawn", None),
        ("send the report eow", "send the report", "2026-12-04"),
    ],
)
def test_chatty_openers_and_thanks_are_not_the_title(text: str, title: str, due: str | None) -> None:
    task = add(text)
    assert (task.title, task.due) == (title, due)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ive done the laundry", ChangeTask("complete", "laundry", {})),
        ("i’ve done the laundry", ChangeTask("complete", "laundry", {})),
        ("im done with the laundry", ChangeTask("complete", "laundry", {})),
        ("the laundry isnt done", ChangeTask("reopen", "laundry", {})),
        ("whens the dentist", ListTasks({"query": "dentist"})),
    ],
)
def test_apostrophes_left_out_or_typed_curly(text: str, expected: object) -> None:
    assert interpret(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mark that one done", ChangeTask("complete", PREVIOUS, {})),
        ("thats done", ChangeTask("complete", PREVIOUS, {})),
        ("it's not done", ChangeTask("reopen", PREVIOUS, {})),
        ("delete the last one", ChangeTask("delete", PREVIOUS, {})),
        ("actually make it high priority", ChangeTask("update", PREVIOUS, {"priority": "high"})),
        ("move this to sunday", ChangeTask("update", PREVIOUS, {"due": "2026-12-06"})),
        ("remind me of it 30 mins beforehand", ChangeTask("update", PREVIOUS, {"remind_before": 1800})),
    ],
)
def test_it_and_that_one_name_the_task_talked_about(text: str, expected: ChangeTask) -> None:
    assert interpret(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("remind me about the dentist an hour before", ChangeTask("update", "dentist", {"remind_before": 3600})),
        ("set a reminder for the flight 2 hours before", ChangeTask("update", "flight", {"remind_before": 7200})),
        ("remind me about the vet the day before", ChangeTask("update", "vet", {"remind_before": 86400})),
    ],
)
def test_a_reminder_about_a_named_task_said_before_the_offset(text: str, expected: ChangeTask) -> None:
    assert interpret(text, now=NOW) == expected


def test_a_reminder_for_a_new_task_with_the_offset_after_its_date() -> None:
    task = add("remind me about the meeting at 3pm tomorrow an hour before")
    assert (task.title, task.due, task.remind_at) == (
        "the meeting",
        "2026-11-30T15:00:00+05:00",
        "2026-11-30T14:00:00+05:00",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("push the report back a fortnight", ChangeTask("update", "report", {"shift": {"weeks": 2}})),
        ("push the report back a couple of days", ChangeTask("update", "report", {"shift": {"days": 2}})),
        ("delay rent by two fortnights", ChangeTask("update", "rent", {"shift": {"weeks": 4}})),
    ],
)
def test_fortnights_and_a_couple_move_a_task(text: str, expected: ChangeTask) -> None:
    assert interpret(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "title", "rule", "first"),
    [
        ("water the plants every fortnight", "water the plants", "FREQ=WEEKLY;INTERVAL=2",
         ["2026-11-29", "2026-12-13", "2026-12-27"]),
        ("bins every fortnight on tuesday", "bins", "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU",
         ["2026-12-01", "2026-12-15", "2026-12-29"]),
        ("put the bins out every other thursday night", "put the bins out", "FREQ=WEEKLY;INTERVAL=2;BYDAY=TH",
         ["2026-12-03T20:00", "2026-12-17T20:00", "2026-12-31T20:00"]),
        ("yoga mondays evening", "yoga", "FREQ=WEEKLY;BYDAY=MO",
         ["2026-11-30T19:00", "2026-12-07T19:00", "2026-12-14T19:00"]),
    ],
)  # fmt: skip
def test_fortnights_and_the_part_of_the_day_after_weekdays(text: str, title: str, rule: str, first: list[str]) -> None:
    task = add(text)
    assert (task.title, task.recurrence) == (title, rule)
    assert occurrences(task) == first


@pytest.mark.parametrize(
    ("text", "arguments", "count_only"),
    [
        ("how many things do i have left", {"status": "open", "limit": 200}, True),
        ("what's left", {"status": "open"}, False),
        ("show me the remaining tasks", {"status": "open"}, False),
        ("find tasks about left-handed scissors", {"query": "left-handed scissors"}, False),
    ],
)
def test_what_is_left_is_what_is_open(text: str, arguments: dict, count_only: bool) -> None:
    assert interpret(text, now=NOW) == ListTasks(arguments, count_only=count_only)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dentist is now thursday", ChangeTask("update", "dentist", {"due": "2026-12-03"})),
        ("the dentist's now on friday", ChangeTask("update", "dentist", {"due": "2026-12-04"})),
        ("report's done", ChangeTask("complete", "report", {})),
        ("the boiler has been taken care of", ChangeTask("complete", "boiler", {})),
        ("lunch is now sorted", ChangeTask("complete", "lunch", {})),
        ("mark the invoices as sorted", ChangeTask("complete", "invoices", {})),
        ("done w the report", ChangeTask("complete", "report", {})),
        ("make the report a priority", ChangeTask("update", "report", {"priority": "high"})),
        ("forget the dentist", ChangeTask("delete", "dentist", {})),
    ],
)
def test_changes_said_the_way_people_say_them(text: str, expected: ChangeTask) -> None:
    assert interpret(text, now=NOW) == expected


def test_dont_forget_without_to_adds_what_follows() -> None:
    assert add("don't forget the milk").title == "the milk"
    assert not isinstance(interpret("forget to call jo", now=NOW), ChangeTask)


@pytest.mark.parametrize(
    ("text", "arguments"),
    [
        ("whats due this wk", {"due_after": "2026-11-29", "due_before": "2026-12-05"}),
        ("anything on this wknd", {"due_after": "2026-12-05", "due_before": "2026-12-06"}),
    ],
)
def test_week_and_weekend_shorthand_in_questions(text: str, arguments: dict) -> None:
    assert interpret(text, now=NOW) == ListTasks(arguments)


@pytest.mark.parametrize(
    ("text", "title", "due"),
    [
        ("meeting w/ john @ 3pm tmrw", "meeting w/ john", "2026-11-30T15:00:00+05:00"),
        ("add call nan on sunday arvo", "call nan", "2026-12-06T15:00:00+05:00"),
        ("add gym at 6 tomorrow morning", "gym", "2026-11-30T06:00:00+05:00"),
        ("add get a haircut sometime next week", "get a haircut", "2026-11-30"),
        ("add dentist on the 3rd at half 2", "dentist", "2026-12-03T14:30:00+05:00"),
    ],
)
def test_times_said_around_the_day(text: str, title: str, due: str) -> None:
    task = add(text)
    assert (task.title, task.due) == (title, due)


def test_a_weekday_of_the_month_comes_back_each_month() -> None:
    task = add("book club first thursday of the month at 7pm")
    assert (task.title, task.recurrence) == ("book club", "FREQ=MONTHLY;BYDAY=1TH")
    assert occurrences(task) == ["2026-12-03T19:00", "2027-01-07T19:00", "2027-02-04T19:00"]


def test_prio_asks_about_priority() -> None:
    assert interpret("whats high prio", now=NOW) == ListTasks({"priority": "high"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("is the report done?", ListTasks({"query": "report", "status": "all"})),
        ("did i finish the slides", ListTasks({"query": "slides", "status": "all"})),
        ("have i done the laundry yet", ListTasks({"query": "laundry", "status": "all"})),
        ("has the invoice been sorted", ListTasks({"query": "invoice", "status": "all"})),
        ("did i finish anything today", ListTasks({"status": "completed", "sort_by": "created", "limit": 200},
                                                  completed_between=("2026-11-29", "2026-11-29"))),
    ],
)  # fmt: skip
def test_asking_whether_a_task_is_done_looks_it_up(text: str, expected: ListTasks) -> None:
    assert interpret(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["is it done?", "did i pay the rent?", "is the dentist done this week"])
def test_a_question_never_changes_a_task(text: str) -> None:
    command = interpret(text, now=NOW)
    assert not isinstance(command, ChangeTask) or command.action == "ask"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cmplete the report", ChangeTask("complete", "report", {})),
        ("mvoe the dentist to friday", ChangeTask("update", "dentist", {"due": "2026-12-04"})),
        ("resheduel the dentist to friday", ChangeTask("update", "dentist", {"due": "2026-12-04"})),
        ("mkae the report high priority", ChangeTask("update", "report", {"priority": "high"})),
        ("shwo my tasks", ListTasks({})),
        ("fidn dentist", ListTasks({"query": "dentist"})),
        ("ad buy eggs", AddTask("buy eggs")),
    ],
)
def test_a_misspelt_command_verb_is_read_as_the_verb(text: str, expected: object) -> None:
    assert interpret(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "title"),
    [("lists for school friday", "lists for school"), ("snow day tomorrow", "snow day"),
     ("marks homework friday", "marks homework"), ("mow the lawn friday", "mow the lawn")],
)  # fmt: skip
def test_real_words_near_a_verb_stay_in_the_title(text: str, title: str) -> None:
    assert add(text).title == title


@pytest.mark.parametrize(
    "text",
    [
        "dad birthday",
        "lost my keys",
        "sets of keys",
        "delte the dentist",
        "remvoe the dentist",
        "delet all completed tasks",
    ],
)
def test_near_words_and_slips_of_a_deleting_verb_are_no_command(text: str) -> None:
    assert isinstance(interpret(text, now=NOW), Unclear)


@pytest.mark.parametrize(
    ("text", "due"),
    [("add dentist wendesday at 3", "2026-12-02T15:00:00+05:00"), ("add call jo on firday", "2026-12-04"),
     ("add bins out thrusday", "2026-12-03"), ("add brunch saterday", "2026-12-05")],
)  # fmt: skip
def test_misspelt_weekdays_are_read(text: str, due: str) -> None:
    assert add(text).due == due


# ---------------------------------------------------------------- statements about a task, or the task they add


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("the call with mom is urgent", ChangeTask("update", "call with mom", {"priority": "high"})),
        ("groceries are really important", ChangeTask("update", "groceries", {"priority": "high"})),
        ("the dentist thing is low priority", ChangeTask("update", "dentist", {"priority": "low"})),
        ("finish report is not urgent", ChangeTask("update", "finish report", {"priority": "low"})),
        ("the report isn't urgent anymore", ChangeTask("update", "report", {"priority": "low"})),
        ("it's no longer a priority", ChangeTask("update", PREVIOUS, {"priority": "low"})),
        ("put the report on thursday", ChangeTask("update", "report", {"due": "2026-12-03"})),
        ("put the report off until monday", ChangeTask("update", "report", {"due": "2026-11-30"})),
        ("add a work tag to the slides", ChangeTask("update", "slides", {"add_tags": ["work"]})),
        ("the dentist is on friday at 3pm", ChangeTask("update", "dentist", {"due": "2026-12-04T15:00:00+05:00"})),
        ("finish slides - tag it work", ChangeTask("update", "finish slides", {"add_tags": ["work"]})),
        ("remind me about the dentist tomorrow at 9",
         ChangeTask("update", "dentist", {"remind_at": "2026-11-30T09:00:00+05:00"})),
    ],
)  # fmt: skip
def test_a_statement_changes_the_task_it_names(text: str, expected: ChangeTask) -> None:
    command = interpret(text, now=NOW)
    assert isinstance(command, ChangeTask)
    assert (command.action, command.name, command.changes) == (expected.action, expected.name, expected.changes)


@pytest.mark.parametrize(
    ("text", "otherwise"),
    [
        ("the quarterly review is urgent", AddTask("the quarterly review", priority="high")),
        ("put the bins out tonight", AddTask("put the bins out", due="2026-11-29T20:00:00+05:00")),
        ("the report is due monday", AddTask("the report", due="2026-11-30")),
        ("finish slides - tag it work", AddTask("finish slides", tags=("work",))),
        ("remind me about the dentist tomorrow at 9",
         AddTask("the dentist", due="2026-11-30T09:00:00+05:00", remind_at="2026-11-30T09:00:00+05:00")),
    ],
)  # fmt: skip
def test_a_statement_about_no_task_adds_the_one_it_describes(text: str, otherwise: AddTask) -> None:
    command = interpret(text, now=NOW)
    assert isinstance(command, ChangeTask)
    assert command.otherwise == otherwise


@pytest.mark.parametrize(
    "text",
    ["I need to finish the report by friday, it's urgent", "put the bins out every other thursday night",
     "put oil change on the list for next week"],
)  # fmt: skip
def test_a_sentence_that_adds_more_than_a_change_is_a_new_task(text: str) -> None:
    assert isinstance(interpret(text, now=NOW), AddTask)


def test_a_plain_want_of_priority_changes_nothing_without_a_task() -> None:
    assert interpret("the plants can wait", now=NOW) == ChangeTask("update", "plants", {"priority": "low"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("untag book hotel", ChangeTask("update", "book hotel", {"tags": []})),
        ("clear the tags on the slides", ChangeTask("update", "slides", {"tags": []})),
        ("remove the work tag", ChangeTask("update", PREVIOUS, {"remove_tags": ["work"]})),
        ("remove the tags travel and work", ChangeTask("update", PREVIOUS, {"remove_tags": ["travel", "work"]})),
        ("tag it shopping", ChangeTask("update", PREVIOUS, {"add_tags": ["shopping"]})),
    ],
)
def test_tags_taken_off_a_task(text: str, expected: ChangeTask) -> None:
    assert interpret(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("did i pay the rent?", "pay rent"),
        ("is the rent paid?", "pay rent"),
        ("have i booked the flights", "book flights"),
    ],
)
def test_asking_whether_a_task_was_done_by_its_verb(text: str, name: str) -> None:
    assert interpret(text, now=NOW) == ChangeTask("ask", name)


def test_stuff_may_name_one_task_when_no_tasks_carry_the_tag() -> None:
    command = interpret("move the tax stuff to next week", now=NOW)
    assert command == MoveTasks({"tags": ["tax"]}, "2026-11-30", ChangeTask("update", "tax", {"due": "2026-11-30"}))
