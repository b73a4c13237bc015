"""Passport use cases: the timeline from learning and chain events, access by owner,
public view or share link, profile, privacy, share links, export and verification.

**Who sees what.** Every read resolves an :class:`Access`: the owner sees everything
(``FULL``); anyone (signed in or not) sees a *public* passport through its
``public_disclosure``; a share-link token grants the link's scope, which is always
within the owner's current ``share_link_disclosure``. Otherwise the passport does not
exist for the viewer (NOT_FOUND, the same answer as an unknown id, so ids leak nothing).
Writes (profile, privacy, links) act on the caller's own passport only.

**Events consumed** (each once, through the kit's deduplicator):

* ``learning.interaction_recorded``: a timeline entry (statement, hierarchy ids, and the
  device signature when the learner signed on device).
* ``chain.interaction_anchored``: ``record_id`` (= statement id), ``learner_id``,
  ``domain``, ``batch_id``, ``root``, ``leaf``, ``leaf_index``, ``block``, ``tx_hash``;
  plus, when the translator includes them, ``proof`` (sibling felts), ``signature`` and
  ``public_key`` (custodial signatures). A missing proof is fetched through the
  :class:`ProofSource` (the translator's public ``GetInclusionProof``).
* ``chain.anchor_failed``: ``record_id``, ``learner_id``, ``failure_reason``.
* ``identity.profile_changed``: ``user_id``, ``display_name`` (``owner_names``): the
  owner's name, shown to those the owner lets see their identity, and the names shown for
  the users who attest entries.

**Authors.** Each entry records its author, the Keiko account the statement's authority
names (``self`` when that is the learner, else a user or a Keiko service), and, from the
translator's anchor event, whose key signed it (``author_id`` there). Only the learner's
own entries set the passport's public key.

Each change enqueues ``passport.updated`` (``passport_id``, ``owner_id``, ``kind``,
``statement_id``) in the same transaction: WatchPassport streams it.

**Verification** reads roots from the chain only (an :class:`AsyncChainReader` from the
configured RPC URL); Keiko's stored roots are never trusted.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chain.translator.authors import author_kind, keiko_account
from chain.translator.batching import Domain
from chain.translator.felts import parse_felt
from chain.verify import (
    AnchorProof,
    AsyncChainReader,
    EntryReport,
    EntryStatus,
    ExportEntry,
    Failure,
    PassportExport,
    VerificationReport,
    averify_passport,
)
from services.kit.auth import Principal
from services.kit.clock import Clock
from services.kit.db import Database, is_unique_violation
from services.kit.errors import (
    FailedPrecondition,
    NotFound,
    Unauthenticated,
    Unavailable,
    ValidationError,
)
from services.kit.events import Event
from services.kit.events.outbox import enqueue
from services.kit.logging import get_logger
from services.passport.credentials.revocation import (
    revoke_for_share_link,
    revoke_for_voided_statement,
)
from services.passport.domain import (
    DEFAULT_PAGE,
    FULL,
    MAX_LABEL_CHARS,
    Anchor,
    AnchorStatus,
    Disclosure,
    Entry,
    PrivacySettings,
    as_utc,
    check_id,
    cursor_scope,
    decode_cursor,
    encode_cursor,
    validate_profile,
)
from services.passport.storage import (
    anchors,
    entries,
    outbox,
    owner_names,
    passports,
    share_links,
)
from services.passport.verification_cache import VerifiedEntries, verification_key

log = get_logger(__name__)

TOPIC_INTERACTION_RECORDED = "learning.interaction_recorded"
TOPIC_INTERACTION_ANCHORED = "chain.interaction_anchored"
TOPIC_ANCHOR_FAILED = "chain.anchor_failed"
TOPIC_PASSPORT_UPDATED = "passport.updated"
TOPIC_PROFILE_CHANGED = "identity.profile_changed"
CONSUMED_TOPICS = (
    TOPIC_INTERACTION_RECORDED,
    TOPIC_INTERACTION_ANCHORED,
    TOPIC_ANCHOR_FAILED,
    TOPIC_PROFILE_CHANGED,
)
MAX_DISPLAY_NAME = 200

ENTRY_ADDED = "entry_added"
ENTRY_ANCHOR_CHANGED = "entry_anchor_changed"
PROFILE_UPDATED = "profile_updated"
PRIVACY_UPDATED = "privacy_updated"

MAX_EXPORT_ENTRIES = 10_000
TOKEN_BYTES = 32

ChainReaderFactory = Callable[[], AbstractAsyncContextManager[AsyncChainReader]]


class ProofSource(Protocol):
    """Where a missing inclusion proof comes from (the translator's GetInclusionProof)."""

    async def siblings(self, domain: str, record_id: str) -> list[str]: ...


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class PassportRow:
    id: str
    owner_id: str
    public_key_hex: str
    privacy: PrivacySettings
    profile: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    version: int = 0

    @classmethod
    def of(cls, row: Any) -> PassportRow:
        m = row._mapping
        return cls(
            m["id"],
            m["owner_id"],
            m["public_key_hex"] or "",
            PrivacySettings.from_json(m["privacy"]),
            m["profile"],
            as_utc(m["created_at"]),
            as_utc(m["updated_at"]),
            int(m["version"]),
        )


@dataclass(frozen=True, slots=True)
class ShareLink:
    id: str
    passport_id: str
    owner_id: str
    label: str
    scope: Disclosure
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    view_count: int

    @classmethod
    def of(cls, row: Any) -> ShareLink:
        m = row._mapping
        return cls(
            m["id"],
            m["passport_id"],
            m["owner_id"],
            m["label"],
            Disclosure.from_json(m["scope"]),
            as_utc(m["created_at"]),
            None if m["expires_at"] is None else as_utc(m["expires_at"]),
            None if m["revoked_at"] is None else as_utc(m["revoked_at"]),
            int(m["view_count"]),
        )

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True, slots=True)
class Access:
    """A viewer's access to one passport."""

    passport: PassportRow
    disclosure: Disclosure
    is_owner: bool
    link: ShareLink | None = None


