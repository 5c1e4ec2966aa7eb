"""Unguessable event ids, an inbox keyed by source and id, failed deliveries and dead letters, series per user.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

from mcp_server.models import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNSENT = sa.text("sent_at IS NULL")
OUTBOX_PARTIAL_INDEXES = {
    "ix_outbox_unsent": ["id"],
    "ix_outbox_unsent_user": ["user_id", "id"],
    "ix_outbox_unsent_available": ["available_at"],
}
# The source every event written before this revision came from.
OUR_SOURCE = "/taskflow/task-service"


def upgrade() -> None:
    # Plain index changes only on tasks: a batch (copying) alter on SQLite would drop its search triggers.
    op.drop_index("uq_tasks_series_due", "tasks")
    op.create_index("uq_tasks_user_series_due", "tasks", ["user_id", "series_id", "due_at"], unique=True)

    # Events already written keep the id they were (or are about to be) published under, so an inbox still
    # recognises them; new ones get a UUIDv7 from the application.
    op.add_column("outbox", sa.Column("event_id", sa.String(36), nullable=True))
    op.execute("UPDATE outbox SET event_id = CAST(id AS VARCHAR(36))")
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("outbox", "event_id", nullable=False)
        op.add_column("inbox", sa.Column("source", sa.String(200), nullable=True))
        op.execute(sa.text("UPDATE inbox SET source = :source").bindparams(source=OUR_SOURCE))
        op.alter_column("inbox", "source", nullable=False)
        op.execute("ALTER TABLE inbox DROP CONSTRAINT inbox_pkey, ADD PRIMARY KEY (consumer, source, event_id)")
    else:  # SQLite changes NOT NULL and primary keys only by copying the table
        _rebuild_outbox(lambda batch: batch.alter_column("event_id", nullable=False))
        _copy_sqlite_inbox(keyed_by_source=True)

    op.create_table(
        "delivery_failures",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("consumer", sa.String(50), nullable=False),
        sa.Column("topic", sa.String(100), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("event_id", sa.String(100), nullable=False),
        sa.Column("envelope", sa.Text(), nullable=False),
        sa.Column("error", sa.String(1000), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("last_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("given_up_at", UTCDateTime(), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("uq_delivery_failures_event", "delivery_failures", ["consumer", "source", "event_id"], unique=True)


def _rebuild_outbox(change: Callable[[BatchOperations], None]) -> None:
    """Copy SQLite's outbox with a change, keeping AUTOINCREMENT; partial indexes are made anew."""
    for name in OUTBOX_PARTIAL_INDEXES:
        op.drop_index(name, "outbox")
    with op.batch_alter_table("outbox", recreate="always", table_kwargs={"sqlite_autoincrement": True}) as batch:
        change(batch)
    for name, columns in OUTBOX_PARTIAL_INDEXES.items():
        op.create_index(name, "outbox", columns, sqlite_where=UNSENT)


def _copy_sqlite_inbox(*, keyed_by_source: bool) -> None:
    """Copy SQLite's inbox into one keyed with or without the source (the entries it has are all ours)."""
    key = ["consumer", "source", "event_id"] if keyed_by_source else ["consumer", "event_id"]
    columns = {
        "consumer": sa.String(50),
        "source": sa.String(200),
        "event_id": sa.String(100),
    }
    op.create_table(
        "inbox_copy",
        *(sa.Column(name, columns[name], nullable=False) for name in key),
        sa.Column("handled_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(*key),
    )
    values = ", ".join(f"'{OUR_SOURCE}'" if name == "source" else name for name in key)
    op.execute(f"INSERT INTO inbox_copy ({', '.join(key)}, handled_at) SELECT {values}, handled_at FROM inbox")
    op.drop_table("inbox")
    op.rename_table("inbox_copy", "inbox")


def downgrade() -> None:
    op.drop_table("delivery_failures")
    # Entries of other sources cannot be told apart once the source is gone; repeats of ours still can.
    op.execute(sa.text("DELETE FROM inbox WHERE source <> :source").bindparams(source=OUR_SOURCE))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE inbox DROP CONSTRAINT inbox_pkey, ADD PRIMARY KEY (consumer, event_id)")
        op.drop_column("inbox", "source")
        op.drop_column("outbox", "event_id")
    else:
        _copy_sqlite_inbox(keyed_by_source=False)
        _rebuild_outbox(lambda batch: batch.drop_column("event_id"))
    op.drop_index("uq_tasks_user_series_due", "tasks")
    op.create_index("uq_tasks_series_due", "tasks", ["series_id", "due_at"], unique=True)
