"""The public passport export: the document an independent verifier checks.

Produced by the passport service (``build_entry`` / :class:`PassportExport`), consumed by
the CLI verifier and the public page (:func:`parse_export`). Everything in it is public;
nothing in it is trusted: the verifier recomputes every hash and reads every root from
the chain.

Format ``keiko.passport.export`` version 3 (JSON, UTF-8)::

    {
      "format": "keiko.passport.export",
      "version": 3,
      "passport_id": "<string>",
      "learner_id": "<string>",                 # optional
      "generated_at": "<RFC 3339 UTC timestamp>",
      "chain": {                                # optional: where the anchors are
        "chain_id": "0x<hex felt>",             # starknet_chainId of Keikochain
        "chain_name": "<short string>",         # the same id decoded, informative
        "anchor_contract": "0x<hex felt>",      # the interaction_anchor contract
        "rpc_url": "<JSON-RPC URL>"             # a default node to read it from
      },
      "tree_encoding": "keiko.merkle.v1",       # chain.translator.merkle
      "entries": [
        {
          "entry_id": "<string, e.g. the xAPI statement id>",
          "statement": { ...the xAPI statement exactly as signed... },
          "statement_sha256": "<64 hex>",       # sha256 of the RFC 8785 bytes
          "signature": "<128 hex>",             # Ed25519 over the RFC 8785 bytes
          "public_key": "<64 hex>",             # Ed25519 public key
          "author": {                           # who wrote it and whose key signed it
            "kind": "self" | "user" | "service",
            "id": "<user or service id>",       # "" for self when identity is withheld
            "name": "<display name>",           # optional
            "public_key": "<64 hex>"            # the author's key: the entry's key
          },
          "legacy": true,                       # optional, see below
          "leaf_encoding": "keiko.leaf.v2",     # how the leaf is computed
          "leaf": "0x<hex felt>",               # optional, recomputed by verifiers
          "anchor": null | {                    # null while not yet anchored
            "batch_id": "0x<hex felt>",
            "domain": "learning",               # Cairo short string of the batch
            "leaf_index": <int>,
            "proof": ["0x<hex felt>", ...],     # siblings, leaf level first
            "root": "0x<hex felt>",             # informative: verifiers use the chain's
            "tx_hash": "0x<hex felt>",
            "block": <int>
          }
        }
      ]
    }

``leaf_encoding`` (new in version 3; :mod:`chain.translator.leaves`): each entry names how
its leaf is computed from its statement hash, signature and key: ``keiko.leaf.v1`` for
the statements anchored before ``keiko.leaf.v2``, ``keiko.leaf.v2`` since. Verifiers
recompute each leaf with its entry's encoding; an encoding they do not know is that
entry's failure. Versions 1 and 2 had one document-level ``"leaf_encoding":
"keiko.leaf.v1"``: every entry of those versions is v1 (an entry member is ignored there).
A reader of version 2 rejects a version 3 document as a whole (its version), rather than
recomputing v2 leaves as v1 and reporting false mismatches.

``author`` (new in version 2; :mod:`chain.translator.authors`): ``self`` for what the
learner submitted, else ``user`` (a tutor's feedback: "attested by" that user) or
``service`` (an attendance record: "attested by" a Keiko service). Its id is the Keiko
account the signed statement's ``authority`` names. ``legacy`` marks an entry written by
someone else before Keiko signed each entry with its author's key: it was signed with the
learner's key, and it is shown as such, never as the learner's own nor as the author's
signature. Version 1 documents (no author) are still read; their entries are checked as
before, with the author reported as not stated.

``chain`` lets a verifier need nothing but the link: it names the chain and the
anchoring contract, and a default RPC endpoint. Nothing in it is trusted either: the
verifier checks that the node it reads answers with that chain id, and that the contract
at that address runs the interaction_anchor class Keiko publishes (its class hash is in
the verifier's own ``contracts/build/classes.json``, not in the document).

Felts are ``0x`` hexadecimal strings; byte strings (hash, signature, key) are plain
lowercase hex without prefix. Unknown top-level or entry members are ignored (forward
compatible); a different ``format`` or ``version`` is rejected. A malformed entry does
not make the whole document unreadable: it is reported as that entry's failure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chain.translator.authors import Author, AuthorKind
from chain.translator.batching import Domain
from chain.translator.felts import decode_short_string, felt_to_hex, parse_felt
from chain.translator.leaves import (
    LEAF_ENCODING,
    LEAF_ENCODING_V1,
    MAX_ENCODING_CHARS,
    compute_leaf,
    statement_hash,
)
from chain.translator.merkle import MAX_DEPTH, TREE_ENCODING, InclusionProof
from chain.translator.signing import (
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    StatementInput,
    canonical_bytes,
    decode_hex,
)
from services.kit.errors import ValidationError

EXPORT_FORMAT = "keiko.passport.export"
EXPORT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
MAX_NAME_CHARS = 200
MAX_EXPORT_BYTES = 64 * 1024 * 1024
MAX_URL_CHARS = 2000


@dataclass(frozen=True, slots=True)
class ChainRef:
    """Which chain and contract hold the anchors, and a node a verifier may read."""

    chain_id: int
    anchor_contract: int
    rpc_url: str = ""

    @property
    def chain_name(self) -> str:
        try:
            return decode_short_string(self.chain_id, "chain_id")
        except ValidationError:
            return felt_to_hex(self.chain_id)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "chain_id": felt_to_hex(self.chain_id),
            "chain_name": self.chain_name,
            "anchor_contract": felt_to_hex(self.anchor_contract),
        }
        if self.rpc_url:
            out["rpc_url"] = self.rpc_url
        return out


@dataclass(frozen=True, slots=True)
class AnchorProof:
    """Where an entry's leaf was anchored and the proof that puts it there."""

    batch_id: int
    domain: Domain
    leaf_index: int
    proof: tuple[int, ...]
    root: int
    tx_hash: int
    block: int

    @classmethod
    def from_inclusion(
        cls, batch_id: int, domain: Domain, proof: InclusionProof, tx_hash: int, block: int
    ) -> AnchorProof:
        return cls(batch_id, domain, proof.index, proof.siblings, proof.root, tx_hash, block)

    def to_json(self) -> dict[str, Any]:
        return {
            "batch_id": felt_to_hex(self.batch_id),
            "domain": self.domain.value,
            "leaf_index": self.leaf_index,
            "proof": [felt_to_hex(s) for s in self.proof],
            "root": felt_to_hex(self.root),
            "tx_hash": felt_to_hex(self.tx_hash),
            "block": self.block,
        }


