"""GET /xapi/about -> {"version": ["1.0.3", "2.0.0"], "extensions": {}}.

No credentials and no version header needed (Communication 2.8.s5.b3/b4): clients call it
to learn which versions to speak. The answer still carries X-Experience-API-Version (the
latest version, 3.3.s3.b1)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.xapi.http import LATEST, VERSIONS, XapiContext


def about_routes(ctx: XapiContext) -> list[BaseRoute]:
    async def about(request: Request) -> Response:
        """
        ---
        summary: The xAPI versions this LRS speaks
        tags: [xapi]
        responses:
          200: {description: "{version: [...], extensions: {}}"}
        """
        response: Response = JSONResponse({"version": list(VERSIONS), "extensions": {}})
        if request.method == "HEAD":
            response = Response(headers=response.headers)
        return ctx.stamp(response, LATEST)

    return [Route("/xapi/about", about, methods=["GET", "HEAD"])]
