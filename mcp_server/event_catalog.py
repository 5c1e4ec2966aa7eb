"""The event catalog: CloudEvent types, their topics, and how an outbox row becomes a CloudEvent."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp_server.event_models import OutboxEvent

SOURCE = "/taskflow/task-service"
SPEC_VERSION = "1.0"
TASK_EVENTS = "task-events"
NOTIFICATIONS = "notifications"
TOPICS = (TASK_EVENTS, NOTIFICATIONS)


class EventType(StrEnum):
    task_created = "com.taskflow.task.created"
    task_updated = "com.taskflow.task.updated"
    task_completed = "com.taskflow.task.completed"
    task_reopened = "com.taskflow.task.reopened"
    task_deleted = "com.taskflow.task.deleted"
    reminder_due = "com.taskflow.reminder.due"

    @property
    def topic(self) -> str:
        return NOTIFICATIONS if self is EventType.reminder_due else TASK_EVENTS


def to_cloudevent(row: OutboxEvent) -> dict[str, Any]:
    """CloudEvents 1.0 in JSON; the row's UUID is the event id, so a retried publish is recognisably the same."""
    event: dict[str, Any] = {
        "specversion": SPEC_VERSION,
        "id": row.event_id,
        "source": SOURCE,
        "type": row.type,
        "time": row.created_at.isoformat(),
        "datacontenttype": "application/json",
        "subject": str(row.user_id),
        "data": row.data,
    }
    if row.traceparent:
        event["traceparent"] = row.traceparent
    return event
