"""The marketplace over GraphQL, end to end: a live gateway in front of the marketplace
servicer on a real gRPC host (the gateway reaches it over gRPC only)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from websockets.asyncio.client import connect

from gateway.tests.conftest import GatewayFactory, LiveGateway
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.events import EventBus
from services.kit.events.outbox import OutboxRelay
from services.kit.grpc.testing import access_token, token_pair
from services.marketplace.service import MarketplaceService
from services.marketplace.servicer import MarketplaceServicer
from services.marketplace.storage import outbox
from services.marketplace.tests.conftest import ObservedFanout

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def database_schemas() -> Sequence[str]:
    return ("marketplace",)


class Marketplace:
    def __init__(self, gw: LiveGateway, fanout: ObservedFanout, clock: FixedClock) -> None:
        self.gw = gw
        self.fanout = fanout
        self.clock = clock
        self._tokens: dict[str, str] = {}

    def token(self, user: str, *roles: str) -> str:
        if user not in self._tokens:
            self._tokens[user] = access_token(self.gw.issuer, user, *roles)
        return self._tokens[user]

    async def ok(self, query: str, token: str | None = None, **variables: Any) -> dict[str, Any]:
        result = await self.gw.graphql(query, variables, token=token)
        assert "errors" not in result, result
        return result["data"]  # type: ignore[no-any-return]

    async def error(self, query: str, token: str | None = None, **variables: Any) -> dict[str, Any]:
        result = await self.gw.graphql(query, variables, token=token)
        [error] = result["errors"]
        return error  # type: ignore[no-any-return]


@pytest.fixture
async def market(
    live_gateway: GatewayFactory,
    migrated_database: Database,
    event_bus: EventBus,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Marketplace]:
    clock = FixedClock(START)
    relay = OutboxRelay(migrated_database, outbox, event_bus, poll_interval=0.05)
    service = MarketplaceService(migrated_database, clock, on_commit=relay.notify)
    fanout = ObservedFanout(event_bus, name="gateway-test")
    stop = asyncio.Event()
    relay_task = asyncio.create_task(relay.run(stop))
    try:
        async with live_gateway(
            [MarketplaceServicer(service, fanout)],
            issuer_verifier=token_pair(FixedClock(START)),
        ) as gw:
            yield Marketplace(gw, fanout, clock)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await relay_task
        await fanout.close()


SPACE_FIELDS = """
  id ownerId name timeZone capacity amenities verified verificationStatus childSafe
  geo { latitude longitude }
  hourlyRate { currencyCode amountMinor }
  availability { weekly { weekday startTime endTime } }
  ratingSummary { overall safety cleanliness accessibility ratingCount }
