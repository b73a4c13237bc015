"""The public export and verification routes, and their errors (see the package
docstring)."""

from __future__ import annotations

from urllib.parse import quote

import grpc
import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from chain.verify.export import ChainRef
from gateway.credentials_api import entry_credentials
from gateway.verify_page.export import (
    DEFAULT_EXPLORER,
    TX_HASH,
    ChainInfoSource,
    HttpError,
    Page,
    PassportReader,
    export_of,
)
from gateway.verify_page.render import esc, render_page
from services.kit.clock import Clock, SystemClock
from services.kit.errors import ValidationError


def _error_response(err: HttpError, *, as_html: bool) -> Response:
    if as_html:
        body = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Passport not available"
            f"</title></head><body><h1>Passport not available</h1><p>{esc(err.reason)}</p>"
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
        if not TX_HASH.match(tx_hash):
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