@dataclass(frozen=True, slots=True)
class ExportEntry:
    """One passport entry as exported."""

    entry_id: str
    statement: Mapping[str, Any]
    statement_sha256: bytes
    signature: bytes
    public_key: bytes
    anchor: AnchorProof | None
    leaf: int | None = None
    author: Author | None = None  # None: not stated (a version 1 document)
    legacy: bool = False
    # How its leaf is computed (chain.translator.leaves); checked by the verifier, so a
    # parsed entry may name one it does not know.
    leaf_encoding: str = LEAF_ENCODING

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "entry_id": self.entry_id,
            "statement": self.statement,
            "statement_sha256": self.statement_sha256.hex(),
            "signature": self.signature.hex(),
            "public_key": self.public_key.hex(),
        }
        if self.author is not None:
            out["author"] = author_to_json(self.author)
        if self.legacy:
            out["legacy"] = True
        out["leaf_encoding"] = self.leaf_encoding
        if self.leaf is not None:
            out["leaf"] = felt_to_hex(self.leaf)
        out["anchor"] = None if self.anchor is None else self.anchor.to_json()
        return out


@dataclass(frozen=True, slots=True)
class MalformedEntry:
    """An entry the parser could not read; the verifier reports it as failed."""

    entry_id: str | None
    field: str
    reason: str


ParsedEntry = ExportEntry | MalformedEntry


@dataclass(frozen=True, slots=True)
class PassportExport:
    passport_id: str
    generated_at: datetime
    entries: tuple[ParsedEntry, ...]
    learner_id: str | None = None
    chain: ChainRef | None = None

    @property
    def version(self) -> int:
        """3 when every entry states its author, else 1 (the format without authors, whose
        entries are all ``keiko.leaf.v1``)."""
        stated = all(isinstance(e, ExportEntry) and e.author is not None for e in self.entries)
        return EXPORT_VERSION if stated else 1

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "version": self.version,
            "passport_id": self.passport_id,
        }
        if self.learner_id is not None:
            out["learner_id"] = self.learner_id
        out["generated_at"] = _format_time(self.generated_at)
        if self.chain is not None:
            out["chain"] = self.chain.to_json()
        version = self.version
        if version == 1:
            out["leaf_encoding"] = LEAF_ENCODING_V1
        out |= {"tree_encoding": TREE_ENCODING, "entries": []}
        for entry in self.entries:
            if isinstance(entry, MalformedEntry):
                raise ValidationError("entries", "cannot export a malformed entry")
            if version == 1 and entry.leaf_encoding != LEAF_ENCODING_V1:
                raise ValidationError("entries", "version 1 holds keiko.leaf.v1 entries only")
            item = entry.to_json()
            if version == 1:
                del item["leaf_encoding"]
            out["entries"].append(item)
        return out

    def dumps(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_json(), indent=indent, ensure_ascii=False)


