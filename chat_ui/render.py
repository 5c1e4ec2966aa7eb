"""How the chat shows things: task lists as Markdown tables, reminders, the greeting of a returning user."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from agent.render import is_overdue, when_text

# A line of the model's own list of tasks: "• buy milk — due …", "- buy milk", "1. buy milk".
_LIST_ITEM = re.compile(r"^\s*(?:[•*\-–]|\d+[.)])\s+")


def task_table(tasks: list[dict[str, Any]], now: datetime) -> str:
    """A Markdown table of tasks (shared task shape): title, due in the owner's zone, priority, tags, status."""
    today = now.date()
    rows = ["| Task | Due | Priority | Tags | Status |", "| --- | --- | --- | --- | --- |"]
    for task in tasks:
        title = _cell(task["title"]) + (" ↻" if task.get("recurrence") else "")
        tags = " ".join(f"#{tag}" for tag in task.get("tags") or [])
        status = "✓ done" if task.get("status") == "completed" else "**overdue**" if is_overdue(task, now) else "open"
        rows.append(
            f"| {title} | {when_text(task.get('due'), today)} | {task.get('priority', '')} | {_cell(tags)} | {status} |"
        )
    return "\n".join(rows)


def reply_with_table(text: str, tasks: list[dict[str, Any]], now: datetime) -> str:
    """The model's answer with its own list of these tasks replaced by a table (nothing to do without tasks)."""
    if not tasks:
        return text
    titles = [task["title"].casefold() for task in tasks]
    kept = [
        line
        for line in text.splitlines()
        if not (_LIST_ITEM.match(line) and any(title in line.casefold() for title in titles))
    ]
    lead = "\n".join(kept).strip()
    return f"{lead}\n\n{task_table(tasks, now)}" if lead else task_table(tasks, now)


def reminder_text(data: dict[str, Any]) -> str:
    """A reminder.due event as a chat message: what, and when it is due (times already in the owner's zone)."""
    remind_at = data.get("remind_at")
    today = datetime.fromisoformat(remind_at).date() if remind_at else None
    line = f"**Reminder:** {data.get('title', 'a task')}"
    if data.get("due"):
        line += f" — due {when_text(data['due'], today)}"
    if data.get("late") and remind_at:
        line += f"\n\n_(this was set for {when_text(remind_at, today)}; TaskFlow was not running then)_"
    return line


def welcome_text(name: str, open_count: int, due_today: int, overdue: int) -> str:
    """The greeting of a returning user: what needs attention today."""
    if not open_count:
        return f"Welcome back, {name}. You have no open tasks — what's next?"
    parts = [f"{open_count} open task{'s' if open_count != 1 else ''}"]
    if due_today:
        parts.append(f"{due_today} due today")
    if overdue:
        parts.append(f"{overdue} overdue")
    return f"Welcome back, {name}. You have {', '.join(parts)}. Ask me what's due, or tell me what to add."


def _cell(text: str) -> str:
    """Table cells cannot hold pipes or line breaks."""
    return text.replace("|", "\\|").replace("\n", " ")
