"""Keiko's vocabulary inside credentials: signed learning records and their Keikochain
anchors (context ``https://keiko.network/ns/credentials/v1``).

A **learning record** (``LearningRecord``) is one passport entry: the xAPI statement as
signed (a JSON literal, so no JSON-LD processing touches it), the author's Ed25519
signature over its RFC 8785 bytes, and the author (``RecordAuthor``: the ``did:key`` of
the signing key, the author kind ``self``/``user``/``service``, the author's Keiko id and
name). Its id is ``urn:uuid:<statement id>``::

    {"id": "urn:uuid:...", "type": "LearningRecord", "statement": {...},
     "statementSignature": "<128 hex>",
     "author": {"id": "did:key:z6Mk...", "type": "RecordAuthor", "authorKind": "self",
                "authorId": "<user id>", "name": "Ana"}}

A **Keikochain anchor** (``KeikochainAnchor``, an item of the credential's ``evidence``)
says where the record's leaf sits on chain: the chain id and the
``interaction_anchor`` contract, the batch (id, domain, Merkle root, block, transaction),
the leaf, its index and the inclusion proof (``keiko.merkle.v1`` siblings, leaf level
first, an ordered ``@list``)::

    {"type": ["KeikochainAnchor"], "record": "urn:uuid:...", "chainId": "0x...",
     "contract": "0x...", "batchId": "0x...", "batchDomain": "learning",
     "transaction": "0x...", "block": 12, "merkleRoot": "0x...", "leaf": "0x...",
     "leafIndex": 3, "inclusionProof": ["0x...", ...],
     "leafEncoding": "keiko.leaf.v2", "treeEncoding": "keiko.merkle.v1"}

``leafEncoding`` names how that record's leaf was computed (:mod:`chain.translator.leaves`):
``keiko.leaf.v1`` for records anchored before ``keiko.leaf.v2``, ``keiko.leaf.v2`` since;
the verifier recomputes the leaf in that encoding (one it does not know fails the record).

(In an Open Badge the evidence type is ``["Evidence", "KeikochainAnchor"]``, as the Open
Badges schema requires.) Felts are ``0x`` hex strings. The verifier recomputes the leaf
from the record and checks the proof against the root it reads from the chain.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chain.credentials.multikey import did_key, public_key_from_did
from chain.translator.authors import AuthorKind
from chain.translator.batching import Domain
from chain.translator.felts import felt_to_hex, parse_felt
from chain.translator.leaves import MAX_ENCODING_CHARS
from chain.translator.merkle import MAX_DEPTH, TREE_ENCODING
from chain.translator.signing import SIGNATURE_BYTES, decode_hex
from services.kit.errors import ValidationError

LEARNING_RECORD = "LearningRecord"
RECORD_AUTHOR = "RecordAuthor"
KEIKOCHAIN_ANCHOR = "KeikochainAnchor"
OB_EVIDENCE = "Evidence"
MAX_NAME_CHARS = 200
MAX_ID_CHARS = 200


def record_iri(statement_id: str) -> str:
    """``urn:uuid:<id>`` of an xAPI statement id (which the xAPI spec makes a UUID)."""
    try:
        return uuid.UUID(statement_id).urn
    except (ValueError, AttributeError, TypeError):
        raise ValidationError("statement.id", "must be a UUID") from None


def statement_id_of(iri: object, field: str) -> str:
    if not isinstance(iri, str) or not iri.startswith("urn:uuid:"):
        raise ValidationError(field, "must be a urn:uuid: record id")
    try:
        return str(uuid.UUID(iri[len("urn:uuid:") :]))
    except ValueError:
        raise ValidationError(field, "must be a urn:uuid: record id") from None


@dataclass(frozen=True, slots=True)
class RecordAuthor:
    kind: AuthorKind
    author_id: str
    public_key: bytes
    name: str = ""

    @property
    def did(self) -> str:
        return did_key(self.public_key)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.did,
            "type": RECORD_AUTHOR,
            "authorKind": self.kind.value,
            "authorId": self.author_id,
        }
        if self.name:
            out["name"] = self.name
        return out

    @classmethod
    def parse(cls, raw: object, field: str) -> RecordAuthor:
        obj = _mapping(raw, field)
        try:
            kind = AuthorKind(str(obj.get("authorKind")))
        except ValueError:
            raise ValidationError(f"{field}.authorKind", "must be self, user or service") from None
        name = obj.get("name", "")
        if not isinstance(name, str) or len(name) > MAX_NAME_CHARS:
            raise ValidationError(f"{field}.name", f"must be a string of {MAX_NAME_CHARS} chars")
        return cls(
            kind=kind,
            author_id=_text(obj, "authorId", field),
            public_key=public_key_from_did(obj.get("id"), f"{field}.id"),
            name=name,
        )


@dataclass(frozen=True, slots=True)
class AnchorEvidence:
    """Where a record's leaf is anchored on Keikochain, with its inclusion proof."""

    chain_id: int
    contract: int
    batch_id: int
    domain: Domain
    tx_hash: int
    block: int
    root: int
    leaf: int
    leaf_index: int
    proof: tuple[int, ...]
    leaf_encoding: str

    def to_json(self, statement_id: str, *, open_badge: bool = False) -> dict[str, Any]:
        return {
            "type": [OB_EVIDENCE, KEIKOCHAIN_ANCHOR] if open_badge else [KEIKOCHAIN_ANCHOR],
            "name": "Keikochain anchor",
            "record": record_iri(statement_id),
            "chainId": felt_to_hex(self.chain_id),
            "contract": felt_to_hex(self.contract),
            "batchId": felt_to_hex(self.batch_id),
            "batchDomain": self.domain.value,
            "transaction": felt_to_hex(self.tx_hash),
            "block": self.block,
            "merkleRoot": felt_to_hex(self.root),
            "leaf": felt_to_hex(self.leaf),
            "leafIndex": self.leaf_index,
            "inclusionProof": [felt_to_hex(s) for s in self.proof],
            "leafEncoding": self.leaf_encoding,
            "treeEncoding": TREE_ENCODING,
        }

    @classmethod
    def parse(cls, raw: Mapping[str, Any], field: str) -> AnchorEvidence:
        if raw.get("treeEncoding") != TREE_ENCODING:
            raise ValidationError(f"{field}.treeEncoding", f"must be {TREE_ENCODING!r}")
        # Any name here: the verifier recomputes the leaf in it, or fails an unknown one.
        encoding = raw.get("leafEncoding")
        if not isinstance(encoding, str) or not 0 < len(encoding) <= MAX_ENCODING_CHARS:
            raise ValidationError(f"{field}.leafEncoding", "must be a leaf encoding's name")
        proof = raw.get("inclusionProof")
        if not isinstance(proof, list):
            raise ValidationError(f"{field}.inclusionProof", "must be a list of felts")
        if len(proof) > MAX_DEPTH:
            raise ValidationError(f"{field}.inclusionProof", f"at most {MAX_DEPTH} siblings")
        return cls(
            chain_id=parse_felt(raw.get("chainId"), f"{field}.chainId"),
            contract=parse_felt(raw.get("contract"), f"{field}.contract"),
            batch_id=parse_felt(raw.get("batchId"), f"{field}.batchId"),
            domain=Domain.parse(raw.get("batchDomain"), f"{field}.batchDomain"),
            tx_hash=parse_felt(raw.get("transaction"), f"{field}.transaction"),
            block=_non_negative(raw, "block", field),
            root=parse_felt(raw.get("merkleRoot"), f"{field}.merkleRoot"),
            leaf=parse_felt(raw.get("leaf"), f"{field}.leaf"),
            leaf_index=_non_negative(raw, "leafIndex", field),
            proof=tuple(parse_felt(s, f"{field}.inclusionProof[{i}]") for i, s in enumerate(proof)),
            leaf_encoding=encoding,
        )