@dataclass(frozen=True, slots=True)
class TimelineFilter:
    course_id: str = ""
    interaction_types: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class CreatedLink:
    link: ShareLink
    token: str  # empty on an idempotent replay: only the hash is stored
    url: str


@dataclass(frozen=True, slots=True)
class Verification:
    statement_id: str
    signature_valid: bool
    inclusion_valid: bool
    root_on_chain: bool
    status: EntryStatus
    reason: str
    block: int
    tx_hash: str
    key_holder: str = ""
    key_registration: str = ""
    key_custody: str = ""
    key_registered_block: int = 0

    @property
    def verified(self) -> bool:
        return self.status is EntryStatus.VERIFIED


_SIGNATURE_FAILURES = {
    Failure.MALFORMED,
    Failure.STATEMENT_MISMATCH,
    Failure.SIGNATURE_INVALID,
    Failure.STATEMENT_HASH_MISMATCH,
    Failure.KEY_NOT_LEARNERS,
    Failure.AUTHOR_KEY_MISMATCH,
    Failure.NOT_LEARNERS_OWN,
    Failure.AUTHOR_NOT_AUTHORITY,
    Failure.ENTRY_NOT_LEARNERS,
    Failure.KEY_NOT_AUTHORS,
    Failure.KEY_REVOKED,
}
_INCLUSION_FAILURES = {
    Failure.MALFORMED,
    Failure.LEAF_MISMATCH,
    Failure.INDEX_OUT_OF_RANGE,
    Failure.PROOF_FAILED,
    Failure.NOT_ANCHORED,
}
_ROOT_FAILURES = {
    Failure.ROOT_NOT_ANCHORED,
    Failure.BATCH_ROOT_MISMATCH,
    Failure.CHAIN_READ_FAILED,
    Failure.NOT_ANCHORED,
    Failure.MALFORMED,
}


