"""Events: the outbox and inbox tables, reminder firing state, one occurrence per series and due moment.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from mcp_server.models import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNSENT = sa.text("sent_at IS NULL")
PENDING = sa.text("remind_at IS NOT NULL AND reminded_at IS NULL AND status = 'open'")


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("topic", sa.String(100), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("traceparent", sa.String(55), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("available_at", UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_outbox_unsent", "outbox", ["id"], postgresql_where=UNSENT, sqlite_where=UNSENT)
    op.create_index("ix_outbox_unsent_user", "outbox", ["user_id", "id"], postgresql_where=UNSENT, sqlite_where=UNSENT)
    op.create_index("ix_outbox_sent_at", "outbox", ["sent_at"])
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(50), primary_key=True),
        sa.Column("event_id", sa.String(100), primary_key=True),
        sa.Column("handled_at", UTCDateTime(), nullable=False),
    )
    # Plain ALTERs and indexes only: a batch (copying) alter on SQLite would drop the search triggers on tasks.
    op.add_column("tasks", sa.Column("reminded_at", UTCDateTime(), nullable=True))
    op.create_index("uq_tasks_series_due", "tasks", ["series_id", "due_at"], unique=True)
    op.drop_index("ix_tasks_remind_at", "tasks")
    op.create_index(
        "ix_tasks_pending_reminders", "tasks", ["remind_at"], postgresql_where=PENDING, sqlite_where=PENDING
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_pending_reminders", "tasks")
    op.create_index("ix_tasks_remind_at", "tasks", ["remind_at"])
    op.drop_index("uq_tasks_series_due", "tasks")
    op.drop_column("tasks", "reminded_at")
    op.drop_table("inbox")
    op.drop_table("outbox")
