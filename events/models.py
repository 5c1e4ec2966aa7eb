"""Event tables: the outbox (events written with the change) and the inbox (event ids a consumer has handled)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from mcp_server.models import UTCDateTime, utcnow

UNSENT = text("sent_at IS NULL")


class OutboxEvent(SQLModel, table=True):
    """One CloudEvent waiting to be published; its id becomes the CloudEvent id."""

    __tablename__ = "outbox"
    __table_args__ = (
        # The relay's queue: unsent rows in order, and per user for the ordering check.
        Index("ix_outbox_unsent", "id", postgresql_where=UNSENT, sqlite_where=UNSENT),
        Index("ix_outbox_unsent_user", "user_id", "id", postgresql_where=UNSENT, sqlite_where=UNSENT),
        Index("ix_outbox_sent_at", "sent_at"),
        # Streams waiting on a leased or backed-off event, which the relay's claim skips.
        Index("ix_outbox_unsent_available", "available_at", postgresql_where=UNSENT, sqlite_where=UNSENT),
        # Event ids must never come back: consumers remember them to ignore repeats (SQLite reuses rowids otherwise).
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    )
    topic: str = Field(sa_column=Column(String(100), nullable=False))
    type: str = Field(sa_column=Column(String(100), nullable=False))
    user_id: int = Field(sa_column=Column(Integer(), nullable=False))
    data: dict[str, Any] = Field(sa_column=Column(JSON().with_variant(JSONB(), "postgresql"), nullable=False))
    traceparent: str | None = Field(default=None, sa_column=Column(String(55), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    # A claimed or failing row is not tried again before this moment (lease, then capped backoff).
    available_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    attempts: int = Field(default=0, sa_column=Column(Integer(), nullable=False, server_default="0"))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class InboxEntry(SQLModel, table=True):
    """An event a consumer has handled; the primary key makes redelivery a no-op."""

    __tablename__ = "inbox"

    consumer: str = Field(sa_column=Column(String(50), primary_key=True))
    event_id: str = Field(sa_column=Column(String(100), primary_key=True))
    handled_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
