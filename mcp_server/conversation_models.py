"""Conversation memory tables: threads per user and their messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from mcp_server.models import JSONDocument, UTCDateTime, utcnow


class ConversationThread(SQLModel, table=True):
    __tablename__ = "conversation_threads"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_conversation_threads_user_key"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    key: str = Field(sa_column=Column(String(100), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class ConversationMessage(SQLModel, table=True):
    __tablename__ = "conversation_messages"
    __table_args__ = (Index("ix_conversation_messages_thread", "thread_id", "id"),)

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    )
    thread_id: int = Field(
        sa_column=Column(Integer(), ForeignKey("conversation_threads.id", ondelete="CASCADE"), nullable=False)
    )
    payload: dict[str, Any] = Field(sa_column=Column(JSONDocument(), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
