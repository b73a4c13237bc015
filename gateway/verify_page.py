"""Public passport verification over HTTP: the export documents the CLI verifier reads,
and the verification page.

Routes (all public; what they show is what the passport service lets an anonymous
viewer see, i.e. the owner's public disclosure or the share link's scope):

- ``GET /passports/{passport_id}/export.json``, ``GET /share/{token}/export.json``: the
  ``keiko.passport.export`` v1 document (see :mod:`chain.verify.export`), assembled from
  the passport service's timeline over gRPC. 404 for unknown, private, revoked or expired;
  409 when the disclosure withholds the statement content (signatures cannot be checked
  without it).
- ``GET /verify/{passport_id}``, ``GET /verify/share/{token}``: the timeline with each
  entry's status (verified / failed with reason / pending), verified server side by the
  passport service's VerifyPassport against the chain, a link to each anchor, and how
  to verify independently with ``keiko passport verify``.
- ``GET /verify/tx/{tx_hash}``: the default anchor link, the chain node's
  ``starknet_getTransactionReceipt`` for that hash (JSON). Set ``explorer_tx_url`` (e.g.
  ``https://explorer.example/tx/{tx_hash}``) to link to an explorer instead.

The lead mounts them: ``routes += verify_routes(channel, chain_rpc_url=...)``.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import grpc
import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from chain.client.deployment import ANCHOR
from chain.translator.authors import Author, AuthorKind
from chain.translator.batching import Domain
from chain.translator.felts import encode_short_string, parse_felt
from chain.verify import AnchorProof, ExportEntry, PassportExport, build_entry
from chain.verify.export import ChainRef
from gateway.credentials_api import entry_credentials
from services.api.keiko.chain import v1 as chain_pb
from services.api.keiko.common import v1 as common
from services.api.keiko.passport import v1 as pb
from services.kit.clock import Clock, SystemClock
from services.kit.errors import ValidationError
from services.kit.grpc.client import stub

PAGE_SIZE = 200
MAX_ENTRIES = 10_000
DEFAULT_EXPLORER = "/verify/tx/{tx_hash}"
_TX_HASH = re.compile(r"^0x[0-9a-fA-F]{1,64}$")
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
            )
        )
    return PassportExport(
        passport_id=page.passport.id,
        generated_at=generated_at,
        entries=tuple(out),
        learner_id=page.passport.owner_id or None,
        chain=chain,
    )


# -- the page ----------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:1.5rem auto;padding:0 .8rem;
color:#222;line-height:1.4;overflow-wrap:anywhere}
h1{font-size:1.5rem} .meta{color:#555} ol{padding-left:1.2rem}
section.group{margin-left:.4rem} section.group>section.group{margin-left:.8rem}
h3,h4,h5,h6{margin:.8rem 0 .3rem}
li.entry{margin:.4rem 0;padding:.4rem .6rem;border-left:4px solid #aaa;background:#fafafa}
li.entry[data-status=verified]{border-color:#2a7}
li.entry[data-status=failed]{border-color:#c33}
li.entry[data-status=pending]{border-color:#d90}
.status{font-weight:600;text-transform:uppercase;font-size:.8rem;margin-right:.5rem}
.reason{color:#c33;display:block;font-size:.9rem}
.author{display:block;font-size:.9rem;font-weight:600}
.key{display:block;font-size:.8rem;color:#555} code{font-size:.85rem;word-break:break-all}
.summary{font-size:1.1rem} .counts span{margin-right:1rem;white-space:nowrap}
.command{display:flex;gap:.5rem;align-items:flex-start;flex-wrap:wrap}
.command pre{flex:1 1 16rem;margin:0;padding:.6rem;background:#f3f3f3;white-space:pre-wrap;
word-break:break-all;font-size:.85rem}
.command button{padding:.4rem .8rem;font-size:.95rem}
@media (max-width:30rem){body{margin:.8rem auto}h1{font-size:1.25rem}.summary{font-size:1rem}
ol{padding-left:.9rem}}
"""


_LEVELS = {
    "COURSE": "Course",
    "CLASS": "Class",
    "TUTORIAL_SESSION": "Tutorial session",
    "STUDY_SESSION": "Study session",
    "UNGROUPED": "Other interactions",
}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _status(entry: pb.PassportEntry, check: Any) -> tuple[str, str]:
    if check is None:
        return "pending", "not yet signed and anchored"
    if check.verified:
        return "verified", ""
    if check.reason:
        return "failed", check.reason
    return "pending", "waiting for its batch to be anchored on Keikochain"


