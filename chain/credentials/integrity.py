"""W3C Data Integrity proofs with the EdDSA cryptosuites ``eddsa-rdfc-2022`` and
``eddsa-jcs-2022`` (W3C Recommendation "Data Integrity EdDSA Cryptosuites v1.0").

Both suites sign ``sha256(canonical proof configuration) || sha256(canonical document)``
with Ed25519 and carry the 64-byte signature as a base58btc multibase ``proofValue``:

* ``eddsa-rdfc-2022`` canonicalizes with RDF Dataset Canonicalization (RDFC-1.0, the
  URDNA2015 algorithm of pyld) after JSON-LD expansion through the bundled contexts
  (:mod:`chain.credentials.documents`, no network);
* ``eddsa-jcs-2022`` canonicalizes the JSON itself with RFC 8785 (package ``rfc8785``).

The proof configuration is the proof without ``proofValue`` and with the document's
``@context``. For ``eddsa-jcs-2022`` the proof itself carries that ``@context`` (as the
specification's test vectors do); for ``eddsa-rdfc-2022`` it does not.

RDFC signs the document's RDF graph: JSON members that map to no triple are not covered.
Keiko therefore issues a *proof set* with both suites (:func:`add_proof_set`) and its own
verifier requires the JCS proof for the JSON it reads (see ``chain.verify.credentials``).

Signing takes a callback ``sign(bytes) -> 64-byte signature`` so that a key never leaves
the process holding it (the chain translator's vault). Verification never raises for a
bad proof: :func:`verify_proofs` returns a :class:`ProofCheck` per proof with a named
:class:`ProofFailure`.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import rfc8785
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from pyld import jsonld  # type: ignore[import-untyped]

from chain.credentials.documents import DocumentLoader, document_loader
from chain.credentials.multikey import (
    VerificationMethod,
    multibase_decode,
    multibase_encode,
    resolve_verification_method,
)
from services.kit.errors import ValidationError

PROOF_TYPE = "DataIntegrityProof"
SIGNATURE_BYTES = 64
MAX_PROOFS = 8
MAX_CHALLENGE_CHARS = 512

Signer = Callable[[bytes], bytes]
"""Signs the 64-byte hash data with the verification method's private key."""

MethodResolver = Callable[[object], VerificationMethod]
"""Verification method URL -> the method (raises ``ValidationError`` if it does not
resolve). The default resolves ``did:key`` offline."""

# pyld resolves a relative IRI against this placeholder base; JSON-LD verifiers in safe
# mode refuse relative IRIs, so a document that needs it is not canonicalizable.
_RELATIVE_IRI_BASE = "http://example.org/base/"

# XML Schema 1.1 dateTimeStamp-compatible (the specification requires a valid dateTime).
_DATETIME = re.compile(
    r"^-?\d{4,}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d"
    r"(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)


class Cryptosuite(StrEnum):
    EDDSA_RDFC_2022 = "eddsa-rdfc-2022"
    EDDSA_JCS_2022 = "eddsa-jcs-2022"


class ProofPurpose(StrEnum):
    ASSERTION = "assertionMethod"
    AUTHENTICATION = "authentication"


class ProofFailure(StrEnum):
    """Why a proof does not verify (the value is what reports print)."""

    MISSING = "no proof"
    MALFORMED = "proof malformed"
    UNSUPPORTED_CRYPTOSUITE = "unsupported cryptosuite"
    CONTEXT_MISMATCH = "proof @context does not match the document"
    UNRESOLVABLE_METHOD = "verification method does not resolve"
    WRONG_PURPOSE = "wrong proof purpose"
    CHALLENGE_MISMATCH = "challenge does not match"
    DOMAIN_MISMATCH = "domain does not match"
    EXPIRED = "proof expired"
    CANONICALIZATION_FAILED = "document cannot be canonicalized"
    SIGNATURE_INVALID = "signature invalid"


def format_datetime(when: datetime) -> str:
    """``YYYY-MM-DDThh:mm:ssZ`` (UTC, whole seconds), as proofs and credentials use."""
    if when.tzinfo is None:
        raise ValidationError("created", "must be timezone-aware")
    return when.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def is_datetime(value: object) -> bool:
    return isinstance(value, str) and _DATETIME.match(value) is not None


def parse_datetime(value: object, field_name: str) -> datetime:
    if not is_datetime(value):
        raise ValidationError(field_name, "must be an XML Schema dateTime with a time zone")
    assert isinstance(value, str)
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(field_name, "is not a valid date and time") from None


@dataclass(frozen=True, slots=True)
class ProofOptions:
    """What a new proof states before it is signed."""

    cryptosuite: Cryptosuite
    verification_method: str
    created: datetime
    proof_purpose: ProofPurpose = ProofPurpose.ASSERTION
    challenge: str | None = None
    domain: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": PROOF_TYPE,
            "cryptosuite": self.cryptosuite.value,
            "created": format_datetime(self.created),
            "verificationMethod": self.verification_method,
            "proofPurpose": self.proof_purpose.value,
        }
        if self.challenge is not None:
            out["challenge"] = self.challenge
        if self.domain is not None:
            out["domain"] = self.domain
        return out


