"""anchor leaf encodings

Revision ID: c9d4e2a7f318
Revises: b5d1c7e0a2f4
Create Date: 2026-12-05 16:30:00

Every anchor remembers how its leaf is computed (``keiko.leaf.v2`` for the statements the
translator anchors from now on, :mod:`chain.translator.leaves`), as the translator's
``chain.interaction_anchored`` / ``chain.anchor_failed`` events say. Existing data,
truthfully: every anchor received before this revision has a ``keiko.leaf.v1`` leaf (the
column's default), the only encoding of signed statements until then.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c9d4e2a7f318"
down_revision: str | Sequence[str] | None = "b5d1c7e0a2f4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("anchors", schema="passport") as batch_op:
        batch_op.add_column(
            sa.Column(
                "leaf_encoding",
                sa.String(length=32),
                server_default="keiko.leaf.v1",
                nullable=False,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("anchors", schema="passport") as batch_op:
        batch_op.drop_column("leaf_encoding")
