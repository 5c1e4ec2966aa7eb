"""A per-install secret that signs list cursors, made here so every process on the database shares it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mcp_server.signing import CURSOR_SECRET, new_secret

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "install_secrets",
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("value", sa.String(100), nullable=False),
    )
    op.bulk_insert(table, [{"name": CURSOR_SECRET, "value": new_secret()}])


def downgrade() -> None:
    op.drop_table("install_secrets")