# -- canonicalization ---------------------------------------------------------------------


def canonical_rdf(document: Mapping[str, Any], loader: DocumentLoader | None = None) -> bytes:
    """The RDFC-1.0 (URDNA2015) canonical N-Quads of a JSON-LD document, UTF-8.

    Safe mode, as verifiers apply it: a member that maps to no IRI (an undefined term)
    or a relative IRI would silently drop out of the signed graph, so both are errors
    instead of being canonicalized away."""
    dropped: list[str] = []
    processor = jsonld.JsonLdProcessor(on_property_dropped=lambda key: dropped.append(str(key)))
    options = {
        "algorithm": "URDNA2015",
        "format": "application/n-quads",
        "documentLoader": loader or document_loader(),
    }
    try:
        nquads = processor.normalize(copy.deepcopy(dict(document)), options)
    except jsonld.JsonLdError as exc:
        raise ValidationError(
            "document", f"JSON-LD processing failed: {_jsonld_reason(exc)}"
        ) from None
    if dropped:
        raise ValidationError("document", f"undefined term {dropped[0]!r} (no context defines it)")
    if not isinstance(nquads, str):
        raise ValidationError("document", "JSON-LD processing returned no N-Quads")
    if _RELATIVE_IRI_BASE in nquads:
        raise ValidationError("document", "contains a relative IRI")
    return nquads.encode("utf-8")


def _jsonld_reason(exc: BaseException) -> str:
    """The innermost cause of a pyld error (a missing context names its URL)."""
    seen: set[int] = set()
    reason = str(getattr(exc, "message", "") or exc)
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ValidationError):
            return current.reason
        nested = getattr(current, "cause", None) or current.__cause__
        current = nested if isinstance(nested, BaseException) else None
    return reason.splitlines()[0][:300] if reason else type(exc).__name__


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """RFC 8785 canonical bytes."""
    try:
        return rfc8785.dumps(document)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise ValidationError("document", f"cannot be canonicalized (RFC 8785): {exc}") from None


def _canonicalize(
    document: Mapping[str, Any], suite: Cryptosuite, loader: DocumentLoader | None
) -> bytes:
    if suite is Cryptosuite.EDDSA_RDFC_2022:
        return canonical_rdf(document, loader)
    return canonical_json(document)


def proof_configuration(
    unsecured: Mapping[str, Any], proof: Mapping[str, Any], suite: Cryptosuite
) -> dict[str, Any]:
    """The proof configuration: the proof without ``proofValue``, with the document's
    ``@context`` (spec: "Proof Configuration")."""
    config = {k: v for k, v in proof.items() if k != "proofValue"}
    if config.get("type") != PROOF_TYPE or config.get("cryptosuite") != suite.value:
        raise ValidationError("proof.type", f"must be a {PROOF_TYPE} with {suite.value}")
    created = config.get("created")
    if created is not None and not is_datetime(created):
        raise ValidationError("proof.created", "must be an XML Schema dateTime")
    if "@context" in unsecured:
        config["@context"] = unsecured["@context"]
    return config