"""

CREATE_SPACE = f"""
mutation Create($input: CreateSpaceInput!) {{ createSpace(input: $input) {{ {SPACE_FIELDS} }} }}
"""


def space_input(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "Biblioteca Norte",
        "address": "Calle Mayor 1, Madrid",
        "timeZone": "Europe/Madrid",
        "capacity": 6,
        "hourlyRate": {"currencyCode": "EUR", "amountMinor": 2400},
        "amenities": ["WIFI", "WHITEBOARD"],
        "accessibilityFeatures": [{"featureType": "ELEVATOR", "description": "lift to 2F"}],
        "availability": {
            "weekly": [
                {"weekday": day, "startTime": "08:00", "endTime": "22:00"}
                for day in ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY")
            ]
        },
    }
    return {**base, **overrides}


async def test_spaces_over_graphql(market: Marketplace) -> None:
    owner = market.token("owner-1", "space_owner")
    created = (await market.ok(CREATE_SPACE, owner, input=space_input()))["createSpace"]
    assert created["ownerId"] == "owner-1"
    assert created["amenities"] == ["WIFI", "WHITEBOARD"]
    assert created["verificationStatus"] == "UNVERIFIED"
    assert created["hourlyRate"] == {"currencyCode": "EUR", "amountMinor": 2400}
    assert created["geo"] is None
    at_origin = await market.ok(
        CREATE_SPACE, owner, input=space_input(geo={"latitude": 0.0, "longitude": 0.0})
    )
    assert at_origin["createSpace"]["geo"] == {"latitude": 0.0, "longitude": 0.0}

    bad = await market.error(CREATE_SPACE, owner, input=space_input(capacity=0))
    assert bad["message"] == "space.capacity: must be between 1 and 10000"
    assert bad["extensions"]["code"] == "BAD_USER_INPUT"
    assert bad["extensions"]["field"] == "space.capacity"
    tz = await market.error(CREATE_SPACE, owner, input=space_input(timeZone="Madrid"))
    assert tz["extensions"]["field"] == "space.time_zone"
    forbidden = await market.error(
        CREATE_SPACE, market.token("student-1", "learner"), input=space_input()
    )
    assert forbidden["extensions"] == {"code": "FORBIDDEN"}
    assert forbidden["message"] == "requires role space_owner"
    anonymous = await market.error(CREATE_SPACE, None, input=space_input())
    assert anonymous["extensions"] == {"code": "UNAUTHENTICATED"}

    updated = await market.ok(
        "mutation U($id: ID!) { updateSpace(spaceId: $id, input: {capacity: 12}) "
        "{ capacity name } }",
        owner,
        id=created["id"],
    )
    assert updated["updateSpace"] == {"capacity": 12, "name": "Biblioteca Norte"}
    other = await market.error(
        'mutation U($id: ID!) { updateSpace(spaceId: $id, input: {name: "x"}) { id } }',
        market.token("owner-2", "space_owner"),
        id=created["id"],
    )
    assert (other["message"], other["extensions"]["code"]) == (
        "only the space owner may edit it",
        "FORBIDDEN",
    )

    # Public search and availability (no token).
    found = await market.ok(
        """query S($f: SpaceSearchInput) { searchSpaces(filter: $f, first: 5) {
             spaces { id } nextPageToken } }""",
        f={"minCapacity": 10, "amenities": ["WIFI"], "accessibility": ["ELEVATOR"]},
    )
    assert found["searchSpaces"] == {"spaces": [{"id": created["id"]}], "nextPageToken": None}
    free = await market.ok(
        """query A($id: ID!, $w: TimeWindowInput!) {
             spaceAvailability(spaceId: $id, window: $w) { startTime endTime } }""",
        id=created["id"],
        w={"startTime": "2026-01-10T00:00:00+00:00", "endTime": "2026-01-11T00:00:00+00:00"},
    )
    # Saturday 08:00-22:00 in Madrid (CET) is 07:00-21:00 UTC.
    assert free["spaceAvailability"] == [
        {"startTime": "2026-01-10T07:00:00+00:00", "endTime": "2026-01-10T21:00:00+00:00"}
    ]

    # Verification: owner adds a certification and asks; an admin attests and approves.
    admin = market.token("admin-1", "admin")
    cert = await market.ok(
        """mutation C($i: AddCertificationInput!) { addSpaceCertification(input: $i) {
             certification { id attestedBy anchorTxHash } } }""",
        owner,
        i={"spaceId": created["id"], "name": "Child protection", "issuer": "CAM"},
    )
    cert_id = cert["addSpaceCertification"]["certification"]["id"]
    assert cert["addSpaceCertification"]["certification"]["attestedBy"] is None
    await market.ok(
        "mutation R($id: ID!) { requestSpaceVerification(spaceId: $id) { verificationStatus } }",
        owner,
        id=created["id"],
    )
    denied = await market.error(
        "mutation A($s: ID!, $c: ID!) { attestSpaceCertification(spaceId: $s, "
        "certificationId: $c, childProtection: true) { certification { id } } }",
        owner,
        s=created["id"],
        c=cert_id,
    )
    assert denied["message"] == "only an admin may attest certifications"
    attested = await market.ok(
        "mutation A($s: ID!, $c: ID!) { attestSpaceCertification(spaceId: $s, "
        "certificationId: $c, childProtection: true) { certification { attestedBy } } }",
        admin,
        s=created["id"],
        c=cert_id,
    )
    assert attested["attestSpaceCertification"]["certification"]["attestedBy"] == "admin-1"
    reviewed = await market.ok(
        "mutation V($s: ID!) { reviewSpaceVerification(spaceId: $s, approve: true) "
        "{ verified childSafe } }",
        admin,
        s=created["id"],
    )
    assert reviewed["reviewSpaceVerification"] == {"verified": True, "childSafe": True}


async def _next_event(ws: Any) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 15))
        if message["type"] == "next":
            return message["payload"]["data"]["reservationChanged"]  # type: ignore[no-any-return]
        assert message["type"] not in ("error", "complete"), message


async def test_tutor_session_flow_with_the_reservation_subscription(market: Marketplace) -> None:
    owner = market.token("owner-1", "space_owner")
    tutor = market.token("tutor-1", "tutor")
    student = market.token("student-1", "learner")
    space = (await market.ok(CREATE_SPACE, owner, input=space_input()))["createSpace"]

    async with connect(market.gw.ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {owner}"}})
        )
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {
                        "query": "subscription W($s: ID) { reservationChanged(spaceId: $s) "
                        "{ kind reservation { id status tutorId totalCost { amountMinor } } } }",
                        "variables": {"s": space["id"]},
                    },
                }
            )
        )
        await market.fanout.wait_for_listeners(1)

        book = """mutation B($i: BookTutorSessionInput!) { bookTutorSession(input: $i) {
                    session { id status subject reservationId }
                    reservation { id status totalCost { currencyCode amountMinor } } } }"""
        session_input = {
            "spaceId": space["id"],
            "studentId": "student-1",
            "startTime": "2026-01-10T09:00:00+00:00",  # Saturday 10:00-11:30 in Madrid
            "endTime": "2026-01-10T10:30:00+00:00",
            "subject": "Linear algebra",
            "requestId": "gql-1",
        }
        booked = (await market.ok(book, tutor, i=session_input))["bookTutorSession"]
        assert booked["session"]["status"] == "SCHEDULED"
        assert booked["reservation"]["totalCost"] == {"currencyCode": "EUR", "amountMinor": 3600}
        reservation_id = booked["reservation"]["id"]

        event = await _next_event(ws)
        assert event == {
            "kind": "REQUESTED",
            "reservation": {
                "id": reservation_id,
                "status": "REQUESTED",
                "tutorId": "tutor-1",
                "totalCost": {"amountMinor": 3600},
            },
        }

        clash = await market.error(
            book,
            market.token("tutor-2", "tutor"),
            i={
                **session_input,
                "requestId": "",
                "startTime": "2026-01-10T10:00:00+00:00",
                "endTime": "2026-01-10T11:00:00+00:00",
            },
        )
        assert (clash["message"], clash["extensions"]["code"]) == (
            "slot already booked",
            "CONFLICT",
        )

        await market.ok(
            "mutation C($id: ID!) { confirmReservation(id: $id) { status } }",
            owner,
            id=reservation_id,
        )
        assert (await _next_event(ws))["kind"] == "CONFIRMED"

        complete = "mutation T($id: ID!) { completeTutorSession(id: $id) { status } }"
        early = await market.error(complete, tutor, id=booked["session"]["id"])
        assert (early["message"], early["extensions"]["code"]) == (
            "the reservation has not ended yet",
            "FAILED_PRECONDITION",
        )
        market.clock.set(datetime(2026, 1, 10, 10, 30, tzinfo=UTC))
        # Issue 9: naming the student invited them; completing needs their consent.
        pending = await market.error(complete, tutor, id=booked["session"]["id"])
        assert pending["extensions"]["code"] == "FAILED_PRECONDITION"
        invited = await market.ok(
            "{ invitations(kinds: [TUTOR_SESSION], statuses: [PENDING]) "
            "{ id kind subjectId inviterId } }",
            student,
        )
        [invitation] = invited["invitations"]
        assert (invitation["kind"], invitation["subjectId"], invitation["inviterId"]) == (
            "TUTOR_SESSION",
            booked["session"]["id"],
            "tutor-1",
        )
        accepted = await market.ok(
            "mutation A($id: ID!) { acceptInvitation(id: $id) { status } }",
            student,
            id=invitation["id"],
        )
        assert accepted["acceptInvitation"] == {"status": "ACCEPTED"}
        done = await market.ok(complete, tutor, id=booked["session"]["id"])
        assert done["completeTutorSession"] == {"status": "COMPLETED"}
        assert (await _next_event(ws))["kind"] == "COMPLETED"
        await ws.send(json.dumps({"id": "1", "type": "complete"}))

    rate = """mutation R($i: RateSpaceInput!) { rateSpace(input: $i) {
                rating { raterId overall } summary { overall ratingCount } } }"""
    rating = {
        "spaceId": space["id"],
        "reservationId": reservation_id,
        "overall": 4,
        "safety": 5,
        "cleanliness": 4,
        "accessibility": 3,
        "comment": "calm",
    }
    bad = await market.error(rate, student, i={**rating, "overall": 9})
    assert (bad["extensions"]["field"], bad["message"]) == (
        "rating.overall",
        "rating.overall: must be between 1 and 5",
    )
    stranger = await market.error(rate, market.token("student-9", "learner"), i=rating)
    assert stranger["message"] == "only a participant of the reservation may rate it"
    rated = (await market.ok(rate, student, i=rating))["rateSpace"]
    assert rated == {
        "rating": {"raterId": "student-1", "overall": 4},
        "summary": {"overall": 4.0, "ratingCount": 1},
    }
    again = await market.error(rate, student, i=rating)
    assert again["extensions"]["code"] == "CONFLICT"

    mine = await market.ok(
        "{ reservations { reservations { id status } nextPageToken } "
        "tutorSessions { sessions { subject status } } }",
        student,
    )
    assert mine["reservations"] == {
        "reservations": [{"id": reservation_id, "status": "COMPLETED"}],
        "nextPageToken": None,
    }
    assert mine["tutorSessions"]["sessions"] == [
        {"subject": "Linear algebra", "status": "COMPLETED"}
    ]
    ratings = await market.ok(
        "query R($s: ID!) { spaceRatings(spaceId: $s) { ratings { comment } } }", s=space["id"]
    )
    assert ratings["spaceRatings"]["ratings"] == [{"comment": "calm"}]


async def test_cancellation_over_graphql(market: Marketplace) -> None:
    owner = market.token("owner-1", "space_owner")
    tutor = market.token("tutor-1", "tutor")
    space = (await market.ok(CREATE_SPACE, owner, input=space_input()))["createSpace"]
    made = await market.ok(
        """mutation M($i: CreateReservationInput!) { createReservation(input: $i) { id } }""",
        tutor,
        i={
            "spaceId": space["id"],
            "studentId": "student-1",
            "startTime": "2026-01-10T09:00:00+00:00",
            "endTime": "2026-01-10T10:00:00+00:00",
        },
    )
    reservation_id = made["createReservation"]["id"]
    cancel = """mutation X($id: ID!) { cancelReservation(id: $id, reason: "ill") {
                  status cancellation { cancelledBy outcome refund { amountMinor } } } }"""
    other = await market.error(cancel, market.token("tutor-2", "tutor"), id=reservation_id)
    assert other["extensions"]["code"] == "FORBIDDEN"
    market.clock.set(datetime(2026, 1, 10, 9, tzinfo=UTC) - timedelta(hours=2))
    cancelled = (await market.ok(cancel, tutor, id=reservation_id))["cancelReservation"]
    assert cancelled == {
        "status": "CANCELLED",
        "cancellation": {
            "cancelledBy": "tutor-1",
            "outcome": "PARTIAL_REFUND",
            "refund": {"amountMinor": 1200},
        },
    }
