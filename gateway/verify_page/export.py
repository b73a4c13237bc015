"""Reading a passport for the public routes (its timeline through the passport service,
the chain's identity through the chain service) and assembling the
``keiko.passport.export`` document from it."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc

from chain.client.deployment import ANCHOR
from chain.translator.authors import Author, AuthorKind
from chain.translator.batching import Domain
from chain.translator.felts import encode_short_string, parse_felt
from chain.translator.leaves import LEAF_ENCODING_V1
from chain.verify import AnchorProof, ExportEntry, PassportExport, build_entry
from chain.verify.export import ChainRef
from services.api.keiko.chain import v1 as chain_pb
from services.api.keiko.common import v1 as common
from services.api.keiko.passport import v1 as pb
from services.kit.clock import Clock
from services.kit.errors import ValidationError
from services.kit.grpc.client import stub

PAGE_SIZE = 200
MAX_ENTRIES = 10_000
DEFAULT_EXPLORER = "/verify/tx/{tx_hash}"
TX_HASH = re.compile(r"^0x[0-9a-fA-F]{1,64}$")
_ANCHORED = common.AnchorStatus.from_string("ANCHORED")
_STATUS_CODES = {
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
}


class HttpError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _from_rpc(err: grpc.aio.AioRpcError) -> HttpError:
    status = _STATUS_CODES.get(err.code(), 502)
    reason = err.details() or err.code().name
    if status == 502:
        reason = "the passport service failed"
    return HttpError(status, reason)


@dataclass
class Node:
    """A timeline group merged across pages (pages may repeat a group they cut)."""

    level: str
    id: str
    title: str
    entries: list[pb.PassportEntry] = field(default_factory=list)
    children: dict[tuple[str, str], Node] = field(default_factory=dict)


def _merge(into: dict[tuple[str, str], Node], groups: Sequence[pb.TimelineGroup]) -> None:
    for g in groups:
        level = pb.TimelineLevel(g.level).name or "UNGROUPED"
        node = into.setdefault((level, g.id), Node(level, g.id, g.title))
        node.entries.extend(g.entries)
        _merge(node.children, g.children)


@dataclass
class Page:
    passport: pb.Passport
    entries: list[pb.PassportEntry]
    expires_at: datetime | None = None
    groups: dict[tuple[str, str], Node] = field(default_factory=dict)


def _flatten(groups: Sequence[pb.TimelineGroup]) -> list[pb.PassportEntry]:
    out: list[pb.PassportEntry] = []
    for group in groups:
        out.extend(group.entries)
        out.extend(_flatten(group.children))
    return out


def _time(value: datetime | None) -> datetime | None:
    if value is None or value.replace(tzinfo=UTC) == datetime(1970, 1, 1, tzinfo=UTC):
        return None
    return value


class PassportReader:
    """Anonymous reads of the passport service."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.client = stub(pb.PassportServiceStub, channel)

    async def by_id(self, passport_id: str) -> Page:
        try:
            passport = (
                await self.client.get_passport(pb.GetPassportRequest(passport_id=passport_id))
            ).passport
            entries: list[pb.PassportEntry] = []
            groups: dict[tuple[str, str], Node] = {}
            token = ""
            while len(entries) < MAX_ENTRIES:
                page = await self.client.get_timeline(
                    pb.GetTimelineRequest(
                        passport_id=passport_id, page_size=PAGE_SIZE, page_token=token
                    )
                )
                entries.extend(_flatten(page.groups))
                _merge(groups, page.groups)
                token = page.next_page_token
                if not token:
                    break
        except grpc.aio.AioRpcError as err:
            raise _from_rpc(err) from None
        return Page(passport, _chronological(entries), None, groups)

    async def by_token(self, token: str) -> Page:
        try:
            entries: list[pb.PassportEntry] = []
            groups: dict[tuple[str, str], Node] = {}
            page_token = ""
            first: pb.GetSharedPassportResponse | None = None
            while len(entries) < MAX_ENTRIES:
                page = await self.client.get_shared_passport(
                    pb.GetSharedPassportRequest(
                        token=token, page_size=PAGE_SIZE, page_token=page_token
                    )
                )
                first = first or page
                entries.extend(_flatten(page.groups))
                _merge(groups, page.groups)
                page_token = page.next_page_token
                if not page_token:
                    break
        except grpc.aio.AioRpcError as err:
            raise _from_rpc(err) from None
        assert first is not None
        return Page(first.passport, _chronological(entries), _time(first.expires_at), groups)

    async def verify(self, *, passport_id: str = "", token: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        page_token = ""
        try:
            while len(out) < MAX_ENTRIES:
                reply = await self.client.verify_passport(
                    pb.VerifyPassportRequest(
                        passport_id=passport_id,
                        share_token=token,
                        page_size=PAGE_SIZE,
                        page_token=page_token,
                    )
                )
                out.update({v.statement_id: v for v in reply.entries})
                page_token = reply.next_page_token
                if not page_token:
                    break
        except grpc.aio.AioRpcError as err:
            raise _from_rpc(err) from None
        return out


class ChainInfoSource:
    """The chain the anchors are on, from the translator's public GetChainInfo: named in
    every export so a verifier needs nothing but the link. Cached: it changes only with a
    redeployment; a failed look-up is retried on the next request."""

    TTL_SECONDS = 60.0

    def __init__(self, channel: grpc.aio.Channel, clock: Clock) -> None:
        self.client = stub(chain_pb.ChainServiceStub, channel)
        self.clock = clock
        self._cached: tuple[datetime, ChainRef | None] | None = None

    async def get(self) -> ChainRef | None:
        now = self.clock.now()
        if self._cached and (now - self._cached[0]).total_seconds() < self.TTL_SECONDS:
            return self._cached[1]
        try:
            info = await self.client.get_chain_info(chain_pb.GetChainInfoRequest(), timeout=5)
        except grpc.aio.AioRpcError:
            return None  # no translator behind this gateway: the export omits the chain
        self._cached = (now, chain_ref(info))
        return self._cached[1]


def chain_ref(info: chain_pb.GetChainInfoResponse) -> ChainRef | None:
    anchor = next((c.address for c in info.contracts if c.name in ("anchor", ANCHOR)), "")
    if not info.chain_id or not anchor:
        return None
    try:
        chain_id = (
            parse_felt(info.chain_id, "chain_id")
            if info.chain_id.startswith("0x")
            else encode_short_string(info.chain_id, "chain_id")
        )
        return ChainRef(chain_id, parse_felt(anchor, "anchor"), info.rpc_url)
    except ValidationError:
        return None


def _chronological(entries: list[pb.PassportEntry]) -> list[pb.PassportEntry]:
    return sorted(entries, key=lambda e: (e.timestamp, e.statement_id))


_AUTHOR_KINDS = {pb.AuthorKind.from_string(k.name): k for k in AuthorKind}


def _author(e: pb.PassportEntry) -> Author:
    """The entry's author as the passport states it (the verifier checks it)."""
    return Author(
        kind=_AUTHOR_KINDS.get(e.author.kind, AuthorKind.SELF),
        id=e.author.id,
        display_name=e.author.display_name,
        public_key=bytes.fromhex(e.author.public_key_hex or e.public_key_hex),
    )


def export_of(page: Page, generated_at: datetime, chain: ChainRef | None = None) -> PassportExport:
    """The ``keiko.passport.export`` document of the entries a page reveals."""
    if page.entries and not any(e.statement_json for e in page.entries):
        raise HttpError(
            409,
            "this passport's disclosure withholds statement content, which independent "
            "verification of signatures needs",
        )
    out: list[ExportEntry] = []
    for e in page.entries:
        if not e.statement_json or not e.signature_hex or not e.public_key_hex:
            continue  # not signed yet, or content withheld: nothing to check
        anchor = None
        if e.anchor.status == _ANCHORED and e.anchor.batch_id:
            anchor = AnchorProof(
                batch_id=parse_felt(e.anchor.batch_id, "batch_id"),
                domain=Domain.LEARNING,
                leaf_index=e.anchor.leaf_index,
                proof=tuple(parse_felt(s, "proof") for s in e.proof),
                root=parse_felt(e.anchor.merkle_root, "root"),
                tx_hash=parse_felt(e.anchor.tx_hash or "0x0", "tx_hash"),
                block=e.anchor.block_number,
            )
        out.append(
            build_entry(
                e.statement_id,
                json.loads(e.statement_json),
                bytes.fromhex(e.signature_hex),
                bytes.fromhex(e.public_key_hex),
                anchor,
                _author(e),
                legacy=e.author.legacy,
                # A passport service from before keiko.leaf.v2 does not say: all were v1.
                leaf_encoding=e.leaf_encoding or LEAF_ENCODING_V1,
            )
        )
    return PassportExport(
        passport_id=page.passport.id,
        generated_at=generated_at,
        entries=tuple(out),
        learner_id=page.passport.owner_id or None,
        chain=chain,
    )
