"""Actor linking for institutions' LRS clients (an additional resource, so under
`extensions/` as Communication 2.0.s1.b4 asks):

    POST   /xapi/extensions/keiko/actor-links  {"agent": {...}, "code": "ABCDE-..."}
                                                -> 200 the link (the identity is now the
                                                   learner's, for this institution)
    GET    /xapi/extensions/keiko/actor-links   -> {"links": [...], "more": "<IRL>"}
    DELETE /xapi/extensions/keiko/actor-links?linkId=<id>   -> 204

The learner made the code (their consent); the client's owner is the institution that
vouches for the identity. See services/learning/links/domain.py and docs/lrs.md.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.xapi.http import (
    HttpError,
    XapiContext,
    call,
    check_params,
    credentials,
    parse_json_body,
    read_body,
)
from services.api.keiko.learning import v1 as pb

PATH = "/xapi/extensions/keiko/actor-links"


def link_json(link: pb.ActorLink) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": link.id,
        "learnerId": link.learner_id,
        "institutionId": link.institution_id,
        "agent": json.loads(link.agent_json),
        "created": link.created_at.isoformat().replace("+00:00", "Z"),
    }
    if link.revoked_at.timestamp() != 0:
        out["revoked"] = link.revoked_at.isoformat().replace("+00:00", "Z")
    return out


def actor_link_routes(ctx: XapiContext) -> list[BaseRoute]:
    async def confirm(request: Request, version: str) -> Response:
        """
        ---
        summary: Link an identity of yours to the learner who gave the code
        tags: [xapi]
        requestBody:
          content:
            application/json:
              schema:
                type: object
                required: [agent, code]
                properties:
                  agent: {type: object, description: an xAPI Agent}
                  code: {type: string}
        responses:
          200: {description: the link}
          400: {description: "an invalid body, named in field"}
          404: {description: unknown or used code}
        """
        creds = credentials(request)
        check_params(dict(request.query_params), frozenset())
        data = parse_json_body(await read_body(request, 64 * 1024), "body")
        if not isinstance(data, dict) or set(data) - {"agent", "code"}:
            raise HttpError(400, 'must be {"agent": <Agent>, "code": "<link code>"}', "body")
        if not isinstance(data.get("agent"), dict):
            raise HttpError(400, "must be an xAPI Agent object", "agent")
        if not isinstance(data.get("code"), str):
            raise HttpError(400, "must be the link code the learner gave you", "code")
        reply = await call(
            ctx.learning(request, creds).confirm_actor_link(
                pb.ConfirmActorLinkRequest(agent_json=json.dumps(data["agent"]), code=data["code"])
            )
        )
        return JSONResponse(link_json(reply.link))

    async def listing(request: Request, version: str) -> Response:
        """
        ---
        summary: The actor links your institution confirmed
        tags: [xapi]
        parameters:
          - {name: more, in: query, schema: {type: string}}
        responses:
          200: {description: "{links: [...], more}"}
        """
        creds = credentials(request)
        params = dict(request.query_params)
        check_params(params, frozenset({"more"}))
        reply = await call(
            ctx.learning(request, creds).list_actor_links(
                pb.ListActorLinksRequest(page_token=params.get("more", ""))
            )
        )
        more = PATH + "?" + urllib.parse.urlencode({"more": reply.next_page_token})
        return JSONResponse(
            {
                "links": [link_json(link) for link in reply.links],
                "more": more if reply.next_page_token else "",
            }
        )

    async def revoke(request: Request, version: str) -> Response:
        """
        ---
        summary: Revoke a link
        tags: [xapi]
        parameters:
          - {name: linkId, in: query, required: true, schema: {type: string}}
        responses:
          204: {description: revoked}
          404: {description: no such link of yours}
        """
        creds = credentials(request)
        params = dict(request.query_params)
        check_params(params, frozenset({"linkId"}))
        if not params.get("linkId"):
            raise HttpError(400, "query parameter is required", "linkId")
        await call(
            ctx.learning(request, creds).revoke_actor_link(
                pb.RevokeActorLinkRequest(link_id=params["linkId"])
            )
        )
        return Response(status_code=204)

    endpoint = ctx.resource({"GET": listing, "POST": confirm, "DELETE": revoke})
    return [Route(PATH, endpoint, methods=["GET", "HEAD", "POST", "DELETE"])]
