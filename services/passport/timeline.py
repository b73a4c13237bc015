"""Reading the timeline: the entries a viewer's access admits, keyset-paginated, with their
anchors and authors' names."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select

from services.kit.auth import Principal
from services.kit.clock import as_utc
from services.kit.errors import (
    NotFound,
    Unauthenticated,
)
from services.passport.core import (
    Access,
    PassportCore,
)
from services.passport.domain import (
    DEFAULT_PAGE,
    FULL,
    Anchor,
    AnchorStatus,
    Entry,
    check_id,
    cursor_scope,
    decode_cursor,
    encode_cursor,
)
from services.passport.storage import (
    anchors,
    entries,
    owner_names,
)


@dataclass(frozen=True, slots=True)
class TimelineFilter:
    course_id: str = ""
    interaction_types: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None


def _entry_of(row: Any) -> Entry:
    m = row._mapping
    status = m["a_status"]
    if status is None:
        anchor = Anchor(AnchorStatus.PENDING)
    else:
        anchor = Anchor(
            status=AnchorStatus(status),
            batch_id=m["a_batch_id"],
            domain=m["a_domain"],
            root=m["a_root"],
            leaf=m["a_leaf"],
            leaf_index=int(m["a_leaf_index"]),
            leaf_encoding=m["a_leaf_encoding"],
            proof=None if m["a_proof"] is None else tuple(m["a_proof"]),
            block=int(m["a_block"]),
            tx_hash=m["a_tx_hash"],
            failure_reason=m["a_failure_reason"],
            anchored_at=None if m["a_updated_at"] is None else as_utc(m["a_updated_at"]),
        )
    signature = m["signature_hex"] or (m["a_signature_hex"] or "")
    public_key = m["public_key_hex"] or (m["a_public_key_hex"] or "")
    return Entry(
        statement_id=m["statement_id"],
        learner_id=m["learner_id"],
        interaction_type=m["interaction_type"],
        verb_id=m["verb_id"],
        object_id=m["object_id"],
        course_id=m["course_id"],
        class_id=m["class_id"],
        tutorial_session_id=m["tutorial_session_id"],
        study_session_id=m["study_session_id"],
        timestamp=as_utc(m["timestamp"]),
        statement_json=m["statement_json"],
        signature_hex=signature,
        public_key_hex=public_key,
        anchor=anchor,
        seq=int(m["seq"]),
        author_id=m["author_id"],
        author_kind=m["author_kind"],
        signer_id=m["a_signer_id"] or "",
        author_name=m["p_display_name"] or "",
    )


def _entry_select() -> Any:
    a = anchors.c
    return select(
        entries,
        a.status.label("a_status"),
        a.domain.label("a_domain"),
        a.batch_id.label("a_batch_id"),
        a.root.label("a_root"),
        a.leaf.label("a_leaf"),
        a.leaf_index.label("a_leaf_index"),
        a.leaf_encoding.label("a_leaf_encoding"),
        a.proof.label("a_proof"),
        a.block.label("a_block"),
        a.tx_hash.label("a_tx_hash"),
        a.signature_hex.label("a_signature_hex"),
        a.public_key_hex.label("a_public_key_hex"),
        a.failure_reason.label("a_failure_reason"),
        a.updated_at.label("a_updated_at"),
        a.signer_id.label("a_signer_id"),
        owner_names.c.display_name.label("p_display_name"),
    ).select_from(
        entries.outerjoin(anchors, anchors.c.record_id == entries.c.statement_id).outerjoin(
            owner_names, owner_names.c.user_id == entries.c.author_id
        )
    )


class TimelineReads(PassportCore):
    async def owner_display_name(self, owner_id: str) -> str:
        """The owner's display name as identity last announced it ('' if never)."""
        async with self.db.session() as s:
            found = await s.scalar(
                select(owner_names.c.display_name).where(owner_names.c.user_id == owner_id)
            )
        return str(found or "")

    # == timeline ========================================================================

    async def entry_page(
        self,
        access: Access,
        filters: TimelineFilter = TimelineFilter(),
        size: int = DEFAULT_PAGE,
        page_token: str = "",
    ) -> tuple[list[Entry], str]:
        """Chronological entries the access may see, keyset-paginated."""
        d = access.disclosure
        scope = cursor_scope(
            access.passport.id,
            d.to_json(),
            filters.course_id,
            sorted(filters.interaction_types),
            filters.since,
            filters.until,
        )
        cursor = decode_cursor(page_token, scope)
        c = entries.c
        query = _entry_select().where(c.learner_id == access.passport.owner_id)
        if d.interaction_types is not None:
            query = query.where(c.interaction_type.in_(sorted(d.interaction_types)))
        if d.course_ids is not None:
            query = query.where(c.course_id.in_(sorted(d.course_ids)))
        if filters.course_id:
            query = query.where(c.course_id == filters.course_id)
        if filters.interaction_types:
            query = query.where(c.interaction_type.in_(sorted(filters.interaction_types)))
        if filters.since is not None:
            query = query.where(c.timestamp >= filters.since)
        if filters.until is not None:
            query = query.where(c.timestamp < filters.until)
        if cursor is not None:
            when, ident = cursor
            query = query.where(
                or_(c.timestamp > when, and_(c.timestamp == when, c.statement_id > ident))
            )
        query = query.order_by(c.timestamp, c.statement_id).limit(size + 1)
        # One statement: a bare connection, no ORM session nor (SQLite) BEGIN around it.
        async with self.db.read(snapshot=False) as conn:
            rows = (await conn.execute(query)).all()
        found = [_entry_of(r) for r in rows[:size]]
        next_token = ""
        if len(rows) > size:
            last = found[-1]
            next_token = encode_cursor(last.timestamp, last.statement_id, scope)
        return found, next_token

    async def entries_by_id(self, access: Access, statement_ids: Sequence[str]) -> list[Entry]:
        if not statement_ids:
            return []
        d = access.disclosure
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    _entry_select().where(
                        entries.c.learner_id == access.passport.owner_id,
                        entries.c.statement_id.in_(list(statement_ids)),
                    )
                )
            ).all()
        return [e for e in map(_entry_of, rows) if d.admits(e.interaction_type, e.course_id)]

    async def entry(self, access: Access, statement_id: str) -> Entry:
        statement_id = check_id(statement_id, "statement_id")
        found = await self.entries_by_id(access, [statement_id])
        if not found:
            raise NotFound(f"no entry {statement_id}")
        return found[0]

    async def entry_for(self, viewer: Principal | None, statement_id: str, token: str) -> Entry:
        """GetEntry/VerifyEntry: through a token, or as the owner of the entry."""
        statement_id = check_id(statement_id, "statement_id")
        if token:
            return await self.entry(await self.share_access(token, count_view=False), statement_id)
        if viewer is None:
            raise Unauthenticated("sign in or pass a share token")
        return await self.entry(Access(await self.own_passport(viewer), FULL, True), statement_id)

    async def entry_count(self, access: Access) -> int:
        async with self.db.read(snapshot=False) as conn:
            return int((await conn.execute(_count_query(access))).scalar_one())

    async def count_and_owner_name(self, access: Access, with_name: bool) -> tuple[int, str]:
        """`entry_count` and, ``with_name``, `owner_display_name` (else ''): GetPassport's,
        in one statement."""
        if not with_name:
            return await self.entry_count(access), ""
        count = _count_query(access).scalar_subquery()
        name = (
            select(owner_names.c.display_name)
            .where(owner_names.c.user_id == access.passport.owner_id)
            .scalar_subquery()
        )
        async with self.db.read(snapshot=False) as conn:
            found, owner = (await conn.execute(select(count, name))).one()
        return int(found), str(owner or "")


def _count_query(access: Access) -> Any:
    """How many entries the access may see."""
    d = access.disclosure
    query = (
        select(func.count())
        .select_from(entries)
        .where(entries.c.learner_id == access.passport.owner_id)
    )
    if d.interaction_types is not None:
        query = query.where(entries.c.interaction_type.in_(sorted(d.interaction_types)))
    if d.course_ids is not None:
        query = query.where(entries.c.course_id.in_(sorted(d.course_ids)))
    return query
