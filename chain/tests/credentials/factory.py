"""Real signed, anchored learning records and credentials for the credential tests.

Statements are signed with real Ed25519 keys, their leaves put in a real
``keiko.merkle.v1`` tree whose root an :class:`InMemoryChainReader` holds as anchored;
credentials get real proof sets. Nothing is stubbed: the verifiers under test recompute
everything.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nacl.signing import SigningKey

from chain.credentials.integrity import ProofPurpose, add_proof_set
from chain.credentials.learning_credentials import (
    Achievement,
    Issuer,
    learning_record_credential,
    open_badge_credential,
)
from chain.credentials.multikey import did_key, verification_method_id
from chain.credentials.presentations import presentation
from chain.credentials.records import AnchoredRecord, AnchorEvidence, AuthorKind, RecordAuthor
from chain.credentials.status_list import Bitstring, StatusEntry, status_list_credential
from chain.translator.batching import Domain, make_batch_id
from chain.translator.leaves import LEAF_ENCODING, compute_leaf
from chain.translator.merkle import MerkleTree
from chain.translator.signing import canonical_bytes
from chain.verify.reader import AnchorTransaction, BatchInfo, InMemoryChainReader, KeyInfo

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CHAIN_ID = 0x4B45494B4F5F444556  # 'KEIKO_DEV'
CONTRACT = 0x0123456789ABCDEF
STATUS_BASE = "https://keiko.test/credentials/status"
TX_HASH = 0xA11CE
BLOCK = 12


@dataclass
class Person:
    user_id: str
    name: str
    key: SigningKey

    @property
    def public_key(self) -> bytes:
        return bytes(self.key.verify_key)

    @property
    def did(self) -> str:
        return did_key(self.public_key)

    @property
    def method(self) -> str:
        return verification_method_id(self.public_key)

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data).signature


def person(seed: int, name: str) -> Person:
    return Person(str(uuid.UUID(int=seed)), name, SigningKey(bytes([seed]) * 32))


ANA = person(1, "Ana")
TUTOR = person(2, "Tomás")
MALLORY = person(3, "Mallory")


def statement(learner: Person, n: int, *, author: Person | None = None) -> dict[str, Any]:
    writer = author or learner
    return {
        "id": str(uuid.UUID(int=0x5000 + n)),
        "actor": {
            "objectType": "Agent",
            "account": {"homePage": "https://keiko.network", "name": learner.user_id},
        },
        "verb": {
            "id": "http://adlnet.gov/expapi/verbs/answered",
            "display": {"en-US": "answered"},
        },
        "object": {
            "id": f"https://keiko.network/xapi/activities/question/{n}",
            "definition": {"name": {"en-US": f"Question {n}"}},
        },
        "result": {"score": {"scaled": 0.8}},
        "authority": {
            "objectType": "Agent",
            "account": {"homePage": "https://keiko.network", "name": writer.user_id},
        },
        "timestamp": "2026-02-01T10:00:00Z",
    }


class AsyncChain(InMemoryChainReader):
    """The in-memory chain as the asyncio reader the credential verifier takes."""

    async def is_root_anchored(self, root: int) -> bool:  # type: ignore[override]
        return super().is_root_anchored(root)

    async def get_batch(self, batch_id: int) -> BatchInfo | None:  # type: ignore[override]
        return super().get_batch(batch_id)

    async def anchor_transaction(  # type: ignore[override]
        self, tx_hash: int
    ) -> AnchorTransaction | None:
        return super().anchor_transaction(tx_hash)

    async def key_binding(self, public_key: bytes) -> KeyInfo | None:  # type: ignore[override]
        return super().key_binding(public_key)


@dataclass
class Ledger:
    """Records anchored in batches, and a chain reader that knows the batches."""

    reader: AsyncChain = field(default_factory=AsyncChain)
    sequence: int = 0

    def anchor(
        self,
        items: Sequence[tuple[Mapping[str, Any], Person, AuthorKind]],
        encoding: str = LEAF_ENCODING,
    ) -> list[AnchoredRecord]:
        self.sequence += 1
        signed = []
        for stmt, author, _kind in items:
            canonical = canonical_bytes(stmt)
            signature = author.sign(canonical)
            signed.append((canonical, signature, author.public_key))
        leaves = [compute_leaf(c, s, k, encoding) for c, s, k in signed]
        tree = MerkleTree(leaves)
        batch_id = make_batch_id(Domain.LEARNING, self.sequence)
        tx_hash = TX_HASH + self.sequence
        self.reader.add_batch(
            batch_id, BatchInfo(tree.root, tree.leaf_count, "learning", BLOCK), tx_hash
        )
        records = []
        for index, ((stmt, author, kind), (_c, signature, _k)) in enumerate(
            zip(items, signed, strict=True)
        ):
            proof = tree.proof(index)
            records.append(
                AnchoredRecord(
                    statement_id=stmt["id"],
                    statement=stmt,
                    signature=signature,
                    author=RecordAuthor(kind, author.user_id, author.public_key, author.name),
                    anchor=AnchorEvidence(
                        chain_id=CHAIN_ID,
                        contract=CONTRACT,
                        batch_id=batch_id,
                        domain=Domain.LEARNING,
                        tx_hash=tx_hash,
                        block=BLOCK,
                        root=tree.root,
                        leaf=leaves[index],
                        leaf_index=index,
                        proof=proof.siblings,
                        leaf_encoding=encoding,
                    ),
                )
            )
        return records


class StatusLists:
    """A :class:`~chain.verify.credentials.StatusListSource` over signed lists."""

    def __init__(self, base: str = STATUS_BASE) -> None:
        self.base = base
        self.documents: dict[str, Mapping[str, Any]] = {}
        self.fetches = 0

    def publish(self, issuer: Person, revoked: Sequence[int] = (), name: str = "1") -> str:
        url = f"{self.base}/{name}"
        unsigned = status_list_credential(url, issuer.did, Bitstring.with_bits(revoked), NOW)
        self.documents[url] = add_proof_set(unsigned, issuer.method, NOW, issuer.sign)
        return url

    async def fetch(self, url: str) -> Mapping[str, Any]:
        self.fetches += 1
        if url not in self.documents:
            raise LookupError(f"HTTP 404 for {url}")
        return copy.deepcopy(self.documents[url])


def record_credential(
    issuer: Person,
    subject: Person,
    records: Sequence[AnchoredRecord],
    *,
    status: StatusEntry | None = None,
    credential_id: str = "urn:uuid:00000000-0000-4000-8000-000000000001",
) -> dict[str, Any]:
    unsigned = learning_record_credential(
        credential_id,
        Issuer(issuer.did, issuer.name),
        subject.did,
        records,
        NOW,
        name="Learning record",
        description="Signed learning interactions anchored on Keikochain",
        status=status,
    )
    return add_proof_set(unsigned, issuer.method, NOW, issuer.sign)


COURSE = Achievement(
    id="https://keiko.network/xapi/activities/course/linear-algebra",
    name="Linear Algebra",
    description="Vectors, matrices and linear maps.",
    criteria="Completed every class of the course.",
)


def badge_credential(
    issuer: Person,
    subject: Person,
    records: Sequence[AnchoredRecord],
    *,
    status: StatusEntry | None = None,
) -> dict[str, Any]:
    unsigned = open_badge_credential(
        "urn:uuid:00000000-0000-4000-8000-000000000002",
        Issuer(issuer.did, issuer.name),
        subject.did,
        COURSE,
        records,
        NOW,
        status=status,
    )
    return add_proof_set(unsigned, issuer.method, NOW, issuer.sign)


def signed_presentation(
    holder: Person,
    credentials: Sequence[Mapping[str, Any]],
    *,
    challenge: str = "challenge-1",
    domain: str = "verifier.example",
) -> dict[str, Any]:
    unsigned = presentation(
        "urn:uuid:00000000-0000-4000-8000-0000000000ff", holder.did, credentials
    )
    return add_proof_set(
        unsigned,
        holder.method,
        NOW,
        holder.sign,
        purpose=ProofPurpose.AUTHENTICATION,
        challenge=challenge,
        domain=domain,
    )
