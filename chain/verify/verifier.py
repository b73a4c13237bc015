"""Independent verification of a passport export against Keikochain.

For every entry the verifier, trusting nothing in the document:

1. recomputes the RFC 8785 canonical bytes of the statement and their sha256;
2. verifies the Ed25519 signature over those bytes with the entry's public key
   (and, if the caller knows the learner's keys, that the key is one of them);
3. recomputes the leaf from the statement hash, signature and key, in the encoding the
   entry names (``keiko.leaf.v1`` or ``keiko.leaf.v2``; an unknown one fails the entry);
4. reads the batch from the chain (``get_batch(batch_id)``: root, leaf count, domain,
   block) and checks the inclusion proof (``keiko.merkle.v1``) against **the root read
   from the chain**, pinned to the chain's leaf count; the export's own root is only
   compared with it, and checked with ``is_root_anchored``;
5. reads the receipt of the transaction the export names (``anchor_transaction``): it
   must have succeeded, in the batch's block, and emitted ``BatchAnchored`` for this
   batch id and root, so the hash a reader looks up in an explorer is the real anchor;
6. checks the entry's author against the signed statement and the signing key, and looks
   the key up in the chain's key directory (``key_binding``): whose key it is, whether it
   is registered on chain (:mod:`chain.verify.authorship`).

Each entry gets a report: ``verified``, ``unanchored`` (allowed only with
``require_anchored=False``) or ``failed`` with every problem found, each a named
:class:`Failure` with a detail. Chain reads are made once per distinct batch and root.
Keys are read once per distinct key.
A reader that raises is reported as ``chain read failed`` for the entries concerned,
never as a crash of the whole verification.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from chain.translator.felts import FELT_PRIME, decode_short_string
from chain.translator.leaves import leaf_from_hash, statement_hash
from chain.translator.merkle import MAX_LEAVES, depth_for, verify_inclusion
from chain.translator.signing import SignatureFailure, canonical_bytes, verify
from chain.verify.authorship import NO_DIRECTORY, AuthorReport, KeyFact, check_author
from chain.verify.export import (
    ExportEntry,
    MalformedEntry,
    ParsedEntry,
    PassportExport,
    parse_export,
)
from chain.verify.problems import Failure, Problem
from chain.verify.reader import (
    AnchorTransaction,
    AsyncChainReader,
    BatchInfo,
    ChainReader,
    KeyInfo,
    NoKeyDirectory,
)
from services.kit.errors import ValidationError


class EntryStatus(StrEnum):
    VERIFIED = "verified"
    UNANCHORED = "unanchored"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class EntryReport:
    position: int
    entry_id: str | None
    status: EntryStatus
    problems: tuple[Problem, ...] = ()
    batch_id: int | None = None
    leaf_index: int | None = None
    leaf: int | None = None
    chain_root: int | None = None
    block: int | None = None
    tx_hash: int | None = None
    author: AuthorReport | None = None
    leaf_encoding: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is EntryStatus.VERIFIED

    @property
    def label(self) -> str:
        """How to name the entry to a human: its id, else ``#n`` (1-based position)."""
        return self.entry_id if self.entry_id else f"#{self.position + 1}"

    @property
    def reason(self) -> str | None:
        """The first (primary) failure reason, or None."""
        return self.problems[0].reason.value if self.problems else None

    def to_json(self) -> dict[str, Any]:
        def hx(value: int | None) -> str | None:
            return None if value is None else hex(value)

        return {
            "position": self.position,
            "entry_id": self.entry_id,
            "status": self.status.value,
            "reason": self.reason,
            "problems": [{"reason": p.reason.value, "detail": p.detail} for p in self.problems],
            "batch_id": hx(self.batch_id),
            "leaf_index": self.leaf_index,
            "leaf": hx(self.leaf),
            "leaf_encoding": self.leaf_encoding,
            "chain_root": hx(self.chain_root),
            "block": self.block,
            "tx_hash": hx(self.tx_hash),
            "author": None if self.author is None else self.author.to_json(),
        }


