"""The gateway's OpenAPI 3 document, served at ``GET /openapi.json``, built from the
routes themselves: each endpoint's operation is the YAML after ``---`` in its docstring
(keyed by method when one endpoint serves several), or the operations an endpoint
carries in ``openapi_operations`` (endpoints built from a declarative table, such as the
xAPI document resources). Nothing is written by hand twice: a route without an operation
is simply missing, and tests/test_openapi.py fails on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import yaml
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

Operation = dict[str, object]
OPERATIONS_ATTR = "openapi_operations"
METHODS = ("get", "put", "post", "delete", "patch", "options")

INFO: Operation = {
    "title": "Keiko gateway",
    "version": "1",
    "description": (
        "Keiko's REST routes: xAPI (LRS), webhooks, Verifiable Credentials, passport export "
        "and verification, health. GraphQL is at /graphql (its schema by introspection). "
        "Limits: docs/limits.md. Errors are JSON {error, field?} with a 4xx status."
    ),
}
COMPONENTS: Operation = {
    "schemas": {
        # Path ids and tokens of the credential, export and verification routes.
        "Id": {"type": "string", "minLength": 1, "maxLength": 200},
        "TxHash": {"type": "string", "pattern": "^0x[0-9a-fA-F]{1,64}$"},
        # The xAPI Statement's main shape; the LRS validates all of xAPI 1.0.3 / 2.0.0
        # (docs/lrs.md) and refuses properties xAPI does not define.
        "IRI": {
            "type": "string",
            "pattern": "^https?://[a-z0-9-]{1,20}(\\.[a-z]{2,6}){1,2}(/[A-Za-z0-9._~-]{1,20}){0,3}$",
        },
        "LanguageMap": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": "^[a-z]{2}(-[A-Z]{2})?$"},
            "additionalProperties": {"type": "string"},
        },
        "Agent": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "objectType": {"const": "Agent"},
                "name": {"type": "string"},
                "mbox": {
                    "type": "string",
                    "pattern": "^mailto:[a-z0-9.]{1,20}@[a-z0-9-]{1,20}\\.[a-z]{2,6}$",
                },
                "account": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["homePage", "name"],
                    "properties": {
                        "homePage": {"$ref": "#/components/schemas/IRI"},
                        "name": {"type": "string", "minLength": 1},
                    },
                },
            },
            "oneOf": [{"required": ["mbox"]}, {"required": ["account"]}],
        },
        "Statement": {
            "type": "object",
            "additionalProperties": False,
            "required": ["actor", "verb", "object"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "actor": {"$ref": "#/components/schemas/Agent"},
                "verb": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["id"],
                    "properties": {
                        "id": {"$ref": "#/components/schemas/IRI"},
                        "display": {"$ref": "#/components/schemas/LanguageMap"},
                    },
                },
                "object": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["id"],
                    "properties": {
                        "objectType": {"const": "Activity"},
                        "id": {"$ref": "#/components/schemas/IRI"},
                        "definition": {
                            "type": "object",
                            "minProperties": 1,
                            "additionalProperties": False,
                            "properties": {
                                "name": {"$ref": "#/components/schemas/LanguageMap"},
                                "description": {"$ref": "#/components/schemas/LanguageMap"},
                                "type": {"$ref": "#/components/schemas/IRI"},
                            },
                        },
                    },
                },
                "result": {
                    "type": "object",
                    "minProperties": 1,
                    "additionalProperties": False,
                    "properties": {
                        "score": {
                            "type": "object",
                            "minProperties": 1,
                            "additionalProperties": False,
                            "properties": {
                                "scaled": {"type": "number", "minimum": -1, "maximum": 1}
                            },
                        },
                        "success": {"type": "boolean"},
                        "completion": {"type": "boolean"},
                        "response": {"type": "string"},
                        "duration": {"type": "string", "description": "ISO 8601 duration"},
                    },
                },
                "context": {
                    "type": "object",
                    "minProperties": 1,
                    "additionalProperties": False,
                    "properties": {
                        "registration": {"type": "string", "format": "uuid"},
                        "extensions": {
                            "type": "object",
                            "propertyNames": {"$ref": "#/components/schemas/IRI"},
                        },
                    },
                },
                "timestamp": {"type": "string", "format": "date-time"},
            },
        },
    },
    "securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer"},
        "basic": {"type": "http", "scheme": "basic", "description": "an LRS client"},
    },
    "parameters": {
        "XapiVersion": {
            "name": "X-Experience-API-Version",
            "in": "header",
            "required": True,
            "schema": {"type": "string", "enum": ["1.0.3", "2.0.0"]},
        },
        "Agent": {
            "name": "agent",
            "in": "query",
            "description": "an xAPI Agent as JSON",
            "schema": {"type": "string"},
        },
    },
}


def parse_docstring(doc: str | None) -> Operation | None:
    """The YAML after ``---`` in a docstring, when it is a mapping."""
    if not doc or "---" not in doc:
        return None
    parsed = yaml.safe_load(doc.split("---", 1)[1])
    return parsed if isinstance(parsed, dict) else None


def describe(endpoint: Callable[..., object], operations: Mapping[str, Operation]) -> None:
    """Attach `operations` (lower-case method -> operation) to an endpoint built from a
    table, for the document generator."""
    setattr(endpoint, OPERATIONS_ATTR, dict(operations))


def operation_of(endpoint: object, method: str) -> Operation | None:
    """The operation of `method` on `endpoint`: attached, or from its docstring (one
    operation, or a mapping keyed by method)."""
    attached = getattr(endpoint, OPERATIONS_ATTR, None)
    if isinstance(attached, dict):
        found = attached.get(method)
        return dict(found) if isinstance(found, dict) else None
    parsed = parse_docstring(getattr(endpoint, "__doc__", None))
    if parsed is None:
        return None
    if parsed and set(parsed) <= set(METHODS):
        chosen = parsed.get(method)
        return dict(chosen) if isinstance(chosen, dict) else None
    return parsed


@dataclass(frozen=True)
class Served:
    """One method of one route, as the router serves it."""

    path: str  # OpenAPI form: "{name}" without converters
    method: str  # lower case
    endpoint: object


def served(routes: Sequence[BaseRoute]) -> Iterator[Served]:
    """Every (path, method) the HTTP routes answer; HEAD is GET without a body."""
    for route in routes:
        if not isinstance(route, Route) or not route.include_in_schema:
            continue
        path = route.path
        for name in route.param_convertors:
            path = path.replace("{" + name + ":path}", "{" + name + "}")
        for method in sorted(route.methods or {"GET"}):
            if method != "HEAD":
                yield Served(path, method.lower(), route.endpoint)


def build_document(routes: Sequence[BaseRoute]) -> Operation:
    paths: dict[str, dict[str, Operation]] = {}
    for item in served(routes):
        operation = operation_of(item.endpoint, item.method)
        if operation is not None:
            paths.setdefault(item.path, {})[item.method] = operation
    return {"openapi": "3.1.0", "info": INFO, "paths": paths, "components": COMPONENTS}


def openapi_route(routes: Callable[[], Sequence[BaseRoute]]) -> Route:
    """``GET /openapi.json``: the document of `routes()` (built once, on first use)."""
    cache: list[Operation] = []

    async def openapi(_: Request) -> Response:
        """
        ---
        summary: This OpenAPI document
        tags: [meta]
        responses:
          200: {description: the OpenAPI 3 document of the gateway's REST routes}
        """
        if not cache:
            cache.append(build_document(routes()))
        return JSONResponse(cache[0], headers={"cache-control": "no-cache"})

    return Route("/openapi.json", openapi, methods=["GET", "HEAD"])


XAPI_SECURITY: list[Operation] = [{"basic": []}, {"bearer": []}]


def with_parameters(operation: Operation, parameters: Sequence[Operation]) -> Operation:
    """`operation` with `parameters` before its own."""
    own = operation.get("parameters")
    return {**operation, "parameters": [*parameters, *(own if isinstance(own, list) else [])]}


def xapi_operations(
    handlers: Mapping[str, Callable[..., object]], alternate_methods: Sequence[str]
) -> dict[str, Operation]:
    """The operations of one xAPI resource endpoint: each handler's docstring with the
    version header and LRS credentials, and POST as the alternate request syntax
    (Communication 1.3) where the resource has no POST of its own."""
    operations: dict[str, Operation] = {}
    version: list[Operation] = [{"$ref": "#/components/parameters/XapiVersion"}]
    for method, handler in handlers.items():
        parsed = parse_docstring(handler.__doc__)
        if parsed is not None:
            operations[method.lower()] = {
                "security": XAPI_SECURITY,
                **with_parameters(parsed, version),
            }
    if "POST" not in handlers:
        operations["post"] = {
            "summary": "Alternate request syntax: the method and headers as form fields",
            "tags": ["xapi"],
            "parameters": [
                {
                    "name": "method",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string", "enum": list(alternate_methods)},
                }
            ],
            "requestBody": {
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {"type": "object", "additionalProperties": {"type": "string"}}
                    }
                }
            },
            "responses": {"200": {"description": "as the method's answer"}},
        }
    return operations
