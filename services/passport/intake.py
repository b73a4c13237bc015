"""The timeline from events: learning's recorded interactions, the chain's anchors and
failures, identity's display names; each change announced with the passport's new
version."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from chain.translator.authors import author_kind, keiko_account
from chain.translator.leaves import LEAF_ENCODING_V1
from services.kit.clock import as_utc
from services.kit.events import Event
from services.kit.logging import get_logger
from services.passport.core import (
    ENTRY_ADDED,
    ENTRY_ANCHOR_CHANGED,
    MAX_DISPLAY_NAME,
    TOPIC_ANCHOR_FAILED,
    TOPIC_INTERACTION_ANCHORED,
    TOPIC_INTERACTION_RECORDED,
    TOPIC_PROFILE_CHANGED,
    PassportCore,
    PassportRow,
)
from services.passport.credentials.revocation import (
    revoke_for_voided_statement,
)
from services.passport.domain import AnchorStatus
from services.passport.storage import (
    anchors,
    entries,
    owner_names,
    passports,
)

log = get_logger(__name__)


def _text(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    return value if isinstance(value, str) else ""


def _leaf_encoding(payload: Mapping[str, Any]) -> str:
    """The record's leaf encoding; the translator's events before it stored encodings do
    not say, and every leaf was then ``keiko.leaf.v1``."""
    return (_text(payload, "leaf_encoding") or LEAF_ENCODING_V1)[:32]


def _author_of(statement_json: str, recorded_by: str, learner: str) -> str:
    """The Keiko account the statement's authority names (the learning service sets it
    to the writer's), else who recorded it, else the learner."""
    try:
        statement = json.loads(statement_json)
    except ValueError:
        statement = {}
    authority = statement.get("authority") if isinstance(statement, dict) else None
    return (keiko_account(authority) or recorded_by or learner)[:200]


