"""Tables of the passport schema.

- ``passports``: one per learner (``owner_id`` unique); privacy settings and learning
  profile as JSON; the public id verifiers look it up by; ``version``, bumped with every
  change a reader of the passport sees.
- ``entries``: one per xAPI statement of the learner (from
  ``learning.interaction_recorded``), with the hierarchy ids, the signed statement and its
  author (``author_id``: the Keiko account the statement's authority names;
  ``author_kind``: self, user or service).
- ``anchors``: the anchor of each record (from ``chain.interaction_anchored`` /
  ``chain.anchor_failed``), kept apart from ``entries`` because the two topics arrive
  in any order; joined on read. ``signer_id`` is whose key signed it (the translator's
  ``author_id``): an entry written by someone else but signed by the learner's key, as
  every entry was before per-author signing, is *legacy*.
- ``owner_names``: users' display names (from ``identity.profile_changed``): the
  owner's, and those of the users who attest entries.
- ``share_links``: hashed bearer tokens (SHA-256 of ``secrets.token_urlsafe(32)``), scope,
  expiry, revocation, view count.
- ``outbox``, ``processed_events``: the kit's event plumbing.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from services.kit.db import NAMING_CONVENTION
from services.kit.events.dedupe import processed_events_table
from services.kit.events.outbox import outbox_table

metadata = MetaData(schema="passport", naming_convention=NAMING_CONVENTION)

_SEQ = BigInteger().with_variant(Integer, "sqlite")

passports = Table(
    "passports",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner_id", String(200), nullable=False, unique=True),
    Column("public_key_hex", String(64), nullable=True),
    Column("privacy", JSON, nullable=False),
    Column("profile", JSON, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Grows by one in the transaction of every change of what a reader of the passport
    # sees (entries, anchors, key, names, profile, privacy): GetPassportVersion.
    Column("version", BigInteger, nullable=False, server_default="0"),
)

# Display names of passport owners (identity.profile_changed), shown only to those the
# owner lets see their identity.
owner_names = Table(
    "owner_names",
    metadata,
    Column("user_id", String(200), primary_key=True),
    Column("display_name", String(200), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

entries = Table(
    "entries",
    metadata,
    Column("seq", _SEQ, primary_key=True),
    Column("statement_id", String(64), nullable=False, unique=True),
    Column("learner_id", String(200), nullable=False),
    Column("interaction_type", String(32), nullable=False),
    Column("verb_id", String(500), nullable=False),
    Column("object_id", String(1000), nullable=False),
    Column("course_id", String(200), nullable=False),
    Column("class_id", String(200), nullable=False),
    Column("tutorial_session_id", String(200), nullable=False),
    Column("study_session_id", String(200), nullable=False),
    Column("timestamp", DateTime(timezone=True), nullable=False),
    Column("statement_json", Text, nullable=False),
    Column("signature_hex", String(128), nullable=False),
    Column("public_key_hex", String(64), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("author_id", String(200), nullable=False, server_default=""),
    Column("author_kind", String(16), nullable=False, server_default="self"),
    Index("ix_entries_learner_id_timestamp", "learner_id", "timestamp", "statement_id"),
    # The passports an author's entries appear in (their name changed: those move on).
    Index("ix_entries_author_id_learner_id", "author_id", "learner_id"),
)

anchors = Table(
    "anchors",
    metadata,
    Column("record_id", String(64), primary_key=True),
    Column("learner_id", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("domain", String(16), nullable=False),
    Column("batch_id", String(66), nullable=False),
    Column("root", String(66), nullable=False),
    Column("leaf", String(66), nullable=False),
    # How the leaf is computed (chain.translator.leaves), as the translator announced it.
    Column("leaf_encoding", String(32), nullable=False, server_default="keiko.leaf.v1"),
    Column("leaf_index", Integer, nullable=False),
    Column("proof", JSON, nullable=True),
    Column("block", BigInteger, nullable=False),
    Column("tx_hash", String(66), nullable=False),
    Column("signature_hex", String(128), nullable=False),
    Column("public_key_hex", String(64), nullable=False),
    Column("failure_reason", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("signer_id", String(200), nullable=False, server_default=""),
)

share_links = Table(
    "share_links",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("passport_id", String(36), nullable=False),
    Column("owner_id", String(200), nullable=False),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("label", String(200), nullable=False),
    Column("scope", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("view_count", BigInteger, nullable=False),
    Column("request_id", String(128), nullable=True),
    UniqueConstraint("owner_id", "request_id"),
    Index("ix_share_links_owner_id_created_at", "owner_id", "created_at", "id"),
)

outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