def hash_data(
    unsecured: Mapping[str, Any],
    proof: Mapping[str, Any],
    suite: Cryptosuite,
    loader: DocumentLoader | None = None,
) -> bytes:
    """``sha256(canonical proof config) || sha256(canonical document)``: what is signed."""
    config = proof_configuration(unsecured, proof, suite)
    config_hash = hashlib.sha256(_canonicalize(config, suite, loader)).digest()
    document_hash = hashlib.sha256(_canonicalize(unsecured, suite, loader)).digest()
    return config_hash + document_hash


# -- creating proofs ----------------------------------------------------------------------


def unsecured_document(document: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "proof"}


def create_proof(
    document: Mapping[str, Any],
    options: ProofOptions,
    sign: Signer,
    loader: DocumentLoader | None = None,
) -> dict[str, Any]:
    """A proof (with ``proofValue``) over ``document`` without its ``proof`` member."""
    unsecured = unsecured_document(document)
    proof = options.to_json()
    if options.cryptosuite is Cryptosuite.EDDSA_JCS_2022 and "@context" in unsecured:
        proof["@context"] = unsecured["@context"]
    signature = sign(hash_data(unsecured, proof, options.cryptosuite, loader))
    if len(signature) != SIGNATURE_BYTES:
        raise ValidationError("signature", f"the signer returned {len(signature)} bytes, not 64")
    proof["proofValue"] = multibase_encode(signature)
    return proof


def add_proof(
    document: Mapping[str, Any],
    options: ProofOptions,
    sign: Signer,
    loader: DocumentLoader | None = None,
) -> dict[str, Any]:
    """``document`` secured with one more proof (a proof set if it had one already)."""
    proof = create_proof(document, options, sign, loader)
    secured = dict(document)
    existing = document.get("proof")
    if existing is None:
        secured["proof"] = proof
    else:
        secured["proof"] = [*(existing if isinstance(existing, list) else [existing]), proof]
    return secured


def add_proof_set(
    document: Mapping[str, Any],
    verification_method: str,
    created: datetime,
    sign: Signer,
    *,
    purpose: ProofPurpose = ProofPurpose.ASSERTION,
    challenge: str | None = None,
    domain: str | None = None,
    loader: DocumentLoader | None = None,
) -> dict[str, Any]:
    """``document`` with a proof set: one ``eddsa-rdfc-2022`` and one ``eddsa-jcs-2022``
    proof by the same verification method (Keiko's issuance form)."""
    unsecured = unsecured_document(document)
    proofs = [
        create_proof(
            unsecured,
            ProofOptions(suite, verification_method, created, purpose, challenge, domain),
            sign,
            loader,
        )
        for suite in (Cryptosuite.EDDSA_RDFC_2022, Cryptosuite.EDDSA_JCS_2022)
    ]
    return {**unsecured, "proof": proofs}


# -- verifying proofs ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProofCheck:
    """The outcome of one proof: ``ok`` or a named ``failure`` with a ``detail``."""

    ok: bool
    failure: ProofFailure | None = None
    detail: str = ""
    cryptosuite: str = ""
    method: VerificationMethod | None = None
    proof: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        if self.ok:
            return f"{self.cryptosuite}: verified"
        assert self.failure is not None
        suffix = f": {self.detail}" if self.detail else ""
        return f"{self.cryptosuite or 'proof'}: {self.failure.value}{suffix}"


def proofs_of(document: Mapping[str, Any]) -> list[Any]:
    raw = document.get("proof")
    if raw is None:
        return []
    return list(raw) if isinstance(raw, list) else [raw]


def _context_prefix_matches(document_context: Any, proof_context: Any) -> bool:
    doc = document_context if isinstance(document_context, list) else [document_context]
    proof = proof_context if isinstance(proof_context, list) else [proof_context]
    return doc[: len(proof)] == proof


