"""Ids never reused on SQLite; a stored search vector on PostgreSQL; an index for the relay's claim.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mcp_server.search import PG_COLUMN, PG_DOCUMENT, PG_INDEX, SQLITE_FTS_TRIGGERS

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNSENT = sa.text("sent_at IS NULL")
PENDING = sa.text("remind_at IS NOT NULL AND reminded_at IS NULL AND status = 'open'")


def upgrade() -> None:
    op.create_index(
        "ix_outbox_unsent_available", "outbox", ["available_at"], postgresql_where=UNSENT, sqlite_where=UNSENT
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE tasks ADD COLUMN {PG_COLUMN} tsvector GENERATED ALWAYS AS ({PG_DOCUMENT}) STORED")
        op.execute(f"DROP INDEX {PG_INDEX}")
        op.execute(f"CREATE INDEX {PG_INDEX} ON tasks USING gin ({PG_COLUMN})")
        return
    _autoincrement("outbox", {"ix_outbox_unsent": ["id"], "ix_outbox_unsent_user": ["user_id", "id"]}, UNSENT)
    _autoincrement("tasks", {"ix_tasks_pending_reminders": ["remind_at"]}, PENDING)
    for trigger in SQLITE_FTS_TRIGGERS.values():  # the copy dropped them with the old table
        op.execute(trigger)


def _autoincrement(table: str, partial: dict[str, list[str]], where: sa.TextClause) -> None:
    """Rebuild a SQLite table with AUTOINCREMENT, which only a new table can get; partial indexes are made anew."""
    for name in partial:
        op.drop_index(name, table)
    with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": True}):
        pass
    for name, columns in partial.items():
        op.create_index(name, table, columns, sqlite_where=where)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX {PG_INDEX}")
        op.execute(f"ALTER TABLE tasks DROP COLUMN {PG_COLUMN}")
        op.execute(f"CREATE INDEX {PG_INDEX} ON tasks USING gin ({PG_DOCUMENT})")
    op.drop_index("ix_outbox_unsent_available", "outbox")
