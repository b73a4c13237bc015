"""The chain translator's application service: signing, queuing, status, proofs, chain reads.

Its capabilities beside queuing and reading records are modules of their own:
who may call what (:mod:`chain.translator.access`), what a ``leaf_data`` is and how its
leaf is computed (:mod:`chain.translator.leaf_data`), and humanity registrations
(:mod:`chain.translator.humanity`).

**Who signs** (:mod:`chain.translator.authors`): a statement is signed by its author, the
Keiko account its ``authority`` names (else the learner): the learner's key signs only the
learner's own statements; a tutor's feedback is signed with the tutor's key, an attendance
record with the learning service's key (:mod:`chain.translator.signers`). Every key the
translator signs with or accepts is bound to its holder in the on-chain key directory
(:mod:`chain.translator.key_directory`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from chain.client.deployment import ANCHOR, GOVERNANCE, REGISTRY
from chain.translator.access import (
    SERVICE_ROLE,
    is_trusted,
    require_author,
    require_for_learner,
    require_trusted,
    required_text,
)
from chain.translator.anchoring import AnchoringEngine, EngineStatus, describe_error
from chain.translator.authors import statement_author
from chain.translator.batching import Domain
from chain.translator.credentials import CredentialSigner
from chain.translator.felts import (
    decode_short_string,
    felt_to_hex,
    parse_felt,
)
from chain.translator.group_insert import GroupInsert
from chain.translator.humanity import HumanityRegistrar, HumanityRegistration
from chain.translator.keys import KeyVault
from chain.translator.leaf_data import (
    ENVELOPE_MEMBERS,
    MAX_LEAF_DATA_BYTES,
    RECORD_LEAF_ENCODING,
    ParsedLeafData,
    anchor_leaf_data,
    is_signed_envelope,
    parse_leaf_data,
    record_leaf,
)
from chain.translator.learner_accounts import LearnerAccounts
from chain.translator.leaves import (
    LEAF_ENCODING,
    LEAF_ENCODINGS,
    leaf_from_hash,
    statement_hash,
)
from chain.translator.merkle import MAX_DEPTH, verify_inclusion
from chain.translator.ports import BATCH_ANCHORED, AnchorChain, ChainConnection
from chain.translator.signers import AuthorKeys, KeyLookup
from chain.translator.signing import (
    canonical_bytes,
    parse_canonical,
)
from chain.translator.storage import (
    ANCHORED,
    BatchRow,
    ChainStore,
    DuplicateRecord,
    HumanityRow,
    NewRecord,
    RecordRow,
)
from chain.translator.tracing import QUEUED
from services.kit.auth import Principal
from services.kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    Unavailable,
    ValidationError,
)

log = structlog.get_logger("keiko.chain.service")

CONTRACT_NAMES = {ANCHOR: "anchor", REGISTRY: "humanity_registry", GOVERNANCE: "governance"}


@dataclass(frozen=True, slots=True)
class StatementToQueue:
    """One statement for :meth:`ChainTranslator.queue_statements` (the arguments of
    :meth:`ChainTranslator.queue_statement`)."""

    learner_id: str
    record_id: str
    statement: Mapping[str, Any]
    device: tuple[str, str] | None = None
    recorded_by: str = ""
    # The trace the statement belongs to (its event's producer span), "" for none.
    traceparent: str = ""


def _same_leaf(new: NewRecord, existing: RecordRow) -> bool:
    """Does ``new`` commit to the stored leaf? A statement queued in ``keiko.leaf.v1``
    and delivered again once new leaves are v2 is compared in its stored encoding."""
    if existing.leaf_encoding == new.leaf_encoding:
        return existing.leaf == new.leaf
    if existing.leaf_encoding not in LEAF_ENCODINGS or not new.signature:
        return False
    return existing.leaf == leaf_from_hash(
        new.statement_sha256, new.signature, new.public_key, existing.leaf_encoding
    )


def _same_record(new: NewRecord, existing: RecordRow) -> RecordRow:
    """A record queued again: the stored row when it is the same leaf by the same
    learner and author, else the key was taken by other data (``AlreadyExists``)."""
    if (
        not _same_leaf(new, existing)
        or existing.learner_id != new.learner_id
        or existing.author_id != new.author_id
    ):
        raise AlreadyExists(
            f"record {new.domain.value}/{new.record_id} was submitted with other leaf data"
        ) from None
    return existing


@dataclass(frozen=True)
class SignedInteraction:
    signature: bytes
    public_key: bytes
    leaf: int
    device_signed: bool
    leaf_encoding: str = LEAF_ENCODING


@dataclass(frozen=True)
class InclusionCheck:
    proof_valid: bool
    root_on_chain: bool
    block: int
    tx_hash: int | None
    reason: str


@dataclass(frozen=True)
class ContractEntry:
    name: str
    address: int
    class_hash: int | None


@dataclass(frozen=True)
class ChainInfo:
    chain_id: str
    rpc_url: str
    contracts: list[ContractEntry]
    latest_block: int
    translator_address: int | None
    engine: EngineStatus


class ChainTranslator:
    def __init__(
        self,
        store: ChainStore,
        vault: KeyVault | Callable[[], KeyVault],
        chain: AnchorChain,
        engine: AnchoringEngine,
        *,
        connection: ChainConnection | None = None,
        accounts: LearnerAccounts | None = None,
        key_lookup: KeyLookup | None = None,
        public_rpc_url: str = "",
        on_key_queued: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.inserts = GroupInsert(store)
        self.keys = AuthorKeys(store, vault, key_lookup=key_lookup, on_key_queued=on_key_queued)
        self.credentials = CredentialSigner(store, self.keys, self._anchor_ref)
        self.chain = chain
        self.engine = engine
        self.connection = connection
        self.accounts = accounts
        self.public_rpc_url = public_rpc_url or (connection.rpc_url if connection else "")
        self.humanity = HumanityRegistrar(store, self.keys, accounts, connection)

    def _anchor_ref(self) -> tuple[int | None, int | None]:
        """(chain id, interaction_anchor address) of the deployment, where known."""
        deployment = None if self.connection is None else self.connection.deployment()
        if deployment is None:
            return None, None
        anchor = deployment.contracts.get(ANCHOR)
        return deployment.chain_id, None if anchor is None else anchor.address

    # -- signing --------------------------------------------------------------------------

    async def sign_interaction(
        self,
        principal: Principal,
        learner_id: str,
        canonical_statement_json: str,
        device: tuple[str, str] | None = None,
    ) -> SignedInteraction:
        """Sign a statement about ``learner_id`` as its author (see the module docstring).
        A learner signs only their own statements; Keiko's services sign as the author the
        statement's authority names, after they have authenticated that author."""
        learner_id = required_text(learner_id, "learner_id")
        require_for_learner(principal, learner_id)
        if not canonical_statement_json:
            raise ValidationError("canonical_statement_json", "is required")
        canonical, parsed = parse_canonical(
            canonical_statement_json.encode("utf-8"), "canonical_statement_json"
        )
        author_id = statement_author(parsed, learner_id, field="canonical_statement_json")
        require_author(principal, author_id)
        signed = await self.keys.sign(author_id, canonical, device)
        if signed.failure is not None:
            raise ValidationError("device_signature", signed.failure.split(": ", 1)[-1])
        digest = statement_hash(canonical)
        leaf = leaf_from_hash(digest, signed.signature, signed.public_key, LEAF_ENCODING)
        return SignedInteraction(
            signed.signature, signed.public_key, leaf, signed.device_signed, LEAF_ENCODING
        )

    # -- anchoring ------------------------------------------------------------------------

    async def submit(
        self, principal: Principal, domain: Domain, record_id: str, leaf_data: bytes
    ) -> RecordRow:
        record_id = required_text(record_id, "record_id")
        if not leaf_data:
            raise ValidationError("leaf_data", "is required")
        if len(leaf_data) > MAX_LEAF_DATA_BYTES:
            raise ValidationError("leaf_data", f"must be at most {MAX_LEAF_DATA_BYTES} bytes")
        if domain is not Domain.LEARNING and not is_signed_envelope(leaf_data):
            require_trusted(principal)  # unsigned records come from Keiko's services only
            return await self.queue_record(domain, record_id, leaf_data)
        parsed = parse_leaf_data(leaf_data)
        require_for_learner(principal, parsed.learner_id)
        require_author(principal, parsed.author_id)
        if not await self.keys.is_holder_key(parsed.author_id, parsed.public_key):
            raise ValidationError(
                "leaf_data.public_key",
                f"is not the custodial or registered key of the author {parsed.author_id!r}",
            )
        return await self._queue(
            NewRecord(
                domain=domain,
                record_id=record_id,
                learner_id=parsed.learner_id,
                statement_sha256=parsed.statement_sha256,
                signature=parsed.signature,
                public_key=parsed.public_key,
                leaf=parsed.leaf,
                leaf_encoding=parsed.leaf_encoding,
                author_id=parsed.author_id,
            )
        )

    async def _queue(self, new: NewRecord, failure: str | None = None) -> RecordRow:
        """Insert, idempotently: the same key with the same leaf returns the stored row."""
        try:
            if failure is None:
                row = await self.inserts.insert(new)  # with the submissions in flight
            else:
                row = await self.store.insert_record(new, failure=failure)
        except DuplicateRecord as dup:
            return _same_record(new, dup.existing)
        if failure is None:
            QUEUED.note(new.domain.value, new.record_id)  # its batch joins this trace
            self.engine.notify()
        return row

    async def queue_record(
        self, domain: Domain, record_id: str, data: bytes, learner_id: str = ""
    ) -> RecordRow:
        """Queue an unsigned record (``keiko.record.v1`` leaf); for trusted callers."""
        return await self._queue(
            NewRecord(
                domain=domain,
                record_id=required_text(record_id, "record_id"),
                learner_id=learner_id,
                statement_sha256=hashlib.sha256(data).digest(),
                signature=b"",
                public_key=b"",
                leaf=record_leaf(data),
                leaf_encoding=RECORD_LEAF_ENCODING,
            )
        )

    async def queue_statement(
        self,
        learner_id: str,
        record_id: str,
        statement: Mapping[str, Any],
        device: tuple[str, str] | None = None,
        recorded_by: str = "",
    ) -> RecordRow:
        """Sign a statement about ``learner_id`` as its author (custodial) or check the
        author's device signature, and queue its leaf; for trusted callers (the event
        intake). The author is the statement's authority (``recorded_by``, who stored it,
        must agree). A device signature by a key that is not the author's registered key
        is stored FAILED with the reason (visible, never anchored); a malformed one raises
        ``ValidationError``."""
        new, failure = await self._statement_record(
            learner_id, record_id, statement, device, recorded_by
        )
        return await self._queue(new, failure)

    async def queue_statements(self, statements: Sequence[StatementToQueue]) -> list[RecordRow]:
        """:meth:`queue_statement` for several statements at once (the intake's page):
        signed concurrently, then queued with one multi-row INSERT in one transaction.
        Raises as :meth:`queue_statement` would for the first statement that cannot be
        queued; a device signature refused by its key (stored FAILED, announced) is
        queued alone. Returns the rows in the order of ``statements``."""
        prepared = await asyncio.gather(
            *(
                self._statement_record(
                    item.learner_id, item.record_id, item.statement, item.device, item.recorded_by
                )
                for item in statements
            )
        )
        queued = await self.store.insert_records(
            [new for new, failure in prepared if failure is None]
        )
        rows: list[RecordRow] = []
        for item, (new, failure) in zip(statements, prepared, strict=True):
            key = (new.domain.value, new.record_id)
            if failure is not None:
                rows.append(await self._queue(new, failure))
            elif key in queued.inserted:
                # Its batch joins the record's own trace (a page mixes several).
                QUEUED.note(new.domain.value, new.record_id, item.traceparent)
                rows.append(queued.inserted[key])
            else:
                rows.append(_same_record(new, queued.existing[key]))
        if queued.inserted:
            self.engine.notify()
        return rows

    async def _statement_record(
        self,
        learner_id: str,
        record_id: str,
        statement: Mapping[str, Any],
        device: tuple[str, str] | None,
        recorded_by: str,
    ) -> tuple[NewRecord, str | None]:
        """The record of a statement signed by its author (or its device signature
        checked), and why it must be stored FAILED (None: it is anchorable)."""
        learner_id = required_text(learner_id, "learner_id")
        canonical = canonical_bytes(statement, "statement")
        author_id = statement_author(statement, learner_id, recorded_by)
        digest = statement_hash(canonical)
        signed = await self.keys.sign(author_id, canonical, device)
        new = NewRecord(
            domain=Domain.LEARNING,
            record_id=required_text(record_id, "record_id"),
            learner_id=learner_id,
            statement_sha256=digest,
            signature=signed.signature,
            public_key=signed.public_key,
            # keiko.leaf.v2: one sha256 of 141 bytes (about a microsecond), no longer worth
            # a worker thread as v1's five Poseidon permutations were.
            leaf=leaf_from_hash(digest, signed.signature, signed.public_key, LEAF_ENCODING),
            leaf_encoding=LEAF_ENCODING,
            author_id=author_id,
        )
        return new, signed.failure

    async def record(
        self, principal: Principal | None, domain: Domain, record_id: str
    ) -> RecordRow:
        record_id = required_text(record_id, "record_id")
        row = await self.store.get_record(domain, record_id)
        if row is None or (principal is not None and not self._may_read(principal, row)):
            raise NotFound(f"no record {domain.value}/{record_id}")
        return row

    @staticmethod
    def _may_read(principal: Principal, row: RecordRow) -> bool:
        return is_trusted(principal) or principal.user_id in (row.learner_id, row.author_id)

    async def inclusion_proof(self, domain: Domain, record_id: str) -> tuple[RecordRow, BatchRow]:
        row = await self.record(None, domain, record_id)
        if row.batch_id is None or row.proof is None:
            raise FailedPrecondition(f"record {domain.value}/{record_id} is not batched yet")
        batch = await self.store.get_batch(row.batch_id)
        assert batch is not None
        return row, batch

    async def batch(self, batch_id_text: str) -> BatchRow:
        batch_id = parse_felt(batch_id_text, "batch_id")
        batch = await self.store.get_batch(batch_id)
        if batch is None:
            raise NotFound(f"no batch {batch_id_text}")
        return batch

    async def verify_inclusion(
        self,
        leaf_text: str,
        leaf_index: int,
        siblings_text: Sequence[str],
        root_text: str,
        batch_id_text: str,
    ) -> InclusionCheck:
        """Check a proof against the root READ FROM CHAIN (never from our database)."""
        leaf = parse_felt(leaf_text, "proof.leaf")
        if len(siblings_text) > MAX_DEPTH:
            raise ValidationError("proof.siblings", f"at most {MAX_DEPTH} siblings")
        siblings = [parse_felt(s, f"proof.siblings[{i}]") for i, s in enumerate(siblings_text)]
        root = parse_felt(root_text, "proof.merkle_root") if root_text else None
        batch_id = parse_felt(batch_id_text, "proof.batch_id") if batch_id_text else None
        if root is None and batch_id is None:
            raise ValidationError("proof.merkle_root", "merkle_root or batch_id is required")
        try:
            if batch_id is not None:
                on_chain = await self.chain.get_batch(batch_id)
                if on_chain is None:
                    return InclusionCheck(
                        False, False, 0, None, "batch id is not anchored on chain"
                    )
                if root is not None and root != on_chain.root:
                    return InclusionCheck(
                        False, False, 0, None, "the proof's root is not the batch's root on chain"
                    )
                valid = verify_inclusion(
                    leaf, leaf_index, siblings, on_chain.root, leaf_count=on_chain.leaf_count
                )
                tx = await self._anchor_tx(batch_id, on_chain.block_number)
                reason = "" if valid else "the leaf does not reach the on-chain root"
                return InclusionCheck(valid, True, on_chain.block_number, tx, reason)
            assert root is not None
            valid = verify_inclusion(leaf, leaf_index, siblings, root)
            anchored = await self.chain.is_root_anchored(root)
        except (ValidationError, FailedPrecondition):
            raise
        except Exception as exc:
            raise Unavailable(f"chain unreachable: {describe_error(exc)}") from None
        reasons = []
        if not valid:
            reasons.append("the leaf does not reach the root")
        if not anchored:
            reasons.append("the root is not anchored on chain")
        return InclusionCheck(valid, anchored, 0, None, "; ".join(reasons))

    async def _anchor_tx(self, batch_id: int, block: int) -> int | None:
        ours = await self.store.get_batch(batch_id)
        if ours is not None and ours.tx_hash is not None and ours.state == ANCHORED:
            return ours.tx_hash
        page = await self.chain.events(
            BATCH_ANCHORED, keys=[[batch_id]], from_block=block, to_block=block
        )
        return next((e.tx_hash for e in page.events if e["batch_id"] == batch_id), None)

    # -- humanity (chain.translator.humanity) ---------------------------------------------

    async def register_humanity(
        self,
        principal: Principal,
        user_id: str,
        commitment_text: str,
        public_key_text: str,
        request_id: str,
    ) -> HumanityRow:
        return await self.humanity.register(
            principal, user_id, commitment_text, public_key_text, request_id
        )

    async def humanity_registration(self, commitment_text: str) -> HumanityRegistration:
        return await self.humanity.registration(commitment_text)

    # -- chain info -----------------------------------------------------------------------

    async def chain_info(self) -> ChainInfo:
        contracts: list[ContractEntry] = []
        chain_id = ""
        address: int | None = None
        latest = 0
        if self.connection is not None:
            deployment = self.connection.deployment()
            if deployment is not None:
                for name, ref in deployment.contracts.items():
                    contracts.append(
                        ContractEntry(CONTRACT_NAMES.get(name, name), ref.address, ref.class_hash)
                    )
                if deployment.chain_id is not None:
                    chain_id = _chain_idrequired_text(deployment.chain_id)
            if self.connection.account is not None:
                address = self.connection.account.address
        try:
            latest = await self.chain.block_number()
        except Exception as exc:
            log.info("chain info: latest block unavailable", error=describe_error(exc))
        return ChainInfo(
            chain_id=chain_id,
            rpc_url=self.public_rpc_url,
            contracts=contracts,
            latest_block=latest,
            translator_address=address,
            engine=self.engine.status(),
        )


def _chain_idrequired_text(chain_id: int) -> str:
    try:
        return decode_short_string(chain_id, "chain_id")
    except ValidationError:
        return felt_to_hex(chain_id)


# Callers import these from here as before their modules were split off.
__all__ = [
    "ENVELOPE_MEMBERS",
    "MAX_LEAF_DATA_BYTES",
    "RECORD_LEAF_ENCODING",
    "SERVICE_ROLE",
    "ChainInfo",
    "ChainTranslator",
    "ContractEntry",
    "HumanityRegistration",
    "InclusionCheck",
    "ParsedLeafData",
    "SignedInteraction",
    "StatementToQueue",
    "anchor_leaf_data",
    "is_signed_envelope",
    "is_trusted",
    "parse_leaf_data",
    "record_leaf",
    "require_author",
    "require_for_learner",
    "require_trusted",
]
