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

from services.passport.core import (
    CONSUMED_TOPICS,
    ENTRY_ADDED,
    ENTRY_ANCHOR_CHANGED,
    PRIVACY_UPDATED,
    PROFILE_UPDATED,
    TOPIC_PASSPORT_UPDATED,
    Access,
    ChainReaderFactory,
    PassportRow,
    ProofSource,
    ShareLink,
    token_hash,
)
from services.passport.intake import TimelineIntake
from services.passport.links import CreatedLink, ShareLinks
from services.passport.preferences import ProfileAndPrivacy
from services.passport.timeline import TimelineFilter, TimelineReads
from services.passport.verification import Verification, Verifications, export_entry


class PassportService(TimelineIntake, Verifications, TimelineReads, ProfileAndPrivacy, ShareLinks):
    """The passport service, one base per capability (modules of the same names):
    ``intake`` (events into the timeline), ``timeline`` (reads), ``preferences`` (profile
    and privacy), ``links`` (share links), ``verification`` (export and verification);
    ``core`` holds the state and access rules they share."""


__all__ = [
    "CONSUMED_TOPICS",
    "ENTRY_ADDED",
    "ENTRY_ANCHOR_CHANGED",
    "PRIVACY_UPDATED",
    "PROFILE_UPDATED",
    "TOPIC_PASSPORT_UPDATED",
    "Access",
    "ChainReaderFactory",
    "CreatedLink",
    "PassportRow",
    "PassportService",
    "ProofSource",
    "ShareLink",
    "TimelineFilter",
    "Verification",
    "export_entry",
    "token_hash",
]