def author_to_json(author: Author) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": author.kind.value, "id": author.id}
    if author.display_name:
        out["name"] = author.display_name
    out["public_key"] = author.public_key.hex()
    return out


def build_entry(
    entry_id: str,
    statement: StatementInput,
    signature: bytes,
    public_key: bytes,
    anchor: AnchorProof | None,
    author: Author | None = None,
    *,
    legacy: bool = False,
    leaf_encoding: str = LEAF_ENCODING,
) -> ExportEntry:
    """Build an export entry (the passport service's side); computes hash and leaf, in
    the encoding the record was anchored with."""
    if not isinstance(entry_id, str) or not entry_id:
        raise ValidationError("entry_id", "must be a non-empty string")
    canonical = canonical_bytes(statement)
    parsed = json.loads(canonical)
    return ExportEntry(
        entry_id=entry_id,
        statement=parsed,
        statement_sha256=statement_hash(canonical),
        signature=bytes(signature),
        public_key=bytes(public_key),
        anchor=anchor,
        leaf=compute_leaf(canonical, signature, public_key, leaf_encoding),
        author=author,
        legacy=legacy,
        leaf_encoding=leaf_encoding,
    )


def _format_time(when: datetime) -> str:
    if when.tzinfo is None:
        raise ValidationError("generated_at", "must be timezone-aware")
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(value: object, field: str) -> datetime:
    if not isinstance(value, str):
        raise ValidationError(field, "must be an RFC 3339 timestamp")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(field, "must be an RFC 3339 timestamp") from None
    if when.tzinfo is None:
        raise ValidationError(field, "must carry a UTC offset")
    return when


