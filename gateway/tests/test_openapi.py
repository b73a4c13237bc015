"""GET /openapi.json: a valid OpenAPI 3 document, built from the routes, naming every
route and method the gateway serves (the REST fuzzer, tests/test_fuzz.py, reads it)."""

from __future__ import annotations

import grpc
import httpx
from openapi_spec_validator import validate

from gateway.app import create_app
from gateway.openapi import parse_docstring, served
from gateway.schema import build_schema


async def test_the_served_document_is_valid_openapi_3_and_covers_every_route() -> None:
    async with grpc.aio.insecure_channel("127.0.0.1:1") as channel:  # nothing is called
        app = create_app(build_schema(), channel)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            response = await http.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert document["openapi"].startswith("3.")

    routes = {(item.path, item.method) for item in served(app.routes)}
    documented = {
        (path, method)
        for path, operations in document["paths"].items()
        for method in operations
        if method != "parameters"
    }
    assert routes - documented == set()
    assert documented - routes == set()
    # The REST surface, by name.
    for path in (
        "/xapi/statements",
        "/xapi/activities/state",
        "/xapi/activities/profile",
        "/xapi/agents/profile",
        "/xapi/activities",
        "/xapi/agents",
        "/xapi/about",
        "/xapi/extensions/keiko/actor-links",
        "/webhooks/{source_id}",
        "/share/{token}/export.json",
        "/verify/{passport_id}",
        "/credentials",
        "/healthz",
        "/readyz",
        "/openapi.json",
    ):
        assert path in document["paths"], path

    # Each resource's own parameters: State needs agent and activityId, an Agent Profile
    # only the agent; PUT needs the document id, GET does not.
    state = document["paths"]["/xapi/activities/state"]
    required = {p["name"] for p in state["put"]["parameters"] if p.get("required")}
    assert required == {"activityId", "agent", "stateId"}
    profile = document["paths"]["/xapi/agents/profile"]["get"]["parameters"]
    named = {p["name"]: p.get("required", False) for p in profile if "name" in p}
    assert named == {"agent": True, "profileId": False, "since": False}
    statements = document["paths"]["/xapi/statements"]["get"]
    assert {"$ref": "#/components/parameters/XapiVersion"} in statements["parameters"]


def test_a_docstring_without_an_operation_describes_nothing() -> None:
    assert parse_docstring(None) is None
    assert parse_docstring("Prose only.") is None
    assert parse_docstring("Prose.\n---\njust text") is None
    assert parse_docstring("Prose.\n---\nsummary: s\n") == {"summary": "s"}
