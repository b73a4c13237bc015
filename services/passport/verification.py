"""Export (``keiko.passport.export``) and server-side verification against the chain
(roots read from the chain, never Keiko's), remembering verified entries."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace

from chain.translator.batching import Domain
from chain.translator.felts import parse_felt
from chain.verify import (
    AnchorProof,
    EntryReport,
    EntryStatus,
    ExportEntry,
    Failure,
    PassportExport,
    VerificationReport,
    averify_passport,
)
from services.kit.errors import (
    FailedPrecondition,
    Unavailable,
)
from services.passport.core import (
    MAX_EXPORT_ENTRIES,
    Access,
)
from services.passport.domain import (
    AnchorStatus,
    Entry,
)
from services.passport.timeline import TimelineReads
from services.passport.verification_cache import verification_key


@dataclass(frozen=True, slots=True)
class Verification:
    statement_id: str
    signature_valid: bool
    inclusion_valid: bool
    root_on_chain: bool
    status: EntryStatus
    reason: str
    block: int
    tx_hash: str
    key_holder: str = ""
    key_registration: str = ""
    key_custody: str = ""
    key_registered_block: int = 0

    @property
    def verified(self) -> bool:
        return self.status is EntryStatus.VERIFIED


_SIGNATURE_FAILURES = {
    Failure.MALFORMED,
    Failure.STATEMENT_MISMATCH,
    Failure.SIGNATURE_INVALID,
    Failure.STATEMENT_HASH_MISMATCH,
    Failure.KEY_NOT_LEARNERS,
    Failure.AUTHOR_KEY_MISMATCH,
    Failure.NOT_LEARNERS_OWN,
    Failure.AUTHOR_NOT_AUTHORITY,
    Failure.ENTRY_NOT_LEARNERS,
    Failure.KEY_NOT_AUTHORS,
    Failure.KEY_REVOKED,
}
_INCLUSION_FAILURES = {
    Failure.MALFORMED,
    Failure.LEAF_MISMATCH,
    Failure.UNKNOWN_LEAF_ENCODING,
    Failure.INDEX_OUT_OF_RANGE,
    Failure.PROOF_FAILED,
    Failure.NOT_ANCHORED,
}
_ROOT_FAILURES = {
    Failure.ROOT_NOT_ANCHORED,
    Failure.BATCH_ROOT_MISMATCH,
    Failure.CHAIN_READ_FAILED,
    Failure.NOT_ANCHORED,
    Failure.MALFORMED,
}


def verification_of(report: EntryReport) -> Verification:
    reasons = {p.reason for p in report.problems}
    anchored = report.batch_id is not None
    author = report.author
    return Verification(
        statement_id=report.entry_id or "",
        signature_valid=not (reasons & _SIGNATURE_FAILURES),
        inclusion_valid=anchored and not (reasons & _INCLUSION_FAILURES),
        root_on_chain=anchored and report.chain_root is not None and not (reasons & _ROOT_FAILURES),
        status=report.status,
        reason=str(report.problems[0]) if report.problems else "",
        block=report.block or 0,
        tx_hash=hex(report.tx_hash) if report.tx_hash is not None else "",
        key_holder="" if author is None else author.holder,
        key_registration="" if author is None else author.registration.value,
        key_custody="" if author is None or author.custody is None else author.custody,
        key_registered_block=0 if author is None or author.block is None else author.block,
    )


def export_entry(entry: Entry, show_identity: bool = True) -> ExportEntry | None:
    """The entry in ``keiko.passport.export`` form, or None while it has no signature."""
    if not entry.signature_hex or not entry.public_key_hex:
        return None
    anchor = None
    a = entry.anchor
    if a.status is AnchorStatus.ANCHORED and a.proof is not None:
        anchor = AnchorProof(
            batch_id=parse_felt(a.batch_id, "batch_id"),
            domain=Domain.parse(a.domain),
            leaf_index=a.leaf_index,
            proof=tuple(parse_felt(s, "proof") for s in a.proof),
            root=parse_felt(a.root, "root"),
            tx_hash=parse_felt(a.tx_hash or "0x0", "tx_hash"),
            block=a.block,
        )
    from chain.verify import build_entry

    return build_entry(
        entry.statement_id,
        entry.statement,
        bytes.fromhex(entry.signature_hex),
        bytes.fromhex(entry.public_key_hex),
        anchor,
        entry.author(show_identity),
        legacy=entry.legacy,
        leaf_encoding=entry.anchor.leaf_encoding,
    )


class Verifications(TimelineReads):
    # == export and verification =========================================================

    async def export(self, access: Access) -> PassportExport:
        """The public ``keiko.passport.export`` document of what ``access`` reveals.
        Entries not yet signed are left out (nothing to verify yet)."""
        if not access.disclosure.show_content:
            raise FailedPrecondition(
                "this passport's disclosure withholds statement content, which independent "
                "verification of signatures needs"
            )
        out: list[ExportEntry] = []
        token = ""
        while len(out) < MAX_EXPORT_ENTRIES:
            page, token = await self.entry_page(access, size=500, page_token=token)
            show = access.disclosure.show_identity
            out.extend(e for e in (export_entry(x, show) for x in page) if e is not None)
            if not token:
                break
        return PassportExport(
            passport_id=access.passport.id,
            generated_at=self.clock.now(),
            entries=tuple(out[:MAX_EXPORT_ENTRIES]),
            learner_id=access.passport.owner_id if access.disclosure.show_identity else None,
        )

    async def _verify_on_chain(self, doc: PassportExport) -> VerificationReport:
        assert self.chain_reader is not None
        async with self.chain_reader() as reader:
            return await averify_passport(doc, reader, require_anchored=False)

    async def verify_entries(
        self, found: Sequence[Entry], show_identity: bool = True
    ) -> list[Verification]:
        """Check each entry's signature, its author's key, proof and root ON CHAIN (never
        Keiko's roots). Without ``show_identity`` the learner is not named as a key's
        holder."""
        if self.chain_reader is None:
            raise Unavailable("verification needs a chain RPC endpoint (KEIKO_CHAIN_RPC_URL)")
        exported: list[ExportEntry] = []
        unsigned: list[Entry] = []
        for e in found:
            item = export_entry(e)
            if item is None:
                unsigned.append(e)
            else:
                exported.append(item)
        learner = found[0].learner_id if found else None
        by_id: dict[str, Verification] = {}
        unknown: list[ExportEntry] = []
        for item in exported:
            cached = self.verified.get(verification_key(item))
            if cached is not None:
                by_id[item.entry_id] = cached
            else:
                unknown.append(item)
        if unknown:
            doc = PassportExport("verification", self.clock.now(), tuple(unknown), learner)
            if self.verify_in_thread:
                report = await asyncio.to_thread(asyncio.run, self._verify_on_chain(doc))
            else:
                report = await self._verify_on_chain(doc)
            fresh = {r.entry_id or "": verification_of(r) for r in report.entries}
            for item in unknown:
                if item.entry_id in fresh:
                    self.verified.remember(verification_key(item), fresh[item.entry_id])
            by_id.update(fresh)
        if not show_identity and learner:
            by_id = {
                k: replace(v, key_holder="") if v.key_holder == learner else v
                for k, v in by_id.items()
            }
        results: list[Verification] = []
        for e in found:
            v = by_id.get(e.statement_id)
            if v is None:
                v = Verification(
                    e.statement_id, False, False, False, EntryStatus.UNANCHORED, "", 0, ""
                )
            elif v.status is EntryStatus.UNANCHORED and e.anchor.status is AnchorStatus.FAILED:
                v = Verification(
                    e.statement_id,
                    v.signature_valid,
                    False,
                    False,
                    EntryStatus.FAILED,
                    f"anchoring failed: {e.anchor.failure_reason}",
                    0,
                    "",
                )
            elif (
                v.status is EntryStatus.UNANCHORED
                and e.anchor.status is AnchorStatus.ANCHORED
                and e.anchor.proof is None
            ):
                pass  # anchored, proof not fetched yet: still pending for verifiers
            results.append(v)
        return results
