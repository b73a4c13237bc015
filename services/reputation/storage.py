"""Tables of the reputation schema and the queries over them.

- `subjects` + `subject_participants`: rateable exchanges (a tutor session, later a learning
  interaction) with who took part in which role and when the rating window closes. Filled
  from other services' events (`marketplace.tutor_session_completed`).
- `ratings`: one row per (subject, rater, rated): once per direction, by a unique key.
- `flags`: why a rating was flagged and its review.
- `humanity`: user id -> humanity commitment, from `identity.humanity_verified` events.
- `score_snapshots`: the last score announced per user (change detection for the decay job).
- `outbox`, `processed_events`: the kit's event plumbing.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    case,
    cast,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from services.kit.clock import as_utc
from services.kit.db import NAMING_CONVENTION
from services.kit.events import Event
from services.kit.events.dedupe import processed_events_table
from services.kit.events.outbox import outbox_table
from services.reputation.domain import (
    Flag,
    FlagReason,
    Rating,
    RatingColumns,
    ReviewStatus,
    Role,
    Score,
    Subject,
    SubjectKind,
)

metadata = MetaData(schema="reputation", naming_convention=NAMING_CONVENTION)

subjects = Table(
    "subjects",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("completed_at", DateTime(timezone=True), nullable=False),
    Column("closes_at", DateTime(timezone=True), nullable=False),
    Column("context", JSON, nullable=False),
    Column("source_event_id", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

subject_participants = Table(
    "subject_participants",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("user_id", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    ForeignKeyConstraint(
        ["kind", "subject_id"], ["reputation.subjects.kind", "reputation.subjects.subject_id"]
    ),
    Index("ix_subject_participants_user_id", "user_id"),
)

ratings = Table(
    "ratings",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("subject_kind", String(16), nullable=False),
    Column("subject_id", String(64), nullable=False),
    Column("rater_id", String(64), nullable=False),
    Column("rated_id", String(64), nullable=False),
    Column("rater_role", String(16), nullable=False),
    Column("score", Integer, nullable=False),
    Column("comment", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revealed_at", DateTime(timezone=True), nullable=True),
    Column("closes_at", DateTime(timezone=True), nullable=False),
    Column("rater_weight", Float, nullable=False),
    Column("request_id", String(128), nullable=True),
    Column("digest", String(64), nullable=False),
    # Once per direction: one rating per subject, rater and rated user.
    UniqueConstraint("subject_kind", "subject_id", "rater_id", "rated_id"),
    # Replays: a request id names one rating of its rater (NULLs never collide).
    UniqueConstraint("rater_id", "request_id"),
    CheckConstraint("score BETWEEN 1 AND 5", name="score_range"),
    ForeignKeyConstraint(
        ["subject_kind", "subject_id"],
        ["reputation.subjects.kind", "reputation.subjects.subject_id"],
    ),
    Index("ix_ratings_rated_id_created_at", "rated_id", "created_at"),
    Index("ix_ratings_rater_id_created_at", "rater_id", "created_at"),
)
# The reveal sweeper scans unrevealed ratings by window end.
Index(
    "ix_ratings_unrevealed",
    ratings.c.closes_at,
    postgresql_where=ratings.c.revealed_at.is_(None),
    sqlite_where=ratings.c.revealed_at.is_(None),
)

flags = Table(
    "flags",
    metadata,
    Column("rating_id", String(36), primary_key=True),
    Column("reasons", JSON, nullable=False),
    Column("details", Text, nullable=False),
    Column("flagged_at", DateTime(timezone=True), nullable=False),
    Column("review_status", String(16), nullable=False),
    Column("reviewer_id", String(64), nullable=True),
    Column("review_note", Text, nullable=True),
    Column("reviewed_at", DateTime(timezone=True), nullable=True),
    ForeignKeyConstraint(["rating_id"], ["reputation.ratings.id"]),
    Index("ix_flags_review_status_flagged_at", "review_status", "flagged_at"),
)

humanity = Table(
    "humanity",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("commitment", String(160), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_humanity_commitment", "commitment"),
)

score_snapshots = Table(
    "score_snapshots",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("score", JSON, nullable=False),
    Column("computed_at", DateTime(timezone=True), nullable=False),
)

outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)


# -- rows to values -----------------------------------------------------------------------------


def _flag(row: Any) -> Flag | None:
    if row.review_status is None:
        return None
    return Flag(
        rating_id=row.id,
        reasons=tuple(FlagReason(r) for r in row.reasons),
        details=row.details,
        flagged_at=as_utc(row.flagged_at),
        status=ReviewStatus(row.review_status),
        reviewer_id=row.reviewer_id or "",
        review_note=row.review_note or "",
        reviewed_at=as_utc(row.reviewed_at) if row.reviewed_at is not None else None,
    )


def _rating(row: Any) -> Rating:
    return Rating(
        id=row.id,
        subject_kind=SubjectKind(row.subject_kind),
        subject_id=row.subject_id,
        rater_id=row.rater_id,
        rated_id=row.rated_id,
        rater_role=Role(row.rater_role),
        score=row.score,
        comment=row.comment,
        created_at=as_utc(row.created_at),
        expires_at=as_utc(row.expires_at),
        revealed_at=as_utc(row.revealed_at) if row.revealed_at is not None else None,
        closes_at=as_utc(row.closes_at),
        rater_weight=row.rater_weight,
        request_id=row.request_id,
        digest=row.digest,
        flag=_flag(row),
    )


def _rating_query() -> Select[Any]:
    return select(
        ratings,
        flags.c.reasons,
        flags.c.details,
        flags.c.flagged_at,
        flags.c.review_status,
        flags.c.reviewer_id,
        flags.c.review_note,
        flags.c.reviewed_at,
    ).select_from(ratings.outerjoin(flags, flags.c.rating_id == ratings.c.id))


def _revealed(now: datetime) -> Any:
    return or_(ratings.c.revealed_at.is_not(None), ratings.c.closes_at <= now)


def _excluded() -> Any:
    return flags.c.review_status.in_([str(ReviewStatus.OPEN), str(ReviewStatus.UPHELD)])


def _insert_ignore(session: AsyncSession, table: Table) -> Any:
    dialect = session.get_bind().dialect.name
    return pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)


# -- repository -------------------------------------------------------------------------------


class Repository:
    """Queries of one transaction or read session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # subjects

    async def subject(self, kind: SubjectKind, subject_id: str) -> Subject | None:
        row = (
            await self.session.execute(
                select(subjects).where(subjects.c.kind == kind, subjects.c.subject_id == subject_id)
            )
        ).first()
        if row is None:
            return None
        parts = (
            await self.session.execute(
                select(subject_participants.c.user_id, subject_participants.c.role).where(
                    subject_participants.c.kind == kind,
                    subject_participants.c.subject_id == subject_id,
                )
            )
        ).all()
        return Subject(
            kind=kind,
            id=subject_id,
            completed_at=as_utc(row.completed_at),
            closes_at=as_utc(row.closes_at),
            participants={p.user_id: Role(p.role) for p in parts},
        )

    async def add_subject(
        self, subject: Subject, context: dict[str, Any], source_event_id: str | None, now: datetime
    ) -> bool:
        """Record a subject; False (and nothing changed) if it was already known."""
        stmt = (
            _insert_ignore(self.session, subjects)
            .values(
                kind=str(subject.kind),
                subject_id=subject.id,
                completed_at=subject.completed_at,
                closes_at=subject.closes_at,
                context=context,
                source_event_id=source_event_id,
                created_at=now,
            )
            .on_conflict_do_nothing()
        )
        result = await self.session.execute(stmt)
        if int(getattr(result, "rowcount", 0) or 0) != 1:
            return False
        await self.session.execute(
            insert(subject_participants),
            [
                {"kind": str(subject.kind), "subject_id": subject.id, "user_id": u, "role": str(r)}
                for u, r in subject.participants.items()
            ],
        )
        return True

    async def prior_subject_count(self, user_id: str, kind: SubjectKind, subject_id: str) -> int:
        """Exchanges the user took part in other than this one."""
        p = subject_participants
        query = (
            select(func.count())
            .select_from(p)
            .where(p.c.user_id == user_id, or_(p.c.kind != kind, p.c.subject_id != subject_id))
        )
        return int((await self.session.execute(query)).scalar_one())

    async def ratings_given_count(self, user_id: str) -> int:
        query = select(func.count()).select_from(ratings).where(ratings.c.rater_id == user_id)
        return int((await self.session.execute(query)).scalar_one())

    # ratings

    async def insert_rating(self, rating: Rating) -> None:
        await self.session.execute(
            insert(ratings).values(
                id=rating.id,
                subject_kind=str(rating.subject_kind),
                subject_id=rating.subject_id,
                rater_id=rating.rater_id,
                rated_id=rating.rated_id,
                rater_role=str(rating.rater_role),
                score=rating.score,
                comment=rating.comment,
                created_at=rating.created_at,
                expires_at=rating.expires_at,
                revealed_at=rating.revealed_at,
                closes_at=rating.closes_at,
                rater_weight=rating.rater_weight,
                request_id=rating.request_id,
                digest=rating.digest,
            )
        )

    async def rating(self, rating_id: str) -> Rating | None:
        row = (await self.session.execute(_rating_query().where(ratings.c.id == rating_id))).first()
        return _rating(row) if row is not None else None

    async def rating_by_request(self, rater_id: str, request_id: str) -> Rating | None:
        query = _rating_query().where(
            ratings.c.rater_id == rater_id, ratings.c.request_id == request_id
        )
        row = (await self.session.execute(query)).first()
        return _rating(row) if row is not None else None

    async def rating_by_key(
        self, kind: SubjectKind, subject_id: str, rater_id: str, rated_id: str
    ) -> Rating | None:
        query = _rating_query().where(
            ratings.c.subject_kind == kind,
            ratings.c.subject_id == subject_id,
            ratings.c.rater_id == rater_id,
            ratings.c.rated_id == rated_id,
        )
        row = (await self.session.execute(query)).first()
        return _rating(row) if row is not None else None

    async def mark_revealed(self, rating_ids: Collection[str], now: datetime) -> None:
        if rating_ids:
            await self.session.execute(
                update(ratings)
                .where(ratings.c.id.in_(list(rating_ids)), ratings.c.revealed_at.is_(None))
                .values(revealed_at=now)
            )

    async def due_for_reveal(self, now: datetime, limit: int) -> list[Rating]:
        query = (
            _rating_query()
            .where(ratings.c.revealed_at.is_(None), ratings.c.closes_at <= now)
            .order_by(ratings.c.closes_at, ratings.c.id)
            .limit(limit)
        )
        if self.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(of=ratings, skip_locked=True)
        return [_rating(r) for r in (await self.session.execute(query)).all()]

    async def received(self, user_id: str, now: datetime) -> list[Rating]:
        """Every revealed rating a user received (what their score is made of)."""
        query = _rating_query().where(ratings.c.rated_id == user_id, _revealed(now))
        return [_rating(r) for r in (await self.session.execute(query)).all()]

    async def involving(self, user_ids: Collection[str], since: datetime) -> list[Rating]:
        """Ratings since `since` given or received by any of `user_ids` (detection input)."""
        ids = list(user_ids)
        query = _rating_query().where(
            ratings.c.created_at >= since,
            or_(ratings.c.rater_id.in_(ids), ratings.c.rated_id.in_(ids)),
        )
        return [_rating(r) for r in (await self.session.execute(query)).all()]

    async def list_ratings(
        self,
        *,
        user_id: str,
        given: bool,
        include_expired: bool,
        visible_to: str | None,
        now: datetime,
        offset: int,
        limit: int,
    ) -> list[Rating]:
        """Newest first. `visible_to` None means everything (admin); otherwise only what that
        viewer may see: their own ratings, ratings about them (blind ones withheld later),
        and revealed, non-upheld ratings of others."""
        column = ratings.c.rater_id if given else ratings.c.rated_id
        query = _rating_query().where(column == user_id)
        if not include_expired:
            query = query.where(ratings.c.expires_at > now)
        if visible_to is not None:
            public = and_(
                _revealed(now),
                or_(
                    flags.c.review_status.is_(None),
                    flags.c.review_status != str(ReviewStatus.UPHELD),
                ),
            )
            query = query.where(
                or_(ratings.c.rater_id == visible_to, ratings.c.rated_id == visible_to, public)
            )
        query = query.order_by(ratings.c.created_at.desc(), ratings.c.id.desc())
        rows = (await self.session.execute(query.offset(offset).limit(limit))).all()
        return [_rating(r) for r in rows]

    async def rating_columns(self, now: datetime) -> RatingColumns:
        """Every rating as columns for the vectorized recompute: one scan, with the epoch
        seconds, role and "counted" flag computed by the database (no datetime parsing or
        row objects in Python)."""
        if self.session.get_bind().dialect.name == "postgresql":
            created_s: Any = cast(func.extract("epoch", ratings.c.created_at), Float)
        else:
            created_s = (func.julianday(ratings.c.created_at) - 2440587.5) * 86400.0
        not_excluded = or_(flags.c.review_status.is_(None), ~_excluded())
        query = select(
            ratings.c.rated_id,
            case((ratings.c.rater_role == str(Role.STUDENT), 1), else_=0),
            ratings.c.score,
            created_s,
            ratings.c.rater_weight,
            case((and_(_revealed(now), not_excluded), 1), else_=0),
        ).select_from(ratings.outerjoin(flags, flags.c.rating_id == ratings.c.id))
        rows = (await self.session.execute(query)).tuples().all()
        if not rows:
            return RatingColumns.empty()
        rated, student, score, created, weight, counted = zip(*rows, strict=True)
        return RatingColumns(
            rated_id=list(rated),
            is_student_rater=np.array(student, dtype=np.bool_),
            score=np.array(score, dtype=np.float64),
            created_s=np.array(created, dtype=np.float64),
            counted=np.array(counted, dtype=np.bool_),
            rater_weight=np.array(weight, dtype=np.float64),
        )

    # flags

    async def set_flag(self, flag: Flag, *, exists: bool) -> None:
        values = {
            "reasons": sorted(str(r) for r in flag.reasons),
            "details": flag.details,
            "flagged_at": flag.flagged_at,
            "review_status": str(flag.status),
            "reviewer_id": flag.reviewer_id or None,
            "review_note": flag.review_note or None,
            "reviewed_at": flag.reviewed_at,
        }
        if exists:
            await self.session.execute(
                update(flags).where(flags.c.rating_id == flag.rating_id).values(**values)
            )
        else:
            await self.session.execute(insert(flags).values(rating_id=flag.rating_id, **values))

    async def flagged(self, status: ReviewStatus, offset: int, limit: int) -> list[Rating]:
        query = (
            _rating_query()
            .where(flags.c.review_status == str(status))
            .order_by(flags.c.flagged_at.desc(), ratings.c.id)
            .offset(offset)
            .limit(limit)
        )
        return [_rating(r) for r in (await self.session.execute(query)).all()]

    # humanity

    async def commitments(self, user_ids: Collection[str]) -> dict[str, str]:
        if not user_ids:
            return {}
        rows = await self.session.execute(
            select(humanity.c.user_id, humanity.c.commitment).where(
                humanity.c.user_id.in_(list(user_ids))
            )
        )
        return {r.user_id: r.commitment for r in rows}

    async def set_commitment(self, user_id: str, commitment: str | None, now: datetime) -> None:
        if commitment is None:
            await self.session.execute(humanity.delete().where(humanity.c.user_id == user_id))
            return
        stmt = _insert_ignore(self.session, humanity).values(
            user_id=user_id, commitment=commitment, updated_at=now
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[humanity.c.user_id],
                set_={"commitment": commitment, "updated_at": now},
            )
        )

    # score snapshots

    async def snapshots(self) -> dict[str, Score]:
        rows = await self.session.execute(
            select(score_snapshots.c.user_id, score_snapshots.c.score)
        )
        return {r.user_id: Score.from_json(r.score) for r in rows}

    async def save_snapshots(self, scores: Sequence[Score]) -> None:
        """Upsert many snapshots in one statement per chunk (the decay recompute)."""
        table = score_snapshots
        for i in range(0, len(scores), 1000):
            chunk = scores[i : i + 1000]
            stmt = _insert_ignore(self.session, table).values(
                [
                    {"user_id": s.user_id, "score": s.to_json(), "computed_at": s.last_updated}
                    for s in chunk
                ]
            )
            await self.session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[table.c.user_id],
                    set_={"score": stmt.excluded.score, "computed_at": stmt.excluded.computed_at},
                )
            )

    async def enqueue_many(self, events: Sequence[Event]) -> None:
        """`services.kit.events.outbox.enqueue` for many events, in one executemany."""
        if events:
            await self.session.execute(
                insert(outbox),
                [
                    {
                        "event_id": e.id,
                        "topic": e.topic,
                        "key": e.key,
                        "payload": e.payload,
                        "occurred_at": as_utc(e.occurred_at),
                    }
                    for e in events
                ],
            )

    async def save_snapshot(self, score: Score) -> None:
        stmt = _insert_ignore(self.session, score_snapshots).values(
            user_id=score.user_id, score=score.to_json(), computed_at=score.last_updated
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[score_snapshots.c.user_id],
                set_={"score": score.to_json(), "computed_at": score.last_updated},
            )
        )
