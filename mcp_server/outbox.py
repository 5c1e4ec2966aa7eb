"""Appending events to the outbox inside the caller's transaction, and waking whoever waits for them."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Insert, bindparam, func, insert, select, text
from sqlmodel import Session

from mcp_server import telemetry
from mcp_server.event_catalog import EventType
from mcp_server.event_models import OutboxEvent, new_event_id
from mcp_server.models import Change, utcnow

# Wake-up channels: in-process through the unit of work, across processes through PostgreSQL NOTIFY.
OUTBOX_CHANNEL = "taskflow_outbox"
REMINDERS_CHANNEL = "taskflow_reminders"
_INSERT = insert(OutboxEvent.__table__)  # type: ignore[arg-type]


def wake_on_commit(session: Session, channel: str) -> None:
    """Ask for `channel` to be signalled once this transaction commits (and only then)."""
    if _first_ask(session, channel) and session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": channel})


def _first_ask(session: Session, channel: str) -> bool:
    """Note `channel` for the in-process signal after commit; whether this transaction had not asked for it yet."""
    channels: set[str] = session.info.setdefault("wake", set())
    if channel in channels:
        return False
    channels.add(channel)
    return True


_CHANGES = Change.__table__
_OUTBOX = OutboxEvent.__table__
_ROW_KEYS = ("event_id", "topic", "type", "user_id", "data", "traceparent", "created_at", "available_at")
_INSERT_CHANGE = insert(_CHANGES).returning(_CHANGES.c.id)


def record_change(session: Session, change: dict[str, Any]) -> int:
    """Insert a person's change (user_id, made_at, undoes); its id."""
    return session.connection().execute(_INSERT_CHANGE, change).scalar_one()


@cache
def _postgres_insert(channels: tuple[str, ...], with_change: bool) -> Insert:
    """The outbox INSERT that also queues the NOTIFY of `channels` (delivered on commit, like any NOTIFY) and, asked
    to, first inserts the person's change the event belongs to: what would be two or three round trips is one."""
    if not with_change:
        return _INSERT.returning(*(func.pg_notify(channel, "") for channel in channels))
    change = (
        insert(_CHANGES)
        .values({name: bindparam(f"change_{name}") for name in ("user_id", "made_at", "undoes")})
        .returning(_CHANGES.c.id)
        .cte("change")
    )
    columns = [column for column in _OUTBOX.columns if column.key in _ROW_KEYS]
    values = select(*(bindparam(column.key, type_=column.type) for column in columns), change.c.id)
    return (
        insert(_OUTBOX)
        .from_select([*(column.key for column in columns), "change_id"], values)
        .add_cte(change)
        .returning(_OUTBOX.c.change_id, *(func.pg_notify(channel, "") for channel in channels))
    )


def append(
    session: Session,
    *,
    type: EventType,
    user_id: int,
    data: dict[str, Any],
    change_id: int | None = None,
    change: dict[str, Any] | None = None,
    wake: tuple[str, ...] = (),
) -> int | None:
    """Add an event to the outbox in the current transaction: it is published if, and only if, this commits.

    `change_id` names the person's change the event belongs to, so that change can be undone as one; or `change`
    is a new one to record with it (see record_change). The change's id is returned. The relay is woken on commit,
    and so is whoever waits on the `wake` channels. A plain INSERT rather than an ORM object: nothing reads the row
    back in this transaction, and skipping the unit of work's bookkeeping is a good part of a tool call's cost.
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
        "created_at": now,
        "available_at": now,
    }
    # Values as parameters: one compiled statement, reused by every call, run on the connection without the ORM.
    connection = session.connection()
    channels = tuple(channel for channel in (OUTBOX_CHANNEL, *wake) if _first_ask(session, channel))
    if connection.dialect.name == "postgresql" and (channels or change is not None):
        if change is None:
            connection.execute(_postgres_insert(channels, with_change=False), {**row, "change_id": change_id})
            return change_id
        row.update({f"change_{name}": value for name, value in change.items()})
        return connection.execute(_postgres_insert(channels, with_change=True), row).scalar_one()
    if change is not None:
        change_id = record_change(session, change)
    connection.execute(_INSERT, {**row, "change_id": change_id})
    return change_id
