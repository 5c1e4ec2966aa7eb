"""Appending events to the outbox inside the caller's transaction, and waking whoever waits for them."""

from __future__ import annotations

from typing import Any

from opentelemetry.propagate import inject
from sqlalchemy import text
from sqlmodel import Session

from mcp_server.event_catalog import EventType
from mcp_server.event_models import OutboxEvent

# Wake-up channels: in-process through the unit of work, across processes through PostgreSQL NOTIFY.
OUTBOX_CHANNEL = "taskflow_outbox"
REMINDERS_CHANNEL = "taskflow_reminders"


def wake_on_commit(session: Session, channel: str) -> None:
    """Ask for `channel` to be signalled once this transaction commits (and only then)."""
    channels: set[str] = session.info.setdefault("wake", set())
    if channel in channels:
        return
    channels.add(channel)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": channel})


def append(session: Session, *, type: EventType, user_id: int, data: dict[str, Any]) -> OutboxEvent:
    """Add an event to the outbox in the current transaction: it is published if, and only if, this commits."""
    carrier: dict[str, str] = {}
    inject(carrier)
    row = OutboxEvent(
        topic=type.topic, type=type.value, user_id=user_id, data=data, traceparent=carrier.get("traceparent")
    )
    session.add(row)
    wake_on_commit(session, OUTBOX_CHANNEL)
    return row