@dataclass(frozen=True, slots=True)
class VerificationReport:
    passport_id: str
    generated_at: datetime
    learner_id: str | None
    entries: tuple[EntryReport, ...]

    @property
    def failed(self) -> tuple[EntryReport, ...]:
        return tuple(e for e in self.entries if e.status is EntryStatus.FAILED)

    @property
    def verified(self) -> tuple[EntryReport, ...]:
        return tuple(e for e in self.entries if e.status is EntryStatus.VERIFIED)

    @property
    def unanchored(self) -> tuple[EntryReport, ...]:
        return tuple(e for e in self.entries if e.status is EntryStatus.UNANCHORED)

    @property
    def ok(self) -> bool:
        """No entry failed (unanchored entries only exist with ``require_anchored=False``)."""
        return not self.failed

    def to_json(self) -> dict[str, Any]:
        return {
            "passport_id": self.passport_id,
            "generated_at": self.generated_at.isoformat(),
            "learner_id": self.learner_id,
            "ok": self.ok,
            "counts": {
                "entries": len(self.entries),
                "verified": len(self.verified),
                "unanchored": len(self.unanchored),
                "failed": len(self.failed),
            },
            "entries": [e.to_json() for e in self.entries],
        }


# -- chain facts -------------------------------------------------------------------------


@dataclass
class _ChainFacts:
    batches: dict[int, BatchInfo | str | None] = field(default_factory=dict)  # str = error
    roots: dict[int, bool | str] = field(default_factory=dict)
    transactions: dict[int, AnchorTransaction | str | None] = field(default_factory=dict)
    keys: dict[bytes, KeyFact] = field(default_factory=dict)


