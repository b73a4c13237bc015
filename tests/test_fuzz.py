"""Fuzzing (issue 10): whatever a client sends, the platform answers without a 5xx and
without a masked internal error ("Internal server error.", INTERNAL_SERVER_ERROR).

Against the real platform (every service, the gateway, the dev chain node) on the test's
engine, with one signed-in user:

- the whole GraphQL schema (every query and mutation, valid and invalid arguments) with
  hypothesis-graphql, anonymous and signed in; and every root field again with its
  arguments as variables, typed and wild (tests/fuzz_variables.py);
- every REST route with schemathesis, from the OpenAPI document the gateway serves at
  /openapi.json, valid and invalid requests, anonymous and signed in.

Sized for CI: a fixed number of examples, derandomized (the same inputs every run, so a
failure reproduces), no shrinking; every finding of a run is reported at once. Hypothesis
runs in a worker thread and sends real HTTP requests while the platform serves them on the
test's event loop. No timing is asserted; a request the platform does not answer within
REQUEST_TIMEOUT is a finding (it would be a freeze).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import hypothesis_graphql
import pytest
import requests
import schemathesis
from graphql import GraphQLSchema
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from hypothesis_graphql import nodes
from schemathesis import GenerationMode

from gateway.schema import build_schema
from tests.e2e_support import signed_in_platform
from tests.fuzz_variables import operations, requests_of

GRAPHQL_EXAMPLES = 150  # per caller (anonymous, signed in)
VARIABLES_EXAMPLES = 200  # the same, with variables (tests/fuzz_variables.py)
REST_EXAMPLES = 3  # per operation, mode and caller
# Where the most validation is: more examples.
REST_EXAMPLES_OF = {"POST /xapi/statements": 25, "PUT /xapi/statements": 10}
REQUEST_TIMEOUT = 60.0
MASKED = "Internal server error"
# Signed-in runs keep their session: these would end it for the rest of the run.
SESSION_ENDING = frozenset({"logout", "revokeSession"})


@dataclass
class Findings:
    """Every answer that breaks the rule, with the request that got it."""

    found: list[str] = field(default_factory=list)
    sent: int = 0

    def check(self, request: str, status: int, body: str) -> None:
        self.sent += 1
        if status >= 500 or MASKED in body or "INTERNAL_SERVER_ERROR" in body:
            self.found.append(f"{request}\n  -> {status} {body[:500]}")

    def failed(self, request: str, error: Exception) -> None:
        self.sent += 1
        self.found.append(f"{request}\n  -> no answer: {error!r}")


def run(strategy: st.SearchStrategy[object], send: Callable[[object], None], n: int) -> None:
    """`n` derandomized examples of `strategy`, each sent; findings are collected by
    `send`, so nothing raises here and nothing shrinks."""

    @settings(
        max_examples=n,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def example(value: object) -> None:
        send(value)

    example()


def graphql_strategy(schema: GraphQLSchema, *, signed_in: bool) -> st.SearchStrategy[object]:
    """One root field per operation (so one bad argument does not hide the others), every
    query and mutation field equally likely; valid arguments (POSITIVE: DateTimes within
    the accepted range) and invalid ones (NEGATIVE: wrong types, any text as DateTime)."""
    text = st.text(max_size=40)
    instants = st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(2199, 12, 31), timezones=st.just(UTC)
    ).map(lambda d: d.isoformat())
    by_mode = {
        hypothesis_graphql.Mode.POSITIVE: instants,
        hypothesis_graphql.Mode.NEGATIVE: st.one_of(text, instants),
    }
    assert schema.query_type is not None and schema.mutation_type is not None
    roots = [
        (hypothesis_graphql.queries, name, bool(field.args))
        for name, field in sorted(schema.query_type.fields.items())
    ] + [
        (hypothesis_graphql.mutations, name, bool(field.args))
        for name, field in sorted(schema.mutation_type.fields.items())
        if not (signed_in and name in SESSION_ENDING)
    ]
    strategies = []
    for mode, datetimes in by_mode.items():
        scalars = {
            "DateTime": datetimes.map(nodes.String),
            "JSON": st.one_of(text, st.just("{}")).map(nodes.String),
            # Uploads travel as multipart parts; a literal in the document must be refused.
            "Upload": text.map(nodes.String),
        }
        strategies += [
            operations(schema, fields=[name], custom_scalars=scalars, mode=mode)
            for operations, name, has_arguments in roots
            # A field without arguments has no invalid call to make.
            if has_arguments or mode == hypothesis_graphql.Mode.POSITIVE
        ]
    return st.one_of(strategies)


def fuzz_graphql(base_url: str, token: str | None, findings: Findings) -> None:
    schema = build_schema()._schema
    headers = {"authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT, headers=headers) as http:

        def send(body: object) -> None:
            if not isinstance(body, dict):
                body = {"query": body}
            label = f"POST /graphql {'signed in' if token else 'anonymous'}: {body!r}"
            try:
                response = http.post("/graphql", json=body)
            except httpx.HTTPError as error:
                findings.failed(label, error)
                return
            findings.check(label, response.status_code, response.text)

        run(graphql_strategy(schema, signed_in=token is not None), send, GRAPHQL_EXAMPLES)
        skip = SESSION_ENDING if token else frozenset()
        with_variables = st.one_of(
            [
                requests_of(operation, wild)
                for operation in operations(schema, skip)
                for wild in (False, True)
            ]
        )
        run(with_variables, send, VARIABLES_EXAMPLES)


def fuzz_rest(base_url: str, token: str | None, findings: Findings) -> None:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    headers = {"authorization": f"Bearer {token}"} if token else {}
    # /readyz takes no input, and its 503 tells the services' state, not a client mistake
    # (a health check slower than its 2 s on a loaded machine is an answer, not a bug).
    operations = [
        operation
        for operation in (result.ok() for result in schema.get_all_operations())
        if operation.label != "GET /readyz"
    ]
    assert len(operations) > 40, "the served document names every REST route"
    with requests.Session() as session:
        for operation in operations:

            def send(case: object, operation_label: str = operation.label) -> None:
                assert isinstance(case, schemathesis.Case)
                label = f"{operation_label} {'signed in' if token else 'anonymous'}: " + (
                    json.dumps(case.as_transport_kwargs(base_url=base_url), default=repr)
                )
                try:
                    response = case.call(
                        base_url=base_url,
                        session=session,
                        headers=headers,
                        timeout=REQUEST_TIMEOUT,
                    )
                except (requests.ConnectionError, requests.Timeout) as error:
                    findings.failed(label, error)
                    return
                except requests.RequestException:
                    return  # a request the client library itself refuses to send
                findings.check(label, response.status_code, response.text)

            n = REST_EXAMPLES_OF.get(operation.label, REST_EXAMPLES)
            run(operation.as_strategy(generation_mode=GenerationMode.POSITIVE), send, n)
            # An operation without inputs (GET /healthz) has no invalid request to make.
            with contextlib.suppress(Unsatisfiable):
                run(operation.as_strategy(generation_mode=GenerationMode.NEGATIVE), send, n)


def fuzz_all(base_url: str, token: str) -> Findings:
    findings = Findings()
    for caller in (None, token):
        fuzz_graphql(base_url, caller, findings)
        fuzz_rest(base_url, caller, findings)
    return findings


async def test_no_client_input_gets_a_5xx_or_a_masked_internal_error(
    tmp_path: Path, database_url: str, event_bus_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with signed_in_platform(
        tmp_path, database_url, event_bus_url, monkeypatch, "fuzz@example.org", "Fuzz"
    ) as platform:
        assert platform.gql.token
        findings = await asyncio.to_thread(
            fuzz_all, str(platform.http.base_url), platform.gql.token
        )
    assert findings.sent > 2 * GRAPHQL_EXAMPLES
    assert findings.found == [], _report(findings.found)


def _report(found: Sequence[str]) -> str:
    return f"{len(found)} findings:\n" + "\n".join(found[:25])
