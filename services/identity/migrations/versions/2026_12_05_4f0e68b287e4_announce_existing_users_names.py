"""announce existing users' names

Revision ID: 4f0e68b287e4
Revises: a3c1e7d0b2f4
Create Date: 2026-12-05 00:56:50.912544

From this revision on, identity announces each user's display name on
``identity.profile_changed`` when they register or rename themselves, so the passport can
name the author of the entries they attest. Users who registered before it are announced
once here, through the outbox (the relay publishes them after the upgrade). Downgrading
leaves the announcements alone: they were facts when they were made.
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "4f0e68b287e4"
down_revision: str | Sequence[str] | None = "a3c1e7d0b2f4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TOPIC = "identity.profile_changed"


def upgrade() -> None:
    bind = op.get_bind()
    users = sa.table(
        "users",
        sa.column("id", sa.String),
        sa.column("display_name", sa.String),
        schema="identity",
    )
    outbox = sa.table(
        "outbox",
        sa.column("event_id", sa.String),
        sa.column("topic", sa.String),
        sa.column("key", sa.String),
        sa.column("payload", sa.JSON),
        sa.column("occurred_at", sa.DateTime(timezone=True)),
        schema="identity",
    )
    now = datetime.now(UTC)
    rows = [
        {
            "event_id": uuid.uuid4().hex,
            "topic": TOPIC,
            "key": user_id,
            "payload": {"user_id": user_id, "display_name": name},
            "occurred_at": now,
        }
        for user_id, name in bind.execute(sa.select(users.c.id, users.c.display_name))
    ]
    if rows:
        bind.execute(sa.insert(outbox), rows)


def downgrade() -> None:
    pass