def verify_proof(
    document: Mapping[str, Any],
    proof: Any,
    *,
    purpose: ProofPurpose = ProofPurpose.ASSERTION,
    challenge: str | None = None,
    domain: str | None = None,
    now: datetime | None = None,
    loader: DocumentLoader | None = None,
    resolve: MethodResolver = resolve_verification_method,
) -> ProofCheck:
    """Verify one proof of ``document`` (whose other proofs are ignored: a proof set)."""
    if not isinstance(proof, Mapping):
        return ProofCheck(False, ProofFailure.MALFORMED, "the proof is not an object")
    suite_name = proof.get("cryptosuite")
    suite_text = suite_name if isinstance(suite_name, str) else ""

    def fail(failure: ProofFailure, detail: str = "") -> ProofCheck:
        return ProofCheck(False, failure, detail, suite_text, proof=proof)

    if proof.get("type") != PROOF_TYPE:
        return fail(ProofFailure.MALFORMED, f"type must be {PROOF_TYPE}")
    try:
        suite = Cryptosuite(suite_text)
    except ValueError:
        return fail(ProofFailure.UNSUPPORTED_CRYPTOSUITE, repr(suite_name))
    if proof.get("proofPurpose") != purpose.value:
        return fail(ProofFailure.WRONG_PURPOSE, f"expected {purpose.value}")
    if challenge is not None and proof.get("challenge") != challenge:
        return fail(ProofFailure.CHALLENGE_MISMATCH)
    if domain is not None and proof.get("domain") != domain:
        return fail(ProofFailure.DOMAIN_MISMATCH)
    expires = proof.get("expires")
    if expires is not None:
        if not is_datetime(expires):
            return fail(ProofFailure.MALFORMED, "expires must be a dateTime")
        if now is not None and parse_datetime(expires, "proof.expires") <= now:
            return fail(ProofFailure.EXPIRED, str(expires))
    try:
        signature = multibase_decode(proof.get("proofValue"), "proof.proofValue")
    except ValidationError as exc:
        return fail(ProofFailure.MALFORMED, exc.reason)
    if len(signature) != SIGNATURE_BYTES:
        return fail(ProofFailure.MALFORMED, f"proofValue is {len(signature)} bytes, not 64")
    try:
        method = resolve(proof.get("verificationMethod"))
    except ValidationError as exc:
        return fail(ProofFailure.UNRESOLVABLE_METHOD, exc.reason)
    unsecured = unsecured_document(document)
    options = {k: v for k, v in proof.items() if k != "proofValue"}
    if "@context" in options:
        if not _context_prefix_matches(unsecured.get("@context"), options["@context"]):
            return fail(ProofFailure.CONTEXT_MISMATCH)
        unsecured["@context"] = options["@context"]
    try:
        data = hash_data(unsecured, options, suite, loader)
    except ValidationError as exc:
        return fail(ProofFailure.CANONICALIZATION_FAILED, exc.reason)
    try:
        VerifyKey(method.public_key).verify(data, signature)
    except (BadSignatureError, ValueError):
        return ProofCheck(
            False,
            ProofFailure.SIGNATURE_INVALID,
            f"by {method.id}",
            suite_text,
            method=method,
            proof=proof,
        )
    return ProofCheck(True, None, "", suite_text, method=method, proof=proof)


def verify_proofs(
    document: Mapping[str, Any],
    *,
    purpose: ProofPurpose = ProofPurpose.ASSERTION,
    challenge: str | None = None,
    domain: str | None = None,
    now: datetime | None = None,
    loader: DocumentLoader | None = None,
    resolve: MethodResolver = resolve_verification_method,
) -> list[ProofCheck]:
    """Every proof of ``document``, checked (a single MISSING check if it has none)."""
    proofs: Sequence[Any] = proofs_of(document)
    if not proofs:
        return [ProofCheck(False, ProofFailure.MISSING)]
    if len(proofs) > MAX_PROOFS:
        return [ProofCheck(False, ProofFailure.MALFORMED, f"more than {MAX_PROOFS} proofs")]
    return [
        verify_proof(
            document,
            proof,
            purpose=purpose,
            challenge=challenge,
            domain=domain,
            now=now,
            loader=loader,
            resolve=resolve,
        )
        for proof in proofs
    ]


__all__ = [
    "PROOF_TYPE",
    "Cryptosuite",
    "MethodResolver",
    "ProofCheck",
    "ProofFailure",
    "ProofOptions",
    "ProofPurpose",
    "Signer",
    "add_proof",
    "add_proof_set",
    "canonical_json",
    "canonical_rdf",
    "create_proof",
    "format_datetime",
    "hash_data",
    "is_datetime",
    "parse_datetime",
    "proof_configuration",
    "proofs_of",
    "unsecured_document",
    "verify_proof",
    "verify_proofs",
]
