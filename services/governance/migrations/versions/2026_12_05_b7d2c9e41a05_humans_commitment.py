"""humans: the humanity commitment identity registered on chain (on-chain votes name it)

Revision ID: b7d2c9e41a05
Revises: 825ef80c1a0a
Create Date: 2026-12-05 04:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7d2c9e41a05"
down_revision: str | Sequence[str] | None = "825ef80c1a0a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("humans", schema="governance") as batch_op:
        batch_op.add_column(
            sa.Column("commitment", sa.String(length=80), server_default="", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("humans", schema="governance") as batch_op:
        batch_op.drop_column("commitment")
