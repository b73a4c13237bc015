"""record leaf encodings

Revision ID: e5a2c8f1b7d3
Revises: 7c1e9a4b2d10
Create Date: 2026-12-05 16:20:00

Every record remembers how its leaf was computed (``keiko.leaf.v2`` for the signed
statements queued from now on, :mod:`chain.translator.leaves`). Existing data, truthfully:
every signed record queued before this revision has a ``keiko.leaf.v1`` leaf (the column's
default); an unsigned record (reputation, marketplace, governance: no signature) has a
``keiko.record.v1`` leaf (:func:`chain.translator.leaf_data.record_leaf`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e5a2c8f1b7d3"
down_revision: str | Sequence[str] | None = "7c1e9a4b2d10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("records", schema="chain") as batch_op:
        batch_op.add_column(
            sa.Column(
                "leaf_encoding",
                sa.String(length=32),
                server_default="keiko.leaf.v1",
                nullable=False,
            )
        )
    records = sa.table(
        "records",
        sa.column("signature", sa.String),
        sa.column("leaf_encoding", sa.String),
        schema="chain",
    )
    op.get_bind().execute(
        sa.update(records).where(records.c.signature == "").values(leaf_encoding="keiko.record.v1")
    )


def downgrade() -> None:
    with op.batch_alter_table("records", schema="chain") as batch_op:
        batch_op.drop_column("leaf_encoding")
