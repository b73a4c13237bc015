"""The timeline from events: learning's recorded interactions, the chain's anchors and
failures, identity's display names; each change announced with the passport's new
version."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chain.translator.authors import author_kind, keiko_account
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
from services.passport.domain import (
    AnchorStatus,
    as_utc,
)
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
