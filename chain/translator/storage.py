"""Persistence of the chain translator: tables in the ``chain`` schema and the repository.

Everything the anchoring pipeline knows lives here, so a crash loses nothing:

* ``records``: one row per submitted leaf, unique on ``(domain, record_id)``. A record is
  *unbatched* while ``batch_id`` is NULL; sealing a batch assigns ``batch_id``,
  ``leaf_index`` and the inclusion ``proof`` to its records in the same transaction that
  creates the batch row.
* ``batches``: ``seq`` is the database-backed sequence (an autoincrement primary key, so
  unique across replicas on both engines); ``batch_id = make_batch_id(domain, seq)``.
  Batch states: ``sealed`` (closed, not yet accepted by the chain), ``submitted`` (our
  transaction succeeded; waiting for the chain watcher to confirm the event),
  ``anchored`` (confirmed from chain data: the ``BatchAnchored`` event or ``get_batch``),
  ``failed`` (gave up; ``last_error``). Records follow their batch:
  sealed/submitted -> PENDING, anchored -> ANCHORED, failed -> FAILED.
* ``records.author_id``: who signed a learning record (:mod:`chain.translator.authors`):
  the learner, another user or a Keiko service; empty for unsigned records.
* ``key_records``: custodial Ed25519 keys of users and services (``KeyVault`` records,
  encrypted under the KEK), keyed by holder id.
* ``registered_keys``: users' registered Ed25519 public keys (device-signed mode).
* ``key_registrations``: every signing key the translator uses or accepts, and its binding
  in the on-chain key directory (:mod:`chain.translator.key_directory`): pending until the
  registrar's transaction lands, then the block and transaction that bound it.
* ``humanity``: humanity registrations sent through the translator.
* ``cursors``: the chain watcher's persisted position (block range + continuation token).
* ``outbox``: events (``chain.interaction_anchored``, ``chain.batch_anchored``,
  ``chain.anchor_failed``) written in the transaction of the state change they announce.

Hex felts are stored as lowercase ``0x`` strings; byte strings as plain lowercase hex.
SQLite returns naive datetimes: every value written is UTC and read back as UTC.

The repository is composed of parts by capability, each in its own module
(``store_records``, ``store_batches``, ``store_keys``, ``store_humanity``; the tables and
row types in ``store_schema``); this module composes them and re-exports the names.
"""

from __future__ import annotations

from chain.translator.store_batches import BatchStore
from chain.translator.store_humanity import HumanityStore
from chain.translator.store_keys import KeyStore
from chain.translator.store_records import RecordStore
from chain.translator.store_schema import (
    ANCHORED,
    FAILED,
    MIGRATIONS_DIR,
    PENDING,
    SCHEMA,
    SEALED,
    SUBMITTED,
    TOPIC_ANCHOR_FAILED,
    TOPIC_BATCH_ANCHORED,
    TOPIC_INTERACTION_ANCHORED,
    AnchorConfirmation,
    BatchRow,
    Cursor,
    DuplicateRecord,
    HumanityRow,
    NewRecord,
    RecordRow,
    StoreBase,
    batches,
    cursors,
    humanity,
    key_records,
    key_registrations,
    metadata,
    outbox,
    records,
    registered_keys,
)

__all__ = [
    "ANCHORED",
    "FAILED",
    "MIGRATIONS_DIR",
    "PENDING",
    "SCHEMA",
    "SEALED",
    "SUBMITTED",
    "TOPIC_ANCHOR_FAILED",
    "TOPIC_BATCH_ANCHORED",
    "TOPIC_INTERACTION_ANCHORED",
    "AnchorConfirmation",
    "BatchRow",
    "ChainStore",
    "Cursor",
    "DuplicateRecord",
    "HumanityRow",
    "NewRecord",
    "RecordRow",
    "StoreBase",
    "batches",
    "cursors",
    "humanity",
    "key_records",
    "key_registrations",
    "metadata",
    "outbox",
    "records",
    "registered_keys",
]


class ChainStore(RecordStore, BatchStore, KeyStore, HumanityStore):
    """All reads and writes of the ``chain`` schema. Every write is one transaction.

    Its parts, by capability: :class:`RecordStore` (queued records),
    :class:`BatchStore` (sealing, sending, confirming, the watcher's cursor),
    :class:`KeyStore` (signing keys), :class:`HumanityStore`."""


# Tables defined in modules of their own, on this schema's metadata.
from chain.translator import onchain_tables  # noqa: E402,F401
