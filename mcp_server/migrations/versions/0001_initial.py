"""Users, personal API tokens and tasks, with search indexes for PostgreSQL and SQLite.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from mcp_server.migrate import TAGS_INDEX
from mcp_server.models import UTCDateTime
from mcp_server.search import PG_DOCUMENT, PG_INDEX, SQLITE_FTS_TABLE, SQLITE_FTS_TRIGGERS

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.create_table(
        "tasks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("description", sa.String(10_000), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("tags", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("recurrence", sa.String(500), nullable=True),
        sa.Column("remind_at", UTCDateTime(), nullable=True),
        sa.Column("series_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_tasks_user_status_due", "tasks", ["user_id", "status", "due_at", "id"])
    op.create_index("ix_tasks_user_status_priority", "tasks", ["user_id", "status", "priority", "id"])
    op.create_index("ix_tasks_user_created", "tasks", ["user_id", "created_at", "id"])
    op.create_index("ix_tasks_remind_at", "tasks", ["remind_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX {PG_INDEX} ON tasks USING gin ({PG_DOCUMENT})")
        op.execute(f"CREATE INDEX {TAGS_INDEX} ON tasks USING gin (tags jsonb_path_ops)")
    else:
        _create_sqlite_fts()


def _create_sqlite_fts() -> None:
    # An external-content FTS5 index over tasks, kept in step by triggers.
    fts = SQLITE_FTS_TABLE
    op.execute(
        f"CREATE VIRTUAL TABLE {fts} USING fts5(title, description, content='tasks', content_rowid='id', "
        "tokenize='unicode61 remove_diacritics 2')"
    )
    for trigger in SQLITE_FTS_TRIGGERS.values():
        op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in SQLITE_FTS_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute(f"DROP TABLE IF EXISTS {SQLITE_FTS_TABLE}")
    op.drop_table("tasks")
    op.drop_table("api_tokens")
    op.drop_table("users")
