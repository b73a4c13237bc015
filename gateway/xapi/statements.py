"""The Statements resource.

    PUT  /xapi/statements?statementId=<uuid>   one statement            -> 204
    POST /xapi/statements                      one statement or an array -> 200 ["<id>", ...]
    GET  /xapi/statements?statementId=<uuid>   | voidedStatementId=<uuid> -> the statement
    GET  /xapi/statements?agent=&verb=&activity=&registration=&since=&until=&limit=
                          &ascending=&related_activities=&related_agents=&format=
                          &attachments=        -> {"statements": [...], "more": "<IRL>"}

PUT and POST take application/json, or multipart/mixed with the attachment parts
(Communication 1.5.2); `attachments=true` answers multipart/mixed with the stored
attachment data (2.1.3). `format=ids|canonical` (with Accept-Language) renders the
statements as 2.1.3 describes; `exact` (the default) serves them as stored.

Statements are authorized by the learning service (services/learning/statements/) and
served exactly as stored (the signed JSON text), never re-serialized. A statement id
already stored with other content answers 409.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.xapi import multipart
from gateway.xapi.http import (
    MAX_BODY_BYTES,
    MAX_STATEMENTS_BODY_BYTES,
    HttpError,
    XapiContext,
    bool_param,
    call,
    check_params,
    credentials,
    http_date,
    instant_param,
    parse_json_body,
    read_body,
)
from services.api.keiko.learning import v1 as pb
from services.kit.jsonlimits import JsonRefused, loads_limited
from services.learning.statements.attachments import attachment_objects
from services.learning.xapi import agent_key

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
MAX_LIMIT = 500
# Response headers of PUT/POST: how many statements entered a learner's passport, and how
# many stay in the LRS only (their actor is neither a Keiko account nor a linked identity).
PASSPORT_ENTRIES = "X-Keiko-Passport-Entries"
LRS_ONLY = "X-Keiko-LRS-Only"


def _agent_filter(value: str) -> str:
    """The agent key the learning service indexes agents by (actor, object, members...)."""
    try:
        agent = loads_limited(value)
    except JsonRefused:
        raise HttpError(400, "must be an Agent as JSON", "agent") from None
    if not isinstance(agent, dict):
        raise HttpError(400, "must be an Agent as JSON object", "agent")
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


def _statement_body(request: Request, body: bytes) -> tuple[bytes, list[pb.Attachment]]:
    """The statements' JSON and the attachment parts (Communication 1.5): application/json,
    or multipart/mixed whose first part is the statements (application/json) and whose
    other parts carry X-Experience-API-Hash."""
    content_type = request.headers.get("content-type", "application/json")
    media = content_type.split(";")[0].strip().lower()
    if media == "application/json":
        return _statements_json(body), []
    if media != "multipart/mixed":
        raise HttpError(400, "must be application/json or multipart/mixed", "Content-Type")
    first, *rest = multipart.parse(content_type, body)
    if first.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise HttpError(400, "the first part must be application/json", "Content-Type")
    _statements_json(first.content, "the statements part is")
    parts = []
    for i, part in enumerate(rest, start=1):
        sha2 = part.headers.get("x-experience-api-hash", "")
        if not sha2:
            raise HttpError(400, f"part {i} has no X-Experience-API-Hash", "X-Experience-API-Hash")
        encoding = part.headers.get("content-transfer-encoding", "binary").lower()
        if encoding != "binary":
            raise HttpError(400, f"part {i} must be binary", "Content-Transfer-Encoding")
        parts.append(
            pb.Attachment(
                sha2=sha2,
                content_type=part.headers.get("content-type", "application/octet-stream"),
                content=part.content,
            )
        )
    return first.content, parts


def _statements_json(body: bytes, what: str = "body") -> bytes:
    """The statements' JSON keeps the 5 MiB of every xAPI body; only attachment parts
    use the rest of MAX_STATEMENTS_BODY_BYTES."""
    if len(body) > MAX_BODY_BYTES:
        raise HttpError(413, f"{what} larger than {MAX_BODY_BYTES} bytes")
    return body


def passport_headers(response: Response, stored: list[pb.Statement]) -> Response:
    """Tell the client which statements reached a passport: a statement about a Keiko
    account, or about an identity the learner linked (actor linking), does; any other
    stays in the LRS only (docs/lrs.md)."""
    linked = sum(1 for s in stored if s.learner_id)
    response.headers[PASSPORT_ENTRIES] = str(linked)
    response.headers[LRS_ONLY] = str(len(stored) - linked)
    return response


def _attachment_digests(statements: list[dict[str, Any]]) -> list[str]:
    found: list[str] = []
    for statement in statements:
        for _, attachment in attachment_objects(statement):
            sha2 = str(attachment.get("sha2", "")).lower()
            if sha2 and sha2 not in found:
                found.append(sha2)
    return found


async def _with_attachments(
    learning: pb.LearningServiceStub, body: bytes, statements: list[dict[str, Any]]
) -> Response:
    """Communication 2.1.3 attachments=true: multipart/mixed, the JSON first, then one part
    per attachment whose data the store holds (fileUrl-only attachments have none).

    One digest per call: each part fits a gRPC message (16 MiB of 64), where several
    large parts in one answer would not."""
    stored: list[pb.Attachment] = []
    for sha2 in _attachment_digests(statements):
        found = await call(learning.get_attachments(pb.GetAttachmentsRequest(sha2=[sha2])))
        stored += found.attachments
    parts = [multipart.Part({"Content-Type": "application/json"}, body)]
    parts += [
        multipart.Part(
            {
                "Content-Type": a.content_type,
                "Content-Transfer-Encoding": "binary",
                "X-Experience-API-Hash": a.sha2,
            },
            a.content,
        )
        for a in stored
    ]
    content_type, data = multipart.build(parts)
    return Response(data, headers={"Content-Type": content_type})


def statement_routes(ctx: XapiContext) -> list[BaseRoute]:
    async def put_statement(request: Request, version: str) -> Response:
        """
        ---
        summary: Store one statement under the given id
        tags: [xapi]
        parameters:
          - {name: statementId, in: query, required: true, schema: {type: string}}
        requestBody:
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Statement"}
            multipart/mixed:
              schema: {type: string, description: "the statement part, then attachment parts"}
        responses:
          204: {description: stored (or the same statement was stored before)}
          400: {description: "an invalid statement, with the field path"}
          409: {description: another statement has this id}
        """
        creds = credentials(request)
        params = dict(request.query_params)
        statement_id = params.pop("statementId", "").strip().lower()
        if not statement_id:
            raise HttpError(400, "query parameter is required", "statementId")
        if params:
            raise HttpError(400, "unknown query parameter", sorted(params)[0])
        body, parts = _statement_body(request, await read_body(request, MAX_STATEMENTS_BODY_BYTES))
        text = _single_statement_json(parse_json_body(body, "statement"), statement_id)
        response = await call(
            ctx.learning(request, creds).record_statements(
                pb.RecordStatementsRequest(
                    statement_jsons=[text], xapi_version=version, attachments=parts, brief=True
                )
            )
        )
        return passport_headers(Response(status_code=204), response.statements)

    async def post_statements(request: Request, version: str) -> Response:
        """
        ---
        summary: Store a statement or an array of statements
        tags: [xapi]
        requestBody:
          content:
            application/json:
              schema:
                oneOf:
                  - {$ref: "#/components/schemas/Statement"}
                  - {type: array, items: {$ref: "#/components/schemas/Statement"}}
            multipart/mixed:
              schema: {type: string, description: "the statements part, then attachment parts"}
        responses:
          200: {description: the ids of the stored statements}
          400: {description: "an invalid statement, with the field path"}
          409: {description: another statement has one of these ids}
        """
        creds = credentials(request)
        if request.query_params:
            raise HttpError(400, "unknown query parameter", sorted(request.query_params)[0])
        body, parts = _statement_body(request, await read_body(request, MAX_STATEMENTS_BODY_BYTES))
        data = parse_json_body(body, "statements")
        if isinstance(data, list):
            texts = [json.dumps(item, ensure_ascii=False) for item in data]
        elif isinstance(data, dict):
            texts = [body.decode("utf-8")]
        else:
            raise HttpError(400, "must be a statement or an array of statements", "statements")
        response = await call(
            ctx.learning(request, creds).record_statements(
                pb.RecordStatementsRequest(
                    statement_jsons=texts, xapi_version=version, attachments=parts, brief=True
                )
            )
        )
        answer = JSONResponse([s.id for s in response.statements])
        return passport_headers(answer, response.statements)

    async def get_statements(request: Request, version: str) -> Response:
        """
        ---
        summary: One statement (statementId or voidedStatementId), or a filtered page
        tags: [xapi]
        parameters:
          - {name: statementId, in: query, schema: {type: string}}
          - {name: voidedStatementId, in: query, schema: {type: string}}
          - {$ref: "#/components/parameters/Agent"}
          - {name: verb, in: query, schema: {type: string}}
          - {name: activity, in: query, schema: {type: string}}
          - {name: registration, in: query, schema: {type: string}}
          - {name: since, in: query, schema: {type: string}}
          - {name: until, in: query, schema: {type: string}}
          - {name: limit, in: query, schema: {type: string}}
          - {name: ascending, in: query, schema: {type: string}}
          - {name: related_activities, in: query, schema: {type: string}}
          - {name: related_agents, in: query, schema: {type: string}}
          - {name: format, in: query, schema: {type: string, enum: [exact, ids, canonical]}}
          - {name: attachments, in: query, schema: {type: string}}
          - {name: more, in: query, schema: {type: string}}
        responses:
          200: {description: "the statement, or {statements, more}"}
          400: {description: "an invalid parameter, named in field"}
          404: {description: no such statement visible to the caller}
        """
        creds = credentials(request)
        params = dict(request.query_params)
        learning = ctx.learning(request, creds)
        accept_language = request.headers.get("accept-language", "")
        if "statementId" in params or "voidedStatementId" in params:
            return await _single(learning, params, accept_language)
        check_params(params, QUERY_PARAMS)
        with_attachments = bool_param(params, "attachments")
        fmt = _format(params)
        limit_text = params.get("limit", "0")
        if not (limit_text.isascii() and limit_text.isdigit()):
            raise HttpError(400, "must be a non-negative integer", "limit")
        request_message = pb.QueryStatementsRequest(
            learner_id=_agent_filter(params["agent"]) if "agent" in params else "",
            verb_id=params.get("verb", ""),
            activity_id=params.get("activity", ""),
            registration=params.get("registration", ""),
            ascending=bool_param(params, "ascending"),
            related_activities=bool_param(params, "related_activities"),
            related_agents=bool_param(params, "related_agents"),
            # Communication 2.1.3: 0 (the default) is the most the server allows.
            page_size=min(int(limit_text), MAX_LIMIT) or MAX_LIMIT,
            page_token=params.get("more", ""),
            format=fmt,
            accept_language=accept_language,
            # The answer is the statements' JSON array, written through as it comes.
            json_array=True,
        )
        since, until = instant_param(params, "since"), instant_param(params, "until")
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
        array = result.statements_json_array or "[]"
        body = ('{"statements":' + array + ',"more":' + json.dumps(more) + "}").encode("utf-8")
        if with_attachments:
            stored = json.loads(array)
            response = await _with_attachments(learning, body, stored)
        else:
            response = Response(body, media_type="application/json")
        if result.statement_count:
            response.headers["Last-Modified"] = http_date(result.last_stored)
        return response

    async def _single(
        learning: pb.LearningServiceStub, params: dict[str, str], accept_language: str
    ) -> Response:
        voided = "voidedStatementId" in params
        if "statementId" in params and voided:
            raise HttpError(400, "give statementId or voidedStatementId, not both", "statementId")
        name = "voidedStatementId" if voided else "statementId"
        extra = sorted(set(params) - SINGLE_PARAMS)
        if extra:
            raise HttpError(400, f"cannot be combined with {name}", extra[0])
        with_attachments = bool_param(params, "attachments")
        try:
            result = await call(
                learning.get_statement(
                    pb.GetStatementRequest(
                        statement_id=params[name],
                        format=_format(params),
                        accept_language=accept_language,
                    )
                )
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
        text = statement.statement_json
        if with_attachments:
            response = await _with_attachments(learning, text.encode("utf-8"), [json.loads(text)])
        else:
            response = Response(text, media_type="application/json")
        # Communication 2.1.3.s2.b8: Last-Modified matches the statement's `stored`.
        response.headers["Last-Modified"] = http_date(statement.stored)
        return response

    endpoint = ctx.resource({"GET": get_statements, "PUT": put_statement, "POST": post_statements})
    return [Route("/xapi/statements", endpoint, methods=["GET", "HEAD", "PUT", "POST"])]


def _format(params: dict[str, str]) -> str:
    fmt = params.get("format", "exact")
    if fmt not in ("exact", "ids", "canonical"):
        raise HttpError(400, "must be exact, ids or canonical", "format")
    return fmt
