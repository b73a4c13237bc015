"""What every /xapi resource shares: errors and their HTTP answers, credentials, the
version header, body reading and JSON parsing, and the per-request context (the learning
stub with the caller's credentials, the version/consistency headers on every answer).

Errors: 400 `{"error": reason, "field": path}` for bad input (the path the validator
names, e.g. `statements[0].actor.mbox`), 401 (with `WWW-Authenticate: Basic`), 403, 404,
409, 412, 413 for a body over the limit, 503 when the service is down.
"""

from __future__ import annotations

import email.utils
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.errors import describe_rpc_error
from gateway.http import forwardable, request_id_or_none
from gateway.openapi import describe, xapi_operations
from services.api.keiko.learning import v1 as pb
from services.kit.clock import Clock
from services.kit.grpc.client import stub
from services.kit.jsonlimits import JsonRefused, loads_limited
from services.learning.statements.attachments import MAX_ATTACHMENT_BYTES

VERSION_HEADER = "X-Experience-API-Version"
CONSISTENT_THROUGH = "X-Experience-API-Consistent-Through"
LRS_METADATA = "x-keiko-lrs-authorization"  # services.learning.clients.servicer.LRS_METADATA
KEIKO_HOME_PAGE = "https://keiko.network"
VERSIONS = ("1.0.3", "2.0.0")
# Answer to a request without a (supported) version header: the latest version
# (Communication 3.3.s3.b2; the 2.0 suite expects 400 with 2.0.0 there).
LATEST = VERSIONS[-1]
# Alternate request syntax (Communication 1.3): form parameters that are headers.
FORM_HEADERS = (
    "authorization",
    "x-experience-api-version",
    "content-type",
    "content-length",
    "if-match",
    "if-none-match",
)
ALTERNATE_METHODS = ("GET", "PUT", "POST", "DELETE")
MAX_BODY_BYTES = 5 * 1024 * 1024
# A statement request may carry attachment parts besides its (at most 5 MiB of) JSON:
# room for one part at the learning service's part limit.
MAX_STATEMENTS_BODY_BYTES = MAX_BODY_BYTES + MAX_ATTACHMENT_BYTES


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


def from_rpc_error(
    error: grpc.aio.AioRpcError, statuses: Mapping[grpc.StatusCode, int] | None = None
) -> HttpError:
    """The client-facing answer (gateway.errors): a transport message never shows.
    `statuses` overrides the HTTP status of client-facing codes for one resource."""
    failure = describe_rpc_error(error)
    if failure is None:
        return HttpError(500, "internal error")
    status = (statuses or {}).get(error.code(), failure.http_status)
    if failure.violations:
        field, reason = failure.violations[0]
        return HttpError(status, reason, field)
    return HttpError(status, failure.message)


async def call(rpc: Awaitable[Any], statuses: Mapping[grpc.StatusCode, int] | None = None) -> Any:
    """Await a learning RPC; its error becomes the HttpError a client gets (`statuses`
    overrides the default mapping for one resource, e.g. 412 for the documents)."""
    try:
        return await rpc
    except grpc.aio.AioRpcError as error:
        raise from_rpc_error(error, statuses) from error


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


def http_date(value: datetime) -> str:
    """RFC 7231 IMF-fixdate, for Last-Modified."""
    return email.utils.format_datetime(value.astimezone(UTC), usegmt=True)


def check_params(params: Mapping[str, str], allowed: frozenset[str]) -> None:
    """Communication 3.2.s3.b7/b8: an unknown parameter (or one in another case) is 400."""
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise HttpError(400, "unknown query parameter", unknown[0])


async def alternate_request(request: Request) -> Request:
    """Communication 1.3: `POST ...?method=PUT` with a form body becomes the request it
    stands for (headers and query parameters from the form, `content` as the body)."""
    params = request.query_params
    if set(params) != {"method"}:
        raise HttpError(400, "only the method parameter may be in the query string", "method")
    method = params["method"].upper()
    if method not in ALTERNATE_METHODS:
        raise HttpError(400, f"must be one of {', '.join(ALTERNATE_METHODS)}", "method")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise HttpError(400, "must be application/x-www-form-urlencoded", "Content-Type")
    raw = await read_body(request)
    try:
        form = urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise HttpError(400, "the form is not UTF-8", "content") from None
    headers = {k.lower(): v for k, v in request.headers.items() if k.lower() not in FORM_HEADERS}
    query: list[tuple[str, str]] = []
    content = b""
    seen: set[str] = set()
    for name, value in form:
        if name in seen:
            raise HttpError(400, "form parameter given twice", name)
        seen.add(name)
        if name == "content":
            content = value.encode("utf-8")
        elif name.lower() in FORM_HEADERS:
            headers[name.lower()] = value
        else:
            query.append((name, value))
    headers.pop("content-length", None)
    headers["content-length"] = str(len(content))
    if not content:
        headers.pop("content-type", None)
    scope = {
        **request.scope,
        "method": method,
        "query_string": urllib.parse.urlencode(query).encode("ascii"),
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.request", "body": b"", "more_body": False}
        sent = True
        return {"type": "http.request", "body": content, "more_body": False}

    return Request(scope, receive)


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

    def stamp(self, response: Response, served: str) -> Response:
        response.headers[VERSION_HEADER] = served
        response.headers[CONSISTENT_THROUGH] = (
            self.clock.now()
            .astimezone(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )
        return response

    def resource(self, handlers: Mapping[str, VersionedHandler]) -> Handler:
        """One endpoint for a resource path: the alternate request syntax (1.3), the
        version header (3.3), dispatch by method (HEAD answers as GET without a body,
        1.1), HttpError to its answer, and the version and consistency headers."""

        async def endpoint(request: Request) -> Response:
            served = LATEST
            try:
                if request.method == "POST" and "method" in request.query_params:
                    request = await alternate_request(request)
                served = served_version(request)
                method = "GET" if request.method == "HEAD" else request.method
                handler = handlers.get(method)
                if handler is None:
                    raise HttpError(405, f"{request.method} is not supported here")
                response = await handler(request, served)
                if request.method == "HEAD":
                    response = Response(status_code=response.status_code, headers=response.headers)
            except HttpError as error:
                response = error_response(error)
            return self.stamp(response, served)

        describe(endpoint, xapi_operations(handlers, [m for m in handlers if m != "POST"]))
        return endpoint
