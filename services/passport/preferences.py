"""The owner's learning profile and privacy settings (links narrowed to the new bound)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update

from services.kit.auth import Principal
from services.passport.core import (
    PRIVACY_UPDATED,
    PROFILE_UPDATED,
    PassportCore,
    ShareLink,
)
from services.passport.domain import (
    PrivacySettings,
    validate_profile,
)
from services.passport.storage import (
    passports,
    share_links,
)


class ProfileAndPrivacy(PassportCore):
    # == profile and privacy =============================================================

    async def update_profile(self, caller: Principal, profile: Mapping[str, Any]) -> dict[str, Any]:
        clean = validate_profile(profile)
        passport = await self.own_passport(caller)
        async with self.db.transaction() as s:
            await s.execute(
                update(passports).where(passports.c.id == passport.id).values(profile=clean)
            )
            await self._announce(s, passport, PROFILE_UPDATED)
        self._notify()
        return clean

    async def update_privacy(self, caller: Principal, settings: PrivacySettings) -> PrivacySettings:
        passport = await self.own_passport(caller)
        bound = settings.share_link_disclosure
        async with self.db.transaction() as s:
            await s.execute(
                update(passports)
                .where(passports.c.id == passport.id)
                .values(privacy=settings.to_json())
            )
            rows = (
                await s.execute(select(share_links).where(share_links.c.passport_id == passport.id))
            ).all()
            for row in rows:  # existing links narrowed to the new bound
                link = ShareLink.of(row)
                narrowed = link.scope.narrow(bound)
                if narrowed != link.scope:
                    await s.execute(
                        update(share_links)
                        .where(share_links.c.id == link.id)
                        .values(scope=narrowed.to_json())
                    )
            await self._announce(s, passport, PRIVACY_UPDATED)
        self._notify()
        return settings
