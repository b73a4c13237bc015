"""The reputation service: rating windows from completed exchanges, blind ratings, scores,
manipulation flags and their review, and the events that announce all of it.

Authorization is per object: only a participant rates, only the other participant is
rated, once per direction; only the rated user reports; only admins see and review flags.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.clock import Clock
from services.kit.db import Database, is_unique_violation
from services.kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from services.kit.events import Event
from services.kit.events.outbox import enqueue
from services.kit.logging import get_logger
from services.kit.paging import Page, page_size
from services.reputation.domain import (
    DETECTION_WINDOW,
    MAX_NOTE,
    MAX_REASON,
    NEW_RATER_WEIGHT,
    PAGE_TOKENS,
    RATING_TTL,
    RATING_WINDOW,
    Decision,
    Edge,
    Flag,
    FlagReason,
    Rating,
    RatingInput,
    ReviewStatus,
    Role,
    Score,
    Subject,
    SubjectKind,
    canonical_json,
    compute_all_scores,
    compute_score,
    detect,
    digest_fields,
    iso,
    parse_iso,
    rating_digest,
    validate_id,
    validate_rating,
    validate_text,
)
from services.reputation.storage import Repository, outbox

log = get_logger(__name__)

# Topics this service publishes (through its outbox).
TOPIC_RATING_REVEALED = "reputation.rating_revealed"
TOPIC_RATING_FLAGGED = "reputation.rating_flagged"
TOPIC_FLAG_REVIEWED = "reputation.flag_reviewed"
TOPIC_REPUTATION_UPDATED = "reputation.reputation_updated"
# Topics it consumes.
TOPIC_SESSION_COMPLETED = "marketplace.tutor_session_completed"
STUDENT_CONSENTS = frozenset({"self", "accepted"})
TOPIC_HUMANITY_VERIFIED = "identity.humanity_verified"
TOPIC_USER_UPDATED = "identity.user_updated"
CONSUMED_TOPICS = (TOPIC_SESSION_COMPLETED, TOPIC_HUMANITY_VERIFIED, TOPIC_USER_UPDATED)

REVEAL_BATCH = 500


class HumanityLookup(Protocol):
    """User id -> humanity commitment (hex) of the verified human behind the account.
    Users without a verified proof of humanity are absent from the answer."""

    async def commitments(self, user_ids: Collection[str]) -> Mapping[str, str]: ...


class StoredHumanityLookup:
    """Reads the `reputation.humanity` table that the consumer of `identity.humanity_verified`
    / `identity.user_updated` keeps (see `ReputationService.on_humanity_event`)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def commitments(self, user_ids: Collection[str]) -> Mapping[str, str]:
        async with self.db.session() as session:
            return await Repository(session).commitments(user_ids)