class TimelineIntake(PassportCore):
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

    async def handle_events(self, session: AsyncSession, events: Sequence[Event]) -> None:
        """`handle_event` for a consumer's page, in order: each run of consecutive new
        entries, and of anchors, is written with a few statements whatever its length."""
        run: list[Event] = []
        for event in events:
            if run and _run_kind(event) != _run_kind(run[0]):
                await self._handle_run(session, run)
                run = []
            if _run_kind(event) is None:
                await self.handle_event(session, event)
            else:
                run.append(event)
        if run:
            await self._handle_run(session, run)

    async def _handle_run(self, s: AsyncSession, run: Sequence[Event]) -> None:
        if _run_kind(run[0]) == TOPIC_INTERACTION_RECORDED:
            await self._add_entries(s, run)
        else:
            await self._set_anchors(s, run)

    async def _passports(self, s: AsyncSession, owners: Iterable[str]) -> dict[str, PassportRow]:
        """The passports of `owners` (created for those who have none yet)."""
        wanted = set(owners)
        rows = (await s.execute(select(passports).where(passports.c.owner_id.in_(wanted)))).all()
        found = {row.owner_id: PassportRow.of(row) for row in rows}
        for owner in wanted - set(found):
            found[owner] = await self._ensure_passport(s, owner)
        return found

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
        voided = _text(p, "voided_statement_id")
        if voided and learner and _text(p, "statement_id") and _text(p, "statement_json"):
            # Not an interaction of the timeline; credentials carrying it are revoked.
            await revoke_for_voided_statement(s, learner, voided, self.clock.now())
            return
        await self._add_entries(s, [event])

    async def _add_entries(self, s: AsyncSession, events: Sequence[Event]) -> None:
        """New timeline entries from `learning.interaction_recorded` (not voiding ones),
        in order: one SELECT of the passports, one of the entries already there, one
        executemany of the new ones, then their announcements."""
        entries_ = [e for e in map(self._entry, events) if e is not None]
        if not entries_:
            return  # statements about external actors have no passport
        owned = await self._passports(s, (e.values["learner_id"] for e in entries_))
        ids = [e.values["statement_id"] for e in entries_]
        done = set(
            (await s.execute(select(entries.c.statement_id).where(entries.c.statement_id.in_(ids))))
            .scalars()
            .all()
        )
        rows: list[dict[str, Any]] = []
        changes: list[tuple[PassportRow, str, str]] = []
        for entry in entries_:
            statement_id, learner = entry.values["statement_id"], entry.values["learner_id"]
            if statement_id in done:
                continue
            done.add(statement_id)
            rows.append(entry.values)
            if entry.public_key and entry.values["author_id"] == learner:
                # Only the learner's own entries carry the learner's key.
                owned[learner] = await self._set_key(s, owned[learner], entry.public_key)
            changes.append((owned[learner], ENTRY_ADDED, statement_id))
        if rows:
            await s.execute(entries.insert(), rows)
        await self._announce_many(s, changes)

    def _entry(self, event: Event) -> _Entry | None:
        """The entry row a recorded statement adds (None: not one of a Keiko learner)."""
        p = event.payload
        learner = _text(p, "learner_id")
        statement_id = _text(p, "statement_id")
        statement_json = _text(p, "statement_json")
        if not learner or not statement_id or not statement_json:
            return None
        device = p.get("device_signature") or {}
        signature = _text(device, "signature_hex") if isinstance(device, Mapping) else ""
        public_key = _text(device, "public_key_hex") if isinstance(device, Mapping) else ""
        timestamp = datetime.fromisoformat(_text(p, "timestamp").replace("Z", "+00:00"))
        author = _author_of(statement_json, _text(p, "recorded_by"), learner)
        values = {
            "statement_id": statement_id,
            "learner_id": learner,
            "interaction_type": _text(p, "interaction_type"),
            "verb_id": _text(p, "verb_id"),
            "object_id": _text(p, "object_id")[:1000],
            "course_id": _text(p, "course_id"),
            "class_id": _text(p, "class_id"),
            "tutorial_session_id": _text(p, "tutorial_session_id"),
            "study_session_id": _text(p, "study_session_id"),
            "timestamp": as_utc(timestamp),
            "statement_json": statement_json,
            "signature_hex": signature.lower(),
            "public_key_hex": public_key.lower(),
            "recorded_at": self.clock.now(),
            "author_id": author,
            "author_kind": author_kind(author, learner).value,
        }
        return _Entry(values, public_key.lower())

    async def _on_anchored(self, s: AsyncSession, event: Event) -> None:
        await self._set_anchors(s, [event])

    async def _set_anchors(self, s: AsyncSession, events: Sequence[Event]) -> None:
        """Entries' anchors from `chain.interaction_anchored`, in order: one upsert
        executemany (the last event of a record wins, as one by one), one SELECT of the
        passports, then their announcements."""
        found = [a for a in map(self._anchor, events) if a is not None]
        if not found:
            return
        await self._upsert_anchors(s, list({record_id: v for record_id, v in found}.items()))
        owned = await self._passports(s, (v["learner_id"] for _, v in found))
        changes: list[tuple[PassportRow, str, str]] = []
        for record_id, values in found:
            learner = values["learner_id"]
            if values["public_key_hex"] and values["signer_id"] == learner:
                # Only the learner's own entries carry the learner's key.
                owned[learner] = await self._set_key(s, owned[learner], values["public_key_hex"])
            changes.append((owned[learner], ENTRY_ANCHOR_CHANGED, record_id))
        await self._announce_many(s, changes)

    def _anchor(self, event: Event) -> tuple[str, dict[str, Any]] | None:
        """The anchor row an anchored statement gets (None: not a Keiko learner's)."""
        p = event.payload
        record_id = _text(p, "record_id")
        learner = _text(p, "learner_id")
        if (p.get("domain") or "learning") != "learning" or not record_id or not learner:
            return None
        if len(record_id) > 64 or len(learner) > 200:
            return None  # not a statement of a Keiko learner
        proof = p.get("proof")
        return record_id, {
            "learner_id": learner,
            "status": AnchorStatus.ANCHORED.value,
            "domain": "learning",
            "batch_id": _text(p, "batch_id"),
            "root": _text(p, "root"),
            "leaf": _text(p, "leaf"),
            "leaf_encoding": _leaf_encoding(p),
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
            "leaf_encoding": _leaf_encoding(p),
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
        await self._upsert_anchors(s, [(record_id, values)])

    async def _upsert_anchors(
        self, s: AsyncSession, rows: Sequence[tuple[str, dict[str, Any]]]
    ) -> None:
        """Insert or overwrite anchor rows (distinct record ids): one executemany."""
        insert_ = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
        stmt = insert_(anchors)
        stmt = stmt.on_conflict_do_update(
            index_elements=[anchors.c.record_id],
            set_={c.name: stmt.excluded[c.name] for c in anchors.c if c.name != "record_id"},
        )
        await s.execute(stmt, [{"record_id": record_id, **values} for record_id, values in rows])

    async def _set_key(
        self, s: AsyncSession, passport: PassportRow, public_key: str
    ) -> PassportRow:
        """The passport with `public_key` as its learner's key (written if it changed)."""
        if passport.public_key_hex == public_key:
            return passport
        await s.execute(
            update(passports).where(passports.c.id == passport.id).values(public_key_hex=public_key)
        )
        return replace(passport, public_key_hex=public_key)


@dataclass(frozen=True)
class _Entry:
    values: dict[str, Any]
    public_key: str


def _run_kind(event: Event) -> str | None:
    """Which events `handle_events` writes together: new entries, anchors; None: alone."""
    if event.topic == TOPIC_INTERACTION_RECORDED and not _text(
        event.payload, "voided_statement_id"
    ):
        return TOPIC_INTERACTION_RECORDED
    if event.topic == TOPIC_INTERACTION_ANCHORED:
        return TOPIC_INTERACTION_ANCHORED
    return None
