"""Flags: reporting a rating, the review queue, and an admin's decision."""

from __future__ import annotations

from dataclasses import replace

from services.kit.auth import Principal
from services.kit.errors import FailedPrecondition, NotFound, PermissionDenied, ValidationError
from services.kit.events import Event
from services.kit.events.outbox import enqueue
from services.kit.paging import Page, page_size
from services.reputation.domain import (
    MAX_NOTE,
    MAX_REASON,
    PAGE_TOKENS,
    Decision,
    Flag,
    FlagReason,
    Rating,
    ReviewStatus,
    iso,
    validate_id,
    validate_text,
)
from services.reputation.service.core import TOPIC_FLAG_REVIEWED, ReputationCore
from services.reputation.service.ratings import can_see
from services.reputation.storage import Repository, outbox


class Flags(ReputationCore):
    async def report(self, caller: Principal, rating_id: str, reason: str) -> Rating:
        rating_id = validate_id(rating_id, "rating_id")
        reason = validate_text(reason, "reason", MAX_REASON, required=True)
        now = self.clock.now()
        async with self.db.transaction() as session:
            repo = Repository(session)
            rating = await repo.rating(rating_id)
            if rating is None or not can_see(caller, rating, now):
                raise NotFound("rating not found")
            if rating.rated_id != caller.user_id:
                raise PermissionDenied("only the rated user may report a rating")
            if not rating.revealed(now):
                raise FailedPrecondition("the rating is not revealed yet")
            flag = rating.flag
            detail = f"reported by {caller.user_id}: {reason}"
            if flag is not None and (
                flag.status is ReviewStatus.UPHELD
                or (flag.status is ReviewStatus.OPEN and FlagReason.REPORTED in flag.reasons)
            ):
                return rating  # already excluded, or already reported: nothing new
            if flag is None:
                new_flag = Flag(rating.id, (FlagReason.REPORTED,), detail, now, ReviewStatus.OPEN)
            else:
                # Open with other reasons, or dismissed before: (re)open with the report.
                new_flag = Flag(
                    rating.id,
                    tuple(sorted({*flag.reasons, FlagReason.REPORTED})),
                    "\n".join([flag.details, detail]).strip(),
                    now,
                    ReviewStatus.OPEN,
                )
            await repo.set_flag(new_flag, exists=flag is not None)
            await enqueue(session, outbox, self._flagged_event(rating, new_flag, now))
            if flag is None or flag.status is ReviewStatus.DISMISSED:
                await self._announce(session, {rating.rated_id}, now)
            return replace(rating, flag=new_flag)

    async def list_flagged(
        self, caller: Principal, status: ReviewStatus, requested_size: int, page_token: str
    ) -> Page[Rating]:
        require_admin(caller)
        limit = page_size(requested_size)
        offset = PAGE_TOKENS.decode(page_token)
        async with self.db.session() as read:
            found = await Repository(read).flagged(status, offset, limit + 1)
        return PAGE_TOKENS.page(found, offset, limit)

    async def review(
        self, caller: Principal, rating_id: str, decision: Decision | None, note: str
    ) -> Rating:
        require_admin(caller)
        rating_id = validate_id(rating_id, "rating_id")
        if decision is None:
            raise ValidationError("decision", "must be DISMISS or UPHOLD")
        note = validate_text(note, "note", MAX_NOTE, required=False)
        status = ReviewStatus.DISMISSED if decision is Decision.DISMISS else ReviewStatus.UPHELD
        now = self.clock.now()
        async with self.db.transaction() as session:
            repo = Repository(session)
            rating = await repo.rating(rating_id)
            if rating is None:
                raise NotFound("rating not found")
            flag = rating.flag
            if flag is None:
                raise NotFound("rating is not flagged")
            if flag.status is not ReviewStatus.OPEN:
                if flag.status is status:
                    return rating  # a retried review: same answer
                raise FailedPrecondition(f"the flag was already reviewed ({flag.status})")
            reviewed = replace(
                flag, status=status, reviewer_id=caller.user_id, review_note=note, reviewed_at=now
            )
            await repo.set_flag(reviewed, exists=True)
            await enqueue(
                session,
                outbox,
                Event(
                    TOPIC_FLAG_REVIEWED,
                    key=rating.id,
                    occurred_at=now,
                    payload={
                        "rating_id": rating.id,
                        "rated_id": rating.rated_id,
                        "decision": str(decision),
                        "reviewer_id": caller.user_id,
                        "reviewed_at": iso(now),
                    },
                ),
            )
            if status is ReviewStatus.DISMISSED and rating.revealed(now):
                await self._announce(session, {rating.rated_id}, now)
            return replace(rating, flag=reviewed)


def require_admin(caller: Principal) -> None:
    if not caller.is_admin:
        raise PermissionDenied("admins only")
