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
        """
        ---
        summary: The web client (passkey sign-up and login, record, live anchoring, share)
        tags: [web]
        responses:
          200: {description: "the page, text/html; its scripts and styles are under /static/app"}
        """
        return FileResponse(APP_PAGE, headers={"cache-control": "no-cache"})

    async def home(_: Request) -> Response:
        """
        ---
        summary: Redirects to the web client at /app
        tags: [web]
        responses:
          307: {description: to /app}
        """
        return RedirectResponse("/app", status_code=307)

    return [
        Route("/app", page, methods=["GET", "HEAD"]),
        Route("/app/", page, methods=["GET", "HEAD"]),
        Route("/", home, methods=["GET", "HEAD"]),
    ]