def _downloads(links: Sequence[tuple[str, str]]) -> str:
    """The entry's W3C credentials (issued by the learner), to download."""
    if not links:
        return ""
    anchors = " ".join(
        f'<a class="credential" href="{_e(href)}" download>{_e(label)}</a>' for label, href in links
    )
    return f' <span class="credentials">W3C credential: {anchors}</span>'


def _authorship(entry: pb.PassportEntry, check: Any) -> str:
    """Who wrote the entry, whose key signed it and whether the chain has that key."""
    label = entry.author.label or "author not stated"
    key = entry.author.public_key_hex or entry.public_key_hex
    text = f'<span class="author" data-kind="{_e(pb.AuthorKind(entry.author.kind).name)}">'
    text += f"{_e(label)}</span>"
    if key:
        holder = ""
        if check is not None and check.key_holder:
            holder = f" of {_e(check.key_holder)}"
        registration = ""
        if check is not None and check.key_registration:
            registration = f", {_e(check.key_registration)}"
            if check.key_custody:
                registration += (
                    f" as a {_e(check.key_custody)} key at block {_e(check.key_registered_block)}"
                )
        text += (
            f'<span class="key">signed by the key{holder} <code>{_e(key[:16])}…</code>'
            f"{registration}</span>"
        )
    return text


def render_page(
    page: Page,
    checks: dict[str, Any],
    *,
    explorer_tx_url: str,
    cli_target: str,
    chain: ChainRef | None,
    credentials: Mapping[str, list[tuple[str, str]]] | None = None,
) -> str:
    counts = {"verified": 0, "failed": 0, "pending": 0}
    downloads = credentials or {}

    def row(entry: pb.PassportEntry) -> str:
        status, reason = _status(entry, checks.get(entry.statement_id))
        counts[status] += 1
        tx = entry.anchor.tx_hash
        anchor = ""
        if tx and _TX_HASH.match(tx):
            href = explorer_tx_url.replace("{tx_hash}", tx)
            anchor = (
                f' <a class="anchor" href="{_e(href)}">anchor tx <code>{_e(tx[:18])}…</code></a>'
                f" block {_e(entry.anchor.block_number)}"
            )
        when = entry.timestamp.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        return (
            f'<li class="entry" data-status="{status}" data-entry-id="{_e(entry.statement_id)}">'
            f'<span class="status">{status}</span><span class="summary">{_e(entry.summary)}</span>'
            f' <span class="when">{_e(when)}</span>{anchor}'
            + _authorship(entry, checks.get(entry.statement_id))
            + (f'<span class="reason">{_e(reason)}</span>' if status == "failed" else "")
            + _downloads(downloads.get(entry.statement_id, []))
            + f'<br><code class="id">{_e(entry.statement_id)}</code></li>'
        )

    def section(node: Node, depth: int) -> str:
        label = _LEVELS.get(node.level, node.level.title())
        heading = f"{label}: {node.title}" if node.id else node.title or label
        tag = f"h{min(depth + 3, 6)}"
        items = "".join(row(e) for e in node.entries)
        inner = f'<ol class="entries">{items}</ol>' if items else ""
        inner += "".join(section(c, depth + 1) for c in node.children.values())
        return (
            f'<section class="group" data-level="{_e(node.level.lower())}">'
            f"<{tag}>{_e(heading)}</{tag}>{inner}</section>"
        )

    if page.groups:
        body = "".join(section(n, 0) for n in page.groups.values())
    else:
        body = "".join(row(e) for e in page.entries)
        body = f'<ol class="entries">{body}</ol>' if body else ""
    who = page.passport.owner_display_name or page.passport.owner_id or "identity not disclosed"
    expires = (
        f"<p class='meta'>This share link expires {page.expires_at.isoformat()}.</p>"
        if page.expires_at
        else ""
    )
    command = f"keiko passport verify {cli_target}"
    if chain is not None:
        where = (
            f"<p class='meta' id='chain'>Anchored on chain <code>{_e(chain.chain_name)}</code>"
            f" (<code>{_e(hex(chain.chain_id))}</code>), contract "
            f"<code>{_e(hex(chain.anchor_contract))}</code>"
            + (f", node <code>{_e(chain.rpc_url)}</code>" if chain.rpc_url else "")
            + ".</p>"
        )
    else:
        where = ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex">
