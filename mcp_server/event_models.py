"""Event tables: the outbox (events written with the change), the inbox (events a consumer has handled) and the
deliveries that failed (retried while the cause may pass, dead letters once given up)."""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Index, Integer, String, Text, text
from sqlmodel import Field, SQLModel

from mcp_server.models import JSONDocument, UTCDateTime, partial_index, utcnow

UNSENT = text("sent_at IS NULL")


def new_event_id() -> str:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits from the OS.

    Nobody can predict the next one, so nobody can claim it in a consumer's inbox before the real event arrives;
    the time prefix keeps ids in creation order. Python 3.11's uuid module has no uuid7, and six lines spare a
    dependency.
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 9562 variant
    return str(uuid.UUID(int=value))


class OutboxEvent(SQLModel, table=True):
    """One CloudEvent waiting to be published; `id` orders the outbox, `event_id` is the CloudEvent id."""

    __tablename__ = "outbox"
    __table_args__ = (
        # The relay's queue: unsent rows in order, and per user for the ordering check.
        partial_index("ix_outbox_unsent", "id", where=UNSENT),
        partial_index("ix_outbox_unsent_user", "user_id", "id", where=UNSENT),
        Index("ix_outbox_sent_at", "sent_at"),
        # Streams waiting on a leased or backed-off event, which the relay's claim skips.
        partial_index("ix_outbox_unsent_available", "available_at", where=UNSENT),
        Index("ix_outbox_change", "change_id"),
        # Row ids must never come back: they order each user's stream (SQLite reuses rowids otherwise).
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    )
    event_id: str = Field(default_factory=new_event_id, sa_column=Column(String(36), nullable=False))
    topic: str = Field(sa_column=Column(String(100), nullable=False))
    type: str = Field(sa_column=Column(String(100), nullable=False))
    user_id: int = Field(sa_column=Column(Integer(), nullable=False))
    data: dict[str, Any] = Field(sa_column=Column(JSONDocument(), nullable=False))
    traceparent: str | None = Field(default=None, sa_column=Column(String(55), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    # A claimed or failing row is not tried again before this moment (lease, then capped backoff).
    available_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    attempts: int = Field(default=0, sa_column=Column(Integer(), nullable=False, server_default="0"))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    # The person's change this event belongs to (undo reverses a change's events); None for consumers' events.
    change_id: int | None = Field(default=None, sa_column=Column(BigInteger(), nullable=True))


class InboxEntry(SQLModel, table=True):
    """An event a consumer has handled; the primary key makes redelivery a no-op.

    CloudEvents are unique by source and id together, so an event from elsewhere can never stand in for ours.
    """

    __tablename__ = "inbox"

    consumer: str = Field(sa_column=Column(String(50), primary_key=True))
    source: str = Field(sa_column=Column(String(200), primary_key=True))
    event_id: str = Field(sa_column=Column(String(100), primary_key=True))
    handled_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class DeliveryFailure(SQLModel, table=True):
    """An event a consumer could not handle: retried while the cause may pass, a dead letter once given up.

    A dead letter settles its event (later events of the same stream go on) until `taskflow events retry`
    hands it to the consumer again.
    """

    __tablename__ = "delivery_failures"
    __table_args__ = (
        Index("uq_delivery_failures_event", "consumer", "source", "event_id", unique=True),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    consumer: str = Field(sa_column=Column(String(50), nullable=False))
    topic: str = Field(sa_column=Column(String(100), nullable=False))
    source: str = Field(sa_column=Column(String(200), nullable=False))
    event_id: str = Field(sa_column=Column(String(100), nullable=False))
    # JSON text escaped to ASCII: any payload can be kept, even one with characters a JSONB column refuses.
    envelope: str = Field(sa_column=Column(Text(), nullable=False))
    error: str = Field(sa_column=Column(String(1000), nullable=False))
    attempts: int = Field(sa_column=Column(Integer(), nullable=False))
    first_attempt_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_attempt_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    given_up_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))

    def cloudevent(self) -> dict[str, Any]:
        return json.loads(self.envelope)
