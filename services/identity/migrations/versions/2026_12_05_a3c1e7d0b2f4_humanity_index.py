"""humanity duplicate-check index: tags per enrollment, the key id of each enrollment's tags

Existing enrollments keep index_key_id NULL: they have no tags (their captures are not
kept, so none can be computed) and every duplicate check decodes them, as before.

Revision ID: a3c1e7d0b2f4
Revises: 5b9b528758ee
Create Date: 2026-12-05 01:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a3c1e7d0b2f4"
down_revision: str | Sequence[str] | None = "5b9b528758ee"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("humanity_enrollments", schema="identity") as batch_op:
        batch_op.add_column(sa.Column("index_key_id", sa.String(length=16), nullable=True))
    op.create_table(
        "humanity_index_tags",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("tag", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["identity.humanity_enrollments.user_id"],
            name=op.f("fk_humanity_index_tags_user_id_humanity_enrollments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "tag", name=op.f("pk_humanity_index_tags")),
        schema="identity",
    )
    with op.batch_alter_table("humanity_index_tags", schema="identity") as batch_op:
        batch_op.create_index(batch_op.f("ix_humanity_index_tags_tag"), ["tag"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("humanity_index_tags", schema="identity") as batch_op:
        batch_op.drop_index(batch_op.f("ix_humanity_index_tags_tag"))
    op.drop_table("humanity_index_tags", schema="identity")
    with op.batch_alter_table("humanity_enrollments", schema="identity") as batch_op:
        batch_op.drop_column("index_key_id")
