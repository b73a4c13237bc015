"""public profile fields: what a user shows others besides the name (issue 9); none by default

Revision ID: ce4f3a7e0d01
Revises: 4f0e68b287e4
Create Date: 2026-12-05 02:19:59.211374
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ce4f3a7e0d01"
down_revision: str | Sequence[str] | None = "4f0e68b287e4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema="identity") as batch_op:
        batch_op.add_column(
            sa.Column("public_fields", sa.String(length=200), server_default="", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema="identity") as batch_op:
        batch_op.drop_column("public_fields")
