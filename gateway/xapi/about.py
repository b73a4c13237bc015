"""GET /xapi/about -> {"version": ["1.0.3", "2.0.0"], "extensions": {}} (no credentials,
no version header needed: clients call it to learn which versions to speak)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.xapi.http import VERSIONS, XapiContext


def about_routes(_: XapiContext) -> list[BaseRoute]:
    async def about(_: Request) -> Response:
        return JSONResponse({"version": list(VERSIONS), "extensions": {}})

    return [Route("/xapi/about", about, methods=["GET"])]
