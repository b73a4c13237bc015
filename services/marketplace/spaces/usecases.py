"""Space use cases: list a space (role space_owner or admin), edit it and its
availability (its owner or an admin), read and search spaces and their free intervals
(public)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from services.kit.auth import Principal, Role
from services.kit.db import is_unique_violation
from services.kit.errors import PermissionDenied
from services.kit.paging import Page, page_size
from services.marketplace.common.domain import (
    decode_cursor,
    encode_cursor,
    validate_money,
    validate_request_id,
    validate_text,
    validate_window,
)
from services.marketplace.common.storage import new_id
from services.marketplace.common.usecases import MarketplaceContext, require_owner
from services.marketplace.ratings.domain import RatingSummary
from services.marketplace.spaces.availability import (
    MAX_AVAILABILITY_WINDOW,
    Availability,
    Interval,
    free_intervals,
)
from services.marketplace.spaces.domain import (
    MAX_ADDRESS,
    MAX_DESCRIPTION,
    MAX_NAME,
    Space,
    SpaceFilter,
    SpaceInput,
    SpaceUpdate,
    validate_accessibility,
    validate_capacity,
    validate_time_zone,
)
from services.marketplace.verification.domain import VerificationStatus

# Search scans at most this many rows per request; a sparse page comes back with a token.
SEARCH_BATCH = 200
SEARCH_SCAN_LIMIT = 2000


class Spaces:
    def __init__(self, ctx: MarketplaceContext) -> None:
        self.ctx = ctx

    async def create_space(self, principal: Principal, data: SpaceInput) -> Space:
        if not (principal.has_role(Role.SPACE_OWNER) or principal.is_admin):
            raise PermissionDenied("requires role space_owner")
        request_id = validate_request_id(data.request_id)
        now = self.ctx.clock.now()
        space = Space(
            id=new_id(),
            owner_id=principal.user_id,
            name=validate_text(data.name, "space.name", maximum=MAX_NAME, required=True),
            description=validate_text(
                data.description, "space.description", maximum=MAX_DESCRIPTION
            ),
            address=validate_text(
                data.address, "space.address", maximum=MAX_ADDRESS, required=True
            ),
            geo=data.geo,
            time_zone=validate_time_zone(data.time_zone, "space.time_zone").key,
            capacity=validate_capacity(data.capacity, "space.capacity"),
            amenities=tuple(dict.fromkeys(data.amenities)),
            accessibility_features=validate_accessibility(
                data.accessibility_features, "space.accessibility_features"
            ),
            hourly_rate=validate_money(data.rate_currency, data.rate_minor, "space.hourly_rate"),
            availability=data.availability,
            verification_status=VerificationStatus.UNVERIFIED,
            rating=RatingSummary(),
            created_at=now,
            updated_at=now,
        )
        if request_id:
            async with self.ctx.read() as repo:
                existing = await repo.space_id_by_request(principal.user_id, request_id)
                if existing is not None:
                    return await self.ctx.space(repo, existing, "request_id")
        try:
            async with self.ctx.write() as tx:
                await tx.repo.insert_space(space, request_id)
        except IntegrityError as exc:
            if request_id and is_unique_violation(exc):  # a concurrent retry won
                async with self.ctx.read() as repo:
                    existing = await repo.space_id_by_request(principal.user_id, request_id)
                    if existing is not None:
                        return await self.ctx.space(repo, existing, "request_id")
            raise
        return space

    async def update_space(self, principal: Principal, space_id: str, data: SpaceUpdate) -> Space:
        now = self.ctx.clock.now()
        async with self.ctx.write() as tx:
            space = await self.ctx.space(tx.repo, space_id, "space_id", lock=True)
            require_owner(principal, space, "edit it")
            changes: dict[str, Any] = {}
            if data.name is not None:
                changes["name"] = validate_text(
                    data.name, "space.name", maximum=MAX_NAME, required=True
                )
            if data.description is not None:
                changes["description"] = validate_text(
                    data.description, "space.description", maximum=MAX_DESCRIPTION
                )
            if data.geo is not None:
                changes["geo"] = data.geo
            if data.time_zone is not None:
                changes["time_zone"] = validate_time_zone(data.time_zone, "space.time_zone").key
            if data.capacity is not None:
                changes["capacity"] = validate_capacity(data.capacity, "space.capacity")
            if data.amenities is not None:
                changes["amenities"] = tuple(dict.fromkeys(data.amenities))
            if data.accessibility_features is not None:
                changes["accessibility_features"] = validate_accessibility(
                    data.accessibility_features, "space.accessibility_features"
                )
            if data.hourly_rate is not None:
                changes["hourly_rate"] = validate_money(*data.hourly_rate, "space.hourly_rate")
            reset = False
            if data.address is not None:
                address = validate_text(
                    data.address, "space.address", maximum=MAX_ADDRESS, required=True
                )
                if address != space.address:
                    # Other premises: what was checked no longer holds.
                    changes["address"] = address
                    changes["verification_status"] = VerificationStatus.UNVERIFIED
                    reset = True
            if not changes:
                return space
            updated = replace(space, **changes, updated_at=now)
            await tx.repo.save_space(updated)
            if reset:
                await tx.repo.clear_attestations(space.id)
            return await self.ctx.space(tx.repo, space.id, "space_id")

    async def get_space(self, space_id: str) -> Space:
        async with self.ctx.read() as repo:
            return await self.ctx.space(repo, space_id, "space_id")

    async def search_spaces(
        self,
        spec: SpaceFilter,
        requested_size: int,
        page_token: str,
    ) -> Page[Space]:
        size = page_size(requested_size)
        cursor = decode_cursor(page_token)
        now = self.ctx.clock.now()
        matched: list[Space] = []
        scanned = 0
        exhausted = False
        async with self.ctx.read() as repo:
            while len(matched) <= size and scanned < SEARCH_SCAN_LIMIT:
                batch = await repo.spaces_after(
                    cursor,
                    SEARCH_BATCH,
                    owner_id=spec.owner_id,
                    min_capacity=spec.min_capacity,
                    verified_only=spec.verified_only,
                    max_rate=spec.max_hourly_rate,
                )
                scanned += len(batch)
                candidates = [s for s in batch if spec.matches_static(s, now)]
                if spec.window is not None and candidates:
                    busy = await repo.active_intervals([c.id for c in candidates], *spec.window)
                    candidates = [c for c in candidates if c.id not in busy]
                matched.extend(candidates)
                if batch:
                    cursor = (batch[-1].created_at, batch[-1].id)
                if len(batch) < SEARCH_BATCH:
                    exhausted = True
                    break
        if len(matched) > size:
            last = matched[size - 1]
            return Page(matched[:size], encode_cursor(last.created_at, last.id))
        if not exhausted and cursor is not None:
            # Scan limit reached: more may match further on.
            return Page(matched, encode_cursor(*cursor))
        return Page(matched)

    async def set_availability(
        self, principal: Principal, space_id: str, availability: Availability
    ) -> Space:
        async with self.ctx.write() as tx:
            space = await self.ctx.space(tx.repo, space_id, "space_id", lock=True)
            require_owner(principal, space, "set its availability")
            updated = replace(space, availability=availability, updated_at=self.ctx.clock.now())
            await tx.repo.save_space(updated)
            return updated

    async def space_availability(
        self, space_id: str, start: datetime | None, end: datetime | None
    ) -> list[Interval]:
        window = validate_window(start, end, "window", maximum=MAX_AVAILABILITY_WINDOW)
        async with self.ctx.read() as repo:
            space = await self.ctx.space(repo, space_id, "space_id")
            busy = await repo.active_intervals([space.id], *window)
        return free_intervals(space.availability, space.time_zone, *window, busy.get(space.id, []))
