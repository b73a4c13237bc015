"""Webhook import endpoints: `POST /webhooks/{source_id}` for Learning Locker, SCORM Cloud,
Moodle and Canvas (the source registered with RegisterWebhookSource says which).

The gateway hands the raw body and the headers to the learning service (ImportWebhook),
which authenticates the delivery with the source's credentials (HMAC `X-Keiko-Signature`
for Moodle and Canvas, HTTP Basic `<source id>:<secret>` for Learning Locker and SCORM
Cloud), maps the payload to xAPI and stores it. Redeliveries are idempotent (same body:
the first result; same event: the same deterministic statement ids).

Answers: 200 `{"statement_ids": [...], "skipped_events": n}`; 400 `{"error", "field"}`
with the payload path (e.g. `payload.metadata.event_name`); 401 for a bad signature or
credentials; 404 for an unknown source; 413 for a body over 5 MiB.
"""

from __future__ import annotations

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.xapi.http import HttpError, call, error_response, forwarded, read_body
from services.api.keiko.learning import v1 as pb
from services.kit.grpc.client import stub


def _headers(request: Request) -> dict[str, str]:
    """Names lower-cased, repeated headers joined with ", " (as ImportWebhook expects)."""
    out: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def webhook_routes(channel: grpc.aio.Channel) -> list[BaseRoute]:
    """The /webhooks routes, calling the learning service over `channel`."""

    async def receive(request: Request) -> Response:
        """
        ---
        summary: A webhook delivery from a registered source (Learning Locker, SCORM Cloud,
          Moodle, Canvas)
        tags: [webhooks]
        parameters:
          - {name: source_id, in: path, required: true, schema: {type: string, maxLength: 2048}}
          - {name: X-Keiko-Signature, in: header, schema: {type: string}}
        requestBody:
          content:
            application/json:
              schema: {type: object, description: the source's payload}
        responses:
          200: {description: "{statement_ids: [...], skipped_events}"}
          400: {description: "an invalid payload, with its path in field"}
          401: {description: a bad signature or credentials}
          404: {description: unknown source}
          413: {description: a body over 5 MiB}
        """
        source_id = request.path_params["source_id"]
        try:
            body = await read_body(request)
            learning = stub(pb.LearningServiceStub, channel, metadata=lambda: forwarded(request))
            result = await call(
                learning.import_webhook(
                    pb.ImportWebhookRequest(
                        source_id=source_id, headers=_headers(request), body=body
                    )
                )
            )
        except HttpError as error:
            return error_response(error)
        return JSONResponse(
            {"statement_ids": list(result.statement_ids), "skipped_events": result.skipped_events}
        )

    return [Route("/webhooks/{source_id}", receive, methods=["POST"])]
