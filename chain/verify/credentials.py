"""Independent verification of Keiko credentials and presentations.

For a credential (``LearningRecordCredential`` or ``OpenBadgeCredential``) the verifier,
trusting nothing in the document and nothing on Keiko's servers:

1. checks **every** Data Integrity proof (``eddsa-rdfc-2022``, ``eddsa-jcs-2022``) with the
   key its ``did:key`` verification method names, resolved offline, and requires that the
   method belongs to the issuer and that an ``eddsa-jcs-2022`` proof covers the JSON (an
   RDF proof does not cover members that map to no triple);
2. checks the validity window (``validFrom``, ``validUntil``);
3. checks the Bitstring Status List entry: fetches the issuer's status list credential
   (through a :class:`StatusListSource`), verifies *its* proofs and issuer, and reads the
   bit (set = revoked);
4. checks each learning record as an export entry (:mod:`chain.verify.verifier`): the
   author's Ed25519 signature over the RFC 8785 statement, the leaf (``leafEncoding``),
   its inclusion proof against the batch root **read from the chain**, the anchor
   transaction's receipt; that the evidence names the chain and contract the caller expects;
5. checks authorship: a record of kind ``self`` is signed by the subject's own key (or a
   key the chain's key directory binds to the same holder, like a learner's device key),
   an attested one by another key, and the issuer is either the subject (the learner's
   own compilation) or the author of every record (an attesting tutor or service issues
   only what they wrote).

A presentation adds holder binding: its proofs (purpose ``authentication``) must be made
by the holder over the verifier's ``challenge`` and ``domain``, and every credential in it
must be about the holder.

Every problem is a named :class:`CredentialFailure` with a detail; nothing raises for a
bad document except a document that is not JSON at all (``ValidationError``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from chain.credentials.integrity import (
    Cryptosuite,
    ProofCheck,
    ProofPurpose,
    verify_proofs,
)
from chain.credentials.learning_credentials import ParsedCredential, parse_credential
from chain.credentials.multikey import public_key_from_did
from chain.credentials.presentations import is_presentation, parse_presentation
from chain.credentials.records import AnchoredRecord, AuthorKind
from chain.credentials.status_list import StatusEntry, parse_status_list_credential
from chain.translator.leaves import LEAF_ENCODING, statement_hash
from chain.translator.signing import canonical_bytes
from chain.verify.export import AnchorProof, ExportEntry, MalformedEntry, PassportExport
from chain.verify.reader import AsyncChainReader, KeyInfo
from chain.verify.verifier import EntryReport, averify_passport
from services.kit.errors import ValidationError

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024


class CredentialFailure(StrEnum):
    """Named reasons a credential or presentation fails (the value is what reports print)."""

    MALFORMED = "malformed credential"
    PROOF_INVALID = "proof invalid"
    NO_JCS_PROOF = "no eddsa-jcs-2022 proof covers the JSON"
    PROOF_NOT_BY_ISSUER = "proof not made by the issuer"
    NOT_YET_VALID = "not yet valid"
    EXPIRED = "expired"
    REVOKED = "revoked"
    STATUS_UNAVAILABLE = "status list unavailable"
    STATUS_INVALID = "status list invalid"
    RECORD_FAILED = "learning record failed"
    NOT_ANCHORED = "learning record has no anchor evidence"
    WRONG_CHAIN = "evidence names another chain"
    WRONG_CONTRACT = "evidence names another anchor contract"
    AUTHOR_MISMATCH = "record author does not match its key"
    ISSUER_NOT_AUTHOR = "issuer did not author every record"
    NOT_HOLDERS = "presentation proof not made by the holder"
    SUBJECT_NOT_HOLDER = "credential is not about the holder"


@dataclass(frozen=True, slots=True)
class CredentialProblem:
    reason: CredentialFailure
    detail: str

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}" if self.detail else self.reason.value

    def to_json(self) -> dict[str, str]:
        return {"reason": self.reason.value, "detail": self.detail}


class StatusState(StrEnum):
    NONE = "none"  # the credential has no status entry
    ACTIVE = "active"
    REVOKED = "revoked"
    UNCHECKED = "unchecked"  # no status source given, or it failed


class StatusListSource(Protocol):
    """Where status list credentials come from (HTTP for the CLI, the store in tests)."""

    async def fetch(self, url: str) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class CredentialReport:
    id: str | None
    kind: str | None
    issuer: str | None
    subject: str | None
    problems: tuple[CredentialProblem, ...]
    proofs: tuple[ProofCheck, ...] = ()
    records: tuple[EntryReport, ...] = ()
    status: StatusState = StatusState.NONE

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def reasons(self) -> list[CredentialFailure]:
        return [p.reason for p in self.problems]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "issuer": self.issuer,
            "subject": self.subject,
            "ok": self.ok,
            "status": self.status.value,
            "problems": [p.to_json() for p in self.problems],
            "proofs": [str(p) for p in self.proofs],
            "records": [r.to_json() for r in self.records],
        }


@dataclass(frozen=True, slots=True)
class PresentationReport:
    holder: str | None
    problems: tuple[CredentialProblem, ...]
    proofs: tuple[ProofCheck, ...] = ()
    credentials: tuple[CredentialReport, ...] = ()
    challenge_checked: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems and all(c.ok for c in self.credentials)

    def to_json(self) -> dict[str, Any]:
        return {
            "holder": self.holder,
            "ok": self.ok,
            "challenge_checked": self.challenge_checked,
            "problems": [p.to_json() for p in self.problems],
            "proofs": [str(p) for p in self.proofs],
            "credentials": [c.to_json() for c in self.credentials],
        }


@dataclass(frozen=True, slots=True)
class ChainExpectation:
    """The chain and anchor contract the verifier reads, to compare with the evidence."""

    chain_id: int | None = None
    contract: int | None = None


@dataclass
class _Context:
    reader: AsyncChainReader
    status_source: StatusListSource | None
    now: datetime
    chain: ChainExpectation
    status_lists: dict[str, Mapping[str, Any] | CredentialProblem] = field(default_factory=dict)
    key_bindings: dict[bytes, KeyInfo | None] = field(default_factory=dict)


# -- proofs -------------------------------------------------------------------------------


def _proof_problems(
    checks: Sequence[ProofCheck], controller: str, who: CredentialFailure
) -> list[CredentialProblem]:
    problems = [
        CredentialProblem(CredentialFailure.PROOF_INVALID, str(c)) for c in checks if not c.ok
    ]
    for check in checks:
        if check.ok and check.method is not None and check.method.controller != controller:
            problems.append(
                CredentialProblem(who, f"{check.method.controller} is not {controller}")
            )
    return problems


async def _checked_proofs(document: Mapping[str, Any], **kwargs: Any) -> list[ProofCheck]:
    return await asyncio.to_thread(lambda: verify_proofs(document, **kwargs))


def _require_jcs(checks: Sequence[ProofCheck]) -> list[CredentialProblem]:
    """An ``eddsa-jcs-2022`` proof must be there (an invalid one is already reported)."""
    if any(c.cryptosuite == Cryptosuite.EDDSA_JCS_2022.value for c in checks):
        return []
    return [CredentialProblem(CredentialFailure.NO_JCS_PROOF, "")]


# -- status -------------------------------------------------------------------------------


async def _status_list(
    entry: StatusEntry, issuer: str, ctx: _Context
) -> Mapping[str, Any] | CredentialProblem:
    cached = ctx.status_lists.get(entry.list_credential)
    if cached is not None:
        return cached
    assert ctx.status_source is not None
    result: Mapping[str, Any] | CredentialProblem
    try:
        document = await ctx.status_source.fetch(entry.list_credential)
    except Exception as exc:
        result = CredentialProblem(
            CredentialFailure.STATUS_UNAVAILABLE,
            f"{entry.list_credential}: {type(exc).__name__}: {exc}",
        )
    else:
        result = await _checked_status_list(document, entry, issuer, ctx)
    ctx.status_lists[entry.list_credential] = result
    return result


async def _checked_status_list(
    document: Mapping[str, Any], entry: StatusEntry, issuer: str, ctx: _Context
) -> Mapping[str, Any] | CredentialProblem:
    def invalid(detail: str) -> CredentialProblem:
        return CredentialProblem(
            CredentialFailure.STATUS_INVALID, f"{entry.list_credential}: {detail}"
        )

    if not isinstance(document, Mapping):
        return invalid("not a JSON object")
    if document.get("id") != entry.list_credential:
        return invalid("its id is not the URL it was fetched from")
    list_issuer = document.get("issuer")
    list_issuer = list_issuer.get("id") if isinstance(list_issuer, Mapping) else list_issuer
    if list_issuer != issuer:
        return invalid(f"issued by {list_issuer!r}, the credential by {issuer!r}")
    checks = await _checked_proofs(document, now=ctx.now)
    bad = [str(c) for c in checks if not c.ok]
    if bad:
        return invalid("; ".join(bad))
    if any(c.method is not None and c.method.controller != issuer for c in checks):
        return invalid("signed by a key that is not the issuer's")
    try:
        parse_status_list_credential(document)
    except ValidationError as exc:
        return invalid(f"{exc.field}: {exc.reason}")
    return document


async def _status_problems(
    parsed: ParsedCredential, ctx: _Context
) -> tuple[StatusState, list[CredentialProblem]]:
    entry = parsed.status
    if entry is None:
        return StatusState.NONE, []
    if ctx.status_source is None:
        return StatusState.UNCHECKED, []
    document = await _status_list(entry, parsed.issuer, ctx)
    if isinstance(document, CredentialProblem):
        return StatusState.UNCHECKED, [document]
    subject = parse_status_list_credential(document)
    if subject.purpose != entry.purpose:
        problem = CredentialProblem(
            CredentialFailure.STATUS_INVALID,
            f"the list's purpose is {subject.purpose!r}, the entry's {entry.purpose!r}",
        )
        return StatusState.UNCHECKED, [problem]
    try:
        set_bit = subject.bits.get(entry.index)
    except ValidationError as exc:
        return StatusState.UNCHECKED, [
            CredentialProblem(CredentialFailure.STATUS_INVALID, exc.reason)
        ]
    if set_bit:
        problem = CredentialProblem(
            CredentialFailure.REVOKED, f"bit {entry.index} of {entry.list_credential} is set"
        )
        return StatusState.REVOKED, [problem]
    return StatusState.ACTIVE, []


# -- records ------------------------------------------------------------------------------


def _export_entry(record: AnchoredRecord) -> ExportEntry | MalformedEntry:
    try:
        canonical = canonical_bytes(record.statement, "statement")
    except ValidationError as exc:
        return MalformedEntry(record.statement_id, exc.field, exc.reason)
    anchor = record.anchor
    return ExportEntry(
        entry_id=record.statement_id,
        statement=json.loads(canonical),
        statement_sha256=statement_hash(canonical),
        signature=record.signature,
        public_key=record.author.public_key,
        anchor=None
        if anchor is None
        else AnchorProof(
            batch_id=anchor.batch_id,
            domain=anchor.domain,
            leaf_index=anchor.leaf_index,
            proof=anchor.proof,
            root=anchor.root,
            tx_hash=anchor.tx_hash,
            block=anchor.block,
        ),
        leaf=None if anchor is None else anchor.leaf,
        leaf_encoding=LEAF_ENCODING if anchor is None else anchor.leaf_encoding,
    )


async def _same_holder(did_a: str, did_b: str, ctx: _Context) -> bool:
    """Two keys of one holder: both bound, unrevoked, to the same subject in the chain's
    key directory (a learner's custodial key and the key on their device, say)."""
    if did_a == did_b:
        return True
    bindings = []
    for did in (did_a, did_b):
        try:
            key = public_key_from_did(did, "did")
        except ValidationError:
            return False
        if key not in ctx.key_bindings:
            try:
                ctx.key_bindings[key] = await ctx.reader.key_binding(key)
            except Exception:
                ctx.key_bindings[key] = None
        bindings.append(ctx.key_bindings[key])
    first, second = bindings
    return (
        first is not None
        and second is not None
        and first.revoked_block is None
        and second.revoked_block is None
        and first.subject == second.subject
    )


async def _authorship_problems(parsed: ParsedCredential, ctx: _Context) -> list[CredentialProblem]:
    problems = []
    for record in parsed.records:
        own = record.author.did == parsed.subject
        if record.author.kind is AuthorKind.SELF and not own:
            if not await _same_holder(record.author.did, parsed.subject, ctx):
                problems.append(
                    CredentialProblem(
                        CredentialFailure.AUTHOR_MISMATCH,
                        f"record {record.statement_id} is presented as the learner's own but "
                        f"signed by {record.author.did}, a key the chain's key directory "
                        "does not bind to the learner",
                    )
                )
        elif record.author.kind is not AuthorKind.SELF and own:
            problems.append(
                CredentialProblem(
                    CredentialFailure.AUTHOR_MISMATCH,
                    f"record {record.statement_id} is presented as attested by "
                    f"{record.author.author_id} but signed with the learner's own key",
                )
            )
    if parsed.issuer != parsed.subject:
        foreign = [
            r.statement_id
            for r in parsed.records
            if not await _same_holder(r.author.did, parsed.issuer, ctx)
        ]
        if foreign:
            problems.append(
                CredentialProblem(
                    CredentialFailure.ISSUER_NOT_AUTHOR,
                    f"{parsed.issuer} issued record(s) it did not sign: {', '.join(foreign)}",
                )
            )
    return problems


def _evidence_problems(
    parsed: ParsedCredential, chain: ChainExpectation
) -> list[CredentialProblem]:
    problems = []
    for record in parsed.records:
        anchor = record.anchor
        if anchor is None:
            problems.append(CredentialProblem(CredentialFailure.NOT_ANCHORED, record.statement_id))
            continue
        if chain.chain_id is not None and anchor.chain_id != chain.chain_id:
            problems.append(
                CredentialProblem(
                    CredentialFailure.WRONG_CHAIN,
                    f"record {record.statement_id}: {hex(anchor.chain_id)}, "
                    f"verifying against {hex(chain.chain_id)}",
                )
            )
        if chain.contract is not None and anchor.contract != chain.contract:
            problems.append(
                CredentialProblem(
                    CredentialFailure.WRONG_CONTRACT,
                    f"record {record.statement_id}: {hex(anchor.contract)}, "
                    f"verifying against {hex(chain.contract)}",
                )
            )
    return problems


async def _record_reports(
    parsed: ParsedCredential, ctx: _Context
) -> tuple[tuple[EntryReport, ...], list[CredentialProblem]]:
    export = PassportExport(
        passport_id=parsed.id,
        generated_at=ctx.now,
        entries=tuple(_export_entry(r) for r in parsed.records),
    )
    report = await averify_passport(export, ctx.reader, require_anchored=True)
    problems = [
        CredentialProblem(
            CredentialFailure.RECORD_FAILED,
            f"record {entry.label}: " + "; ".join(str(p) for p in entry.problems),
        )
        for entry in report.failed
        if parsed.records[entry.position].anchor is not None
    ]
    return report.entries, problems


# -- credentials and presentations --------------------------------------------------------


def _time_problems(parsed: ParsedCredential, now: datetime) -> list[CredentialProblem]:
    problems = []
    if parsed.valid_from is not None and parsed.valid_from > now:
        problems.append(
            CredentialProblem(CredentialFailure.NOT_YET_VALID, parsed.valid_from.isoformat())
        )
    if parsed.valid_until is not None and parsed.valid_until <= now:
        problems.append(
            CredentialProblem(CredentialFailure.EXPIRED, parsed.valid_until.isoformat())
        )
    return problems


async def _verify_credential(document: Mapping[str, Any], ctx: _Context) -> CredentialReport:
    raw_id = document.get("id")
    try:
        parsed = parse_credential(document)
    except ValidationError as exc:
        problem = CredentialProblem(CredentialFailure.MALFORMED, f"{exc.field}: {exc.reason}")
        return CredentialReport(
            raw_id if isinstance(raw_id, str) else None, None, None, None, (problem,)
        )
    checks = await _checked_proofs(document, now=ctx.now)
    problems = _proof_problems(checks, parsed.issuer, CredentialFailure.PROOF_NOT_BY_ISSUER)
    problems += _require_jcs(checks)
    problems += _time_problems(parsed, ctx.now)
    status, status_problems = await _status_problems(parsed, ctx)
    problems += status_problems
    problems += await _authorship_problems(parsed, ctx)
    problems += _evidence_problems(parsed, ctx.chain)
    records, record_problems = await _record_reports(parsed, ctx)
    problems += record_problems
    return CredentialReport(
        id=parsed.id,
        kind=parsed.kind.value,
        issuer=parsed.issuer,
        subject=parsed.subject,
        problems=tuple(problems),
        proofs=tuple(checks),
        records=records,
        status=status,
    )


def load_document(raw: str | bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    """A credential or presentation from JSON text (``ValidationError`` if unusable)."""
    if isinstance(raw, Mapping):
        return raw
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise ValidationError("document", f"at most {MAX_DOCUMENT_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise ValidationError("document", "is not valid JSON") from None
    if not isinstance(data, Mapping):
        raise ValidationError("document", "must be a JSON object")
    return data


def _context(
    reader: AsyncChainReader,
    status_source: StatusListSource | None,
    now: datetime | None,
    chain: ChainExpectation | None,
) -> _Context:
    return _Context(reader, status_source, now or datetime.now(UTC), chain or ChainExpectation())


async def verify_credential(
    document: str | bytes | Mapping[str, Any],
    reader: AsyncChainReader,
    *,
    status_source: StatusListSource | None = None,
    now: datetime | None = None,
    chain: ChainExpectation | None = None,
) -> CredentialReport:
    """Verify one credential (see the module docstring)."""
    ctx = _context(reader, status_source, now, chain)
    return await _verify_credential(load_document(document), ctx)


async def verify_presentation(
    document: str | bytes | Mapping[str, Any],
    reader: AsyncChainReader,
    *,
    challenge: str | None = None,
    domain: str | None = None,
    status_source: StatusListSource | None = None,
    now: datetime | None = None,
    chain: ChainExpectation | None = None,
) -> PresentationReport:
    """Verify a presentation: holder binding, then every credential in it. Without a
    ``challenge`` the holder's proof is checked but not bound to this verifier
    (``challenge_checked`` is False)."""
    ctx = _context(reader, status_source, now, chain)
    data = load_document(document)
    try:
        parsed = parse_presentation(data)
    except ValidationError as exc:
        problem = CredentialProblem(CredentialFailure.MALFORMED, f"{exc.field}: {exc.reason}")
        return PresentationReport(None, (problem,))
    checks = await _checked_proofs(
        data,
        purpose=ProofPurpose.AUTHENTICATION,
        challenge=challenge,
        domain=domain,
        now=ctx.now,
    )
    problems = _proof_problems(checks, parsed.holder, CredentialFailure.NOT_HOLDERS)
    problems += _require_jcs(checks)
    reports = []
    for credential in parsed.credentials:
        report = await _verify_credential(credential, ctx)
        if report.subject is not None and report.subject != parsed.holder:
            problems.append(
                CredentialProblem(
                    CredentialFailure.SUBJECT_NOT_HOLDER,
                    f"{report.id} is about {report.subject}, the holder is {parsed.holder}",
                )
            )
        reports.append(report)
    return PresentationReport(
        holder=parsed.holder,
        problems=tuple(problems),
        proofs=tuple(checks),
        credentials=tuple(reports),
        challenge_checked=challenge is not None,
    )


async def verify_document(
    document: str | bytes | Mapping[str, Any],
    reader: AsyncChainReader,
    **options: Any,
) -> CredentialReport | PresentationReport:
    """A credential or a presentation, whichever ``document`` is."""
    data = load_document(document)
    if is_presentation(data):
        return await verify_presentation(data, reader, **options)
    options.pop("challenge", None)
    options.pop("domain", None)
    return await verify_credential(data, reader, **options)


__all__ = [
    "ChainExpectation",
    "CredentialFailure",
    "CredentialProblem",
    "CredentialReport",
    "PresentationReport",
    "StatusListSource",
    "StatusState",
    "load_document",
    "verify_credential",
    "verify_document",
    "verify_presentation",
]
