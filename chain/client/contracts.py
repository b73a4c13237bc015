"""Typed bindings of the Keiko contracts (interaction_anchor, humanity_registry,
governance). Arguments are serialized by starknet-py from the contract ABI; writes go
through :meth:`KeikoChain.execute` (one signed v3 INVOKE each), reads through
``starknet_call`` on the latest block.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starknet_py.contract import Contract
from starknet_py.net.client_errors import ClientError
from starknet_py.net.client_models import Call, EstimatedFee, ResourceBoundsMapping

from chain.client.events import ChainEvent, EventDecoder

if TYPE_CHECKING:
    from chain.client.core import KeikoChain, TxResult


def short_string(text: str) -> int:
    """Cairo short string (at most 31 ASCII characters) as a felt."""
    raw = text.encode("ascii")
    if len(raw) > 31:
        raise ValueError(f"short string longer than 31 characters: {text!r}")
    return int.from_bytes(raw, "big")


def decode_short_string(felt: int) -> str:
    if felt == 0:
        return ""
    return felt.to_bytes((felt.bit_length() + 7) // 8, "big").decode("ascii", "replace")


def _felt_or_string(value: int | str) -> int:
    return short_string(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class EventPage:
    events: list[ChainEvent]
    continuation_token: str | None


class ContractBinding:
    """What every binding shares: calls, invokes and event reads of one contract."""

    name: str = ""

    def __init__(self, chain: KeikoChain, contract: Contract) -> None:
        self.chain = chain
        self.contract = contract
        self.decoder = EventDecoder(self.name, contract)

    @property
    def address(self) -> int:
        return int(self.contract.address)

    def prepare(self, function: str, *args: Any, **kwargs: Any) -> Call:
        """The ``Call`` of one function, to batch several in one transaction."""
        prepared = self.contract.functions[function].prepare_call(*args, **kwargs)
        return Call(
            to_addr=prepared.to_addr, selector=prepared.selector, calldata=prepared.calldata
        )

    async def invoke(self, function: str, *args: Any, **kwargs: Any) -> TxResult:
        return await self.chain.execute(self.prepare(function, *args, **kwargs))

    async def transaction_events(self, tx_hash: int) -> TxResult | None:
        """A transaction's receipt with its Keiko events decoded; None if unknown."""
        return await self.chain.receipt(tx_hash)

    async def view(self, function: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        from chain.client.core import KeikoChain

        prepared = self.contract.functions[function].prepare_call(*args, **kwargs)
        try:
            result = await prepared.call(block_number="latest")
        except ClientError as err:
            raise KeikoChain._translate(err) from err
        return tuple(result)

    async def view_or_none(self, function: str, missing: str, *args: Any, **kwargs: Any) -> Any:
        """``view`` whose panic ``missing`` (e.g. 'unknown batch') means "not found"."""
        from chain.client.core import CallFailed

        try:
            return (await self.view(function, *args, **kwargs))[0]
        except CallFailed as err:
            if missing in err.reason:
                return None
            raise

    async def events(
        self,
        name: str | None = None,
        *,
        keys: list[list[int]] | None = None,
        from_block: int = 0,
        to_block: int | str | None = None,
        chunk_size: int = 100,
        continuation_token: str | None = None,
    ) -> EventPage:
        """One page of this contract's events (optionally of one kind, and matching
        ``keys`` after the event selector), oldest first, with the token of the next."""
        extra: list[list[int | str]] = [list(k) for k in keys or []]
        key_filter: list[list[int | str]] = []
        if name is not None:
            key_filter = [[self.decoder.selector_of(name)], *extra]
        elif extra:
            key_filter = [[], *extra]
        chunk = await self.chain.client.get_events(
            address=self.address,
            keys=key_filter,
            from_block_number=from_block,
            to_block_number=to_block,  # type: ignore[arg-type]
            chunk_size=chunk_size,
            continuation_token=continuation_token,
        )
        decoded = [
            d
            for e in chunk.events
            if (
                d := self.decoder.decode(
                    e.from_address,
                    e.keys,
                    e.data,
                    block_number=e.block_number,
                    block_hash=e.block_hash,
                    tx_hash=e.transaction_hash,
                )
            )
            is not None
        ]
        return EventPage(decoded, chunk.continuation_token)

    async def iter_events(
        self, name: str | None = None, *, from_block: int = 0, chunk_size: int = 100
    ) -> AsyncIterator[ChainEvent]:
        """Every matching event, following continuation tokens."""
        token: str | None = None
        while True:
            page = await self.events(
                name, from_block=from_block, chunk_size=chunk_size, continuation_token=token
            )
            for event in page.events:
                yield event
            if page.continuation_token is None:
                return
            token = page.continuation_token


# ---------------------------------------------------------------------- anchor


DOMAINS = ("learning", "reputation", "marketplace", "governance")


@dataclass(frozen=True)
class AnchoredBatch:
    batch_id: int
    root: int
    leaf_count: int
    domain: str
    anchored_by: int
    block_number: int
    block_timestamp: int


@dataclass(frozen=True)
class KeyBinding:
    """A signing key's entry in the anchor contract's key directory."""

    public_key: bytes
    subject: int
    kind: str
    registered_by: int
    registered_block: int
    revoked: bool
    revoked_block: int


@dataclass(frozen=True)
class KeyRegistration:
    """One binding to make: an Ed25519 key, its holder's subject felt and custody kind
    ('custodial', 'device' or 'service')."""

    public_key: bytes
    subject: int
    kind: str


@dataclass(frozen=True)
class AnchoredRecord:
    record_hash: int
    learner: int
    block_number: int
    block_timestamp: int


class AnchorContract(ContractBinding):
    name = "interaction_anchor"

    async def anchor_batch(
        self,
        batch_id: int,
        root: int,
        leaf_count: int,
        domain: str | int,
        *,
        resource_bounds: ResourceBoundsMapping | None = None,
    ) -> TxResult:
        """Anchor a Merkle root (operators only); ``domain`` 'learning', 'reputation',
        'marketplace' or 'governance'. Without ``resource_bounds`` the transaction is
        estimated first (see :meth:`KeikoChain.execute`)."""
        call = self.anchor_batch_call(batch_id, root, leaf_count, domain)
        return await self.chain.execute(call, resource_bounds=resource_bounds)

    async def estimate_anchor_batch(
        self, batch_id: int, root: int, leaf_count: int, domain: str | int
    ) -> EstimatedFee:
        """What that ``anchor_batch`` would cost now (:meth:`KeikoChain.estimate`)."""
        return await self.chain.estimate(self.anchor_batch_call(batch_id, root, leaf_count, domain))

    def anchor_batch_call(
        self, batch_id: int, root: int, leaf_count: int, domain: str | int
    ) -> Call:
        return self.prepare(
            "anchor_batch",
            batch_id=batch_id,
            root=root,
            leaf_count=leaf_count,
            domain=_felt_or_string(domain),
        )

    async def anchor_record(self, record_hash: int) -> TxResult:
        return await self.invoke("anchor_record", record_hash=record_hash)

    async def add_operator(self, operator: int) -> TxResult:
        return await self.invoke("add_operator", operator=operator)

    async def remove_operator(self, operator: int) -> TxResult:
        return await self.invoke("remove_operator", operator=operator)

    async def get_batch(self, batch_id: int) -> AnchoredBatch | None:
        raw = await self.view_or_none("get_batch", "unknown batch", batch_id=batch_id)
        if raw is None:
            return None
        return AnchoredBatch(
            batch_id=batch_id,
            root=raw["root"],
            leaf_count=raw["leaf_count"],
            domain=decode_short_string(raw["domain"]),
            anchored_by=raw["anchored_by"],
            block_number=raw["block_number"],
            block_timestamp=raw["block_timestamp"],
        )

    async def is_root_anchored(self, root: int) -> bool:
        return bool((await self.view("is_root_anchored", root=root))[0])

    async def batch_id_by_root(self, root: int) -> int | None:
        value = await self.view_or_none("get_batch_id_by_root", "unknown root", root=root)
        return None if value is None else int(value)

    async def get_record(self, record_hash: int) -> AnchoredRecord | None:
        raw = await self.view_or_none("get_record", "unknown record", record_hash=record_hash)
        if raw is None:
            return None
        return AnchoredRecord(
            record_hash=record_hash,
            learner=raw["learner"],
            block_number=raw["block_number"],
            block_timestamp=raw["block_timestamp"],
        )

    async def is_record_anchored(self, record_hash: int) -> bool:
        return bool((await self.view("is_record_anchored", record_hash=record_hash))[0])

    async def batch_count(self) -> int:
        return int((await self.view("batch_count"))[0])

    async def record_count(self) -> int:
        return int((await self.view("record_count"))[0])

    async def is_operator(self, account: int) -> bool:
        return bool((await self.view("is_operator", account=account))[0])

    # -- key directory ------------------------------------------------------------------

    def register_keys_call(self, keys: list[KeyRegistration]) -> Call:
        return self.prepare(
            "register_keys",
            keys=[
                {
                    "key": _pubkey_int(k.public_key),
                    "subject": k.subject,
                    "kind": short_string(k.kind),
                }
                for k in keys
            ],
        )

    async def register_keys(self, keys: list[KeyRegistration]) -> TxResult:
        """Bind keys to their holders (operators only; a binding already made is a no-op,
        a key bound to another holder reverts the whole call)."""
        return await self.chain.execute(self.register_keys_call(keys))

    async def revoke_key(self, public_key: bytes) -> TxResult:
        return await self.invoke("revoke_key", key=_pubkey_int(public_key))

    async def get_key(self, public_key: bytes) -> KeyBinding | None:
        """The key's binding, or None when the directory does not hold it."""
        raw = (await self.view("get_key", key=_pubkey_int(public_key)))[0]
        if int(raw["subject"]) == 0:
            return None
        return KeyBinding(
            public_key=bytes(public_key),
            subject=int(raw["subject"]),
            kind=decode_short_string(int(raw["kind"])),
            registered_by=int(raw["registered_by"]),
            registered_block=int(raw["registered_block"]),
            revoked=bool(raw["revoked"]),
            revoked_block=int(raw["revoked_block"]),
        )

    async def key_count(self) -> int:
        return int((await self.view("key_count"))[0])

    async def admin(self) -> int:
        return int((await self.view("get_admin"))[0])


# -------------------------------------------------------------------- registry


def _pubkey_int(key: bytes | int) -> int:
    if isinstance(key, bytes):
        if len(key) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")
        return int.from_bytes(key, "big")
    return key


class RegistryContract(ContractBinding):
    name = "humanity_registry"

    async def register(self, commitment: int, ed25519_pubkey: bytes | int) -> TxResult:
        """Register the caller's humanity commitment and Ed25519 key (32 bytes, big-endian
        as a u256)."""
        return await self.invoke(
            "register", commitment=commitment, ed25519_pubkey=_pubkey_int(ed25519_pubkey)
        )

    async def rotate_key(self, new_key: bytes | int) -> TxResult:
        return await self.invoke("rotate_key", new_key=_pubkey_int(new_key))

    async def revoke_key(self) -> TxResult:
        return await self.invoke("revoke_key")

    async def is_human(self, account: int) -> bool:
        return bool((await self.view("is_human", account=account))[0])

    async def get_key(self, account: int) -> bytes | None:
        """The account's current Ed25519 public key; None if unregistered or revoked."""
        value = int((await self.view("get_key", account=account))[0])
        return None if value == 0 else value.to_bytes(32, "big")

    async def get_commitment(self, account: int) -> int | None:
        value = int((await self.view("get_commitment", account=account))[0])
        return value or None

    async def account_by_commitment(self, commitment: int) -> int | None:
        value = int((await self.view("get_account_by_commitment", commitment=commitment))[0])
        return value or None

    async def human_count(self) -> int:
        return int((await self.view("human_count"))[0])


# ------------------------------------------------------------------ governance


@dataclass(frozen=True)
class Proposal:
    proposal_id: int
    creator: int
    metadata_hash: int
    options_count: int
    start: int
    end: int
    quorum: int
    total_votes: int
    finalized: bool
    outcome: str
    winning_option: int


class GovernanceContract(ContractBinding):
    name = "governance"

    async def create_proposal(
        self, metadata_hash: int, options_count: int, start: int, end: int, quorum: int
    ) -> TxResult:
        """Create a proposal; its id is ``result.event("ProposalCreated")["proposal_id"]``."""
        return await self.invoke(
            "create_proposal",
            metadata_hash=metadata_hash,
            options_count=options_count,
            start=start,
            end=end,
            quorum=quorum,
        )

    async def cast_vote(self, proposal_id: int, option: int) -> TxResult:
        return await self.invoke("cast_vote", proposal_id=proposal_id, option=option)

    async def finalize(self, proposal_id: int) -> TxResult:
        return await self.invoke("finalize", proposal_id=proposal_id)

    async def get_proposal(self, proposal_id: int) -> Proposal | None:
        raw: Mapping[str, Any] | None = await self.view_or_none(
            "get_proposal", "unknown proposal", proposal_id=proposal_id
        )
        if raw is None:
            return None
        return Proposal(
            proposal_id=proposal_id,
            creator=raw["creator"],
            metadata_hash=raw["metadata_hash"],
            options_count=raw["options_count"],
            start=raw["start"],
            end=raw["end"],
            quorum=raw["quorum"],
            total_votes=raw["total_votes"],
            finalized=bool(raw["finalized"]),
            outcome=decode_short_string(raw["outcome"]),
            winning_option=raw["winning_option"],
        )

    async def get_status(self, proposal_id: int) -> str:
        return decode_short_string(int((await self.view("get_status", proposal_id=proposal_id))[0]))

    async def get_votes(self, proposal_id: int, option: int) -> int:
        return int((await self.view("get_votes", proposal_id=proposal_id, option=option))[0])

    async def has_voted(self, proposal_id: int, account: int) -> bool:
        return bool((await self.view("has_voted", proposal_id=proposal_id, account=account))[0])

    async def proposal_count(self) -> int:
        return int((await self.view("proposal_count"))[0])
