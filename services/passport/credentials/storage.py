"""Tables of issued credentials and status lists, in the passport schema.

- ``credentials``: one row per issued credential: the signed document, its subject and
  issuer (the key holder), the entries it carries, its slot in the issuer's status list,
  the share link it was issued for, and its revocation.
- ``credential_requests``: which credentials an ``IssueCredentials`` request produced, for
  idempotent replays.
- ``status_lists``: one Bitstring Status List of :data:`LIST_BITS` slots per issuer (a new
  one when full). ``revision`` counts revocations; the signed list document is published
  at ``revision`` = ``published_revision``; a background job republishes the others.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from services.passport.storage import metadata

credentials = Table(
    "credentials",
    metadata,
    Column("id", String(45), primary_key=True),  # urn:uuid:<36>
    Column("owner_id", String(200), nullable=False),
    Column("passport_id", String(36), nullable=False),
    Column("format", String(16), nullable=False),
    Column("holder_id", String(200), nullable=False),
    Column("issuer_did", String(100), nullable=False),
    Column("subject_did", String(100), nullable=False),
    Column("statement_ids", JSON, nullable=False),
    Column("status_list_id", String(36), nullable=False),
    Column("status_index", Integer, nullable=False),
    Column("share_link_id", String(36), nullable=False),
    Column("document", Text, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("revocation_reason", String(32), nullable=True),
    UniqueConstraint("status_list_id", "status_index"),
    Index("ix_credentials_owner_id_issued_at", "owner_id", "issued_at", "id"),
    Index("ix_credentials_holder_id_issued_at", "holder_id", "issued_at", "id"),
    Index("ix_credentials_share_link_id", "share_link_id"),
)

credential_statements = Table(
    "credential_statements",
    metadata,
    Column("credential_id", String(45), primary_key=True),
    Column("statement_id", String(64), primary_key=True),
    Index("ix_credential_statements_statement_id", "statement_id"),
)

credential_requests = Table(
    "credential_requests",
    metadata,
    Column("owner_id", String(200), primary_key=True),
    Column("request_id", String(128), primary_key=True),
    Column("credential_ids", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

status_lists = Table(
    "status_lists",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("holder_id", String(200), nullable=False),
    Column("size", Integer, nullable=False),
    Column("used", Integer, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("published_revision", Integer, nullable=False),
    Column("document", Text, nullable=False),  # "" until first published
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_status_lists_holder_id", "holder_id"),
)

__all__ = ["credential_requests", "credential_statements", "credentials", "status_lists"]
