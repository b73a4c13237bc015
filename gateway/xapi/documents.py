"""The document resources: State, Activity Profile and Agent Profile.

    /xapi/activities/state     activityId, agent, registration?, stateId?   (since for GET)
    /xapi/activities/profile   activityId, profileId?                        (since for GET)
    /xapi/agents/profile       agent, profileId?                             (since for GET)

    PUT    (with the id)  store, replacing             -> 204
    POST   (with the id)  store, merging JSON objects  -> 204
    GET    (with the id)  the document, with Content-Type, ETag and Last-Modified
    GET    (without)      ["id", ...] of the context, Last-Modified of the latest
    DELETE (with the id)  -> 204; State without stateId deletes the context's documents

Concurrency (Communication 3.1): If-Match / If-None-Match are forwarded to the learning
service; a failed precondition is 412, replacing an existing document without either
(profiles; State under 2.0) is 409 with the reason. A document is at most 1 MiB (413).
Documents live in the namespace of the credentials' owner (services/learning/documents).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import TypeVar

import grpc
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.openapi import OPERATIONS_ATTR, Operation, describe, with_parameters
from gateway.xapi.http import (
    HttpError,
    XapiContext,
    call,
    check_params,
    credentials,
    http_date,
    instant_param,
    read_body,
)
from services.api.keiko.learning import v1 as pb
from services.learning.documents.domain import MAX_DOCUMENT_BYTES, etag_of

# The documents' concurrency and size answers (Communication 3.1, 3.2).
STATUSES = {
    grpc.StatusCode.FAILED_PRECONDITION: 412,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
}
# The learning service names key fields by their xAPI parameter already; these are the
# few it names by the proto field.
T = TypeVar("T")
TEXT: Operation = {"type": "string"}
_FIELDS = {"content": "content", "content_type": "Content-Type", "if_match": "If-Match"}


class DocumentResource:
    """One document resource: its path, kind, parameters and id parameter."""

    def __init__(
        self,
        path: str,
        kind: int,
        context_params: tuple[str, ...],
        id_param: str,
    ) -> None:
        self.path = path
        self.kind = kind
        self.context_params = context_params
        self.id_param = id_param
        self.single = frozenset({*context_params, id_param})
        self.listing = frozenset({*context_params, "since"})

    def parameters(self, method: str) -> list[Operation]:
        """The OpenAPI query parameters of `method` (lower case) on this resource."""
        out: list[Operation] = [
            {"name": name, "in": "query", "required": name != "registration", "schema": TEXT}
            for name in self.context_params
        ]
        writes = method in ("put", "post")
        out.append({"name": self.id_param, "in": "query", "required": writes, "schema": TEXT})
        if method == "get":
            out.append({"name": "since", "in": "query", "schema": TEXT})
        return out

    def key(self, params: dict[str, str]) -> pb.DocumentKey:
        return pb.DocumentKey(
            kind=pb.DocumentKind(self.kind),
            activity_id=params.get("activityId", ""),
            agent_json=params.get("agent", ""),
            registration=params.get("registration", ""),
            document_id=params.get(self.id_param, ""),
        )


STATE = DocumentResource(
    "/xapi/activities/state",
    pb.DocumentKind.STATE,
    ("activityId", "agent", "registration"),
    "stateId",
)
ACTIVITY_PROFILE = DocumentResource(
    "/xapi/activities/profile", pb.DocumentKind.ACTIVITY_PROFILE, ("activityId",), "profileId"
)
AGENT_PROFILE = DocumentResource(
    "/xapi/agents/profile", pb.DocumentKind.AGENT_PROFILE, ("agent",), "profileId"
)


async def _call(rpc: Awaitable[T]) -> T:
    try:
        result: T = await call(rpc, STATUSES)
        return result
    except HttpError as error:
        if error.field in _FIELDS:
            error.field = _FIELDS[error.field]
        raise


def document_routes(ctx: XapiContext, resource: DocumentResource) -> list[BaseRoute]:
    def params_of(request: Request, *, single: bool) -> dict[str, str]:
        params = dict(request.query_params)
        check_params(params, resource.single if single else resource.listing | resource.single)
        if single and not params.get(resource.id_param):
            raise HttpError(400, "query parameter is required", resource.id_param)
        return params

    async def write(request: Request, version: str, *, merge: bool) -> Response:
        creds = credentials(request)
        params = params_of(request, single=True)
        content = await read_body(request, MAX_DOCUMENT_BYTES)
        await _call(
            ctx.learning(request, creds).put_document(
                pb.PutDocumentRequest(
                    key=resource.key(params),
                    content=content,
                    content_type=request.headers.get("content-type", ""),
                    merge=merge,
                    if_match=request.headers.get("if-match", ""),
                    if_none_match=request.headers.get("if-none-match", ""),
                    xapi_version=version,
                )
            )
        )
        return Response(status_code=204)

    async def put(request: Request, version: str) -> Response:
        """
        ---
        summary: Store a document, replacing it
        tags: [xapi]
        parameters:
          - {name: If-Match, in: header, schema: {type: string}}
          - {name: If-None-Match, in: header, schema: {type: string}}
        requestBody:
          content:
            application/json: {schema: {type: object}}
            application/octet-stream: {schema: {type: string, format: binary}}
        responses:
          204: {description: stored}
          400: {description: "an invalid parameter, named in field"}
          409: {description: it exists and neither If-Match nor If-None-Match was given}
          412: {description: a precondition failed}
          413: {description: a document over 1 MiB}
        """
        return await write(request, version, merge=False)

    async def post(request: Request, version: str) -> Response:
        """
        ---
        summary: Store a document, merging JSON objects
        tags: [xapi]
        parameters:
          - {name: If-Match, in: header, schema: {type: string}}
          - {name: If-None-Match, in: header, schema: {type: string}}
        requestBody:
          content:
            application/json: {schema: {type: object}}
            application/octet-stream: {schema: {type: string, format: binary}}
        responses:
          204: {description: stored}
          400: {description: "an invalid parameter, or a merge of non-JSON documents"}
          412: {description: a precondition failed}
          413: {description: a document over 1 MiB}
        """
        return await write(request, version, merge=True)

    async def get(request: Request, version: str) -> Response:
        """
        ---
        summary: A document (with its id), or the ids of the context's documents
        tags: [xapi]
        responses:
          200: {description: "the document, or a JSON array of ids"}
          400: {description: "an invalid parameter, named in field"}
          404: {description: no such document}
        """
        creds = credentials(request)
        learning = ctx.learning(request, creds)
        if request.query_params.get(resource.id_param):
            params = params_of(request, single=True)
            reply = await _call(
                learning.get_document(pb.GetDocumentRequest(key=resource.key(params)))
            )
            document = reply.document
            response = Response(document.content, media_type=document.content_type)
            response.headers["ETag"] = f'"{document.etag}"'
            response.headers["Last-Modified"] = http_date(document.updated)
            return response
        params = params_of(request, single=False)
        listing = pb.ListDocumentsRequest(key=resource.key(params))
        since = instant_param(params, "since")
        if since is not None:
            listing.since = since
        ids = await _call(learning.list_documents(listing))
        body = json.dumps(list(ids.document_ids)).encode("utf-8")
        response = Response(body, media_type="application/json")
        response.headers["ETag"] = f'"{etag_of(body)}"'
        if ids.document_ids:
            response.headers["Last-Modified"] = http_date(ids.last_modified)
        return response

    async def delete(request: Request, version: str) -> Response:
        """
        ---
        summary: Delete a document (State without stateId, the context's documents)
        tags: [xapi]
        parameters:
          - {name: If-Match, in: header, schema: {type: string}}
        responses:
          204: {description: deleted}
          400: {description: "an invalid parameter, named in field"}
          412: {description: a precondition failed}
        """
        creds = credentials(request)
        single = bool(request.query_params.get(resource.id_param))
        if not single and resource.kind != pb.DocumentKind.STATE:
            raise HttpError(400, "query parameter is required", resource.id_param)
        params = dict(request.query_params)
        check_params(params, resource.single)
        await _call(
            ctx.learning(request, creds).delete_documents(
                pb.DeleteDocumentsRequest(
                    key=resource.key(params), if_match=request.headers.get("if-match", "")
                )
            )
        )
        return Response(status_code=204)

    endpoint = ctx.resource({"GET": get, "PUT": put, "POST": post, "DELETE": delete})
    # The handlers are shared by the three resources: each adds its own parameters.
    shared: dict[str, Operation] = getattr(endpoint, OPERATIONS_ATTR)
    describe(
        endpoint,
        {method: with_parameters(op, resource.parameters(method)) for method, op in shared.items()},
    )
    return [Route(resource.path, endpoint, methods=["GET", "HEAD", "PUT", "POST", "DELETE"])]


def all_document_routes(ctx: XapiContext) -> list[BaseRoute]:
    return [
        *document_routes(ctx, STATE),
        *document_routes(ctx, ACTIVITY_PROFILE),
        *document_routes(ctx, AGENT_PROFILE),
    ]
