"""The chat's own tables: Chainlit threads and the steps they show, and reminders waiting for an open chat."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from mcp_server.models import JSONDocument, UTCDateTime, partial_index, utcnow

UNDELIVERED = text("delivered_at IS NULL")


class ChatThread(SQLModel, table=True):
    """A conversation as the chat's sidebar lists it; its id is also the agent memory's thread key."""

    __tablename__ = "chat_threads"
    __table_args__ = (Index("ix_chat_threads_user_created", "user_id", "created_at", "id"),)

    id: str = Field(sa_column=Column(String(100), primary_key=True))
    # Set when the thread is first stored (by whoever's step or name comes first); null only in older rows.
    user_id: int | None = Field(
        default=None, sa_column=Column(Integer(), ForeignKey("users.id", ondelete="CASCADE"), nullable=True)
    )
    name: str | None = Field(default=None, sa_column=Column(String(255), nullable=True))
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSONDocument(), nullable=False))
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONDocument(), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class ChatStep(SQLModel, table=True):
    """One message or tool step exactly as Chainlit showed it (its StepDict), for the thread's replay."""

    __tablename__ = "chat_steps"
    __table_args__ = (
        UniqueConstraint("id", name="uq_chat_steps_id"),
        Index("ix_chat_steps_thread", "thread_id", "seq"),
    )

    seq: int | None = Field(
        default=None, sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    )
    id: str = Field(sa_column=Column(String(100), nullable=False))
    thread_id: str = Field(
        sa_column=Column(String(100), ForeignKey("chat_threads.id", ondelete="CASCADE"), nullable=False)
    )
    payload: dict[str, Any] = Field(sa_column=Column(JSONDocument(), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class ChatReminder(SQLModel, table=True):
    """A due reminder for the chat: shown in every open chat of its user, or kept until they open one."""

    __tablename__ = "chat_reminders"
    __table_args__ = (
        UniqueConstraint("event_id", name="uq_chat_reminders_event"),
        partial_index("ix_chat_reminders_undelivered", "user_id", "id", where=UNDELIVERED),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    )
    event_id: str = Field(sa_column=Column(String(100), nullable=False))
    user_id: int = Field(sa_column=Column(Integer(), ForeignKey("users.id", ondelete="CASCADE"), nullable=False))
    payload: dict[str, Any] = Field(sa_column=Column(JSONDocument(), nullable=False))  # the reminder.due event's data
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    delivered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
