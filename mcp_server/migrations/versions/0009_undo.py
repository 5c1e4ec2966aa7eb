"""Changes people made, which events belong to each, and which change an undo reversed.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mcp_server.models import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("made_at", UTCDateTime(), nullable=False),
        sa.Column("undoes", sa.BigInteger(), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_changes_user_made", "changes", ["user_id", "made_at"])
    op.create_index("uq_changes_undoes", "changes", ["undoes"], unique=True)
    # A plain ADD COLUMN: a batch (copying) alter on SQLite would lose the outbox's partial indexes.
    op.add_column("outbox", sa.Column("change_id", sa.BigInteger(), nullable=True))
    op.create_index("ix_outbox_change", "outbox", ["change_id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_change", "outbox")
    op.execute("ALTER TABLE outbox DROP COLUMN change_id")  # SQLite 3.35+ and PostgreSQL alike, without a copy
    op.drop_table("changes")