class ReputationService:
    def __init__(self, db: Database, clock: Clock, humanity: HumanityLookup) -> None:
        self.db = db
        self.clock = clock
        self.humanity = humanity

    # -- subjects (from other services' events) ---------------------------------------------

    async def open_subject(
        self,
        session: AsyncSession,
        *,
        kind: SubjectKind,
        subject_id: str,
        participants: Mapping[str, Role],
        completed_at: datetime,
        context: dict[str, Any] | None = None,
        source_event_id: str | None = None,
    ) -> bool:
        """Open the rating window of a completed exchange (in the caller's transaction).
        Generic over subject kinds: a learning interaction is opened the same way.
        Returns False if the subject was already known (redelivery)."""
        subject_id = validate_id(subject_id, "subject_id")
        if len(participants) != 2 or set(participants.values()) != {Role.STUDENT, Role.TUTOR}:
            raise ValidationError("participants", "need exactly one student and one tutor")
        for user_id in participants:
            validate_id(user_id, "participants")
        subject = Subject(
            kind=kind,
            id=subject_id,
            completed_at=completed_at,
            closes_at=completed_at + RATING_WINDOW,
            participants=dict(participants),
        )
        return await Repository(session).add_subject(
            subject, context or {}, source_event_id, self.clock.now()
        )

    async def on_session_completed(self, session: AsyncSession, event: Event) -> None:
        """`marketplace.tutor_session_completed` -> a rating window for tutor and student."""
        p = event.payload
        try:
            tutor, student = str(p["tutor_id"]), str(p["student_id"])
            session_id = str(p["session_id"])
            # Issue 9: a rating needs a session both sides agreed to. The marketplace
            # completes a session only with the student's consent and says how it was
            # given ("self": they booked it, "accepted": they accepted the invitation);
            # an event without it opens no rating window.
            consent = p.get("student_consent")
            if consent not in STUDENT_CONSENTS:
                raise ValidationError("student_consent", f"is {consent!r}, not a consent")
            completed_raw = p.get("occurred_at")
            completed_at = parse_iso(str(completed_raw)) if completed_raw else event.occurred_at
            if tutor == student:
                raise ValidationError("student_id", "equals tutor_id")
            await self.open_subject(
                session,
                kind=SubjectKind.SESSION,
                subject_id=session_id,
                participants={tutor: Role.TUTOR, student: Role.STUDENT},
                completed_at=completed_at,
                context={
                    k: p.get(k)
                    for k in ("space_id", "start_time", "end_time", "subject", "class_id")
                    if p.get(k) is not None
                },
                source_event_id=event.id,
            )
        except (KeyError, ValueError, ValidationError) as exc:
            # A malformed event never becomes valid by retrying: record and skip it.
            log.error("reputation.bad_session_event", event_id=event.id, error=repr(exc))

    async def on_humanity_event(self, session: AsyncSession, event: Event) -> None:
        """`identity.humanity_verified` / `identity.user_updated`: {user_id,
        humanity_commitment}; an empty commitment (or human_verified false) forgets it."""
        p = event.payload
        user_id = str(p.get("user_id") or p.get("id") or "")
        if not user_id:
            log.error("reputation.bad_humanity_event", event_id=event.id)
            return
        commitment = str(p.get("humanity_commitment") or "")
        if event.topic == TOPIC_USER_UPDATED and "humanity_commitment" not in p:
            if p.get("human_verified") is False:
                commitment = ""
            else:
                return  # a profile change that says nothing about humanity
        await Repository(session).set_commitment(user_id, commitment or None, self.clock.now())

    async def handle_event(self, session: AsyncSession, event: Event) -> None:
        if event.topic == TOPIC_SESSION_COMPLETED:
            await self.on_session_completed(session, event)
        elif event.topic in (TOPIC_HUMANITY_VERIFIED, TOPIC_USER_UPDATED):
            await self.on_humanity_event(session, event)

    # -- ratings ----------------------------------------------------------------------------

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

    # -- scores -----------------------------------------------------------------------------

    async def reputation(self, user_id: str) -> Score:
        """Public: anybody's current reputation, computed at the clock's now."""
        user_id = validate_id(user_id, "user_id")
        now = self.clock.now()
        async with self.db.session() as read:
            received = await Repository(read).received(user_id, now)
        return compute_score(user_id, received, now)

    async def _announce(
        self, session: AsyncSession, user_ids: Collection[str], now: datetime
    ) -> None:
        """Recompute, snapshot and announce the scores of `user_ids` in this transaction."""
        repo = Repository(session)
        for user_id in sorted(user_ids):
            score = compute_score(user_id, await repo.received(user_id, now), now)
            await repo.save_snapshot(score)
            await enqueue(session, outbox, _updated_event(score, now))

    async def recompute_all(self) -> int:
        """Recompute every score at once (numpy) and announce those that moved since the
        last announcement (decay moves them daily). Returns how many were announced."""
        now = self.clock.now()
        # Scan and compute outside the write transaction: writers are not held up by it.
        # Two replicas racing may both announce a change: harmless, watchers keep the newest.
        async with self.db.session() as read:
            repo = Repository(read)
            scores = compute_all_scores(await repo.rating_columns(now), now)
            snapshots = await repo.snapshots()
        changed = [s for u, s in scores.items() if not s.same_values(snapshots.get(u))]
        if changed:
            async with self.db.transaction() as session:
                repo = Repository(session)
                await repo.save_snapshots(changed)
                await repo.enqueue_many([_updated_event(score, now) for score in changed])
        return len(changed)

    async def reveal_due(self) -> int:
        """Reveal ratings whose window closed unanswered; announce them. Returns count."""
        total = 0
        while True:
            now = self.clock.now()
            async with self.db.transaction() as session:
                repo = Repository(session)
                due = await repo.due_for_reveal(now, REVEAL_BATCH)
                await repo.mark_revealed([r.id for r in due], now)
                for rating in due:
                    await enqueue(session, outbox, self._revealed_event(rating, now))
                await self._announce(session, {r.rated_id for r in due}, now)
            total += len(due)
            if len(due) < REVEAL_BATCH:
                return total

    # -- flags ------------------------------------------------------------------------------

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
        _require_admin(caller)
        limit = page_size(requested_size)
        offset = PAGE_TOKENS.decode(page_token)
        async with self.db.session() as read:
            found = await Repository(read).flagged(status, offset, limit + 1)
        return PAGE_TOKENS.page(found, offset, limit)

    async def review(
        self, caller: Principal, rating_id: str, decision: Decision | None, note: str
    ) -> Rating:
        _require_admin(caller)
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

    # -- events -----------------------------------------------------------------------------

    def _revealed_event(self, rating: Rating, now: datetime) -> Event:
        """What the chain translator anchors: the rating digest and the fields it covers
        (the comment only by its hash), plus reveal time."""
        fields = digest_fields(
            rating_id=rating.id,
            subject_kind=rating.subject_kind,
            subject_id=rating.subject_id,
            rater_id=rating.rater_id,
            rated_id=rating.rated_id,
            rater_role=rating.rater_role,
            score=rating.score,
            comment=rating.comment,
            created_at=rating.created_at,
        )
        return Event(
            TOPIC_RATING_REVEALED,
            key=rating.rated_id,
            occurred_at=now,
            payload={
                "kind": "reputation.rating",
                # For keiko.chain.v1 SubmitForAnchoring: domain, record_id and leaf_data =
                # the UTF-8 bytes of `leaf_data` (the canonical JSON of `fields`).
                "domain": "reputation",
                "record_id": rating.id,
                "leaf_data": canonical_json(fields).decode(),
                "digest": rating.digest,
                "digest_algorithm": "sha256/canonical-json-v1",
                "fields": fields,
                "revealed_at": iso(now),
            },
        )

    def _flagged_event(self, rating: Rating, flag: Flag, now: datetime) -> Event:
        return Event(
            TOPIC_RATING_FLAGGED,
            key=rating.id,
            occurred_at=now,
            payload={
                "rating_id": rating.id,
                "rated_id": rating.rated_id,
                "reasons": sorted(str(r) for r in flag.reasons),
                "flagged_at": iso(flag.flagged_at),
            },
        )


def _updated_event(score: Score, now: datetime) -> Event:
    return Event(
        TOPIC_REPUTATION_UPDATED, key=score.user_id, occurred_at=now, payload=score.to_json()
    )


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


def _require_admin(caller: Principal) -> None:
    if not caller.is_admin:
        raise PermissionDenied("admins only")


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
