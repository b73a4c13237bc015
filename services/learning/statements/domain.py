"""Stored statements as plain records, and the rules around storing one: whose record a
statement belongs to and what `learning.interaction_recorded` announces. No I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from services.kit.auth import Principal, Role
from services.learning.hierarchy.domain import KEIKO_HOME_PAGE
from services.learning.xapi import agent_key, format_timestamp

TOPIC_INTERACTION_RECORDED = "learning.interaction_recorded"
# The chain translator's outcome events (chain/translator/storage.py).
TOPIC_INTERACTION_ANCHORED = "chain.interaction_anchored"
TOPIC_ANCHOR_FAILED = "chain.anchor_failed"
ANCHOR_DOMAIN = "learning"
# The learning service as the author of the statements it derives from other services'
# events (a completed tutor session): their `recorded_by` and their authority agent. Only
# ever bound in-process (never issued in a token), with the admin role that writing about
# other Keiko users takes.
SERVICE_USER_ID = "keiko-learning"
SERVICE_PRINCIPAL = Principal(SERVICE_USER_ID, frozenset({Role.ADMIN.value}))
MAX_BATCH = 1000


@dataclass(frozen=True)
class DeviceSignature:
    """A learner's device signature over the prepared canonical statement (Ed25519)."""

    signature_hex: str
    public_key_hex: str


@dataclass(frozen=True)
class InteractionScore:
    scaled: float | None = None
    raw: float | None = None
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class InteractionDetails:
    """What RecordInteraction was given, kept beside the statement (JSON column
    `interaction`) so it can be shown back without parsing the statement."""

    activity_id: str = ""
    title: str = ""
    content: str = ""
    response: str = ""
    related_interaction_id: str = ""
    score: InteractionScore | None = None
    success: bool | None = None
    completion: bool | None = None
    duration: str | None = None  # ISO 8601
    duration_seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(data: Mapping[str, Any] | None) -> InteractionDetails | None:
        if data is None:
            return None
        values = dict(data)
        score = values.pop("score", None)
        known = {k: v for k, v in values.items() if k in InteractionDetails.__dataclass_fields__}
        return InteractionDetails(**known, score=InteractionScore(**score) if score else None)


@dataclass(frozen=True)
class StatementRecord:
    """One stored statement: the exact stored JSON text (what is canonicalized, signed and
    anchored), its RFC 8785 SHA-256, the columns queries filter on, where it sits in the
    hierarchy (interactions) and its anchoring state (None status: pending)."""

    id: str
    actor_key: str | None
    learner_id: str | None
    recorded_by: str
    lrs_client_id: str | None
    webhook_source_id: str | None
    verb_id: str
    object_type: str
    object_id: str | None
    registration: str | None
    timestamp: datetime
    stored: datetime
    version: str
    voided: bool
    voids_statement_id: str | None
    statement_json: str
    canonical_hash: str
    interaction_type: str | None
    interaction: InteractionDetails | None
    course_id: str | None
    class_id: str | None
    tutorial_session_id: str | None
    study_session_id: str | None
    device_signature_hex: str | None
    device_public_key_hex: str | None
    anchor_status: str | None = None
    anchor_batch_id: str | None = None
    anchor_root: str | None = None
    anchor_leaf_index: int | None = None
    anchor_block: int | None = None
    anchor_tx_hash: str | None = None
    anchor_failure: str | None = None
    anchor_signature_hex: str | None = None
    anchor_public_key_hex: str | None = None
    anchored_at: datetime | None = None

    @property
    def statement(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.statement_json)
        return value


@dataclass
class StoreExtras:
    """What the caller of `Statements.store` knows beyond the statement itself."""

    interaction_type: str | None = None
    interaction: InteractionDetails | None = None
    course_id: str | None = None
    class_id: str | None = None
    tutorial_session_id: str | None = None
    study_session_id: str | None = None
    device: DeviceSignature | None = None
    webhook_source_id: str | None = None
    statement_json: str | None = None  # store exactly this text (a prepared statement)


@dataclass(frozen=True)
class AnchorOutcome:
    """A statement's anchoring as the chain translator announced it."""

    status: str  # "anchored" | "failed"
    batch_id: str | None = None
    root: str | None = None
    leaf_index: int | None = None
    block: int | None = None
    tx_hash: str | None = None
    failure: str | None = None
    signature_hex: str | None = None
    public_key_hex: str | None = None
    anchored_at: datetime | None = None


def agent_index(statement: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """(agent key, related) for the xAPI `agent` filter (Communication 2.1.3): the actor
    and an Agent/Group object match directly, as do the members of a Group there; the
    authority, instructor, team, 2.0 context agents and groups, and everything inside a
    SubStatement match only with `related_agents`."""
    found: dict[str, bool] = {}

    def add(agent: object, related: bool) -> None:
        if not isinstance(agent, Mapping):
            return
        key = agent_key(agent)
        if key is not None:
            found[key] = found.get(key, True) and related
        members = agent.get("member")
        if isinstance(members, list):
            for member in members:
                add(member, related)

    def visit(st: Mapping[str, Any], related: bool) -> None:
        add(st.get("actor"), related)
        obj = st.get("object")
        if isinstance(obj, Mapping):
            if obj.get("objectType") in ("Agent", "Group"):
                add(obj, related)
            elif obj.get("objectType") == "SubStatement":
                visit(obj, True)
        add(st.get("authority"), True)
        context = st.get("context")
        if isinstance(context, Mapping):
            add(context.get("instructor"), True)
            add(context.get("team"), True)
            for item in context.get("contextAgents") or []:
                if isinstance(item, Mapping):
                    add(item.get("agent"), True)
            for item in context.get("contextGroups") or []:
                if isinstance(item, Mapping):
                    add(item.get("group"), True)

    visit(statement, False)
    return list(found.items())


def json_text(statement: Mapping[str, Any]) -> str:
    return json.dumps(statement, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def keiko_learner_of(actor: Mapping[str, Any]) -> str | None:
    """The Keiko user id an xAPI actor names (an Agent with a Keiko account), else None."""
    if actor.get("objectType", "Agent") != "Agent":
        return None
    account = actor.get("account")
    if isinstance(account, Mapping) and account.get("homePage") == KEIKO_HOME_PAGE:
        name = account.get("name")
        return str(name) if name else None
    return None


def may_read(caller: Principal, row: StatementRecord) -> bool:
    """A caller reads the statements whose learner they are or that they recorded; admins
    read everything."""
    return caller.is_admin or caller.user_id in (row.learner_id, row.recorded_by)


def interaction_event_payload(row: StatementRecord) -> dict[str, Any]:
    """The payload of `learning.interaction_recorded` (documented in the learning README /
    the lead's report): what the chain translator signs and the passport shows."""
    device = (
        {"signature_hex": row.device_signature_hex, "public_key_hex": row.device_public_key_hex}
        if row.device_signature_hex
        else None
    )
    return {
        "statement_id": row.id,
        "learner_id": row.learner_id or "",
        "recorded_by": row.recorded_by,
        "verb_id": row.verb_id,
        "object_id": row.object_id or "",
        "interaction_type": row.interaction_type or "",
        "course_id": row.course_id or "",
        "class_id": row.class_id or "",
        "tutorial_session_id": row.tutorial_session_id or "",
        "study_session_id": row.study_session_id or "",
        "timestamp": format_timestamp(row.timestamp),
        "stored": format_timestamp(row.stored),
        "version": row.version,
        "voided_statement_id": row.voids_statement_id or "",
        "canonical_hash": row.canonical_hash,
        "statement_json": row.statement_json,
        "device_signature": device,
    }