def _require_str(obj: Mapping[str, Any], key: str, field: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise ValidationError(field, "must be a non-empty string")
    return value


def _require_int(obj: Mapping[str, Any], key: str, field: str) -> int:
    value = obj.get(key)
    if type(value) is not int or value < 0:
        raise ValidationError(field, "must be a non-negative integer")
    return value


def _parse_anchor(raw: object, field: str) -> AnchorProof | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ValidationError(field, "must be an object or null")
    proof_raw = raw.get("proof")
    if not isinstance(proof_raw, Sequence) or isinstance(proof_raw, str | bytes):
        raise ValidationError(f"{field}.proof", "must be a list of felts")
    if len(proof_raw) > MAX_DEPTH:
        raise ValidationError(f"{field}.proof", f"at most {MAX_DEPTH} siblings")
    return AnchorProof(
        batch_id=parse_felt(raw.get("batch_id"), f"{field}.batch_id"),
        domain=Domain.parse(raw.get("domain"), f"{field}.domain"),
        leaf_index=_require_int(raw, "leaf_index", f"{field}.leaf_index"),
        proof=tuple(parse_felt(s, f"{field}.proof[{i}]") for i, s in enumerate(proof_raw)),
        root=parse_felt(raw.get("root"), f"{field}.root"),
        tx_hash=parse_felt(raw.get("tx_hash"), f"{field}.tx_hash"),
        block=_require_int(raw, "block", f"{field}.block"),
    )


def _parse_chain(raw: object) -> ChainRef | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ValidationError("chain", "must be an object")
    rpc_url = raw.get("rpc_url", "")
    if not isinstance(rpc_url, str) or len(rpc_url) > MAX_URL_CHARS:
        raise ValidationError("chain.rpc_url", f"must be a URL of at most {MAX_URL_CHARS} chars")
    if rpc_url and not rpc_url.startswith(("http://", "https://")):
        raise ValidationError("chain.rpc_url", "must be an http(s) URL")
    return ChainRef(
        chain_id=parse_felt(raw.get("chain_id"), "chain.chain_id"),
        anchor_contract=parse_felt(raw.get("anchor_contract"), "chain.anchor_contract"),
        rpc_url=rpc_url,
    )


def _parse_author(raw: object, field: str) -> Author | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ValidationError(field, "must be an object")
    try:
        kind = AuthorKind(str(raw.get("kind")))
    except ValueError:
        raise ValidationError(f"{field}.kind", "must be self, user or service") from None
    author_id = raw.get("id", "")
    if not isinstance(author_id, str) or len(author_id) > MAX_NAME_CHARS:
        raise ValidationError(f"{field}.id", f"must be a string of at most {MAX_NAME_CHARS}")
    if not author_id and kind is not AuthorKind.SELF:
        raise ValidationError(f"{field}.id", "is required for an attested entry")
    name = raw.get("name", "")
    if not isinstance(name, str) or len(name) > MAX_NAME_CHARS:
        raise ValidationError(f"{field}.name", f"must be a string of at most {MAX_NAME_CHARS}")
    return Author(
        kind=kind,
        id=author_id,
        display_name=name,
        public_key=decode_hex(raw.get("public_key"), f"{field}.public_key", PUBLIC_KEY_BYTES),
    )


def _entry_encoding(raw: Mapping[str, Any], prefix: str, version: int) -> str:
    """The entry's leaf encoding: named by the entry since version 3, else v1. Any name
    is read: the verifier recomputes the leaf in it, or fails an unknown one."""
    if version < 3:
        return LEAF_ENCODING_V1  # every entry of versions 1 and 2
    encoding = raw.get("leaf_encoding")
    if not isinstance(encoding, str) or not 0 < len(encoding) <= MAX_ENCODING_CHARS:
        raise ValidationError(
            f"{prefix}.leaf_encoding",
            f"must be a non-empty string of at most {MAX_ENCODING_CHARS} chars",
        )
    return encoding


def _parse_entry(raw: object, position: int, version: int) -> ParsedEntry:
    prefix = f"entries[{position}]"
    entry_id: str | None = None
    try:
        if not isinstance(raw, Mapping):
            raise ValidationError(prefix, "must be an object")
        entry_id = _require_str(raw, "entry_id", f"{prefix}.entry_id")
        statement = raw.get("statement")
        if not isinstance(statement, Mapping):
            raise ValidationError(f"{prefix}.statement", "must be a JSON object")
        leaf_raw = raw.get("leaf")
        author = _parse_author(raw.get("author"), f"{prefix}.author")
        if author is None and version >= 2:
            raise ValidationError(f"{prefix}.author", "is required")
        legacy = raw.get("legacy", False)
        if not isinstance(legacy, bool):
            raise ValidationError(f"{prefix}.legacy", "must be true or false")
        return ExportEntry(
            entry_id=entry_id,
            statement=statement,
            statement_sha256=decode_hex(
                raw.get("statement_sha256"), f"{prefix}.statement_sha256", 32
            ),
            signature=decode_hex(raw.get("signature"), f"{prefix}.signature", SIGNATURE_BYTES),
            public_key=decode_hex(raw.get("public_key"), f"{prefix}.public_key", PUBLIC_KEY_BYTES),
            anchor=_parse_anchor(raw.get("anchor"), f"{prefix}.anchor"),
            leaf=None if leaf_raw is None else parse_felt(leaf_raw, f"{prefix}.leaf"),
            author=author,
            legacy=legacy,
            leaf_encoding=_entry_encoding(raw, prefix, version),
        )
    except ValidationError as exc:
        return MalformedEntry(entry_id=entry_id, field=exc.field, reason=exc.reason)


def parse_export(document: str | bytes | Mapping[str, Any]) -> PassportExport:
    """Parse an export document. Raises ``ValidationError`` if the document as a whole
    is unusable; malformed entries become :class:`MalformedEntry` items."""
    if isinstance(document, str | bytes | bytearray):
        if len(document) > MAX_EXPORT_BYTES:
            raise ValidationError("document", "is too large")
        try:
            data = json.loads(document)
        except (UnicodeDecodeError, ValueError):
            raise ValidationError("document", "is not valid JSON") from None
    else:
        data = document
    if not isinstance(data, Mapping):
        raise ValidationError("document", "must be a JSON object")
    if data.get("format") != EXPORT_FORMAT:
        raise ValidationError("format", f"must be {EXPORT_FORMAT!r}")
    version = data.get("version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise ValidationError("version", f"unsupported version {version!r}")
    checked = {"tree_encoding": TREE_ENCODING}
    if version < 3:  # one encoding for the whole document; version 3 names it per entry
        checked["leaf_encoding"] = LEAF_ENCODING_V1
    for key, expected in checked.items():
        if data.get(key, expected) != expected:
            raise ValidationError(key, f"unsupported encoding {data.get(key)!r}")
    entries = data.get("entries")
    if not isinstance(entries, Sequence) or isinstance(entries, str | bytes):
        raise ValidationError("entries", "must be a list")
    learner_id = data.get("learner_id")
    if learner_id is not None and not isinstance(learner_id, str):
        raise ValidationError("learner_id", "must be a string")
    return PassportExport(
        passport_id=_require_str(data, "passport_id", "passport_id"),
        generated_at=_parse_time(data.get("generated_at"), "generated_at"),
        entries=tuple(_parse_entry(raw, i, version) for i, raw in enumerate(entries)),
        learner_id=learner_id,
        chain=_parse_chain(data.get("chain")),
    )