def verification_of(report: EntryReport) -> Verification:
    reasons = {p.reason for p in report.problems}
    anchored = report.batch_id is not None
    author = report.author
    return Verification(
        statement_id=report.entry_id or "",
        signature_valid=not (reasons & _SIGNATURE_FAILURES),
        inclusion_valid=anchored and not (reasons & _INCLUSION_FAILURES),
        root_on_chain=anchored and report.chain_root is not None and not (reasons & _ROOT_FAILURES),
        status=report.status,
        reason=str(report.problems[0]) if report.problems else "",
        block=report.block or 0,
        tx_hash=hex(report.tx_hash) if report.tx_hash is not None else "",
        key_holder="" if author is None else author.holder,
        key_registration="" if author is None else author.registration.value,
        key_custody="" if author is None or author.custody is None else author.custody,
        key_registered_block=0 if author is None or author.block is None else author.block,
    )


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


def _text(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    return value if isinstance(value, str) else ""


def _author_of(statement_json: str, recorded_by: str, learner: str) -> str:
    """The Keiko account the statement's authority names (the learning service sets it
    to the writer's), else who recorded it, else the learner."""
    try:
        statement = json.loads(statement_json)
    except ValueError:
        statement = {}
    authority = statement.get("authority") if isinstance(statement, dict) else None
    return (keiko_account(authority) or recorded_by or learner)[:200]


def export_entry(entry: Entry, show_identity: bool = True) -> ExportEntry | None:
    """The entry in ``keiko.passport.export`` form, or None while it has no signature."""
    if not entry.signature_hex or not entry.public_key_hex:
        return None
    anchor = None
    a = entry.anchor
    if a.status is AnchorStatus.ANCHORED and a.proof is not None:
        anchor = AnchorProof(
            batch_id=parse_felt(a.batch_id, "batch_id"),
            domain=Domain.parse(a.domain),
            leaf_index=a.leaf_index,
            proof=tuple(parse_felt(s, "proof") for s in a.proof),
            root=parse_felt(a.root, "root"),
            tx_hash=parse_felt(a.tx_hash or "0x0", "tx_hash"),
            block=a.block,
        )
    from chain.verify import build_entry

    return build_entry(
        entry.statement_id,
        entry.statement,
        bytes.fromhex(entry.signature_hex),
        bytes.fromhex(entry.public_key_hex),
        anchor,
        entry.author(show_identity),
        legacy=entry.legacy,
    )


class PassportService:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        *,
        share_base_url: str = "http://127.0.0.1:8000",
        chain_reader: ChainReaderFactory | None = None,
        proof_source: ProofSource | None = None,
        verify_in_thread: bool = False,
    ) -> None:
        self.db = database
        self.clock = clock
        self.share_base_url = share_base_url.rstrip("/")
        self.chain_reader = chain_reader
        self.proof_source = proof_source
        # Verification (signatures, Merkle proofs: CPU) runs on a worker thread with its
        # own event loop when the reader allows it (the production one opens its own
        # connection per use), so the process's loop keeps serving other requests.
        self.verify_in_thread = verify_in_thread
        self.verified = VerifiedEntries()
        self.on_commit: list[Callable[[], None]] = []

    def _notify(self) -> None:
        for callback in self.on_commit:
            callback()

    # == events ==========================================================================

    async def handle_event(self, session: AsyncSession, event: Event) -> None:
        if event.topic == TOPIC_INTERACTION_RECORDED:
            await self._on_recorded(session, event)
        elif event.topic == TOPIC_INTERACTION_ANCHORED:
            await self._on_anchored(session, event)
        elif event.topic == TOPIC_ANCHOR_FAILED:
            await self._on_failed(session, event)
        elif event.topic == TOPIC_PROFILE_CHANGED:
            await self._on_profile_changed(session, event)

    async def _on_profile_changed(self, s: AsyncSession, event: Event) -> None:
        user_id = _text(event.payload, "user_id")
        name = _text(event.payload, "display_name")[:MAX_DISPLAY_NAME]
        if not user_id or len(user_id) > 200 or not name:
            return
        values = {"display_name": name, "updated_at": self.clock.now()}
        changed = await s.execute(
            update(owner_names).where(owner_names.c.user_id == user_id).values(**values)
        )
        if not changed.rowcount:  # type: ignore[attr-defined]
            await s.execute(owner_names.insert().values(user_id=user_id, **values))
        # The name is shown in the user's own passport and beside every entry they wrote
        # in others': each of those passports moves to a new version.
        authored = select(entries.c.learner_id).where(entries.c.author_id == user_id)
        await s.execute(
            update(passports)
            .where(or_(passports.c.owner_id == user_id, passports.c.owner_id.in_(authored)))
            .values(version=passports.c.version + 1)
        )

    async def owner_display_name(self, owner_id: str) -> str:
        """The owner's display name as identity last announced it ('' if never)."""
        async with self.db.session() as s:
            found = await s.scalar(
                select(owner_names.c.display_name).where(owner_names.c.user_id == owner_id)
            )
        return str(found or "")

    async def prepare_event(self, event: Event) -> Event:
        """Outside any transaction: fetch what the event lacks (a proof) so the handler
        stays a short database transaction."""
        payload = event.payload
        if (
            event.topic == TOPIC_INTERACTION_ANCHORED
            and not isinstance(payload.get("proof"), list)
            and self.proof_source is not None
        ):
            try:
                siblings = await self.proof_source.siblings(
                    _text(payload, "domain") or "learning", _text(payload, "record_id")
                )
            except Exception as exc:
                # Keep the anchor (status, tx) without a proof rather than lose the event;
                # verifiers see the entry as pending until a proof arrives.
                log.warning(
                    "passport.proof_unavailable",
                    record_id=_text(payload, "record_id"),
                    error=repr(exc),
                )
                return event
            return Event(
                event.topic,
                event.key,
                {**payload, "proof": siblings},
                id=event.id,
                occurred_at=event.occurred_at,
            )
        return event

    async def _on_recorded(self, s: AsyncSession, event: Event) -> None:
        p = event.payload
        learner = _text(p, "learner_id")
        statement_id = _text(p, "statement_id")
        statement_json = _text(p, "statement_json")
        if not learner or not statement_id or not statement_json:
            return  # statements about external actors have no passport
        voided = _text(p, "voided_statement_id")
        if voided:  # not an interaction of the timeline; credentials carrying it are revoked
            await revoke_for_voided_statement(s, learner, voided, self.clock.now())
            return
        device = p.get("device_signature") or {}
        signature = _text(device, "signature_hex") if isinstance(device, Mapping) else ""
        public_key = _text(device, "public_key_hex") if isinstance(device, Mapping) else ""
        timestamp = datetime.fromisoformat(_text(p, "timestamp").replace("Z", "+00:00"))
        author = _author_of(statement_json, _text(p, "recorded_by"), learner)
        passport = await self._ensure_passport(s, learner)
        exists = (
            await s.execute(select(entries.c.seq).where(entries.c.statement_id == statement_id))
        ).first()
        if exists is not None:
            return
        await s.execute(
            entries.insert().values(
                statement_id=statement_id,
                learner_id=learner,
                interaction_type=_text(p, "interaction_type"),
                verb_id=_text(p, "verb_id"),
                object_id=_text(p, "object_id")[:1000],
                course_id=_text(p, "course_id"),
                class_id=_text(p, "class_id"),
                tutorial_session_id=_text(p, "tutorial_session_id"),
                study_session_id=_text(p, "study_session_id"),
                timestamp=as_utc(timestamp),
                statement_json=statement_json,
                signature_hex=signature.lower(),
                public_key_hex=public_key.lower(),
                recorded_at=self.clock.now(),
                author_id=author,
                author_kind=author_kind(author, learner).value,
            )
        )
        if public_key and author == learner:
            # Only the learner's own entries carry the learner's key.
            await self._set_key(s, passport, public_key.lower())
        await self._announce(s, passport, ENTRY_ADDED, statement_id)

    async def _on_anchored(self, s: AsyncSession, event: Event) -> None:
        p = event.payload
        record_id = _text(p, "record_id")
        learner = _text(p, "learner_id")
        if (p.get("domain") or "learning") != "learning" or not record_id or not learner:
            return
        if len(record_id) > 64 or len(learner) > 200:
            return  # not a statement of a Keiko learner
        proof = p.get("proof")
        values = {
            "learner_id": learner,
            "status": AnchorStatus.ANCHORED.value,
            "domain": "learning",
            "batch_id": _text(p, "batch_id"),
            "root": _text(p, "root"),
            "leaf": _text(p, "leaf"),
            "leaf_index": int(p.get("leaf_index") or 0),
            "proof": [str(x) for x in proof] if isinstance(proof, list) else None,
            "block": int(p.get("block") or 0),
            "tx_hash": _text(p, "tx_hash"),
            "signature_hex": _text(p, "signature").lower(),
            "public_key_hex": _text(p, "public_key").lower(),
            "failure_reason": "",
            "updated_at": self.clock.now(),
            # Whose key signed it; the translator's events before per-author signing do
            # not say, and every entry was then signed by its learner's key.
            "signer_id": _text(p, "author_id") or learner,
        }
        await self._upsert_anchor(s, record_id, values)
        passport = await self._ensure_passport(s, learner)
        if values["public_key_hex"] and values["signer_id"] == learner:
            # Only the learner's own entries carry the learner's key.
            await self._set_key(s, passport, str(values["public_key_hex"]))
        await self._announce(s, passport, ENTRY_ANCHOR_CHANGED, record_id)

    async def _on_failed(self, s: AsyncSession, event: Event) -> None:
        p = event.payload
        record_id = _text(p, "record_id")
        learner = _text(p, "learner_id")
        if (p.get("domain") or "learning") != "learning" or not record_id or not learner:
            return
        current = (
            await s.execute(select(anchors.c.status).where(anchors.c.record_id == record_id))
        ).first()
        if current is not None and current[0] == AnchorStatus.ANCHORED.value:
            return  # anchored wins over a stale failure
        values = {
            "learner_id": learner,
            "status": AnchorStatus.FAILED.value,
            "domain": "learning",
            "batch_id": _text(p, "batch_id"),
            "root": "",
            "leaf": _text(p, "leaf"),
            "leaf_index": 0,
            "proof": None,
            "block": 0,
            "tx_hash": "",
            "signature_hex": "",
            "public_key_hex": "",
            "failure_reason": (_text(p, "failure_reason") or "anchoring failed")[:2000],
            "updated_at": self.clock.now(),
            "signer_id": "",
        }
        await self._upsert_anchor(s, record_id, values)
        passport = await self._ensure_passport(s, learner)
        await self._announce(s, passport, ENTRY_ANCHOR_CHANGED, record_id)

    async def _upsert_anchor(self, s: AsyncSession, record_id: str, values: dict[str, Any]) -> None:
        found = (
            await s.execute(select(anchors.c.record_id).where(anchors.c.record_id == record_id))
        ).first()
        if found is None:
            await s.execute(anchors.insert().values(record_id=record_id, **values))
        else:
            await s.execute(
                update(anchors).where(anchors.c.record_id == record_id).values(**values)
            )

    async def _set_key(self, s: AsyncSession, passport: PassportRow, public_key: str) -> None:
        if passport.public_key_hex != public_key:
            await s.execute(
                update(passports)
                .where(passports.c.id == passport.id)
                .values(public_key_hex=public_key)
            )

    async def _announce(
        self, s: AsyncSession, passport: PassportRow, kind: str, statement_id: str = ""
    ) -> None:
        now = self.clock.now()
        await s.execute(
            update(passports)
            .where(passports.c.id == passport.id)
            .values(updated_at=now, version=passports.c.version + 1)
        )
        await enqueue(
            s,
            outbox,
            Event(
                TOPIC_PASSPORT_UPDATED,
                key=passport.id,
                payload={
                    "passport_id": passport.id,
                    "owner_id": passport.owner_id,
                    "kind": kind,
                    "statement_id": statement_id,
                },
                occurred_at=now,
            ),
        )

    async def _ensure_passport(self, s: AsyncSession, owner_id: str) -> PassportRow:
        row = (await s.execute(select(passports).where(passports.c.owner_id == owner_id))).first()
        if row is not None:
            return PassportRow.of(row)
        now = self.clock.now()
        values = {
            "id": str(uuid.uuid4()),
            "owner_id": owner_id,
            "public_key_hex": None,
            "privacy": PrivacySettings().to_json(),
            "profile": None,
            "created_at": now,
            "updated_at": now,
        }
        await s.execute(passports.insert().values(**values))
        return PassportRow.of(
            (await s.execute(select(passports).where(passports.c.id == values["id"]))).one()
        )

    # == access ==========================================================================

    async def own_passport(self, caller: Principal) -> PassportRow:
        async with self.db.session() as s:
            row = (
                await s.execute(select(passports).where(passports.c.owner_id == caller.user_id))
            ).first()
        if row is not None:
            return PassportRow.of(row)
        try:
            async with self.db.transaction() as s:
                return await self._ensure_passport(s, caller.user_id)
        except IntegrityError as exc:  # created concurrently
            if not is_unique_violation(exc):
                raise
            async with self.db.session() as s:
                return PassportRow.of(
                    (
                        await s.execute(
                            select(passports).where(passports.c.owner_id == caller.user_id)
                        )
                    ).one()
                )

    async def access(
        self, viewer: Principal | None, passport_id: str = "", share_token: str = ""
    ) -> Access:
        """Resolve what ``viewer`` may see (see the module docstring)."""
        if share_token:
            return await self.share_access(share_token, count_view=False)
        passport_id = check_id(passport_id, "passport_id", required=False)
        if not passport_id:
            if viewer is None:
                raise Unauthenticated("sign in, or name a public passport or a share token")
            return Access(await self.own_passport(viewer), FULL, True)
        async with self.db.session() as s:
            row = (await s.execute(select(passports).where(passports.c.id == passport_id))).first()
        if row is None:
            raise NotFound(f"no public passport {passport_id}")
        passport = PassportRow.of(row)
        if viewer is not None and viewer.user_id == passport.owner_id:
            return Access(passport, FULL, True)
        if not passport.privacy.public:
            raise NotFound(f"no public passport {passport_id}")
        return Access(passport, passport.privacy.public_disclosure, False)

    async def share_access(self, token: str, *, count_view: bool) -> Access:
        if not token or len(token) > 200:
            raise NotFound("no such share link")
        digest = token_hash(token)
        now = self.clock.now()
        async with self.db.transaction() as s:
            row = (
                await s.execute(select(share_links).where(share_links.c.token_sha256 == digest))
            ).first()
            if row is None:
                raise NotFound("no such share link")
            link = ShareLink.of(row)
            if not link.active(now):
                raise NotFound("no such share link")  # revoked and expired look the same
            if count_view:
                await s.execute(
                    update(share_links)
                    .where(share_links.c.id == link.id)
                    .values(view_count=share_links.c.view_count + 1)
                )
            prow = (
                await s.execute(select(passports).where(passports.c.id == link.passport_id))
            ).one()
        passport = PassportRow.of(prow)
        # A link never reveals more than the owner's current share-link disclosure.
        scope = link.scope.narrow(passport.privacy.share_link_disclosure)
        return Access(passport, scope, False, link)

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
        async with self.db.session() as s:
            rows = (await s.execute(query)).all()
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
        from sqlalchemy import func

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
        async with self.db.session() as s:
            return int((await s.execute(query)).scalar_one())

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

    # == share links =====================================================================

    async def create_link(
        self,
        caller: Principal,
        label: str,
        scope: Disclosure | None,
        expires_at: datetime | None,
        request_id: str = "",
    ) -> CreatedLink:
        label = label.strip()
        if len(label) > MAX_LABEL_CHARS:
            raise ValidationError("label", f"must be at most {MAX_LABEL_CHARS} characters")
        if len(request_id) > 128:
            raise ValidationError("request_id", "must be at most 128 characters")
        now = self.clock.now()
        if expires_at is not None and as_utc(expires_at) <= now:
            raise ValidationError("expires_at", "must be in the future")
        passport = await self.own_passport(caller)
        bound = passport.privacy.share_link_disclosure
        if scope is None:
            scope = bound
        elif not scope.within(bound):
            raise ValidationError(
                "scope", "reveals more than your share-link disclosure allows: widen that first"
            )
        if request_id:
            replay = await self._link_by_request(caller.user_id, request_id)
            if replay is not None:
                return CreatedLink(replay, "", "")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        link_id = str(uuid.uuid4())
        try:
            async with self.db.transaction() as s:
                await s.execute(
                    share_links.insert().values(
                        id=link_id,
                        passport_id=passport.id,
                        owner_id=caller.user_id,
                        token_sha256=token_hash(token),
                        label=label,
                        scope=scope.to_json(),
                        created_at=now,
                        expires_at=None if expires_at is None else as_utc(expires_at),
                        revoked_at=None,
                        view_count=0,
                        request_id=request_id or None,
                    )
                )
        except IntegrityError as exc:
            if not is_unique_violation(exc) or not request_id:
                raise
            replay = await self._link_by_request(caller.user_id, request_id)
            assert replay is not None
            return CreatedLink(replay, "", "")
        link = await self._link(caller, link_id)
        return CreatedLink(link, token, self.share_url(token))

    def share_url(self, token: str) -> str:
        return f"{self.share_base_url}/verify/share/{token}"

    async def _link_by_request(self, owner_id: str, request_id: str) -> ShareLink | None:
        async with self.db.session() as s:
            row = (
                await s.execute(
                    select(share_links).where(
                        share_links.c.owner_id == owner_id, share_links.c.request_id == request_id
                    )
                )
            ).first()
        return None if row is None else ShareLink.of(row)

    async def share_link(self, caller: Principal, link_id: str) -> ShareLink:
        """The caller's own share link (NotFound for another owner's)."""
        return await self._link(caller, link_id)

    async def _link(self, caller: Principal, link_id: str) -> ShareLink:
        link_id = check_id(link_id, "link_id")
        async with self.db.session() as s:
            row = (await s.execute(select(share_links).where(share_links.c.id == link_id))).first()
        if row is None or row._mapping["owner_id"] != caller.user_id:
            raise NotFound(f"no share link {link_id}")  # another owner's link does not exist
        return ShareLink.of(row)

    async def revoke_link(self, caller: Principal, link_id: str) -> ShareLink:
        link = await self._link(caller, link_id)
        if link.revoked_at is None:  # idempotent: revoking twice keeps the first time
            async with self.db.transaction() as s:
                await s.execute(
                    update(share_links)
                    .where(share_links.c.id == link.id, share_links.c.revoked_at.is_(None))
                    .values(revoked_at=self.clock.now())
                )
                # Credentials issued for this link are withdrawn with it.
                await revoke_for_share_link(s, link.id, self.clock.now())
            self._notify()
            link = await self._link(caller, link_id)
        return link

    async def list_links(
        self, caller: Principal, include_inactive: bool, size: int, page_token: str
    ) -> tuple[list[ShareLink], str]:
        scope = cursor_scope(caller.user_id, include_inactive)
        cursor = decode_cursor(page_token, scope)
        c = share_links.c
        query = select(share_links).where(c.owner_id == caller.user_id)
        now = self.clock.now()
        if not include_inactive:
            query = query.where(
                c.revoked_at.is_(None), or_(c.expires_at.is_(None), c.expires_at > now)
            )
        if cursor is not None:
            when, ident = cursor
            query = query.where(or_(c.created_at < when, and_(c.created_at == when, c.id < ident)))
        query = query.order_by(c.created_at.desc(), c.id.desc()).limit(size + 1)
        async with self.db.session() as s:
            rows = (await s.execute(query)).all()
        links = [ShareLink.of(r) for r in rows[:size]]
        token = ""
        if len(rows) > size:
            token = encode_cursor(links[-1].created_at, links[-1].id, scope)
        return links, token

    # == export and verification =========================================================

    async def export(self, access: Access) -> PassportExport:
        """The public ``keiko.passport.export`` document of what ``access`` reveals.
        Entries not yet signed are left out (nothing to verify yet)."""
        if not access.disclosure.show_content:
            raise FailedPrecondition(
                "this passport's disclosure withholds statement content, which independent "
                "verification of signatures needs"
            )
        out: list[ExportEntry] = []
        token = ""
        while len(out) < MAX_EXPORT_ENTRIES:
            page, token = await self.entry_page(access, size=500, page_token=token)
            show = access.disclosure.show_identity
            out.extend(e for e in (export_entry(x, show) for x in page) if e is not None)
            if not token:
                break
        return PassportExport(
            passport_id=access.passport.id,
            generated_at=self.clock.now(),
            entries=tuple(out[:MAX_EXPORT_ENTRIES]),
            learner_id=access.passport.owner_id if access.disclosure.show_identity else None,
        )

    async def _verify_on_chain(self, doc: PassportExport) -> VerificationReport:
        assert self.chain_reader is not None
        async with self.chain_reader() as reader:
            return await averify_passport(doc, reader, require_anchored=False)

    async def verify_entries(
        self, found: Sequence[Entry], show_identity: bool = True
    ) -> list[Verification]:
        """Check each entry's signature, its author's key, proof and root ON CHAIN (never
        Keiko's roots). Without ``show_identity`` the learner is not named as a key's
        holder."""
        if self.chain_reader is None:
            raise Unavailable("verification needs a chain RPC endpoint (KEIKO_CHAIN_RPC_URL)")
        exported: list[ExportEntry] = []
        unsigned: list[Entry] = []
        for e in found:
            item = export_entry(e)
            if item is None:
                unsigned.append(e)
            else:
                exported.append(item)
        learner = found[0].learner_id if found else None
        by_id: dict[str, Verification] = {}
        unknown: list[ExportEntry] = []
        for item in exported:
            cached = self.verified.get(verification_key(item))
            if cached is not None:
                by_id[item.entry_id] = cached
            else:
                unknown.append(item)
        if unknown:
            doc = PassportExport("verification", self.clock.now(), tuple(unknown), learner)
            if self.verify_in_thread:
                report = await asyncio.to_thread(asyncio.run, self._verify_on_chain(doc))
            else:
                report = await self._verify_on_chain(doc)
            fresh = {r.entry_id or "": verification_of(r) for r in report.entries}
            for item in unknown:
                if item.entry_id in fresh:
                    self.verified.remember(verification_key(item), fresh[item.entry_id])
            by_id.update(fresh)
        if not show_identity and learner:
            by_id = {
                k: replace(v, key_holder="") if v.key_holder == learner else v
                for k, v in by_id.items()
            }
        results: list[Verification] = []
        for e in found:
            v = by_id.get(e.statement_id)
            if v is None:
                v = Verification(
                    e.statement_id, False, False, False, EntryStatus.UNANCHORED, "", 0, ""
                )
            elif v.status is EntryStatus.UNANCHORED and e.anchor.status is AnchorStatus.FAILED:
                v = Verification(
                    e.statement_id,
                    v.signature_valid,
                    False,
                    False,
                    EntryStatus.FAILED,
                    f"anchoring failed: {e.anchor.failure_reason}",
                    0,
                    "",
                )
            elif (
                v.status is EntryStatus.UNANCHORED
                and e.anchor.status is AnchorStatus.ANCHORED
                and e.anchor.proof is None
            ):
                pass  # anchored, proof not fetched yet: still pending for verifiers
            results.append(v)
        return results


__all__ = [
    "CONSUMED_TOPICS",
    "TOPIC_PASSPORT_UPDATED",
    "Access",
    "ChainReaderFactory",
    "PassportService",
    "ProofSource",
    "ShareLink",
    "TimelineFilter",
    "Verification",
    "token_hash",
]