def _read_error(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _normalize_batch(raw: object) -> BatchInfo | str | None:
    if raw is None:
        return None
    if not isinstance(raw, tuple) or len(raw) != 4:
        return "reader returned a malformed batch"
    root, leaf_count, domain, block = raw
    if type(root) is not int or not 0 <= root < FELT_PRIME:
        return "reader returned a malformed batch root"
    if type(leaf_count) is not int or not 1 <= leaf_count <= MAX_LEAVES:
        return "reader returned a malformed leaf count"
    if type(block) is not int or block < 0:
        return "reader returned a malformed block number"
    if not isinstance(domain, int | str):
        return "reader returned a malformed domain"
    return BatchInfo(root, leaf_count, domain, block)


def _normalize_transaction(raw: object) -> AnchorTransaction | str | None:
    if raw is None:
        return None
    if not isinstance(raw, tuple) or len(raw) != 3:
        return "reader returned a malformed transaction"
    block, succeeded, anchors = raw
    if type(block) is not int or block < 0 or not isinstance(succeeded, bool):
        return "reader returned a malformed transaction"
    if not isinstance(anchors, frozenset | set):
        return "reader returned malformed transaction events"
    return AnchorTransaction(block, succeeded, frozenset(anchors))


def _anchored_entries(export: PassportExport) -> list[ExportEntry]:
    return [e for e in export.entries if isinstance(e, ExportEntry) and e.anchor is not None]


def _batch_ids(export: PassportExport) -> list[int]:
    return sorted({e.anchor.batch_id for e in _anchored_entries(export) if e.anchor})


def _author_keys(export: PassportExport) -> list[bytes]:
    """The distinct signing keys of entries that state their author."""
    keys = {e.public_key for e in export.entries if isinstance(e, ExportEntry) and e.author}
    return sorted(keys)


def _normalize_key(raw: object) -> KeyFact:
    if raw is None:
        return None
    if not isinstance(raw, tuple) or len(raw) != 4:
        return "reader returned a malformed key binding"
    subject, kind, block, revoked = raw
    if type(subject) is not int or not 0 < subject < FELT_PRIME or not isinstance(kind, str):
        return "reader returned a malformed key binding"
    if type(block) is not int or block < 0 or (revoked is not None and type(revoked) is not int):
        return "reader returned a malformed key binding"
    return KeyInfo(subject, kind, block, revoked)


def _tx_hashes(export: PassportExport) -> list[int]:
    return sorted({e.anchor.tx_hash for e in _anchored_entries(export) if e.anchor})


def _roots_to_check(export: PassportExport, facts: _ChainFacts) -> list[int]:
    roots = {e.anchor.root for e in _anchored_entries(export) if e.anchor}
    roots |= {b.root for b in facts.batches.values() if isinstance(b, BatchInfo)}
    return sorted(roots)


def _read_sync(export: PassportExport, reader: ChainReader) -> _ChainFacts:
    facts = _ChainFacts()
    for batch_id in _batch_ids(export):
        try:
            facts.batches[batch_id] = _normalize_batch(reader.get_batch(batch_id))
        except Exception as exc:
            facts.batches[batch_id] = _read_error(exc)
    for root in _roots_to_check(export, facts):
        try:
            facts.roots[root] = bool(reader.is_root_anchored(root))
        except Exception as exc:
            facts.roots[root] = _read_error(exc)
    for tx_hash in _tx_hashes(export):
        try:
            facts.transactions[tx_hash] = _normalize_transaction(reader.anchor_transaction(tx_hash))
        except Exception as exc:
            facts.transactions[tx_hash] = _read_error(exc)
    for key in _author_keys(export):
        try:
            facts.keys[key] = _normalize_key(reader.key_binding(key))
        except NoKeyDirectory:
            facts.keys[key] = NO_DIRECTORY
        except Exception as exc:
            facts.keys[key] = _read_error(exc)
    return facts


async def _read_async(
    export: PassportExport, reader: AsyncChainReader, max_concurrency: int
) -> _ChainFacts:
    facts = _ChainFacts()
    limit = asyncio.Semaphore(max_concurrency)

    async def batch(batch_id: int) -> None:
        async with limit:
            try:
                facts.batches[batch_id] = _normalize_batch(await reader.get_batch(batch_id))
            except Exception as exc:
                facts.batches[batch_id] = _read_error(exc)

    async def root(value: int) -> None:
        async with limit:
            try:
                facts.roots[value] = bool(await reader.is_root_anchored(value))
            except Exception as exc:
                facts.roots[value] = _read_error(exc)

    async def transaction(tx_hash: int) -> None:
        async with limit:
            try:
                facts.transactions[tx_hash] = _normalize_transaction(
                    await reader.anchor_transaction(tx_hash)
                )
            except Exception as exc:
                facts.transactions[tx_hash] = _read_error(exc)

    async def key(public_key: bytes) -> None:
        async with limit:
            try:
                facts.keys[public_key] = _normalize_key(await reader.key_binding(public_key))
            except NoKeyDirectory:
                facts.keys[public_key] = NO_DIRECTORY
            except Exception as exc:
                facts.keys[public_key] = _read_error(exc)

    await asyncio.gather(
        *(batch(b) for b in _batch_ids(export)),
        *(transaction(t) for t in _tx_hashes(export)),
        *(key(k) for k in _author_keys(export)),
    )
    await asyncio.gather(*(root(r) for r in _roots_to_check(export, facts)))
    return facts


def _transaction_problem(
    tx_hash: int, batch_id: int, batch: BatchInfo, facts: _ChainFacts
) -> Problem | None:
    """Whether the named transaction is the one that anchored this batch in its block."""
    tx = facts.transactions.get(tx_hash)
    name = f"transaction {hex(tx_hash)}"
    if isinstance(tx, str):
        return Problem(Failure.CHAIN_READ_FAILED, f"{name}: {tx}")
    if tx is None:
        return Problem(Failure.TX_MISMATCH, f"{name} is not on the chain")
    if not tx.succeeded:
        return Problem(Failure.TX_MISMATCH, f"{name} reverted")
    if tx.block != batch.block:
        return Problem(
            Failure.TX_MISMATCH, f"{name} is in block {tx.block}, the batch in {batch.block}"
        )
    if (batch_id, batch.root) not in tx.anchors:
        return Problem(
            Failure.TX_MISMATCH,
            f"{name} did not anchor batch {hex(batch_id)} with root {hex(batch.root)}",
        )
    return None


# -- per-entry evaluation ----------------------------------------------------------------


def _domain_name(value: int | str) -> str:
    if isinstance(value, str):
        return value
    try:
        return decode_short_string(value, "domain")
    except ValidationError:
        return hex(value)


def _check_entry(
    position: int,
    entry: ParsedEntry,
    facts: _ChainFacts,
    require_anchored: bool,
    expected_keys: Collection[bytes] | None,
    learner_id: str | None = None,
) -> EntryReport:
    if isinstance(entry, MalformedEntry):
        problem = Problem(Failure.MALFORMED, f"{entry.field}: {entry.reason}")
        return EntryReport(position, entry.entry_id, EntryStatus.FAILED, (problem,))

    problems: list[Problem] = []
    try:
        canonical = canonical_bytes(entry.statement, "statement")
    except ValidationError as exc:
        problem = Problem(Failure.MALFORMED, f"{exc.field}: {exc.reason}")
        return EntryReport(position, entry.entry_id, EntryStatus.FAILED, (problem,))
    digest = statement_hash(canonical)
    digest_matches = hmac.compare_digest(digest, entry.statement_sha256)

    check = verify(canonical, entry.signature, entry.public_key)
    if not check.ok:
        if check.reason is SignatureFailure.INVALID and not digest_matches:
            problems.append(
                Problem(
                    Failure.STATEMENT_MISMATCH,
                    f"the statement hashes to {digest.hex()} but was signed as "
                    f"{entry.statement_sha256.hex()}: it was changed after signing",
                )
            )
        else:
            detail = "Ed25519 verification failed" if check.reason is None else check.reason
            problems.append(
                Problem(Failure.SIGNATURE_INVALID, f"{detail} (key {entry.public_key.hex()})")
            )
    elif not digest_matches:
        problems.append(
            Problem(
                Failure.STATEMENT_HASH_MISMATCH,
                f"recorded {entry.statement_sha256.hex()}, statement hashes to {digest.hex()}",
            )
        )
    if expected_keys is not None and entry.public_key not in expected_keys:
        problems.append(
            Problem(Failure.KEY_NOT_LEARNERS, f"key {entry.public_key.hex()} is not registered")
        )

    leaf: int | None = None
    try:
        leaf = leaf_from_hash(digest, entry.signature, entry.public_key, entry.leaf_encoding)
    except ValidationError as exc:
        problems.append(Problem(Failure.UNKNOWN_LEAF_ENCODING, exc.reason))
    if leaf is not None and entry.leaf is not None and entry.leaf != leaf:
        problems.append(
            Problem(Failure.LEAF_MISMATCH, f"recorded {hex(entry.leaf)}, recomputed {hex(leaf)}")
        )

    anchor = entry.anchor
    on_chain = facts.batches.get(anchor.batch_id) if anchor is not None else None
    anchor_block = on_chain.block if isinstance(on_chain, BatchInfo) else None
    author, author_problems = check_author(
        entry, learner_id, facts.keys.get(entry.public_key), anchor_block
    )
    problems += author_problems
    if anchor is None:
        if require_anchored:
            problems.append(Problem(Failure.NOT_ANCHORED, "the entry has no anchor yet"))
        status = EntryStatus.FAILED if problems else EntryStatus.UNANCHORED
        return EntryReport(
            position,
            entry.entry_id,
            status,
            tuple(problems),
            leaf=leaf,
            author=author,
            leaf_encoding=entry.leaf_encoding,
        )

    chain_root: int | None = None
    batch = facts.batches.get(anchor.batch_id)
    if isinstance(batch, str):
        problems.append(
            Problem(Failure.CHAIN_READ_FAILED, f"batch {hex(anchor.batch_id)}: {batch}")
        )
    elif batch is None:
        problems.append(
            Problem(Failure.ROOT_NOT_ANCHORED, f"batch {hex(anchor.batch_id)} is not on the chain")
        )
    else:
        chain_root = batch.root
        chain_root_anchored = facts.roots.get(batch.root)
        if isinstance(chain_root_anchored, str):
            problems.append(
                Problem(Failure.CHAIN_READ_FAILED, f"root {hex(batch.root)}: {chain_root_anchored}")
            )
        elif chain_root_anchored is False:
            problems.append(
                Problem(
                    Failure.ROOT_NOT_ANCHORED,
                    f"the chain's root {hex(batch.root)} of batch {hex(anchor.batch_id)} "
                    "is not anchored",
                )
            )
        if anchor.root != batch.root:
            problems.append(
                Problem(
                    Failure.BATCH_ROOT_MISMATCH,
                    f"export says {hex(anchor.root)}, chain says {hex(batch.root)} "
                    f"for batch {hex(anchor.batch_id)}",
                )
            )
            export_root_anchored = facts.roots.get(anchor.root)
            if export_root_anchored is False:
                problems.append(
                    Problem(
                        Failure.ROOT_NOT_ANCHORED,
                        f"the export's root {hex(anchor.root)} is not anchored",
                    )
                )
        chain_domain = _domain_name(batch.domain)
        if chain_domain != anchor.domain.value:
            problems.append(
                Problem(
                    Failure.BATCH_DOMAIN_MISMATCH,
                    f"export says {anchor.domain.value!r}, chain says {chain_domain!r}",
                )
            )
        if anchor.block != batch.block:
            problems.append(
                Problem(
                    Failure.BLOCK_MISMATCH,
                    f"export says block {anchor.block}, chain says {batch.block}",
                )
            )
        tx_problem = _transaction_problem(anchor.tx_hash, anchor.batch_id, batch, facts)
        if tx_problem is not None:
            problems.append(tx_problem)
        depth = depth_for(batch.leaf_count)
        if anchor.leaf_index >= batch.leaf_count:
            problems.append(
                Problem(
                    Failure.INDEX_OUT_OF_RANGE,
                    f"index {anchor.leaf_index}, the batch has {batch.leaf_count} leaves",
                )
            )
        elif len(anchor.proof) != depth:
            problems.append(
                Problem(
                    Failure.PROOF_FAILED,
                    f"{len(anchor.proof)} siblings, a batch of {batch.leaf_count} "
                    f"leaves needs {depth}",
                )
            )
        elif leaf is not None and not verify_inclusion(
            leaf, anchor.leaf_index, anchor.proof, batch.root, leaf_count=batch.leaf_count
        ):
            problems.append(
                Problem(
                    Failure.PROOF_FAILED,
                    f"leaf {hex(leaf)} at index {anchor.leaf_index} does not reach the "
                    f"chain's root {hex(batch.root)}",
                )
            )
    return EntryReport(
        position=position,
        entry_id=entry.entry_id,
        status=EntryStatus.FAILED if problems else EntryStatus.VERIFIED,
        problems=tuple(problems),
        batch_id=anchor.batch_id,
        leaf_index=anchor.leaf_index,
        leaf=leaf,
        chain_root=chain_root,
        block=anchor.block,
        tx_hash=anchor.tx_hash,
        author=author,
        leaf_encoding=entry.leaf_encoding,
    )


def _coerce(document: str | bytes | Mapping[str, Any] | PassportExport) -> PassportExport:
    return document if isinstance(document, PassportExport) else parse_export(document)


def _report(
    export: PassportExport,
    facts: _ChainFacts,
    require_anchored: bool,
    expected_public_keys: Collection[bytes] | None,
) -> VerificationReport:
    keys = None if expected_public_keys is None else {bytes(k) for k in expected_public_keys}
    return VerificationReport(
        passport_id=export.passport_id,
        generated_at=export.generated_at,
        learner_id=export.learner_id,
        entries=tuple(
            _check_entry(i, entry, facts, require_anchored, keys, export.learner_id)
            for i, entry in enumerate(export.entries)
        ),
    )


def verify_passport(
    document: str | bytes | Mapping[str, Any] | PassportExport,
    reader: ChainReader,
    *,
    require_anchored: bool = True,
    expected_public_keys: Collection[bytes] | None = None,
) -> VerificationReport:
    """Verify every entry of a passport export against the chain (see module docstring).

    Raises ``ValidationError`` only if the document as a whole is unreadable.
    """
    export = _coerce(document)
    facts = _read_sync(export, reader)
    return _report(export, facts, require_anchored, expected_public_keys)


async def averify_passport(
    document: str | bytes | Mapping[str, Any] | PassportExport,
    reader: AsyncChainReader,
    *,
    require_anchored: bool = True,
    expected_public_keys: Collection[bytes] | None = None,
    max_concurrency: int = 16,
) -> VerificationReport:
    """:func:`verify_passport` with an asyncio chain reader (at most ``max_concurrency``
    reads in flight)."""
    if type(max_concurrency) is not int or max_concurrency < 1:
        raise ValidationError("max_concurrency", "must be a positive integer")
    export = _coerce(document)
    facts = await _read_async(export, reader, max_concurrency)
    return _report(export, facts, require_anchored, expected_public_keys)


__all__ = [
    "EntryReport",
    "EntryStatus",
    "Failure",
    "Problem",
    "VerificationReport",
    "averify_passport",
    "verify_passport",
]
