"""The web client at /app: passkey sign-up and login, recording, live anchoring, the
timeline and share links, in plain HTML and JavaScript (gateway/static/app, no build
step). It talks to /graphql like any other client: same origin, so no CORS needed."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.graphiql import STATIC_DIR

APP_PAGE = STATIC_DIR / "app" / "index.html"


def app_routes() -> list[Route]:
    async def page(_: Request) -> Response:
        return FileResponse(APP_PAGE, headers={"cache-control": "no-cache"})

    async def home(_: Request) -> Response:
        return RedirectResponse("/app", status_code=307)

    return [
        Route("/app", page, methods=["GET", "HEAD"]),
        Route("/app/", page, methods=["GET", "HEAD"]),
        Route("/", home, methods=["GET", "HEAD"]),
    ]
