"""Appending events to the outbox inside the caller's transaction, and waking whoever waits for them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, text
from sqlmodel import Session

from mcp_server import telemetry
from mcp_server.event_catalog import EventType
from mcp_server.event_models import OutboxEvent, new_event_id
from mcp_server.models import utcnow

# Wake-up channels: in-process through the unit of work, across processes through PostgreSQL NOTIFY.
OUTBOX_CHANNEL = "taskflow_outbox"
REMINDERS_CHANNEL = "taskflow_reminders"
_INSERT = insert(OutboxEvent.__table__)  # type: ignore[arg-type]


def wake_on_commit(session: Session, channel: str) -> None:
    """Ask for `channel` to be signalled once this transaction commits (and only then)."""
    channels: set[str] = session.info.setdefault("wake", set())
    if channel in channels:
        return
    channels.add(channel)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": channel})


def append(
    session: Session, *, type: EventType, user_id: int, data: dict[str, Any], change_id: int | None = None
) -> None:
    """Add an event to the outbox in the current transaction: it is published if, and only if, this commits.

    `change_id` names the person's change the event belongs to, so that change can be undone as one. A plain
    INSERT rather than an ORM object: nothing reads the row back in this transaction, and skipping the unit of
    work's bookkeeping is a good part of a tool call's cost.
    """
    carrier = telemetry.current_trace_context()
    now = utcnow()
    row = {
        "event_id": new_event_id(),
        "topic": type.topic,
        "type": type.value,
        "user_id": user_id,
        "data": data,
        "traceparent": carrier.get("traceparent"),
        "change_id": change_id,
        "created_at": now,
        "available_at": now,
    }
    # Values as parameters: one compiled statement, reused by every call, run on the connection without the ORM.
    session.connection().execute(_INSERT, row)
    wake_on_commit(session, OUTBOX_CHANNEL)
