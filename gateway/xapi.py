"""The xAPI Statements resource for existing tools (LMSs, authoring tools, LRS clients).

    PUT  /xapi/statements?statementId=<uuid>   one statement            -> 204
    POST /xapi/statements                      one statement or an array -> 200 ["<id>", ...]
    GET  /xapi/statements?statementId=<uuid>   | voidedStatementId=<uuid> -> the statement
    GET  /xapi/statements?agent=&verb=&activity=&registration=&since=&until=&limit=
                          &ascending=&related_activities=&format=
                                               -> {"statements": [...], "more": "<IRL>"}
    GET  /xapi/about                           -> {"version": ["1.0.3", "2.0.0"]}

Every /xapi/statements request carries `X-Experience-API-Version` (1.0.x or 2.0.x; the
served version is echoed) and is authenticated with HTTP Basic by a registered LRS client
(key:secret, forwarded to the learning service as `x-keiko-lrs-authorization`, which
checks it against the stored hash) or with a Keiko bearer token. The service authorizes
every statement (see services/learning/service.py). Statements are served exactly as
stored (the signed JSON text), never re-serialized.

Errors: 400 `{"error": reason, "field": path}` for bad input (the path the validator
names, e.g. `statements[0].actor.mbox`), 401 (with `WWW-Authenticate: Basic`), 403, 404,
409 for a statement id already stored with other content, 503 when the service is down.
Not supported: attachments (multipart/mixed) and the `ids`/`canonical` formats (served as
`exact`); `agent` queries match the statement actor only (no `related_agents`).
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from services.api.keiko.learning import v1 as pb
from services.kit.clock import Clock, SystemClock
from services.kit.grpc.client import stub
from services.kit.grpc.errors import field_violations
from services.learning.xapi import agent_key

VERSION_HEADER = "X-Experience-API-Version"
CONSISTENT_THROUGH = "X-Experience-API-Consistent-Through"
LRS_METADATA = "x-keiko-lrs-authorization"  # services.learning.servicer.LRS_METADATA
KEIKO_HOME_PAGE = "https://keiko.network"
VERSIONS = ("1.0.3", "2.0.0")
MAX_BODY_BYTES = 5 * 1024 * 1024
QUERY_PARAMS = frozenset(
    {
        "agent",
        "verb",
        "activity",
        "registration",
        "since",
        "until",
        "limit",
        "ascending",
        "related_activities",
        "related_agents",
        "format",
        "attachments",
        "more",
    }
)
SINGLE_PARAMS = frozenset({"statementId", "voidedStatementId", "format", "attachments"})

_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


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
    status = _STATUS.get(error.code())
    if status is None:
        return HttpError(500, "internal error")
    violations = field_violations(error)
    if violations:
        field, reason = violations[0]
        return HttpError(status, reason, field)
    return HttpError(status, error.details() or error.code().name.lower())


async def call(rpc: Awaitable[Any]) -> Any:
    try:
        return await rpc
    except grpc.aio.AioRpcError as error:
        raise from_rpc_error(error) from error


async def read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HttpError(413, f"body larger than {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HttpError(413, f"body larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def forwarded(request: Request) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    request_id = request.headers.get("x-request-id")
    if request_id:
        pairs.append(("x-request-id", request_id[:128]))
    if request.client is not None:
        pairs.append(("x-forwarded-for", request.client.host))
    return pairs


def _credentials(request: Request) -> list[tuple[str, str]]:
    value = request.headers.get("authorization")
    if not value:
        raise HttpError(401, "authentication required: HTTP Basic (LRS client) or Bearer")
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


def _reject_constant(name: str) -> Any:
    raise HttpError(400, f"{name} is not JSON", "statement")


def parse_json_body(body: bytes, field: str) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise HttpError(400, "body is not UTF-8", field) from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise HttpError(400, f"body is not JSON: {exc.msg} at {exc.pos}", field) from None


def _version(request: Request) -> str:
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


def _bool(params: dict[str, str], name: str) -> bool:
    value = params.get(name)
    if value is None:
        return False
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise HttpError(400, 'must be "true" or "false"', name)


def _instant(params: dict[str, str], name: str) -> datetime | None:
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


def _agent_filter(value: str) -> str:
    try:
        agent = json.loads(value)
    except json.JSONDecodeError:
        raise HttpError(400, "must be an Agent as JSON", "agent") from None
    if not isinstance(agent, dict):
        raise HttpError(400, "must be an Agent as JSON object", "agent")
    account = agent.get("account")
    if isinstance(account, dict) and account.get("homePage") == KEIKO_HOME_PAGE:
        name = account.get("name")
        if isinstance(name, str) and name:
            return name
    key = agent_key(agent)
    if key is None:
        raise HttpError(400, "must carry an inverse functional identifier", "agent")
    return key


def _single_statement_json(obj: Any, statement_id: str) -> str:
    if not isinstance(obj, dict):
        raise HttpError(400, "must be one statement (a JSON object)", "statement")
    given = obj.get("id")
    if given is not None and (not isinstance(given, str) or given.lower() != statement_id):
        raise HttpError(400, "does not match the statement's id", "statementId")
    return json.dumps({"id": statement_id, **obj}, ensure_ascii=False)


def _check_content_type(request: Request) -> None:
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if content_type.lower() == "multipart/mixed":
        raise HttpError(400, "statements with attachments are not supported", "Content-Type")
    if content_type.lower() != "application/json":
        raise HttpError(400, "must be application/json", "Content-Type")


Handler = Callable[[Request], Awaitable[Response]]


def xapi_routes(channel: grpc.aio.Channel, *, clock: Clock | None = None) -> list[BaseRoute]:
    """The /xapi routes, calling the learning service over `channel`. Mount them in the
    gateway's Starlette app: `Starlette(routes=[..., *xapi_routes(channel)])`."""
    now = (clock or SystemClock()).now

    def client(request: Request, credentials: list[tuple[str, str]]) -> pb.LearningServiceStub:
        pairs = forwarded(request) + credentials
        return stub(pb.LearningServiceStub, channel, metadata=lambda: pairs)

    def guarded(handler: Callable[[Request, str], Awaitable[Response]]) -> Handler:
        async def endpoint(request: Request) -> Response:
            served = VERSIONS[0]
            try:
                served = _version(request)
                response = await handler(request, served)
            except HttpError as error:
                response = error_response(error)
            response.headers[VERSION_HEADER] = served
            response.headers[CONSISTENT_THROUGH] = (
                now().astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            )
            return response

        return endpoint

    async def put_statement(request: Request, version: str) -> Response:
        credentials = _credentials(request)
        _check_content_type(request)
        params = dict(request.query_params)
        statement_id = params.pop("statementId", "").strip().lower()
        if not statement_id:
            raise HttpError(400, "query parameter is required", "statementId")
        if params:
            raise HttpError(400, "unknown query parameter", sorted(params)[0])
        text = _single_statement_json(
            parse_json_body(await read_body(request), "statement"), statement_id
        )
        await call(
            client(request, credentials).record_statements(
                pb.RecordStatementsRequest(statement_jsons=[text], xapi_version=version)
            )
        )
        return Response(status_code=204)

    async def post_statements(request: Request, version: str) -> Response:
        credentials = _credentials(request)
        _check_content_type(request)
        if request.query_params:
            raise HttpError(400, "unknown query parameter", sorted(request.query_params)[0])
        body = await read_body(request)
        data = parse_json_body(body, "statements")
        if isinstance(data, list):
            texts = [json.dumps(item, ensure_ascii=False) for item in data]
        elif isinstance(data, dict):
            texts = [body.decode("utf-8")]
        else:
            raise HttpError(400, "must be a statement or an array of statements", "statements")
        response = await call(
            client(request, credentials).record_statements(
                pb.RecordStatementsRequest(statement_jsons=texts, xapi_version=version)
            )
        )
        return JSONResponse([s.id for s in response.statements])

    async def get_statements(request: Request, version: str) -> Response:
        credentials = _credentials(request)
        params = dict(request.query_params)
        learning = client(request, credentials)
        if "statementId" in params or "voidedStatementId" in params:
            return await _single(learning, params)
        unknown = sorted(set(params) - QUERY_PARAMS)
        if unknown:
            raise HttpError(400, "unknown query parameter", unknown[0])
        if _bool(params, "attachments"):
            raise HttpError(400, "attachments are not supported", "attachments")
        if params.get("format", "exact") not in ("exact", "ids", "canonical"):
            raise HttpError(400, "must be exact, ids or canonical", "format")
        if params.get("related_agents"):
            raise HttpError(400, "related_agents is not supported", "related_agents")
        limit_text = params.get("limit", "0")
        if not limit_text.isdigit():
            raise HttpError(400, "must be a non-negative integer", "limit")
        request_message = pb.QueryStatementsRequest(
            learner_id=_agent_filter(params["agent"]) if "agent" in params else "",
            verb_id=params.get("verb", ""),
            activity_id=params.get("activity", ""),
            registration=params.get("registration", ""),
            ascending=_bool(params, "ascending"),
            related_activities=_bool(params, "related_activities"),
            page_size=min(int(limit_text), 500),
            page_token=params.get("more", ""),
        )
        since, until = _instant(params, "since"), _instant(params, "until")
        if since is not None:
            request_message.since = since
        if until is not None:
            request_message.until = until
        result = await call(learning.query_statements(request_message))
        more = ""
        if result.next_page_token:
            kept = {k: v for k, v in params.items() if k != "more"}
            kept["more"] = result.next_page_token
            more = "/xapi/statements?" + urllib.parse.urlencode(kept)
        body = (
            '{"statements":['
            + ",".join(s.statement_json for s in result.statements)
            + '],"more":'
            + json.dumps(more)
            + "}"
        )
        return Response(body, media_type="application/json")

    async def _single(learning: pb.LearningServiceStub, params: dict[str, str]) -> Response:
        voided = "voidedStatementId" in params
        if "statementId" in params and voided:
            raise HttpError(400, "give statementId or voidedStatementId, not both", "statementId")
        name = "voidedStatementId" if voided else "statementId"
        extra = sorted(set(params) - SINGLE_PARAMS)
        if extra:
            raise HttpError(400, f"cannot be combined with {name}", extra[0])
        try:
            result = await call(
                learning.get_statement(pb.GetStatementRequest(statement_id=params[name]))
            )
        except HttpError as error:
            if error.field == "statement_id":
                error.field = name
            raise
        statement = result.statement
        if statement.voided != voided:
            reason = (
                "the statement is voided: use voidedStatementId"
                if statement.voided
                else "the statement is not voided: use statementId"
            )
            raise HttpError(404, reason)
        return Response(statement.statement_json, media_type="application/json")

    statements_get = guarded(get_statements)
    statements_put = guarded(put_statement)
    statements_post = guarded(post_statements)

    async def statements(request: Request) -> Response:
        if request.method == "PUT":
            return await statements_put(request)
        if request.method == "POST":
            return await statements_post(request)
        return await statements_get(request)

    async def about(_: Request) -> Response:
        return JSONResponse({"version": list(VERSIONS), "extensions": {}})

    return [
        Route("/xapi/statements", statements, methods=["GET", "PUT", "POST"]),
        Route("/xapi/about", about, methods=["GET"]),
    ]
