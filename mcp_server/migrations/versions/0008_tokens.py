"""Tokens people can manage: a display prefix, an optional expiry and the last use.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mcp_server.models import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("api_tokens", sa.Column("prefix", sa.String(16), nullable=True))
    op.add_column("api_tokens", sa.Column("expires_at", UTCDateTime(), nullable=True))
    op.add_column("api_tokens", sa.Column("last_used_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:  # SQLite drops columns by copying the table
        batch.drop_column("last_used_at")
        batch.drop_column("expires_at")
        batch.drop_column("prefix")