@dataclass(frozen=True, slots=True)
class AnchoredRecord:
    """A passport entry as a credential carries it: the signed statement and its anchor."""

    statement_id: str
    statement: Mapping[str, Any]
    signature: bytes
    author: RecordAuthor
    anchor: AnchorEvidence | None

    @property
    def iri(self) -> str:
        return record_iri(self.statement_id)

    def record_json(self) -> dict[str, Any]:
        return {
            "id": self.iri,
            "type": LEARNING_RECORD,
            "statement": dict(self.statement),
            "statementSignature": self.signature.hex(),
            "author": self.author.to_json(),
        }


def records_to_json(
    records: Sequence[AnchoredRecord], *, open_badge: bool = False
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``learningRecord`` items and the ``evidence`` items of ``records`` (each must
    be anchored: a credential's evidence is its anchor)."""
    if not records:
        raise ValidationError("records", "a credential needs at least one record")
    seen: set[str] = set()
    learning, evidence = [], []
    for i, record in enumerate(records):
        if record.anchor is None:
            raise ValidationError(f"records[{i}]", "is not anchored yet")
        if record.statement_id in seen:
            raise ValidationError(f"records[{i}]", "appears twice")
        seen.add(record.statement_id)
        learning.append(record.record_json())
        evidence.append(record.anchor.to_json(record.statement_id, open_badge=open_badge))
    return learning, evidence


def parse_records(
    learning: object, evidence: object, field: str = "credentialSubject.learningRecord"
) -> list[AnchoredRecord]:
    """The records of a credential, each joined with its anchor evidence by record id
    (a record without evidence gets ``anchor=None``; the verifier reports it)."""
    if not isinstance(learning, list) or not learning:
        raise ValidationError(field, "must be a non-empty list")
    anchors: dict[str, AnchorEvidence] = {}
    for i, item in enumerate(evidence if isinstance(evidence, list) else []):
        if not isinstance(item, Mapping) or KEIKOCHAIN_ANCHOR not in _types(item):
            continue
        path = f"evidence[{i}]"
        record = statement_id_of(item.get("record"), f"{path}.record")
        if record in anchors:
            raise ValidationError(f"{path}.record", "has two anchors")
        anchors[record] = AnchorEvidence.parse(item, path)
    records: list[AnchoredRecord] = []
    for i, raw in enumerate(learning):
        path = f"{field}[{i}]"
        obj = _mapping(raw, path)
        if LEARNING_RECORD not in _types(obj):
            raise ValidationError(f"{path}.type", f"must be {LEARNING_RECORD}")
        statement_id = statement_id_of(obj.get("id"), f"{path}.id")
        statement = obj.get("statement")
        if not isinstance(statement, Mapping):
            raise ValidationError(f"{path}.statement", "must be a JSON object")
        if statement.get("id") != statement_id:
            raise ValidationError(f"{path}.statement.id", "must be the record's id")
        records.append(
            AnchoredRecord(
                statement_id=statement_id,
                statement=statement,
                signature=decode_hex(
                    obj.get("statementSignature"), f"{path}.statementSignature", SIGNATURE_BYTES
                ),
                author=RecordAuthor.parse(obj.get("author"), f"{path}.author"),
                anchor=anchors.get(statement_id),
            )
        )
    return records


def _types(obj: Mapping[str, Any]) -> list[Any]:
    raw = obj.get("type")
    return raw if isinstance(raw, list) else [raw]


def _mapping(raw: object, field: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValidationError(field, "must be an object")
    return raw


def _text(obj: Mapping[str, Any], key: str, field: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value or len(value) > MAX_ID_CHARS:
        raise ValidationError(f"{field}.{key}", f"must be a string of 1-{MAX_ID_CHARS} chars")
    return value


def _non_negative(obj: Mapping[str, Any], key: str, field: str) -> int:
    value = obj.get(key)
    if type(value) is not int or value < 0:
        raise ValidationError(f"{field}.{key}", "must be a non-negative integer")
    return value


__all__ = [
    "KEIKOCHAIN_ANCHOR",
    "LEARNING_RECORD",
    "AnchorEvidence",
    "AnchoredRecord",
    "AuthorKind",
    "RecordAuthor",
    "parse_records",
    "record_iri",
    "records_to_json",
    "statement_id_of",
]
