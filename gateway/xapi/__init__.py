"""The xAPI resources for existing tools (LMSs, authoring tools, LRS clients), one module
per resource, each thin: decode the HTTP request, call the learning service over gRPC,
encode the answer.

* `statements`: /xapi/statements (PUT, POST, GET, HEAD);
* `documents`: /xapi/activities/state, /xapi/activities/profile, /xapi/agents/profile;
* `activities`: /xapi/activities and /xapi/agents;
* `actor_links`: /xapi/extensions/keiko/actor-links (institutions confirm actor links);
* `about`: /xapi/about;
* `http`: what they share (errors, credentials, version header, body limits).

Every resource except About accepts the alternate request syntax (POST ?method=...,
Communication 1.3) and HEAD, and carries `X-Experience-API-Version` (1.0.x or 2.0.x; the
served version is echoed) and is authenticated with HTTP Basic by a registered LRS client
(key:secret, forwarded to the learning service as `x-keiko-lrs-authorization`, which
checks it against the stored hash) or with a Keiko bearer token.
"""

from __future__ import annotations

import grpc
from starlette.routing import BaseRoute

from gateway.xapi.about import about_routes
from gateway.xapi.activities import activity_routes
from gateway.xapi.actor_links import actor_link_routes
from gateway.xapi.documents import all_document_routes
from gateway.xapi.http import XapiContext
from gateway.xapi.statements import statement_routes
from services.kit.clock import Clock, SystemClock


def xapi_routes(channel: grpc.aio.Channel, *, clock: Clock | None = None) -> list[BaseRoute]:
    """The /xapi routes, calling the learning service over `channel`. Mount them in the
    gateway's Starlette app: `Starlette(routes=[..., *xapi_routes(channel)])`."""
    ctx = XapiContext(channel, clock or SystemClock())
    return [
        *statement_routes(ctx),
        *all_document_routes(ctx),
        *activity_routes(ctx),
        *actor_link_routes(ctx),
        *about_routes(ctx),
    ]


__all__ = ["xapi_routes"]