<title>Keiko passport {_e(page.passport.id)}</title><style>{_STYLE}</style></head>
<body>
<h1>Life-Learning Passport</h1>
<p class="meta">Passport <code id="passport-id">{_e(page.passport.id)}</code> · learner
<span id="learner">{_e(who)}</span>
· key <code>{_e(page.passport.ed25519_public_key or "-")}</code></p>
{expires}{where}
<p class="counts" id="counts"><span>{len(page.entries)} entries</span>
<span>{counts["verified"]} verified</span><span>{counts["failed"]} failed</span>
<span>{counts["pending"]} pending</span></p>
<div id="timeline">
{body or "<p>No entries are visible.</p>"}
</div>
<h2>Verify it yourself</h2>
<p>Each entry's Ed25519 signature and Merkle inclusion proof were checked by this server
against the root recorded on Keikochain. You do not have to trust it: with Keiko
installed (<code>make install</code> in its repository), run</p>
<div class="command"><pre id="verify-command">{_e(command)}</pre>
<button type="button" id="copy-command">Copy</button></div>
<p>which downloads the public export, checks every signature and proof, and reads every
root from the chain the export names, checking its chain id and the anchor contract's
code. <code>--rpc &lt;url&gt;</code> reads the chain from a node of your choice instead.</p>
<p>An entry's W3C Verifiable Credential (when the learner issued one) is checked the same
way, <code>keiko passport verify credential.json --rpc &lt;url&gt;</code>, or by any Data
Integrity verifier (<code>eddsa-rdfc-2022</code>; contexts at <code>/contexts/</code>).</p>
<script>
document.getElementById("copy-command").addEventListener("click", async (event) => {{
  const text = document.getElementById("verify-command").textContent;
  try {{ await navigator.clipboard.writeText(text); event.target.textContent = "Copied"; }}
  catch (err) {{ window.getSelection().selectAllChildren(
    document.getElementById("verify-command")); event.target.textContent = "Press Ctrl-C"; }}
}});
</script>
</body></html>"""


def _error_response(err: HttpError, *, as_html: bool) -> Response:
    if as_html:
        body = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Passport not available"
            f"</title></head><body><h1>Passport not available</h1><p>{_e(err.reason)}</p>"
            "</body></html>"
        )
        return HTMLResponse(body, status_code=err.status)
    return JSONResponse({"error": err.reason}, status_code=err.status)


def _path_param(request: Request, name: str) -> str:
    value = str(request.path_params.get(name, ""))
    if not value or len(value) > 200:
        raise HttpError(400, f"{name}: must be 1 to 200 characters")
    return value


def verify_routes(
    channel: grpc.aio.Channel,
    *,
    chain_rpc_url: str = "",
    explorer_tx_url: str = "",
    public_base_url: str = "",
    clock: Clock | None = None,
) -> list[Route]:
    """The public export and verification routes (see the module docstring)."""
    reader = PassportReader(channel)
    now = (clock or SystemClock()).now
    chain_info = ChainInfoSource(channel, clock or SystemClock())
    explorer = explorer_tx_url or DEFAULT_EXPLORER

    async def export_by_id(request: Request) -> Response:
        """
        ---
        summary: The public passport's export document (keiko.passport.export)
        tags: [verification]
        parameters:
          - {name: passport_id, in: path, required: true, schema: {$ref: "#/components/schemas/Id"}}
        responses:
          200: {description: the export document}
          404: {description: unknown or private passport}
          409: {description: the disclosure withholds the statement content}
        """
        try:
            page = await reader.by_id(_path_param(request, "passport_id"))
            return _export_response(page, await chain_info.get())
        except HttpError as err:
            return _error_response(err, as_html=False)

    async def export_by_token(request: Request) -> Response:
        """
        ---
        summary: A share link's export document (keiko.passport.export)
        tags: [verification]
        parameters:
          - {name: token, in: path, required: true, schema: {$ref: "#/components/schemas/Id"}}
        responses:
          200: {description: the export document}
          404: {description: "unknown, revoked or expired link"}
          409: {description: the disclosure withholds the statement content}
        """
        try:
            page = await reader.by_token(_path_param(request, "token"))
            return _export_response(page, await chain_info.get())
        except HttpError as err:
            return _error_response(err, as_html=False)

    def _export_response(page: Page, chain: ChainRef | None) -> Response:
        try:
            document = export_of(page, now(), chain)
        except ValidationError as err:
            raise HttpError(502, f"the passport service returned a bad entry: {err}") from None
        return Response(
            document.dumps(indent=2),
            media_type="application/json",
            headers={"cache-control": "no-store"},
        )

    def _base(request: Request) -> str:
        return public_base_url.rstrip("/") or str(request.base_url).rstrip("/")

    async def page_by_id(request: Request) -> Response:
        """
        ---
        summary: The verification page of a public passport
        tags: [verification]
        parameters:
          - {name: passport_id, in: path, required: true, schema: {$ref: "#/components/schemas/Id"}}
        responses:
          200: {description: the page (text/html)}
          404: {description: unknown or private passport}
        """
        try:
            passport_id = _path_param(request, "passport_id")
            page = await reader.by_id(passport_id)
            checks = await reader.verify(passport_id=passport_id)
        except HttpError as err:
            return _error_response(err, as_html=True)
        return HTMLResponse(
            render_page(
                page,
                checks,
                explorer_tx_url=explorer,
                cli_target=f"{_base(request)}/verify/{quote(passport_id, safe='')}",
                chain=await chain_info.get(),
                credentials=await entry_credentials(channel, passport_id=passport_id),
            ),
            headers={"cache-control": "no-store"},
        )

    async def page_by_token(request: Request) -> Response:
        """
        ---
        summary: The verification page of a share link
        tags: [verification]
        parameters:
          - {name: token, in: path, required: true, schema: {$ref: "#/components/schemas/Id"}}
        responses:
          200: {description: the page (text/html)}
          404: {description: "unknown, revoked or expired link"}
        """
        try:
            token = _path_param(request, "token")
            page = await reader.by_token(token)
            checks = await reader.verify(token=token)
        except HttpError as err:
            return _error_response(err, as_html=True)
        return HTMLResponse(
            render_page(
                page,
                checks,
                explorer_tx_url=explorer,
                cli_target=f"{_base(request)}/verify/share/{quote(token, safe='')}",
                chain=await chain_info.get(),
                credentials=await entry_credentials(channel, share_token=token),
            ),
            headers={"cache-control": "no-store", "referrer-policy": "no-referrer"},
        )

    async def tx_lookup(request: Request) -> Response:
        """
        ---
        summary: The chain node's receipt of an anchoring transaction
        tags: [verification]
        parameters:
          - {name: tx_hash, in: path, required: true, schema: {$ref: "#/components/schemas/TxHash"}}
        responses:
          200: {description: the receipt}
          400: {description: not a 0x hex felt}
          404: {description: no such transaction}
          502: {description: the chain node did not answer}
          503: {description: no chain RPC URL configured}
        """
        tx_hash = str(request.path_params.get("tx_hash", ""))
        if not _TX_HASH.match(tx_hash):
            return JSONResponse({"error": "tx_hash: must be a 0x hex felt"}, status_code=400)
        named = await chain_info.get()
        rpc_url = chain_rpc_url or (named.rpc_url if named else "")
        if not rpc_url:
            return JSONResponse({"error": "no chain RPC URL configured"}, status_code=503)
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "starknet_getTransactionReceipt",
            "params": {"transaction_hash": tx_hash},
        }
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                reply = await http.post(rpc_url, json=body)
            data = reply.json()
        except (httpx.HTTPError, ValueError):
            return JSONResponse({"error": "the chain node did not answer"}, status_code=502)
        if "error" in data:
            return JSONResponse({"error": data["error"]}, status_code=404)
        return JSONResponse(data.get("result"))

    return [
        Route("/passports/{passport_id}/export.json", export_by_id, methods=["GET"]),
        Route("/share/{token}/export.json", export_by_token, methods=["GET"]),
        Route("/verify/share/{token}", page_by_token, methods=["GET"]),
        Route("/verify/tx/{tx_hash}", tx_lookup, methods=["GET"]),
        Route("/verify/{passport_id}", page_by_id, methods=["GET"]),
    ]
