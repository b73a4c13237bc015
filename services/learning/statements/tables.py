"""The statement tables (their repository: `services.learning.statements.storage`).

* `statements`: one row per stored xAPI statement: the exact stored JSON text, its RFC 8785
  SHA-256, and the typed columns queries filter on. `learner_id` is the Keiko user the
  actor resolves to (NULL for external actors); `recorded_by` is the user whose
  credentials stored it (the authority). Interactions are statements with
  `interaction_type` set and their input kept in `interaction` (JSON).
* `statement_agents`: agent index (actor/object agents, and those flagged `related`) for
  the xAPI `agent` / `related_agents` filters, with the statement's `stored` so that a
  page by agent reads only its newest rows.
* `statement_activities`: activity index (object activity, and context/substatement
  activities flagged `related`) for the xAPI `activity` / `related_activities` filters.
"""

from __future__ import annotations

from sqlalchemy import JSON as SAJSON
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from services.learning.common.storage import ID, IRI, metadata, ts_column

statements = Table(
    "statements",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("actor_key", String(IRI), nullable=True),
    Column("learner_id", String(ID), nullable=True),
    Column("recorded_by", String(ID), nullable=False),
    Column("lrs_client_id", String(36), nullable=True),
    Column("webhook_source_id", String(36), nullable=True),
    Column("verb_id", String(IRI), nullable=False),
    Column("object_type", String(32), nullable=False),
    Column("object_id", String(IRI), nullable=True),
    Column("registration", String(36), nullable=True),
    ts_column("timestamp"),
    ts_column("stored"),
    Column("version", String(16), nullable=False),
    Column("voided", Boolean, nullable=False, default=False),
    # Set on a voiding statement: the statement it voids.
    Column("voids_statement_id", String(36), nullable=True),
    Column("statement_json", Text, nullable=False),
    Column("canonical_hash", String(64), nullable=False),
    # Interactions (RecordInteraction) only.
    Column("interaction_type", String(16), nullable=True),
    Column("interaction", SAJSON, nullable=True),
    Column("course_id", String(ID), nullable=True),
    Column("class_id", String(ID), nullable=True),
    Column("tutorial_session_id", String(ID), nullable=True),
    Column("study_session_id", String(ID), nullable=True),
    Column("device_signature_hex", String(128), nullable=True),
    Column("device_public_key_hex", String(64), nullable=True),
    # Anchoring on Keikochain, from the translator's events (NULL status: pending).
    Column("anchor_status", String(16), nullable=True),
    Column("anchor_batch_id", String(80), nullable=True),
    Column("anchor_root", String(80), nullable=True),
    Column("anchor_leaf_index", Integer, nullable=True),
    Column("anchor_block", BigInteger, nullable=True),
    Column("anchor_tx_hash", String(80), nullable=True),
    Column("anchor_failure", Text, nullable=True),
    # The signature the translator anchored (custodial or the author's key), so an
    # interaction shows what verifies it once anchored.
    Column("anchor_signature_hex", String(128), nullable=True),
    Column("anchor_public_key_hex", String(64), nullable=True),
    ts_column("anchored_at", nullable=True),
    Index(None, "learner_id", "stored", "id"),
    Index(None, "recorded_by", "stored", "id"),
    Index(None, "stored", "id"),
    Index(None, "verb_id"),
    Index(None, "registration"),
    Index(None, "actor_key"),
    Index(None, "voids_statement_id"),
    Index(None, "class_id"),
    Index(None, "tutorial_session_id"),
    Index(None, "study_session_id"),
    Index(None, "object_id"),
    # The StatementRef rule of the page queries: statements targeting others, by time.
    Index(None, "object_type", "stored", "id"),
)

statement_activities = Table(
    "statement_activities",
    metadata,
    Column(
        "statement_id",
        String(36),
        ForeignKey("statements.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("activity_id", String(IRI), primary_key=True),
    # False: the statement's object; True: context activities, substatement activities.
    Column("related", Boolean, nullable=False),
    Index(None, "activity_id"),
)

statement_agents = Table(
    "statement_agents",
    metadata,
    Column(
        "statement_id",
        String(36),
        ForeignKey("statements.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("agent_key", String(IRI), primary_key=True),
    # False: the actor or an Agent/Group object (or a member of such a Group); True: the
    # authority, instructor, team, context agents/groups, anything in a SubStatement.
    Column("related", Boolean, nullable=False),
    # The statement's `stored`: a page by agent is a range of this index, newest first.
    ts_column("stored"),
    Index(None, "agent_key", "stored", "statement_id"),
)


# Attachment data, content-addressed by the SHA-2 hex digest its statements declare.
attachments = Table(
    "attachments",
    metadata,
    Column("sha2", String(128), primary_key=True),
    Column("content_type", String(255), nullable=False),
    Column("length", Integer, nullable=False),
    Column("content", LargeBinary, nullable=False),
    ts_column("created_at"),
)

statement_attachments = Table(
    "statement_attachments",
    metadata,
    Column(
        "statement_id",
        String(36),
        ForeignKey("statements.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("sha2", String(128), ForeignKey("attachments.sha2"), primary_key=True),
    Index(None, "sha2"),
)
