"""How the chat shows tasks, reminders and greetings."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from chat_ui.render import reminder_text, reply_with_table, task_table, welcome_text

TODAY = date(2026, 11, 29)
NOW = datetime(2026, 11, 29, 9, 0, tzinfo=ZoneInfo("Asia/Karachi"))
MILK = {"title": "buy milk", "due": "2026-11-30T17:00:00+05:00", "priority": "high", "tags": ["errands"]}
RENT = {"title": "pay | rent", "due": "2026-12-01", "priority": "medium", "tags": [], "recurrence": "FREQ=MONTHLY"}


def test_a_task_table_has_a_row_per_task_with_due_in_the_owners_words():
    lines = task_table([MILK, RENT | {"status": "completed"}], NOW).splitlines()
    assert lines[0] == "| Task | Due | Priority | Tags | Status |"
    assert lines[2] == "| buy milk | Mon 30 Nov 17:00 | high | #errands | open |"
    assert lines[3] == "| pay \\| rent ↻ | Tue 1 Dec | medium |  | ✓ done |"


def test_open_tasks_past_their_due_moment_or_day_are_marked_overdue():
    earlier_today = MILK | {"title": "call mum", "due": "2026-11-29T08:59:00+05:00"}
    yesterday = RENT | {"title": "water plants", "due": "2026-11-28", "status": "open"}
    later_today = MILK | {"title": "walk", "due": "2026-11-29T09:01:00+05:00"}
    today_all_day = RENT | {"title": "read", "due": "2026-11-29"}
    done_late = yesterday | {"status": "completed"}
    rows = task_table([earlier_today, yesterday, later_today, today_all_day, done_late], NOW).splitlines()[2:]
    assert [row.rsplit("|", 2)[1].strip() for row in rows] == ["**overdue**", "**overdue**", "open", "open", "✓ done"]


def test_the_models_own_list_of_the_tasks_gives_way_to_the_table():
    answer = "2 tasks:\n• buy milk — due Mon 30 Nov 17:00 · high priority\n• pay | rent — due Tue 1 Dec"
    shown = reply_with_table(answer, [MILK, RENT], NOW)
    assert shown.startswith("2 tasks:\n\n| Task |")
    assert "•" not in shown


def test_prose_stays_and_without_tasks_nothing_changes():
    assert reply_with_table("No tasks match.", [], NOW) == "No tasks match."
    shown = reply_with_table("Here you go — buy milk is the urgent one.", [MILK], NOW)
    assert shown.startswith("Here you go — buy milk is the urgent one.\n\n| Task |")


def test_a_reminder_reads_as_what_and_when():
    data = {"title": "stretch", "due": "2026-11-29T10:05:00+05:00", "remind_at": "2026-11-29T10:05:00+05:00"}
    assert reminder_text(data) == "**Reminder:** stretch — due Sun 29 Nov 10:05"
    assert "was not running" in reminder_text(data | {"late": True})


def test_a_returning_user_hears_what_needs_attention():
    assert welcome_text("sam", 3, 1, 2) == (
        "Welcome back, sam. You have 3 open tasks, 1 due today, 2 overdue. Ask me what's due, or tell me what to add."
    )
    assert welcome_text("sam", 0, 0, 0) == "Welcome back, sam. You have no open tasks — what's next?"
