"""Ratings: submitting one (idempotent per request, weighed, checked for manipulation,
revealed once both sides rated), reading and listing them, and who may see a rating
before it is revealed (`can_see`, `withheld`)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from services.kit.auth import Principal
from services.kit.db import is_unique_violation
from services.kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from services.kit.events.outbox import enqueue
from services.kit.paging import Page, page_size
from services.reputation.domain import (
    DETECTION_WINDOW,
    NEW_RATER_WEIGHT,
    PAGE_TOKENS,
    RATING_TTL,
    Edge,
    Flag,
    Rating,
    RatingInput,
    ReviewStatus,
    detect,
    iso,
    rating_digest,
    validate_id,
    validate_rating,
    validate_text,
)
from services.reputation.service.core import ReputationCore
from services.reputation.storage import Repository, outbox


class Ratings(ReputationCore):
    async def submit(self, caller: Principal, data: RatingInput) -> Rating:
        valid = validate_rating(data)
        if valid.rated_id == caller.user_id:
            raise PermissionDenied("you cannot rate yourself")
        if valid.request_id:
            replay = await self._replay(caller.user_id, valid.request_id, valid)
            if replay is not None:
                return replay
        now = self.clock.now()
        kind, subject_id = valid.subject_kind, valid.subject_id
        async with self.db.session() as read:
            repo = Repository(read)
            subject = await repo.subject(kind, subject_id)
            if subject is None:
                raise NotFound(f"{kind} {subject_id} not found")
            role = subject.participants.get(caller.user_id)
            if role is None:
                raise PermissionDenied(f"you did not take part in {kind} {subject_id}")
            if role is not valid.rater_role:
                raise PermissionDenied(f"you took part in this {kind} as {role}")
            if subject.participants.get(valid.rated_id) is not role.other:
                raise ValidationError("rated_id", f"is not the other participant of this {kind}")
            if not subject.window_open(now):
                raise FailedPrecondition(
                    f"the rating window of this {kind} closed at {iso(subject.closes_at)}"
                )
            if await repo.rating_by_key(kind, subject_id, caller.user_id, valid.rated_id):
                raise AlreadyExists(f"you already rated this user for this {kind}")
            new_rater = (
                await repo.prior_subject_count(caller.user_id, kind, subject_id) == 0
                and await repo.ratings_given_count(caller.user_id) == 0
            )
            recent = await repo.involving({caller.user_id, valid.rated_id}, now - DETECTION_WINDOW)
        # Humanity first, outside the write transaction (it may be a network call).
        users = {caller.user_id, valid.rated_id}
        users |= {r.rater_id for r in recent if r.rated_id == valid.rated_id}
        commitments = await self.humanity.commitments(users)

        rating_id = str(uuid.uuid4())
        rating = Rating(
            id=rating_id,
            subject_kind=kind,
            subject_id=subject_id,
            rater_id=caller.user_id,
            rated_id=valid.rated_id,
            rater_role=valid.rater_role,
            score=valid.score,
            comment=valid.comment,
            created_at=now,
            expires_at=now + RATING_TTL,
            revealed_at=None,
            closes_at=subject.closes_at,
            rater_weight=NEW_RATER_WEIGHT if new_rater else 1.0,
            request_id=valid.request_id,
            digest=rating_digest(
                rating_id=rating_id,
                subject_kind=kind,
                subject_id=subject_id,
                rater_id=caller.user_id,
                rated_id=valid.rated_id,
                rater_role=valid.rater_role,
                score=valid.score,
                comment=valid.comment,
                created_at=now,
            ),
        )
        try:
            async with self.db.transaction() as session:
                repo = Repository(session)
                await repo.insert_rating(rating)
                announce: set[str] = set()
                counterpart = await repo.rating_by_key(
                    kind, subject_id, valid.rated_id, caller.user_id
                )
                if counterpart is not None:
                    # Both sides rated: the blind ends for both now.
                    await repo.mark_revealed([rating.id, counterpart.id], now)
                    rating = replace(rating, revealed_at=now)
                    for revealed in (rating, counterpart):
                        await enqueue(session, outbox, self._revealed_event(revealed, now))
                    announce |= {rating.rated_id, counterpart.rated_id}
                announce |= await self._apply_detection(repo, rating, recent, commitments, now)
                await self._announce(session, announce, now)
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
            if valid.request_id:
                replay = await self._replay(caller.user_id, valid.request_id, valid)
                if replay is not None:
                    return replay
            raise AlreadyExists(f"you already rated this user for this {kind}") from exc
        async with self.db.session() as read:
            stored = await Repository(read).rating(rating.id)
        assert stored is not None
        return stored

    async def _replay(self, rater_id: str, request_id: str, valid: Any) -> Rating | None:
        async with self.db.session() as read:
            found = await Repository(read).rating_by_request(rater_id, request_id)
        if found is None:
            return None
        same = (
            found.subject_kind is valid.subject_kind
            and found.subject_id == valid.subject_id
            and found.rated_id == valid.rated_id
        )
        if not same:
            raise AlreadyExists("request_id was already used for another rating")
        return found

    async def _apply_detection(
        self,
        repo: Repository,
        rating: Rating,
        recent: list[Rating],
        commitments: Mapping[str, str],
        now: datetime,
    ) -> set[str]:
        """Flag what the rules find; returns users whose score changed by it."""
        edges = [_edge(r) for r in recent]
        findings = detect(_edge(rating), edges, commitments, now)
        if not findings:
            return set()
        by_id = {r.id: r for r in recent}
        by_id[rating.id] = rating
        changed: set[str] = set()
        for rating_id, reasons in findings.reasons.items():
            target = by_id[rating_id]
            if target.id != rating.id:
                fresh = await repo.rating(rating_id)
                if fresh is None:
                    continue
                target = fresh
            flag = target.flag
            if flag is not None and flag.status is not ReviewStatus.OPEN:
                continue  # an admin already decided this rating: detection does not reopen it
            details = findings.details[rating_id]
            if flag is None:
                new_flag = Flag(
                    rating_id, tuple(sorted(reasons)), "\n".join(details), now, ReviewStatus.OPEN
                )
            else:
                merged = set(flag.reasons) | reasons
                if merged == set(flag.reasons):
                    continue
                extra = [d for d in details if d not in flag.details]
                new_flag = replace(
                    flag,
                    reasons=tuple(sorted(merged)),
                    details="\n".join([flag.details, *extra]).strip(),
                )
            await repo.set_flag(new_flag, exists=flag is not None)
            await enqueue(repo.session, outbox, self._flagged_event(target, new_flag, now))
            if flag is None and target.id != rating.id and target.revealed(now):
                changed.add(target.rated_id)
        return changed

    async def get_rating(self, caller: Principal, rating_id: str) -> Rating:
        rating_id = validate_id(rating_id, "rating_id")
        async with self.db.session() as read:
            rating = await Repository(read).rating(rating_id)
        if rating is None or not can_see(caller, rating, self.clock.now()):
            raise NotFound("rating not found")
        return rating

    async def list_ratings(
        self,
        caller: Principal,
        *,
        user_id: str,
        given: bool,
        include_expired: bool,
        requested_size: int,
        page_token: str,
    ) -> Page[Rating]:
        user_id = validate_text(user_id, "user_id", 64, required=False) or caller.user_id
        limit = page_size(requested_size)
        offset = PAGE_TOKENS.decode(page_token)
        async with self.db.session() as read:
            found = await Repository(read).list_ratings(
                user_id=user_id,
                given=given,
                include_expired=include_expired,
                visible_to=None if caller.is_admin else caller.user_id,
                now=self.clock.now(),
                offset=offset,
                limit=limit + 1,
            )
        return PAGE_TOKENS.page(found, offset, limit)


def _edge(rating: Rating) -> Edge:
    return Edge(
        rating_id=rating.id,
        rater_id=rating.rater_id,
        rated_id=rating.rated_id,
        score=rating.score,
        created_at=rating.created_at,
        subject_id=rating.subject_id,
        new_rater=rating.rater_weight < 1.0,
    )


def can_see(viewer: Principal | None, rating: Rating, now: datetime) -> bool:
    """Whether the rating exists for this viewer at all (score and comment may still be
    withheld: see `withheld`). The rater, the rated and admins always; the public once it
    is revealed and not upheld as manipulation."""
    if viewer is not None and (
        viewer.is_admin or viewer.user_id in (rating.rater_id, rating.rated_id)
    ):
        return True
    upheld = rating.flag is not None and rating.flag.status is ReviewStatus.UPHELD
    return rating.revealed(now) and not upheld


def withheld(viewer: Principal | None, rating: Rating, now: datetime) -> bool:
    """Score and comment are withheld from everyone but the rater (and admins) until
    the rating is revealed: that is the blind."""
    if viewer is not None and (viewer.is_admin or viewer.user_id == rating.rater_id):
        return False
    return not rating.revealed(now)
