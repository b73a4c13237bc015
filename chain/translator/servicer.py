"""The keiko.chain.v1.ChainService gRPC servicer: decode, authorize, call, encode.

Authorization rules are in :mod:`chain.translator.service`. Public RPCs (no token):
GetChainInfo, GetInclusionProof, VerifyInclusion, GetHumanityRegistration. The on-chain
governance RPCs (CreateGovernanceProposal, CastGovernanceVote, FinalizeGovernanceProposal)
are :mod:`chain.translator.governance`.

:func:`build_chain_servicer` wires the whole translator into a :class:`ServiceRuntime`:
the chain connection, the key vault, the store, and six background jobs:
``chain.anchoring`` (the engine), ``chain.watcher`` (the event follower),
``chain.key_registrar`` (binds signing keys in the on-chain key directory), ``chain.outbox``
(the relay publishing ``chain.*`` events), ``chain.intake`` (the consumer of the domain
events the translator anchors, :mod:`chain.translator.intake`) and ``chain.key_rewrap``
(once at start: custodial keys still wrapped under a previous KEK move to the current one).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from chain.translator.access import is_trusted
from chain.translator.anchor_fees import FeeReusePolicy
from chain.translator.anchoring import AnchoringEngine, EngineSettings
from chain.translator.batching import BackoffPolicy, BatchPolicy, Domain
from chain.translator.credentials import CredentialPurpose
from chain.translator.felts import felt_to_hex
from chain.translator.governance import OnChainGovernance
from chain.translator.intake import AnchorIntake
from chain.translator.key_directory import KeyDirectoryStore, KeyRegistrar
from chain.translator.keys import ENV_KEK, ENV_KEK_PREVIOUS, KeyVault
from chain.translator.learner_accounts import (
    DEFAULT_FUNDING_FRI,
    LearnerAccounts,
    LearnerAccountSettings,
    LearnerAccountStore,
)
from chain.translator.ports import ChainConnection, ClientAnchorChain, chain_config_from_env
from chain.translator.service import ChainTranslator
from chain.translator.storage import (
    ANCHORED,
    FAILED,
    TOPIC_ANCHOR_FAILED,
    TOPIC_INTERACTION_ANCHORED,
    BatchRow,
    ChainStore,
    RecordRow,
    outbox,
)
from chain.translator.tracing import traced
from chain.translator.watcher import ChainWatcher
from services.api.keiko.chain import v1 as pb
from services.api.keiko.common import v1 as common
from services.kit.auth import current_principal
from services.kit.errors import FailedPrecondition, ValidationError
from services.kit.events import Event
from services.kit.events.fanout import EventFanout
from services.kit.events.outbox import OutboxRelay
from services.kit.runtime import BackgroundJob, ServiceRuntime

log = structlog.get_logger("keiko.chain.servicer")

# Domain values and proto enum members share names (LEARNING, ...).
_TO_PB_DOMAIN: dict[Domain, pb.AnchorDomain] = {
    d: pb.AnchorDomain.from_string(d.name) for d in Domain
}
_FROM_PB_DOMAIN = {int(v): k for k, v in _TO_PB_DOMAIN.items()}
_TO_PB_STATUS: dict[str, common.AnchorStatus] = {
    "pending": common.AnchorStatus.from_string("PENDING"),
    ANCHORED: common.AnchorStatus.from_string("ANCHORED"),
    FAILED: common.AnchorStatus.from_string("FAILED"),
}
_UNSPECIFIED_STATUS = common.AnchorStatus.from_string("UNSPECIFIED")


def domain_from_pb(value: int, field: str = "domain") -> Domain:
    try:
        return _FROM_PB_DOMAIN[int(value)]
    except (KeyError, ValueError):
        raise ValidationError(field, "must be a known anchor domain") from None


def _hex(value: int | None) -> str:
    return "" if value is None else felt_to_hex(value)


def anchor_state(row: RecordRow) -> common.AnchorState:
    return common.AnchorState(
        status=_TO_PB_STATUS[row.status],
        batch_id=_hex(row.batch_id),
        merkle_root=_hex(row.root),
        leaf_index=row.leaf_index or 0,
        block_number=row.block or 0,
        tx_hash=_hex(row.tx_hash),
        failure_reason=row.failure_reason or "",
        anchored_at=row.anchored_at,  # type: ignore[arg-type]
    )


def batch_to_pb(batch: BatchRow) -> pb.Batch:
    return pb.Batch(
        id=felt_to_hex(batch.batch_id),
        domain=_TO_PB_DOMAIN[batch.domain],
        merkle_root=felt_to_hex(batch.root),
        leaf_count=batch.leaf_count,
        status=_TO_PB_STATUS[batch.status],
        created_at=batch.created_at,
        submitted_at=batch.submitted_at,  # type: ignore[arg-type]
        anchored_at=batch.anchored_at,  # type: ignore[arg-type]
        block_number=batch.block or 0,
        tx_hash=_hex(batch.tx_hash),
        failure_reason=(batch.last_error or "") if batch.state == FAILED else "",
    )


def _event_anchor_state(payload: Mapping[str, Any], occurred_at: datetime) -> common.AnchorState:
    status = payload.get("status", ANCHORED)
    return common.AnchorState(
        status=_TO_PB_STATUS.get(status, _UNSPECIFIED_STATUS),
        batch_id=str(payload.get("batch_id") or ""),
        merkle_root=str(payload.get("root") or ""),
        leaf_index=int(payload.get("leaf_index") or 0),
        block_number=int(payload.get("block") or 0),
        tx_hash=str(payload.get("tx_hash") or ""),
        failure_reason=str(payload.get("failure_reason") or ""),
        anchored_at=occurred_at if status == ANCHORED else None,  # type: ignore[arg-type]
    )


class ChainServicer(pb.ChainServiceBase):
    public_methods = frozenset(
        {"GetChainInfo", "GetInclusionProof", "VerifyInclusion", "GetHumanityRegistration"}
    )

    def __init__(
        self,
        translator: ChainTranslator,
        fanout: EventFanout | None = None,
        governance: OnChainGovernance | None = None,
    ) -> None:
        self.translator = translator
        self.fanout = fanout
        self.governance = governance

    def _governance(self) -> OnChainGovernance:
        if self.governance is None:
            raise FailedPrecondition("on-chain governance is not available in this process")
        return self.governance

    async def create_governance_proposal(
        self, create_governance_proposal_request: pb.CreateGovernanceProposalRequest
    ) -> pb.CreateGovernanceProposalResponse:
        request = create_governance_proposal_request
        created = await self._governance().create_proposal(
            current_principal(),
            proposal_id=request.proposal_id,
            content_hash=request.content_hash,
            option_count=request.option_count,
            starts_at=request.voting_starts_at,
            ends_at=request.voting_ends_at,
            quorum_bps=request.quorum_bps,
            request_id=request.request_id,
        )
        return pb.CreateGovernanceProposalResponse(
            onchain_proposal_id=felt_to_hex(created.onchain_proposal_id),
            tx_hash=felt_to_hex(created.tx_hash),
        )

    async def cast_governance_vote(
        self, cast_governance_vote_request: pb.CastGovernanceVoteRequest
    ) -> pb.CastGovernanceVoteResponse:
        request = cast_governance_vote_request
        tx_hash = await self._governance().cast_vote(
            current_principal(),
            onchain_proposal_id=request.onchain_proposal_id,
            voter_commitment=request.voter_commitment,
            votes=[(v.option_index, v.votes_milli) for v in request.votes],
        )
        return pb.CastGovernanceVoteResponse(tx_hash=felt_to_hex(tx_hash))

    async def finalize_governance_proposal(
        self, finalize_governance_proposal_request: pb.FinalizeGovernanceProposalRequest
    ) -> pb.FinalizeGovernanceProposalResponse:
        request = finalize_governance_proposal_request
        tx_hash = await self._governance().finalize(
            current_principal(),
            onchain_proposal_id=request.onchain_proposal_id,
            outcome=int(request.outcome),
        )
        return pb.FinalizeGovernanceProposalResponse(tx_hash=felt_to_hex(tx_hash))

    async def sign_interaction(
        self, sign_interaction_request: pb.SignInteractionRequest
    ) -> pb.SignInteractionResponse:
        request = sign_interaction_request
        device = None
        if request.device_signature.signature_hex or request.device_signature.public_key_hex:
            device = (
                request.device_signature.signature_hex,
                request.device_signature.public_key_hex,
            )
        signed = await self.translator.sign_interaction(
            current_principal(), request.learner_id, request.canonical_statement_json, device
        )
        return pb.SignInteractionResponse(
            signature_hex=signed.signature.hex(),
            public_key_hex=signed.public_key.hex(),
            leaf=felt_to_hex(signed.leaf),
            device_signed=signed.device_signed,
            leaf_encoding=signed.leaf_encoding,
        )

    async def submit_for_anchoring(
        self, submit_for_anchoring_request: pb.SubmitForAnchoringRequest
    ) -> pb.SubmitForAnchoringResponse:
        request = submit_for_anchoring_request
        row = await self.translator.submit(
            current_principal(),
            domain_from_pb(request.domain),
            request.record_id,
            request.leaf_data,
        )
        return pb.SubmitForAnchoringResponse(
            anchor=anchor_state(row), leaf=felt_to_hex(row.leaf), leaf_encoding=row.leaf_encoding
        )

    async def get_anchor_status(
        self, get_anchor_status_request: pb.GetAnchorStatusRequest
    ) -> pb.GetAnchorStatusResponse:
        request = get_anchor_status_request
        row = await self.translator.record(
            current_principal(), domain_from_pb(request.domain), request.record_id
        )
        return pb.GetAnchorStatusResponse(anchor=anchor_state(row))

    async def get_inclusion_proof(
        self, get_inclusion_proof_request: pb.GetInclusionProofRequest
    ) -> pb.GetInclusionProofResponse:
        request = get_inclusion_proof_request
        row, batch = await self.translator.inclusion_proof(
            domain_from_pb(request.domain), request.record_id
        )
        assert row.batch_id is not None and row.proof is not None
        proof = common.InclusionProof(
            leaf=felt_to_hex(row.leaf),
            leaf_index=row.leaf_index or 0,
            siblings=[felt_to_hex(s) for s in row.proof],
            merkle_root=felt_to_hex(batch.root),
            batch_id=felt_to_hex(row.batch_id),
            leaf_encoding=row.leaf_encoding,
        )
        anchored = batch.state == ANCHORED
        return pb.GetInclusionProofResponse(
            proof=proof,
            block_number=(batch.block or 0) if anchored else 0,
            tx_hash=_hex(batch.tx_hash) if anchored else "",
        )

    async def verify_inclusion(
        self, verify_inclusion_request: pb.VerifyInclusionRequest
    ) -> pb.VerifyInclusionResponse:
        proof = verify_inclusion_request.proof
        check = await self.translator.verify_inclusion(
            proof.leaf, proof.leaf_index, list(proof.siblings), proof.merkle_root, proof.batch_id
        )
        return pb.VerifyInclusionResponse(
            proof_valid=check.proof_valid,
            root_on_chain=check.root_on_chain,
            block_number=check.block,
            tx_hash=_hex(check.tx_hash),
            reason=check.reason,
        )

    async def get_batch(self, get_batch_request: pb.GetBatchRequest) -> pb.GetBatchResponse:
        current_principal()  # any authenticated caller: batch data is public on chain
        batch = await self.translator.batch(get_batch_request.batch_id)
        return pb.GetBatchResponse(batch=batch_to_pb(batch))

    async def watch_anchors(
        self, watch_anchors_request: pb.WatchAnchorsRequest
    ) -> AsyncIterator[pb.WatchAnchorsResponse]:
        principal = current_principal()
        request = watch_anchors_request
        domain = None
        if request.domain != pb.AnchorDomain.UNSPECIFIED:
            domain = domain_from_pb(request.domain)
        if request.record_id and domain is None:
            raise ValidationError("domain", "is required when record_id is given")
        if self.fanout is None:
            raise FailedPrecondition("anchor watching is not available in this process")
        trusted = is_trusted(principal)

        def visible(event: Event) -> bool:
            payload = event.payload
            if not trusted and payload.get("learner_id") != principal.user_id:
                return False
            if domain is not None and payload.get("domain") != domain.value:
                return False
            return not request.record_id or payload.get("record_id") == request.record_id

        topics = [TOPIC_INTERACTION_ANCHORED, TOPIC_ANCHOR_FAILED]
        async with self.fanout.listen(topics, visible) as events:
            async for event in events:
                payload = event.payload
                yield pb.WatchAnchorsResponse(
                    event=pb.AnchorEvent(
                        domain=_TO_PB_DOMAIN[Domain(payload["domain"])],
                        record_id=str(payload["record_id"]),
                        anchor=_event_anchor_state(payload, event.occurred_at),
                    )
                )

    async def register_humanity(
        self, register_humanity_request: pb.RegisterHumanityRequest
    ) -> pb.RegisterHumanityResponse:
        request = register_humanity_request
        row = await self.translator.register_humanity(
            current_principal(),
            request.user_id,
            request.commitment,
            request.ed25519_public_key,
            request.request_id,
        )
        return pb.RegisterHumanityResponse(
            tx_hash=_hex(row.tx_hash), status=_TO_PB_STATUS.get(row.state, _UNSPECIFIED_STATUS)
        )

    async def get_humanity_registration(
        self, get_humanity_registration_request: pb.GetHumanityRegistrationRequest
    ) -> pb.GetHumanityRegistrationResponse:
        found = await self.translator.humanity_registration(
            get_humanity_registration_request.commitment
        )
        return pb.GetHumanityRegistrationResponse(
            registered=found.registered,
            ed25519_public_key=found.public_key.hex() if found.public_key else "",
            block_number=found.block,
            tx_hash=_hex(found.tx_hash),
        )

    async def get_chain_info(
        self, get_chain_info_request: pb.GetChainInfoRequest
    ) -> pb.GetChainInfoResponse:
        info = await self.translator.chain_info()
        return pb.GetChainInfoResponse(
            chain_id=info.chain_id,
            rpc_url=info.rpc_url,
            contracts=[
                pb.ContractInfo(
                    name=c.name, address=felt_to_hex(c.address), class_hash=_hex(c.class_hash)
                )
                for c in info.contracts
            ],
            latest_block=info.latest_block,
            translator_address=_hex(info.translator_address),
        )

    async def sign_credential(
        self, sign_credential_request: pb.SignCredentialRequest
    ) -> pb.SignCredentialResponse:
        request = sign_credential_request
        signed = await self.translator.credentials.sign(
            current_principal(),
            credential_purpose_from_pb(request.purpose),
            request.holder_id,
            request.learner_id,
            request.document_json,
            challenge=request.challenge,
            domain=request.domain,
        )
        return pb.SignCredentialResponse(
            document_json=json.dumps(signed.document, ensure_ascii=False),
            verification_method=signed.verification_method,
        )


_FROM_PB_PURPOSE = {int(pb.CredentialPurpose.from_string(p.name)): p for p in CredentialPurpose}


def credential_purpose_from_pb(value: int) -> CredentialPurpose:
    purpose = _FROM_PB_PURPOSE.get(int(value))
    if purpose is None:
        raise ValidationError("purpose", "must be ISSUE, STATUS_LIST or PRESENT")
    return purpose


# -- composition ------------------------------------------------------------------------------


class TranslatorSettings(BaseSettings):
    """Tuning knobs, environment ``KEIKO_CHAIN_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="KEIKO_CHAIN_", extra="ignore")

    batch_max_leaves: int = 256
    batch_max_wait_ms: int = 500
    # With a backlog beyond batch_max_leaves, one batch takes it all up to this many
    # leaves (an anchor_batch costs the same whatever the size); 0 turns it off.
    batch_adaptive_max_leaves: int = 4096
    # Batches being checked/sent/awaited at once while the engine goes on sealing. Sends
    # from the one operator account are serialized (nonces), so more only adds receipt
    # polling on the node.
    max_batches_in_flight: int = 2
    retry_initial_ms: int = 500
    retry_max_delay_s: float = 60.0
    retry_max_attempts: int | None = None
    breaker_failure_threshold: int = 3
    breaker_reset_s: float = 10.0
    confirm_timeout_s: float = 30.0
    send_timeout_s: float = 120.0
    watcher_start_block: int = 0
    watcher_poll_ms: int = 200
    # The RPC URL verifiers are told to use (GetChainInfo); default: the one we use.
    public_rpc_url: str = ""
    # STRK (fri) the operator gives each new learner account: its deployment, its
    # humanity registration and its votes are paid from it.
    learner_funding_fri: int = DEFAULT_FUNDING_FRI
    # How often the key registrar looks for keys to bind on chain when nobody nudges it.
    key_registration_poll_s: float = 5.0
    # anchor_batch sends reuse a fee estimate per batch-size band instead of estimating
    # each (one more execution on the node): bounds = estimate x fee_margin, refreshed
    # every fee_refresh_sends sends or fee_refresh_s seconds, and at once when a send is
    # refused or reverted for its resources (chain.translator.anchor_fees).
    fee_reuse: bool = True
    fee_margin: float = Field(1.5, ge=1.0)
    fee_refresh_sends: int = Field(100, ge=1)
    fee_refresh_s: float = Field(300.0, gt=0)

    def engine(self) -> EngineSettings:
        return EngineSettings(
            policy=BatchPolicy.of(self.batch_max_leaves, self.batch_max_wait_ms),
            backoff=BackoffPolicy(
                initial=timedelta(milliseconds=self.retry_initial_ms),
                max_delay=timedelta(seconds=self.retry_max_delay_s),
                max_attempts=self.retry_max_attempts,
            ),
            confirm_timeout=timedelta(seconds=self.confirm_timeout_s),
            send_timeout=self.send_timeout_s,
            breaker_failure_threshold=self.breaker_failure_threshold,
            breaker_reset_timeout=timedelta(seconds=self.breaker_reset_s),
            max_in_flight=max(1, self.max_batches_in_flight),
            adaptive_max_leaves=(
                max(self.batch_adaptive_max_leaves, self.batch_max_leaves)
                if self.batch_adaptive_max_leaves > 0
                else None
            ),
            fees=FeeReusePolicy(
                enabled=self.fee_reuse,
                margin=self.fee_margin,
                refresh_sends=self.fee_refresh_sends,
                refresh_after=timedelta(seconds=self.fee_refresh_s),
            ),
        )


