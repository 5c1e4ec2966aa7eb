"""Tasks as people read them in a reply: title first, then when, how important, and labels."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from agent.schedules import schedule_text
from mcp_server.dates import when_text


def is_overdue(task: dict[str, Any], now: datetime) -> bool:
    """An open task whose due day (all-day task) or moment has passed; `now` is aware."""
    due = task.get("due")
    if not due or task.get("status") == "completed":
        return False
    if len(due) == 10:
        return date.fromisoformat(due) < now.date()
    return datetime.fromisoformat(due) < now


def describe(task: dict[str, Any], today: date | None = None) -> str:
    """'buy milk — due Mon 30 Nov 17:00 · high priority · #errands'."""
    details = []
    if task.get("due"):
        details.append(f"due {when_text(task['due'], today)}")
    if task.get("recurrence"):
        details.append(schedule_text(task["recurrence"], task.get("due")))
    if task.get("priority") and task["priority"] != "medium":
        details.append(f"{task['priority']} priority")
    details.extend(f"#{tag}" for tag in task.get("tags") or [])
    if task.get("status") == "completed":
        details.append("done")
    return task["title"] + (" — " + " · ".join(details) if details else "")


def task_list(tasks: list[dict[str, Any]], today: date | None = None) -> str:
    return "\n".join(f"• {describe(task, today)}" for task in tasks)
