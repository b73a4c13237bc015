"""Webhook import over HTTP, per source: authenticated delivery, idempotent redelivery,
bad signature / credentials, malformed payloads with their path."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from gateway.tests.test_xapi_resource import LiveLearning, live_learning
from services.api.keiko.learning import v1 as pb
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.events import EventBus
from services.learning.imports import hmac_signature
from services.learning.tests.test_imports import (
    CANVAS,
    LL_STATEMENT,
    SCORM,
    SITE,
    live_event,
    moodle_event,
)

Kind = pb.WebhookSourceKind


@pytest.fixture
def database_schemas() -> Sequence[str]:
    return ("learning",)


@pytest.fixture
async def gw(
    migrated_database: Database, event_bus: EventBus, clock: FixedClock
) -> AsyncIterator[LiveLearning]:
    async with live_learning(migrated_database, event_bus, clock) as live:
        yield live


async def register(gw: LiveLearning, kind: int, name: str) -> tuple[str, str]:
    response = await gw.grpc("ana").register_webhook_source(
        pb.RegisterWebhookSourceRequest(name=name, kind=kind)  # type: ignore[arg-type]
    )
    assert response.source.endpoint_path == f"/webhooks/{response.source.id}"
    return response.source.id, response.generated_secret


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def signed(body: bytes, secret: str) -> dict[str, str]:
    return {"X-Keiko-Signature": hmac_signature(body, secret), "Content-Type": "application/json"}


CANVAS_EVENT = live_event(
    "submission_created",
    {
        "submission_id": "9",
        "assignment_id": "77",
        "user_id": "21070000000000005",
        "attempt": 1,
        "submission_type": "online_text_entry",
    },
)

# kind, source name, payload, how to authenticate it
SOURCES: list[tuple[int, str, Any, str]] = [
    (Kind.LEARNING_LOCKER, "Our Learning Locker", LL_STATEMENT, "basic"),
    (Kind.SCORM_CLOUD, "https://cloud.scorm.com/apps/APP1", SCORM, "basic"),
    (Kind.MOODLE, SITE, moodle_event("\\core\\event\\course_viewed"), "hmac"),
    (Kind.CANVAS, CANVAS, CANVAS_EVENT, "hmac"),
]


@pytest.mark.parametrize(("kind", "name", "payload", "auth"), SOURCES)
async def test_delivery_redelivery_and_bad_credentials(
    gw: LiveLearning, kind: int, name: str, payload: Any, auth: str
) -> None:
    source_id, secret = await register(gw, kind, name)
    body = json.dumps(payload).encode()

    def headers(password: str) -> dict[str, str]:
        if auth == "basic":
            return {**basic(source_id, password), "Content-Type": "application/json"}
        return signed(body, password)

    first = await gw.http.post(f"/webhooks/{source_id}", content=body, headers=headers(secret))
    assert first.status_code == 200, first.text
    ids = first.json()["statement_ids"]
    assert len(ids) == 1 and first.json()["skipped_events"] == 0
    again = await gw.http.post(f"/webhooks/{source_id}", content=body, headers=headers(secret))
    assert again.json()["statement_ids"] == ids
    # The same event in a differently formatted body maps to the same statement.
    reformatted = json.dumps(payload, indent=2).encode()
    other_headers = headers(secret) if auth == "basic" else signed(reformatted, secret)
    third = await gw.http.post(f"/webhooks/{source_id}", content=reformatted, headers=other_headers)
    assert third.json()["statement_ids"] == ids
    stored = await gw.grpc("ana").query_statements(pb.QueryStatementsRequest())
    assert [s.id for s in stored.statements] == ids

    wrong = await gw.http.post(f"/webhooks/{source_id}", content=body, headers=headers("x" * 32))
    assert wrong.status_code == 401
    assert wrong.json()["error"] in ("invalid webhook signature", "invalid webhook credentials")
    anonymous = await gw.http.post(f"/webhooks/{source_id}", content=body)
    assert anonymous.status_code == 401


async def test_malformed_payloads_name_the_path(gw: LiveLearning) -> None:
    source_id, secret = await register(gw, Kind.CANVAS, CANVAS)
    body = json.dumps(live_event("page_flipped", {})).encode()
    response = await gw.http.post(
        f"/webhooks/{source_id}", content=body, headers=signed(body, secret)
    )
    assert response.status_code == 400
    assert response.json()["field"] == "payload.metadata.event_name"
    body = b"{not json"
    response = await gw.http.post(
        f"/webhooks/{source_id}", content=body, headers=signed(body, secret)
    )
    assert response.status_code == 400 and response.json()["field"] == "payload"

    ll_id, ll_secret = await register(gw, Kind.LEARNING_LOCKER, "LL")
    bad = dict(LL_STATEMENT, verb={"id": "not an iri"})
    response = await gw.http.post(
        f"/webhooks/{ll_id}", content=json.dumps(bad).encode(), headers=basic(ll_id, ll_secret)
    )
    assert response.status_code == 400 and response.json()["field"] == "payload.verb.id"


async def test_unknown_and_revoked_sources(gw: LiveLearning) -> None:
    missing = await gw.http.post("/webhooks/00000000-0000-4000-8000-000000000000", content=b"{}")
    assert missing.status_code == 404
    source_id, secret = await register(gw, Kind.MOODLE, SITE)
    await gw.grpc("ana").revoke_webhook_source(pb.RevokeWebhookSourceRequest(source_id=source_id))
    body = json.dumps(moodle_event("\\core\\event\\course_viewed")).encode()
    revoked = await gw.http.post(
        f"/webhooks/{source_id}", content=body, headers=signed(body, secret)
    )
    assert (revoked.status_code, revoked.json()["error"]) == (
        401,
        "the webhook source was revoked",
    )