KEK_FILE = Path("keys") / "chain-kek.b64"


def load_vault(
    data_dir: Path, *, embedded: bool, environ: Mapping[str, str] | None = None
) -> KeyVault:
    """``KEIKO_KEK`` (+ ``KEIKO_KEK_PREVIOUS``) from the environment; on the embedded
    default, a KEK generated once into ``<data dir>/keys/chain-kek.b64`` (mode 0600).
    Production (not embedded) without ``KEIKO_KEK`` refuses to start."""
    env = dict(os.environ if environ is None else environ)
    if env.get(ENV_KEK, "").strip():
        return KeyVault.from_env(env)
    if not embedded:
        raise FailedPrecondition(
            f"{ENV_KEK} is required outside the embedded default: set it to a base64 "
            "32-byte key (python -c 'import base64,os; print(base64.b64encode(os.urandom(32))"
            ".decode())') and keep it secret; custodial keys are encrypted under it"
        )
    path = data_dir / KEK_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(KeyVault.new_kek())
    return KeyVault.from_env(
        {ENV_KEK: path.read_text().strip(), ENV_KEK_PREVIOUS: env.get(ENV_KEK_PREVIOUS, "")}
    )


def key_rewrap_job(translator: ChainTranslator) -> BackgroundJob:
    """Once at start, re-wrap custodial keys left under a previous KEK (after a rotation),
    and say when the previous KEKs are no longer needed."""

    async def run(_stop: asyncio.Event) -> None:
        try:
            checked, rewrapped = await translator.keys.rewrap_custodial_keys()
        except Exception:  # a vault without a KEK, a database outage: retried next start
            log.exception("chain.key_rewrap_failed")
            return
        if rewrapped:
            log.info(
                "chain.keys_rewrapped",
                checked=checked,
                rewrapped=rewrapped,
                note=f"every custodial key is under {ENV_KEK}: {ENV_KEK_PREVIOUS} can go",
            )

    return run


