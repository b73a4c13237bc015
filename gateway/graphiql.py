"""GraphiQL without a CDN: Strawberry's page, its scripts and styles served by Keiko.

Strawberry's GraphiQL page loads React, GraphiQL and its explorer plugin from a CDN, so
offline it never leaves "Loading...". The same files, from the npm packages of the same
versions, are committed under ``gateway/static/graphiql`` (see VENDORED.md there); the
page is rewritten to load them from ``/static/graphiql/``. Their integrity hashes stay,
so the browser still refuses a file that differs from the published one.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from strawberry.http.ides import get_graphql_ide_html

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PREFIX = "/static"
_CDN = "https://unpkg.com/"

# CDN URL in Strawberry's page -> the committed file under static/graphiql.
ASSETS = {
    f"{_CDN}react@18.2.0/umd/react.production.min.js": "react.production.min.js",
    f"{_CDN}react-dom@18.2.0/umd/react-dom.production.min.js": "react-dom.production.min.js",
    f"{_CDN}js-cookie@3.0.5/dist/js.cookie.min.js": "js.cookie.min.js",
    f"{_CDN}graphiql@3.8.3/graphiql.min.css": "graphiql.min.css",
    f"{_CDN}graphiql@3.8.3/graphiql.min.js": "graphiql.min.js",
    f"{_CDN}@graphiql/plugin-explorer@1.0.2/dist/style.css": "plugin-explorer.css",
    f"{_CDN}@graphiql/plugin-explorer@1.0.2/dist/index.umd.js": "plugin-explorer.umd.js",
}
_EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']https?://""")


class CdnAssetMissing(RuntimeError):
    """Strawberry's page names an asset that is not vendored (after an upgrade)."""


@cache
def offline_graphiql_html() -> str:
    html = get_graphql_ide_html(graphql_ide="graphiql")
    for url, name in ASSETS.items():
        if not (STATIC_DIR / "graphiql" / name).is_file():
            raise CdnAssetMissing(f"gateway/static/graphiql/{name} is missing")
        html = html.replace(url, f"{STATIC_PREFIX}/graphiql/{name}")
    left = _EXTERNAL.search(html)
    if left is not None:
        start = left.start()
        raise CdnAssetMissing(
            f"the GraphiQL page still loads {html[start : start + 120]!r}: vendor it "
            "(gateway/static/graphiql/VENDORED.md)"
        )
    return html
