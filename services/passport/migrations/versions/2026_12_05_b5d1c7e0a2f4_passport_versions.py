"""passport versions

Revision ID: b5d1c7e0a2f4
Revises: aed97c9dd466
Create Date: 2026-12-05 07:30:00

``passports.version`` grows with every change a reader of the passport sees
(GetPassportVersion); existing passports start at 0. ``ix_entries_author_id_learner_id``
finds the passports an author's entries appear in when the author's name changes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b5d1c7e0a2f4"
down_revision: str | Sequence[str] | None = "aed97c9dd466"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("passports", schema="passport") as batch_op:
        batch_op.add_column(
            sa.Column("version", sa.BigInteger(), server_default="0", nullable=False)
        )
    op.create_index(
        "ix_entries_author_id_learner_id",
        "entries",
        ["author_id", "learner_id"],
        unique=False,
        schema="passport",
    )


def downgrade() -> None:
    op.drop_index("ix_entries_author_id_learner_id", table_name="entries", schema="passport")
    with op.batch_alter_table("passports", schema="passport") as batch_op:
        batch_op.drop_column("version")
