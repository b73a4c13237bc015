"""Real signed interactions and anchored batches for passport tests.

Statements are signed with Ed25519 (PyNaCl) over their RFC 8785 bytes, leaves and
Merkle trees come from the translator core: what the tests verify is what production
verifies. Events have the payloads of ``learning.interaction_recorded`` and
``chain.interaction_anchored``.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from nacl.signing import SigningKey

from chain.translator.authors import KEIKO_HOME_PAGE
from chain.translator.batching import Domain, make_batch_id
from chain.translator.felts import felt_to_hex
from chain.translator.leaves import LEAF_ENCODING, compute_leaf
from chain.translator.merkle import MerkleTree
from chain.translator.signing import public_key_of, sign
from chain.verify import BatchInfo, InMemoryChainReader
from services.kit.events import Event

KEIKO_HOME = KEIKO_HOME_PAGE


@dataclass
class Interaction:
    statement_id: str
    learner_id: str
    statement: dict[str, Any]
    signature: bytes
    public_key: bytes
    interaction_type: str
    course_id: str
    class_id: str
    session_id: str
    timestamp: datetime
    author_id: str = ""  # the authority the statement names; "" = the learner
    signer_id: str = ""  # whose key signed it, as the translator reports; "" = not said
    # its leaf's encoding; "" = not said (the translator before keiko.leaf.v2: v1)
    leaf_encoding: str = LEAF_ENCODING

    @property
    def leaf(self) -> int:
        encoding = self.leaf_encoding or "keiko.leaf.v1"
        return compute_leaf(self.statement, self.signature, self.public_key, encoding)


def interaction(
    key: SigningKey,
    learner_id: str,
    when: datetime,
    *,
    kind: str = "answer",
    course_id: str = "course-1",
    class_id: str = "class-1",
    session_id: str = "",
    score: float | None = 0.8,
    name: str = "Question 3",
    titles: dict[str, str] | None = None,
    author: str = "",
    signer: str = "",
) -> Interaction:
    """``titles`` (``{"course": ..., "class": ..., "tutorial-session": ...}``) name the
    hierarchy in the statement's context, as the learning service does. ``key`` signs;
    ``author`` (else the learner) is the statement's authority and ``signer`` whose key
    the translator says it was (its anchor event's ``author_id``)."""
    statement_id = str(uuid.uuid4())
    statement: dict[str, Any] = {
        "id": statement_id,
        "actor": {"objectType": "Agent", "account": {"homePage": KEIKO_HOME, "name": learner_id}},
        "verb": {
            "id": "http://adlnet.gov/expapi/verbs/answered",
            "display": {"en-US": "answered"},
        },
        "object": {
            "objectType": "Activity",
            "id": f"https://keiko.app/activities/{statement_id[:8]}",
            "definition": {"name": {"en-US": name}},
        },
        "timestamp": when.isoformat().replace("+00:00", "Z"),
        "version": "1.0.3",
    }
    if score is not None:
        statement["result"] = {"score": {"scaled": score}}
    if titles:
        ids = {"course": course_id, "class": class_id, "tutorial-session": session_id}
        statement["context"] = {
            "contextActivities": {
                "grouping": [
                    {
                        "objectType": "Activity",
                        "id": f"https://keiko.network/xapi/activities/{segment}/{ids[segment]}",
                        "definition": {"name": {"en": title}},
                    }
                    for segment, title in titles.items()
                ]
            }
        }
    if author:
        statement["authority"] = {
            "objectType": "Agent",
            "account": {"homePage": KEIKO_HOME, "name": author},
        }
    return Interaction(
        statement_id,
        learner_id,
        statement,
        sign(statement, key),
        public_key_of(key),
        kind,
        course_id,
        class_id,
        session_id,
        when,
        author,
        signer,
    )


def recorded_event(item: Interaction, *, device: bool = True) -> Event:
    return Event(
        "learning.interaction_recorded",
        key=item.learner_id,
        occurred_at=item.timestamp,
        payload={
            "statement_id": item.statement_id,
            "learner_id": item.learner_id,
            "recorded_by": item.author_id or item.learner_id,
            "verb_id": item.statement["verb"]["id"],
            "object_id": item.statement["object"]["id"],
            "interaction_type": item.interaction_type,
            "course_id": item.course_id,
            "class_id": item.class_id,
            "tutorial_session_id": item.session_id,
            "study_session_id": "",
            "timestamp": item.timestamp.isoformat(),
            "stored": item.timestamp.isoformat(),
            "version": "1.0.3",
            "voided_statement_id": "",
            "canonical_hash": "",
            "statement_json": json.dumps(item.statement),
            "device_signature": {
                "signature_hex": item.signature.hex(),
                "public_key_hex": item.public_key.hex(),
            }
            if device
            else None,
        },
    )


@dataclass
class Batch:
    batch_id: int
    tree: MerkleTree
    items: list[Interaction]
    block: int
    tx_hash: int

    def info(self) -> BatchInfo:
        return BatchInfo(self.tree.root, self.tree.leaf_count, "learning", self.block)

    def events(self, *, with_proof: bool = True, with_signature: bool = True) -> list[Event]:
        out = []
        for index, item in enumerate(self.items):
            payload: dict[str, Any] = {
                "record_id": item.statement_id,
                "learner_id": item.learner_id,
                "domain": "learning",
                "batch_id": felt_to_hex(self.batch_id),
                "root": felt_to_hex(self.tree.root),
                "leaf": felt_to_hex(item.leaf),
                "leaf_index": index,
                **({"leaf_encoding": item.leaf_encoding} if item.leaf_encoding else {}),
                "block": self.block,
                "tx_hash": felt_to_hex(self.tx_hash),
                "status": "anchored",
            }
            if with_proof:
                payload["proof"] = [felt_to_hex(s) for s in self.tree.siblings(index)]
            if with_signature:
                payload["signature"] = item.signature.hex()
                payload["public_key"] = item.public_key.hex()
            if item.signer_id:
                payload["author_id"] = item.signer_id
            out.append(Event("chain.interaction_anchored", key=item.learner_id, payload=payload))
        return out


def batch(items: Sequence[Interaction], *, block: int = 7, batch_id: int | None = None) -> Batch:
    bid = (
        batch_id
        if batch_id is not None
        else make_batch_id(Domain.LEARNING, secrets.randbelow(2**40) + 1)
    )
    tree = MerkleTree([i.leaf for i in items])
    return Batch(bid, tree, list(items), block, 0xABC0 + bid % 1000)


def reader_for(*batches: Batch) -> InMemoryChainReader:
    return InMemoryChainReader((b.batch_id, b.info(), b.tx_hash) for b in batches)


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)
