"""learning: the anchored signature and key of each statement

Revision ID: 7e3b1c5a9f20
Revises: 5d0c7a1e9b42
Create Date: 2026-12-05 01:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7e3b1c5a9f20"
down_revision: str | Sequence[str] | None = "5d0c7a1e9b42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("statements", schema="learning") as batch:
        batch.add_column(sa.Column("anchor_signature_hex", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("anchor_public_key_hex", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("statements", schema="learning") as batch:
        batch.drop_column("anchor_public_key_hex")
        batch.drop_column("anchor_signature_hex")
