"""passport owner names

Revision ID: 4a7c2e91d0b3
Revises: f10f66103304
Create Date: 2026-12-05 01:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4a7c2e91d0b3"
down_revision: str | Sequence[str] | None = "f10f66103304"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "owner_names",
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_owner_names")),
        schema="passport",
    )


def downgrade() -> None:
    op.drop_table("owner_names", schema="passport")
