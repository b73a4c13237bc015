"""learner accounts and on-chain governance proposals

Revision ID: 7c1e9a4b2d10
Revises: 20cb471500a0
Create Date: 2026-12-05 01:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c1e9a4b2d10"
down_revision: str | Sequence[str] | None = "20cb471500a0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "learner_accounts",
        sa.Column("learner_id", sa.String(length=512), nullable=False),
        sa.Column("address", sa.String(length=66), nullable=False),
        sa.Column("public_key", sa.String(length=66), nullable=False),
        sa.Column("key_record", sa.LargeBinary(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("deploy_tx_hash", sa.String(length=66), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("learner_id", name=op.f("pk_learner_accounts")),
        sa.UniqueConstraint("address", name=op.f("uq_learner_accounts_address")),
        schema="chain",
    )
    op.create_table(
        "governance_proposals",
        sa.Column("request_id", sa.String(length=200), nullable=False),
        sa.Column("proposal_id", sa.String(length=200), nullable=False),
        sa.Column("onchain_proposal_id", sa.String(length=66), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("block", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_governance_proposals")),
        schema="chain",
    )


def downgrade() -> None:
    op.drop_table("governance_proposals", schema="chain")
    op.drop_table("learner_accounts", schema="chain")
