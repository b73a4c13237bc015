"""Signing W3C credentials where the keys live: a key signs only what its holder stands
behind.

The passport builds credentials; their Data Integrity proofs are made here, with the
custodial key the translator holds (never exported), after these checks
(:class:`CredentialSigner`):

* **Who asks.** Keiko's services (role ``service``) and admins act for a learner; a user
  may ask only for themself (``learner_id`` is the caller).
* **ISSUE** (a ``LearningRecordCredential`` or an ``OpenBadgeCredential`` about
  ``learner_id``): every learning record in it must be one this translator signed and
  queued for that learner, unchanged: the statement's hash, the signature, the signing
  key, the author (id and kind) and, once anchored, the evidence (batch, root, leaf,
  index, inclusion proof, transaction, block, chain and contract) must be the stored
  ones. The holder's key signs only if the holder is the learner (the learner vouches
  for their own record) or the author of every record (a tutor's key signs only what
  that tutor wrote about the learner; the service key only what the service wrote).
  Records must be anchored: the anchor is the evidence.
* **STATUS_LIST** (the holder's ``BitstringStatusListCredential``): asked by a service
  or the holder; the list only ever withdraws the holder's own credentials.
* **PRESENT** (a ``VerifiablePresentation`` of the learner's credentials, purpose
  ``authentication`` over the verifier's ``challenge`` and ``domain``): the holder is
  the learner; every credential in it is about the learner and its ``eddsa-jcs-2022``
  proof by its issuer verifies (cheap: the RDF proof is the verifier's to check).

The translator writes the DIDs itself (``issuer.id``, ``credentialSubject.id``,
``holder``): they are the ``did:key`` of the custodial keys of the holder and the learner,
so a caller cannot make a key claim another identity. Proofs are a proof set
(``eddsa-rdfc-2022`` and ``eddsa-jcs-2022``, :func:`chain.credentials.integrity.add_proof_set`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from chain.credentials.integrity import (
    Cryptosuite,
    ProofPurpose,
    add_proof_set,
    proofs_of,
    verify_proof,
)
from chain.credentials.learning_credentials import parse_credential
from chain.credentials.multikey import did_key, verification_method_id
from chain.credentials.presentations import (
    MAX_CREDENTIALS,
    check_challenge,
    check_domain,
    parse_presentation,
)
from chain.credentials.records import AnchoredRecord, AnchorEvidence
from chain.credentials.status_list import parse_status_list_credential
from chain.translator.authors import author_kind, check_holder_id
from chain.translator.batching import Domain
from chain.translator.leaves import statement_hash
from chain.translator.signers import AuthorKeys
from chain.translator.signing import canonical_bytes
from chain.translator.storage import ANCHORED, ChainStore, RecordRow
from services.kit.auth import Principal
from services.kit.errors import FailedPrecondition, PermissionDenied, ValidationError

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
SERVICE_ROLE = "service"

ChainAnchorRef = Callable[[], tuple[int | None, int | None]]
"""The translator's (chain id, interaction_anchor address), None where unknown."""


class CredentialPurpose(StrEnum):
    ISSUE = "issue"
    STATUS_LIST = "status_list"
    PRESENT = "present"


@dataclass(frozen=True, slots=True)
class SignedDocument:
    document: dict[str, Any]
    verification_method: str


def _trusted(principal: Principal) -> bool:
    return principal.has_role(SERVICE_ROLE) or principal.is_admin


def _document(document_json: str) -> dict[str, Any]:
    if not document_json:
        raise ValidationError("document_json", "is required")
    if len(document_json.encode("utf-8")) > MAX_DOCUMENT_BYTES:
        raise ValidationError("document_json", f"at most {MAX_DOCUMENT_BYTES} bytes")
    try:
        document = json.loads(document_json)
    except ValueError:
        raise ValidationError("document_json", "is not valid JSON") from None
    if not isinstance(document, dict):
        raise ValidationError("document_json", "must be a JSON object")
    return document


def _in_document(exc: ValidationError) -> ValidationError:
    return ValidationError(f"document_json.{exc.field}", exc.reason)


