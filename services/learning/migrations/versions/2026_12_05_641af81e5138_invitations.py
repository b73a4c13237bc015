"""invitations: students named in a tutorial session, and their answer (issue 9)

Revision ID: 641af81e5138
Revises: 27a957c13920
Create Date: 2026-12-05 01:26:07.045203
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "641af81e5138"
down_revision: str | Sequence[str] | None = "27a957c13920"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "invitations",
        sa.Column("id", sa.String(length=96), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("inviter_id", sa.String(length=64), nullable=False),
        sa.Column("invitee_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint(
            "kind", "subject_id", "invitee_id", name="uq_invitations_subject_invitee"
        ),
        schema="learning",
    )
    with op.batch_alter_table("invitations", schema="learning") as batch_op:
        batch_op.create_index("ix_invitations_invitee", ["invitee_id", "created_at"], unique=False)
        batch_op.create_index("ix_invitations_inviter", ["inviter_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("invitations", schema="learning") as batch_op:
        batch_op.drop_index("ix_invitations_inviter")
        batch_op.drop_index("ix_invitations_invitee")

    op.drop_table("invitations", schema="learning")
