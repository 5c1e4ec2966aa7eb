"""Chat: Chainlit threads and their steps, and reminders kept for the user's next open chat.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from mcp_server.models import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNDELIVERED = sa.text("delivered_at IS NULL")


def _json() -> sa.JSON:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")  # type: ignore[return-value]


def _id() -> sa.Column:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)


def upgrade() -> None:
    op.create_table(
        "chat_threads",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("tags", _json(), nullable=False),
        sa.Column("meta", _json(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_chat_threads_user_created", "chat_threads", ["user_id", "created_at", "id"])
    op.create_table(
        "chat_steps",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("id", sa.String(100), nullable=False),
        sa.Column("thread_id", sa.String(100), sa.ForeignKey("chat_threads.id", ondelete="CASCADE"), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("id", name="uq_chat_steps_id"),
    )
    op.create_index("ix_chat_steps_thread", "chat_steps", ["thread_id", "seq"])
    op.create_table(
        "chat_reminders",
        _id(),
        sa.Column("event_id", sa.String(100), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("event_id", name="uq_chat_reminders_event"),
    )
    op.create_index(
        "ix_chat_reminders_undelivered",
        "chat_reminders",
        ["user_id", "id"],
        postgresql_where=UNDELIVERED,
        sqlite_where=UNDELIVERED,
    )


def downgrade() -> None:
    op.drop_table("chat_reminders")
    op.drop_table("chat_steps")
    op.drop_table("chat_threads")