class CredentialSigner:
    def __init__(
        self, store: ChainStore, keys: AuthorKeys, chain_ref: ChainAnchorRef | None = None
    ) -> None:
        self.store = store
        self.keys = keys
        self.chain_ref = chain_ref

    async def _did(self, holder_id: str) -> str:
        public_key = await self.keys.custodial_key(holder_id, create=True)
        assert public_key is not None
        return did_key(public_key)

    async def sign(
        self,
        principal: Principal,
        purpose: CredentialPurpose,
        holder_id: str,
        learner_id: str,
        document_json: str,
        *,
        challenge: str = "",
        domain: str = "",
    ) -> SignedDocument:
        holder_id = check_holder_id(holder_id, "holder_id")
        document = _document(document_json)
        if purpose is CredentialPurpose.STATUS_LIST:
            if not _trusted(principal) and principal.user_id != holder_id:
                raise PermissionDenied("only the holder may publish their status list")
            await self._prepare_status_list(document, holder_id)
            options: dict[str, Any] = {}
        else:
            learner_id = check_holder_id(learner_id, "learner_id")
            if not _trusted(principal) and principal.user_id != learner_id:
                raise PermissionDenied("a learner may export only their own records")
            if purpose is CredentialPurpose.ISSUE:
                await self._prepare_issue(document, holder_id, learner_id)
                options = {}
            else:
                if holder_id != learner_id:
                    raise PermissionDenied("only the learner presents their credentials")
                await self._prepare_presentation(document, learner_id)
                options = {
                    "purpose": ProofPurpose.AUTHENTICATION,
                    "challenge": check_challenge(challenge),
                    "domain": check_domain(domain),
                }
        record = await self.keys.custodial_record(holder_id, create=True)
        assert record is not None
        public_key = await self.keys.custodial_key(holder_id)
        assert public_key is not None
        method = verification_method_id(public_key)
        vault = self.keys.vault

        def sign(data: bytes) -> bytes:
            return vault.sign(record, holder_id, data)

        secured = await asyncio.to_thread(
            add_proof_set, document, method, self.store.clock.now(), sign, **options
        )
        return SignedDocument(secured, method)

    # -- ISSUE ----------------------------------------------------------------------------

    async def _prepare_issue(
        self, document: dict[str, Any], holder_id: str, learner_id: str
    ) -> None:
        issuer_did = await self._did(holder_id)
        subject_did = await self._did(learner_id)
        issuer = document.get("issuer")
        if isinstance(issuer, dict):
            issuer["id"] = issuer_did
        else:
            document["issuer"] = issuer_did
        subject = document.get("credentialSubject")
        if isinstance(subject, dict):
            subject["id"] = subject_did
        try:
            parsed = parse_credential(document)
        except ValidationError as exc:
            raise _in_document(exc) from None
        for i, record in enumerate(parsed.records):
            await self._check_record(record, i, holder_id, learner_id)

    async def _check_record(
        self, record: AnchoredRecord, position: int, holder_id: str, learner_id: str
    ) -> None:
        where = f"record {record.statement_id}"
        row = await self.store.get_record(Domain.LEARNING, record.statement_id)
        if row is None or row.learner_id != learner_id:
            raise PermissionDenied(f"{where} is not a record of this learner")
        try:
            digest = statement_hash(canonical_bytes(record.statement, "statement"))
        except ValidationError as exc:
            path = f"document_json.credentialSubject.learningRecord[{position}].statement"
            raise ValidationError(path, exc.reason) from None
        stored = (row.statement_sha256, row.signature, row.public_key, row.author_id)
        given = (
            digest.hex(),
            record.signature.hex(),
            record.author.public_key.hex(),
            record.author.author_id,
        )
        if stored != given:
            raise PermissionDenied(f"{where} differs from the record as it was signed")
        if record.author.kind is not author_kind(row.author_id, learner_id):
            raise PermissionDenied(f"{where}: its author kind is not {record.author.kind.value}")
        if holder_id not in (learner_id, row.author_id):
            raise PermissionDenied(f"{where} was not written by {holder_id}: their key won't")
        if row.status != ANCHORED or row.batch_id is None:
            raise FailedPrecondition(f"{where} is not anchored yet")
        if record.anchor is None or record.anchor != self._evidence(row, record.anchor):
            raise PermissionDenied(f"{where}: its evidence is not the record's anchor")

    def _evidence(self, row: RecordRow, given: AnchorEvidence) -> AnchorEvidence:
        chain_id, contract = self.chain_ref() if self.chain_ref else (None, None)
        assert row.batch_id is not None
        return AnchorEvidence(
            chain_id=given.chain_id if chain_id is None else chain_id,
            contract=given.contract if contract is None else contract,
            batch_id=row.batch_id,
            domain=row.domain,
            tx_hash=row.tx_hash or 0,
            block=row.block or 0,
            root=row.root or 0,
            leaf=row.leaf,
            leaf_index=row.leaf_index or 0,
            proof=row.proof or (),
            leaf_encoding=row.leaf_encoding,
        )

    # -- STATUS_LIST ----------------------------------------------------------------------

    async def _prepare_status_list(self, document: dict[str, Any], holder_id: str) -> None:
        document["issuer"] = await self._did(holder_id)
        try:
            parse_status_list_credential(document)
        except ValidationError as exc:
            raise _in_document(exc) from None

    # -- PRESENT --------------------------------------------------------------------------

    async def _prepare_presentation(self, document: dict[str, Any], learner_id: str) -> None:
        holder_did = await self._did(learner_id)
        document["holder"] = holder_did
        try:
            parsed = parse_presentation(document)
        except ValidationError as exc:
            raise _in_document(exc) from None
        if not parsed.credentials or len(parsed.credentials) > MAX_CREDENTIALS:
            raise ValidationError(
                "document_json.verifiableCredential", f"1 to {MAX_CREDENTIALS} credentials"
            )
        for i, credential in enumerate(parsed.credentials):
            await self._check_presented(credential, i, holder_did)

    async def _check_presented(
        self, credential: Mapping[str, Any], position: int, holder_did: str
    ) -> None:
        where = f"document_json.verifiableCredential[{position}]"
        try:
            parsed = parse_credential(credential)
        except ValidationError as exc:
            raise ValidationError(f"{where}.{exc.field}", exc.reason) from None
        if parsed.subject != holder_did:
            raise PermissionDenied(f"{where} is not about the learner: it won't be presented")
        # The JCS proof covers the credential's JSON byte for byte and costs a hash: enough
        # to know it is what its issuer signed (RDF canonicalization of every presented
        # credential would let one share link burn seconds of CPU per request).
        jcs = [
            p
            for p in proofs_of(credential)
            if isinstance(p, Mapping) and p.get("cryptosuite") == Cryptosuite.EDDSA_JCS_2022
        ]
        if not jcs:
            raise ValidationError(f"{where}.proof", "has no eddsa-jcs-2022 proof")
        for proof in jcs:
            check = verify_proof(credential, proof)
            if not check.ok:
                raise ValidationError(f"{where}.proof", str(check))
            if check.method is None or check.method.controller != parsed.issuer:
                raise ValidationError(f"{where}.proof", "not made by the credential's issuer")


__all__ = ["CredentialPurpose", "CredentialSigner", "SignedDocument"]
