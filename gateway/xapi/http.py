"""What every /xapi resource shares: errors and their HTTP answers, credentials, the
version header, body reading and JSON parsing, and the per-request context (the learning
stub with the caller's credentials, the version/consistency headers on every answer).

Errors: 400 `{"error": reason, "field": path}` for bad input (the path the validator
names, e.g. `statements[0].actor.mbox`), 401 (with `WWW-Authenticate: Basic`), 403, 404,
409, 412, 413 for a body over the limit, 503 when the service is down.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.errors import describe_rpc_error
from gateway.http import forwardable, request_id_or_none
from services.api.keiko.learning import v1 as pb
from services.kit.clock import Clock
from services.kit.grpc.client import stub
from services.kit.jsonlimits import JsonRefused, loads_limited

VERSION_HEADER = "X-Experience-API-Version"
CONSISTENT_THROUGH = "X-Experience-API-Consistent-Through"
LRS_METADATA = "x-keiko-lrs-authorization"  # services.learning.clients.servicer.LRS_METADATA
KEIKO_HOME_PAGE = "https://keiko.network"
VERSIONS = ("1.0.3", "2.0.0")
MAX_BODY_BYTES = 5 * 1024 * 1024


class HttpError(Exception):
    def __init__(self, status: int, error: str, field: str | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.field = field


def error_response(error: HttpError, headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": error.error}
    if error.field is not None:
        body["field"] = error.field
    extra = dict(headers or {})
    if error.status == 401:
        extra["WWW-Authenticate"] = 'Basic realm="Keiko xAPI"'
    return JSONResponse(body, status_code=error.status, headers=extra)


def from_rpc_error(error: grpc.aio.AioRpcError) -> HttpError:
    """The client-facing answer (gateway.errors): a transport message never shows."""
    failure = describe_rpc_error(error)
    if failure is None:
        return HttpError(500, "internal error")
    if failure.violations:
        field, reason = failure.violations[0]
        return HttpError(failure.http_status, reason, field)
    return HttpError(failure.http_status, failure.message)


async def call(rpc: Awaitable[Any]) -> Any:
    try:
        return await rpc
    except grpc.aio.AioRpcError as error:
        raise from_rpc_error(error) from error


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise HttpError(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HttpError(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def forwarded(request: Request) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    request_id = request_id_or_none(request.headers.get("x-request-id"))
    if request_id:
        pairs.append(("x-request-id", request_id))
    if request.client is not None:
        pairs.append(("x-forwarded-for", request.client.host))
    return pairs


def credentials(request: Request) -> list[tuple[str, str]]:
    """The caller's credentials as gRPC metadata: an LRS client's Basic credentials or a
    Keiko bearer token (401 without either)."""
    value = request.headers.get("authorization")
    if not value:
        raise HttpError(401, "authentication required: HTTP Basic (LRS client) or Bearer")
    if not forwardable(value):
        raise HttpError(401, "the Authorization header is malformed (printable ASCII only)")
    scheme = value.strip().split(" ", 1)[0].lower()
    if scheme == "basic":
        return [(LRS_METADATA, value.strip())]
    if scheme == "bearer":
        return [("authorization", value.strip())]
    raise HttpError(401, "Authorization must use the Basic or Bearer scheme")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise HttpError(400, f'duplicate member "{key}"', "statement")
        out[key] = value
    return out


def parse_json_body(body: bytes, field: str) -> Any:
    """UTF-8 JSON within the depth limit (services.kit.jsonlimits), no duplicate members."""
    try:
        return loads_limited(body, object_pairs_hook=_no_duplicates)
    except JsonRefused as refused:
        raise HttpError(400, refused.reason, field) from None


def served_version(request: Request) -> str:
    """The version served for this request's `X-Experience-API-Version` (400 when missing
    or unsupported)."""
    value = request.headers.get(VERSION_HEADER)
    if value is None:
        raise HttpError(400, "header is required", VERSION_HEADER)
    text = value.strip()
    if text in ("1.0", "2.0") or (text.startswith(("1.0.", "2.0.")) and text[4:].isdigit()):
        return "1.0.3" if text.startswith("1.") else "2.0.0"
    raise HttpError(
        400,
        f'unsupported version "{text}": expected 1.0.x (1.0.3) or 2.0.x (2.0.0)',
        VERSION_HEADER,
    )


def bool_param(params: dict[str, str], name: str) -> bool:
    value = params.get(name)
    if value is None:
        return False
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise HttpError(400, 'must be "true" or "false"', name)


def instant_param(params: dict[str, str], name: str) -> datetime | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise HttpError(400, "must be an RFC 3339 timestamp", name) from None
    if parsed.tzinfo is None:
        raise HttpError(400, "must carry a timezone", name)
    return parsed.astimezone(UTC)


Handler = Callable[[Request], Awaitable[Response]]
VersionedHandler = Callable[[Request, str], Awaitable[Response]]


@dataclass(frozen=True)
class XapiContext:
    """What each resource's routes are built on: the channel to the learning service and
    the clock stamping `X-Experience-API-Consistent-Through`."""

    channel: grpc.aio.Channel
    clock: Clock

    def learning(self, request: Request, creds: list[tuple[str, str]]) -> pb.LearningServiceStub:
        pairs = forwarded(request) + creds
        return stub(pb.LearningServiceStub, self.channel, metadata=lambda: pairs)

    def guarded(self, handler: VersionedHandler) -> Handler:
        """Checks the version header, turns HttpError into its answer, and sets the
        version and consistency headers on every answer."""

        async def endpoint(request: Request) -> Response:
            served = VERSIONS[0]
            try:
                served = served_version(request)
                response = await handler(request, served)
            except HttpError as error:
                response = error_response(error)
            response.headers[VERSION_HEADER] = served
            response.headers[CONSISTENT_THROUGH] = (
                self.clock.now()
                .astimezone(UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z")
            )
            return response

        return endpoint
