"""The Activities and Agents resources.

GET /xapi/activities?activityId=<IRI>   -> the Activity object (Communication 2.5): its
                                           canonical definition when statements gave one
GET /xapi/agents?agent=<Agent JSON>     -> the Person object (Communication 2.4)
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.xapi.http import HttpError, XapiContext, call, check_params, credentials
from services.api.keiko.learning import v1 as pb
from services.learning.documents.domain import etag_of


def _json(text: str) -> Response:
    body = text.encode("utf-8")
    response = Response(body, media_type="application/json")
    response.headers["ETag"] = f'"{etag_of(body)}"'
    return response


def activity_routes(ctx: XapiContext) -> list[BaseRoute]:
    async def activity(request: Request, version: str) -> Response:
        """
        ---
        summary: The Activity object, with its canonical definition
        tags: [xapi]
        parameters:
          - {name: activityId, in: query, required: true, schema: {type: string}}
        responses:
          200: {description: the Activity}
          400: {description: "an invalid parameter, named in field"}
        """
        creds = credentials(request)
        params = dict(request.query_params)
        check_params(params, frozenset({"activityId"}))
        if not params.get("activityId"):
            raise HttpError(400, "query parameter is required", "activityId")
        reply = await call(
            ctx.learning(request, creds).get_activity(
                pb.GetActivityRequest(activity_id=params["activityId"])
            )
        )
        return _json(reply.activity_json)

    async def person(request: Request, version: str) -> Response:
        """
        ---
        summary: The Person object of an Agent
        tags: [xapi]
        parameters:
          - {name: agent, in: query, required: true, schema: {type: string}}
        responses:
          200: {description: the Person}
          400: {description: "an invalid Agent, named in field"}
        """
        creds = credentials(request)
        params = dict(request.query_params)
        check_params(params, frozenset({"agent"}))
        if not params.get("agent"):
            raise HttpError(400, "query parameter is required", "agent")
        reply = await call(
            ctx.learning(request, creds).get_person(pb.GetPersonRequest(agent_json=params["agent"]))
        )
        return _json(reply.person_json)

    return [
        Route("/xapi/activities", ctx.resource({"GET": activity}), methods=["GET", "HEAD", "POST"]),
        Route("/xapi/agents", ctx.resource({"GET": person}), methods=["GET", "HEAD", "POST"]),
    ]
