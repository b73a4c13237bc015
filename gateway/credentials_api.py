"""Verifiable Credentials over HTTP: the JSON-LD contexts, status lists, credentials and
presentations a verifier fetches, and the learner's REST operations.

Public (each endpoint's docstring is its OpenAPI operation, after ``---``):

- ``GET /ns/credentials/v1``: Keiko's JSON-LD context (its URL's path);
- ``GET /contexts/{file}``: every context Keiko's credentials use, bundled
  (``chain/credentials/contexts``): verifiers can pin them and work offline;
- ``GET /credentials/status/{list_id}``: a Bitstring Status List credential;
- ``GET /credentials/{credential_id}``: a credential (its subject and issuer with a
  bearer token; anyone through ``?share_token=`` or a public passport that shows it);
- ``GET /share/{token}/credentials``: what a share link shows;
- ``GET /share/{token}/presentation?challenge=&domain=``: the share link as a Verifiable
  Presentation the learner's key signs over the verifier's challenge and domain.

With ``Authorization: Bearer <access token>``:

- ``POST /credentials``: issue (body as ``IssueCredentialsInput`` in GraphQL, snake_case);
- ``GET /credentials``: yours, or ``?issued_by_me=true``;
- ``POST /credentials/{credential_id}/revoke``.

Errors are JSON ``{"error", "field"?}`` with the HTTP status of the gRPC code.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chain.credentials.documents import (
    KEIKO_CONTEXT_PATH,
    KEIKO_CREDENTIALS_V1,
    bundled_context,
    context_by_file,
)
from gateway.http import forwardable
from services.api.keiko.passport import v1 as pb
from services.kit.grpc.client import stub
from services.kit.jsonlimits import JsonRefused, loads_limited

JSONLD = "application/ld+json"
VC_JSONLD = "application/vc+ld+json"
MAX_BODY_BYTES = 64 * 1024
_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
_FORMATS = {"learning_record", "per_entry", "open_badge"}


class ApiError(Exception):
    def __init__(self, status: int, reason: str, field: str = "") -> None:
        super().__init__(reason)
        self.status, self.reason, self.field = status, reason, field

    def response(self) -> JSONResponse:
        body = {"error": self.reason}
        if self.field:
            body["field"] = self.field
        return JSONResponse(body, status_code=self.status)


def _from_rpc(error: grpc.aio.AioRpcError) -> ApiError:
    status = _STATUS.get(error.code(), 502)
    details = error.details() or error.code().name
    if status == 502:
        return ApiError(502, "the passport service failed")
    field = details.partition(": ")[0] if status == 400 and ": " in details else ""
    return ApiError(status, details, field)


def credential_json(c: pb.VerifiableCredential) -> dict[str, Any]:
    """A credential as the REST API lists it: its metadata and the signed document."""
    reason = pb.CredentialRevocationReason(c.revocation_reason).name if c.revocation_reason else ""
    revoked = c.revoked_at if c.revoked_at and c.revoked_at.year > 1970 else None
    return {
        "id": c.id,
        "format": (pb.CredentialFormat(c.format).name or "").lower(),
        "issuer_did": c.issuer_did,
        "issuer_id": c.issuer_id,
        "subject_did": c.subject_did,
        "statement_ids": list(c.statement_ids),
        "issued_at": c.issued_at.isoformat(),
        "revoked_at": None if revoked is None else revoked.isoformat(),
        "revocation_reason": (reason or "").lower() or None,
        "status_list_url": c.status_list_url,
        "status_list_index": c.status_list_index,
        "share_link_id": c.share_link_id or None,
        "credential": json.loads(c.document_json) if c.document_json else None,
    }


def _text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key, "")
    if not isinstance(value, str):
        raise ApiError(400, "must be a string", key)
    return value


def issue_request(body: object) -> pb.IssueCredentialsRequest:
    """The JSON body of ``POST /credentials``."""
    if not isinstance(body, Mapping):
        raise ApiError(400, "the body must be a JSON object")
    fmt = _text(body, "format")
    if fmt not in _FORMATS:
        raise ApiError(400, "must be learning_record, per_entry or open_badge", "format")
    ids = body.get("statement_ids", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ApiError(400, "must be a list of strings", "statement_ids")
    request = pb.IssueCredentialsRequest(
        format=pb.CredentialFormat.from_string(fmt.upper()),
        statement_ids=ids,
        course_id=_text(body, "course_id"),
        share_link_id=_text(body, "share_link_id"),
        request_id=_text(body, "request_id"),
    )
    achievement = body.get("achievement")
    if achievement is not None:
        if not isinstance(achievement, Mapping):
            raise ApiError(400, "must be an object", "achievement")
        request.achievement = pb.Achievement(
            **{
                key: _text(achievement, key)
                for key in ("id", "name", "description", "criteria", "achievement_type")
            }
        )
    return request


Handler = Callable[[Request], Awaitable[Response]]


def _guarded(handler: Handler) -> Handler:
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as error:
            return error.response()
        except grpc.aio.AioRpcError as error:
            return _from_rpc(error).response()

    run.__doc__ = handler.__doc__
    run.__name__ = handler.__name__
    return run


def credential_routes(channel: grpc.aio.Channel) -> list[Route]:
    """The routes of the module docstring."""

    def passport(request: Request, *, authenticated: bool = False) -> pb.PassportServiceStub:
        authorization = request.headers.get("authorization", "")
        if authenticated and not authorization:
            raise ApiError(401, "authentication required: Authorization: Bearer <token>")
        metadata: list[tuple[str, str]] = []
        if authorization:
            if not forwardable(authorization):
                raise ApiError(401, "the authorization header is malformed")
            metadata.append(("authorization", authorization))
        return stub(pb.PassportServiceStub, channel, metadata=lambda: metadata)

    def param(request: Request, name: str) -> str:
        value = str(request.path_params.get(name, ""))
        if not value or len(value) > 200:
            raise ApiError(400, "must be 1 to 200 characters", name)
        return value

    async def keiko_context(_: Request) -> Response:
        """
        ---
        summary: Keiko's JSON-LD context for learning records and Keikochain anchors
        tags: [credentials]
        responses:
          200: {description: "the context, application/ld+json"}
        """
        found = bundled_context(KEIKO_CREDENTIALS_V1)
        assert found is not None
        return Response(found.body, media_type=JSONLD, headers=_CACHE)

    async def context_file(request: Request) -> Response:
        """
        ---
        summary: A JSON-LD context Keiko's credentials use, as bundled
        tags: [credentials]
        parameters:
          - {name: file, in: path, required: true, schema: {$ref: "#/components/schemas/Id"}}
        responses:
          200: {description: "the context, application/ld+json"}
          404: {description: not a bundled context}
        """
        found = context_by_file(param(request, "file"))
        if found is None:
            raise ApiError(404, "not a context Keiko bundles")
        return Response(found.body, media_type=JSONLD, headers=_CACHE)

    async def status_list(request: Request) -> Response:
        """
        ---
        summary: A Bitstring Status List credential (revocations of one issuer)
        tags: [credentials]
        parameters:
          - {name: list_id, in: path, required: true, schema: {$ref: "#/components/schemas/Id"}}
        responses:
          200: {description: the signed BitstringStatusListCredential}
          404: {description: no such list}
          503: {description: not published yet}
        """
        reply = await passport(request).get_status_list(
            pb.GetStatusListRequest(list_id=param(request, "list_id"))
        )
        return Response(
            reply.document_json, media_type=VC_JSONLD, headers={"cache-control": "no-cache"}
        )

    async def get_credential(request: Request) -> Response:
        """
        ---
        summary: One credential (the signed JSON-LD document)
        tags: [credentials]
        parameters:
          - {name: credential_id, in: path, required: true,
             schema: {$ref: "#/components/schemas/Id"}}
          - {name: share_token, in: query, required: false, schema: {type: string}}
        responses:
          200: {description: "the signed credential, application/vc+ld+json"}
          404: {description: "no such credential, or not visible to the caller"}
        """
        reply = await passport(request).get_credential(
            pb.GetCredentialRequest(
                credential_id=param(request, "credential_id"),
                share_token=request.query_params.get("share_token", ""),
            )
        )
        return Response(
            reply.credential.document_json,
            media_type=VC_JSONLD,
            headers={"cache-control": "no-store"},
        )

    async def shared_credentials(request: Request) -> Response:
        """
        ---
        summary: The credentials a share link shows
        tags: [credentials]
        parameters:
          - {name: token, in: path, required: true, schema: {$ref: "#/components/schemas/Id"}}
        responses:
          200: {description: "{credentials: [...]}"}
          404: {description: "unknown, revoked or expired link"}
        """
        reply = await passport(request).list_credentials(
            pb.ListCredentialsRequest(share_token=param(request, "token"))
        )
        return JSONResponse({"credentials": [credential_json(c) for c in reply.credentials]})

    async def shared_presentation(request: Request) -> Response:
        """
        ---
        summary: A share link as a Verifiable Presentation signed by the learner
        tags: [credentials]
        parameters:
          - {name: token, in: path, required: true, schema: {$ref: "#/components/schemas/Id"}}
          - {name: challenge, in: query, required: true, schema: {type: string}}
          - {name: domain, in: query, required: true, schema: {type: string}}
        responses:
          200: {description: the signed VerifiablePresentation}
          404: {description: "unknown, revoked or expired link"}
          409: {description: the link shows no credential}
        """
        reply = await passport(request).get_shared_presentation(
            pb.GetSharedPresentationRequest(
                token=param(request, "token"),
                challenge=request.query_params.get("challenge", ""),
                domain=request.query_params.get("domain", ""),
            )
        )
        return Response(
            reply.document_json, media_type=VC_JSONLD, headers={"cache-control": "no-store"}
        )

    async def issue(request: Request) -> Response:
        """
        ---
        summary: Issue credentials from your anchored entries
        tags: [credentials]
        security: [{bearer: []}]
        requestBody:
          content:
            application/json:
              schema:
                type: object
                required: [format]
                properties:
                  format: {type: string, enum: [learning_record, per_entry, open_badge]}
                  statement_ids: {type: array, items: {type: string}, maxItems: 500}
                  course_id: {type: string}
                  share_link_id: {type: string}
                  request_id: {type: string, maxLength: 128}
                  achievement:
                    type: object
                    properties:
                      id: {type: string}
                      name: {type: string}
                      description: {type: string}
                      criteria: {type: string}
                      achievement_type: {type: string}
        responses:
          201: {description: "{credentials: [...]}"}
          400: {description: a field is invalid (named in `field`)}
          401: {description: no or a bad token}
          404: {description: an entry is not in your passport}
          409: {description: an entry is not anchored yet}
        """
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            raise ApiError(413, f"body larger than {MAX_BODY_BYTES} bytes")
        try:
            body = loads_limited(raw)
        except JsonRefused as refused:
            raise ApiError(400, refused.reason) from None
        reply = await passport(request, authenticated=True).issue_credentials(issue_request(body))
        return JSONResponse(
            {"credentials": [credential_json(c) for c in reply.credentials]}, status_code=201
        )

    async def list_credentials(request: Request) -> Response:
        """
        ---
        summary: Your credentials, or those your key issued
        tags: [credentials]
        security: [{bearer: []}]
        parameters:
          - {name: issued_by_me, in: query, schema: {type: boolean}}
          - {name: include_revoked, in: query, schema: {type: boolean}}
          - {name: page_token, in: query, schema: {type: string}}
        responses:
          200: {description: "{credentials: [...], next_page_token}"}
          401: {description: no or a bad token}
        """
        q = request.query_params
        reply = await passport(request, authenticated=True).list_credentials(
            pb.ListCredentialsRequest(
                issued_by_me=q.get("issued_by_me", "") == "true",
                include_revoked=q.get("include_revoked", "") == "true",
                page_token=q.get("page_token", ""),
            )
        )
        return JSONResponse(
            {
                "credentials": [credential_json(c) for c in reply.credentials],
                "next_page_token": reply.next_page_token or None,
            }
        )

    async def revoke(request: Request) -> Response:
        """
        ---
        summary: Revoke a credential about you, or one your key issued
        tags: [credentials]
        security: [{bearer: []}]
        parameters:
          - {name: credential_id, in: path, required: true,
             schema: {$ref: "#/components/schemas/Id"}}
        responses:
          200: {description: the revoked credential}
          401: {description: no or a bad token}
          404: {description: no such credential of yours}
        """
        reply = await passport(request, authenticated=True).revoke_credential(
            pb.RevokeCredentialRequest(credential_id=param(request, "credential_id"))
        )
        return JSONResponse(credential_json(reply.credential))

    return [
        Route(KEIKO_CONTEXT_PATH, _guarded(keiko_context), methods=["GET"]),
        Route("/contexts/{file}", _guarded(context_file), methods=["GET"]),
        Route("/credentials/status/{list_id}", _guarded(status_list), methods=["GET"]),
        Route("/credentials", _guarded(issue), methods=["POST"]),
        Route("/credentials", _guarded(list_credentials), methods=["GET"]),
        Route("/credentials/{credential_id}/revoke", _guarded(revoke), methods=["POST"]),
        Route("/credentials/{credential_id}", _guarded(get_credential), methods=["GET"]),
        Route("/share/{token}/credentials", _guarded(shared_credentials), methods=["GET"]),
        Route("/share/{token}/presentation", _guarded(shared_presentation), methods=["GET"]),
    ]


_CACHE = {"cache-control": "public, max-age=86400"}

_LABELS = {"OPEN_BADGE": "Open Badge", "PER_ENTRY": "credential", "LEARNING_RECORD": "record"}


async def entry_credentials(
    channel: grpc.aio.Channel, *, passport_id: str = "", share_token: str = ""
) -> dict[str, list[tuple[str, str]]]:
    """For the verification page: each entry's downloadable credentials, as
    ``statement id -> [(label, href)]`` (empty when the service cannot list them)."""
    client = stub(pb.PassportServiceStub, channel)
    try:
        reply = await client.list_credentials(
            pb.ListCredentialsRequest(passport_id=passport_id, share_token=share_token)
        )
    except grpc.aio.AioRpcError:
        return {}
    links: dict[str, list[tuple[str, str]]] = {}
    suffix = f"?share_token={quote(share_token, safe='')}" if share_token else ""
    for c in reply.credentials:
        label = _LABELS.get(pb.CredentialFormat(c.format).name or "", "credential")
        href = f"/credentials/{quote(c.id, safe=':')}{suffix}"
        for statement_id in c.statement_ids:
            links.setdefault(statement_id, []).append((label, href))
    return links


__all__ = ["credential_json", "credential_routes", "entry_credentials", "issue_request"]
