"""Identity announces each user's public name on ``identity.profile_changed`` when they
register and when they change it (the passport names the authors of attested entries)."""

from __future__ import annotations

from sqlalchemy import delete, select

from keiko.authenticator import SoftwareAuthenticator
from services.identity.domain import ProfileUpdate
from services.identity.humanity_storage import outbox
from services.identity.service import TOPIC_PROFILE_CHANGED, IdentityService
from services.identity.tests.conftest import register
from services.kit.auth import Principal
from services.kit.db import Database
from services.kit.migrations import downgrade, service_migration_dirs, upgrade


async def announced(db: Database) -> list[dict[str, object]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(outbox.c.key, outbox.c.payload)
            .where(outbox.c.topic == TOPIC_PROFILE_CHANGED)
            .order_by(outbox.c.seq)
        )
        return [{"key": row.key, **row.payload} for row in rows]


async def test_registration_and_renames_are_announced(
    service: IdentityService, authenticator: SoftwareAuthenticator, migrated_database: Database
) -> None:
    nudges: list[int] = []
    service.on_commit = lambda: nudges.append(1)
    signed_in = await register(service, authenticator, display_name="Tom Tutor")
    user_id = signed_in.user.id
    me = Principal(user_id=user_id, roles=frozenset({"learner"}))
    await service.update_profile(me, "", ProfileUpdate(bio="Algebra"))  # not the name
    await service.update_profile(me, "", ProfileUpdate(display_name="Tom Tutor"))  # same
    await service.update_profile(me, "", ProfileUpdate(display_name="Tomás Tutor"))
    assert await announced(migrated_database) == [
        {"key": user_id, "user_id": user_id, "display_name": "Tom Tutor"},
        {"key": user_id, "user_id": user_id, "display_name": "Tomás Tutor"},
    ]
    assert len(nudges) == 2  # the relay is nudged after each announcing commit


async def test_the_upgrade_announces_users_registered_before_it(
    service: IdentityService, authenticator: SoftwareAuthenticator, migrated_database: Database
) -> None:
    signed_in = await register(service, authenticator, display_name="Early Tutor")
    directory = service_migration_dirs()["identity"]
    await downgrade(migrated_database, "identity", directory, "a3c1e7d0b2f4")
    async with migrated_database.transaction() as s:
        await s.execute(delete(outbox))  # as if registered before announcements existed
    await upgrade(migrated_database, "identity", directory)
    user_id = signed_in.user.id
    assert await announced(migrated_database) == [
        {"key": user_id, "user_id": user_id, "display_name": "Early Tutor"}
    ]
