"""learning processed events (tutor session consumer dedupe markers)

Revision ID: 5d0c7a1e9b42
Revises: bee8fe80b8f5
Create Date: 2026-11-22 05:35:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5d0c7a1e9b42"
down_revision: str | Sequence[str] | None = "bee8fe80b8f5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "processed_events",
        sa.Column("consumer_group", sa.String(length=200), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer_group", "event_id", name=op.f("pk_processed_events")),
        schema="learning",
    )


def downgrade() -> None:
    op.drop_table("processed_events", schema="learning")
