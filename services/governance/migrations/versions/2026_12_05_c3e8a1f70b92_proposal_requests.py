"""proposal_requests: an ON_CHAIN CreateProposal's request id, claimed before the send

Revision ID: c3e8a1f70b92
Revises: b7d2c9e41a05
Create Date: 2026-12-05 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c3e8a1f70b92"
down_revision: str | Sequence[str] | None = "b7d2c9e41a05"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "proposal_requests",
        sa.Column("author_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("proposal_id", sa.String(length=36), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("author_id", "request_id", name=op.f("pk_proposal_requests")),
        schema="governance",
    )


def downgrade() -> None:
    op.drop_table("proposal_requests", schema="governance")