def build_chain_servicer(runtime: ServiceRuntime) -> ChainServicer:
    """The translator on ``runtime``, with its six background jobs registered."""
    settings = runtime.settings
    tuning = TranslatorSettings()
    config = chain_config_from_env(
        data_dir=settings.data_dir,
        rpc_url=settings.chain_rpc_url,
        node_host=settings.chain_node_host,
        node_port=settings.chain_node_port,
    )
    connection = ChainConnection(config.rpc_url, config.account, config.deployment_file)
    anchor_chain = ClientAnchorChain(connection)
    store = ChainStore(runtime.database, runtime.clock)
    relay = OutboxRelay(runtime.database, outbox, runtime.event_bus, clock=runtime.clock)
    engine = AnchoringEngine(
        store, traced(anchor_chain, store), runtime.clock, tuning.engine(), on_change=relay.notify
    )
    watcher = ChainWatcher(
        store,
        anchor_chain,
        start_block=tuning.watcher_start_block,
        poll_interval=tuning.watcher_poll_ms / 1000,
        on_change=relay.notify,
    )
    registrar = KeyRegistrar(
        KeyDirectoryStore(runtime.database, runtime.clock),
        anchor_chain,
        poll_interval=tuning.key_registration_poll_s,
        send_timeout=tuning.send_timeout_s,
    )

    # Loaded now, not on first use: without a KEK on PostgreSQL the platform must not
    # start (custodial signing could never work), and says why.
    vault = load_vault(settings.data_dir, embedded=settings.embedded_database)
    accounts = LearnerAccounts(
        LearnerAccountStore(runtime.database, runtime.clock),
        vault,
        connection,
        settings=LearnerAccountSettings(funding_fri=tuning.learner_funding_fri),
    )

    translator = ChainTranslator(
        store,
        vault,
        anchor_chain,
        engine,
        connection=connection,
        accounts=accounts,
        public_rpc_url=tuning.public_rpc_url or config.rpc_url,
        on_key_queued=registrar.notify,
    )
    users = {
        "chain.anchoring": engine.run,
        "chain.watcher": watcher.run,
        "chain.key_registrar": registrar.run,
    }
    running = set(users)

    def closing(name: str, job: BackgroundJob) -> BackgroundJob:
        async def run(stop: asyncio.Event) -> None:
            try:
                await job(stop)
            finally:
                running.discard(name)
                if not running:  # the last chain user closes the HTTP session
                    await connection.close()

        return run

    for name, job in users.items():
        runtime.run_in_background(name, closing(name, job))
    runtime.run_in_background("chain.outbox", relay.run)
    runtime.run_in_background("chain.intake", AnchorIntake(translator).job(runtime.event_bus))
    runtime.run_in_background("chain.key_rewrap", key_rewrap_job(translator))
    governance = OnChainGovernance(runtime.database, runtime.clock, store, accounts, connection)
    return ChainServicer(translator, runtime.fanout, governance)
