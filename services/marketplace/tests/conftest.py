"""Fixtures of the marketplace tests: a migrated marketplace schema, the service, and the
servicer on a real gRPC host with the outbox relay and the watch fanout running."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from sqlalchemy import select

from services.api.keiko.common import v1 as common_pb
from services.api.keiko.marketplace import v1 as pb
from services.kit.auth import TokenIssuer, TokenVerifier
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.events import EventBus
from services.kit.events.fanout import EventFanout
from services.kit.events.outbox import OutboxRelay
from services.kit.grpc.client import stub
from services.kit.grpc.errors import field_violations
from services.kit.grpc.testing import access_token, running_server, token_pair
from services.marketplace.service import MarketplaceService
from services.marketplace.servicer import MarketplaceServicer
from services.marketplace.storage import outbox

Stub = pb.MarketplaceServiceStub
ALL_WEEK = pb.Availability(
    weekly=[
        pb.WeeklySlot(weekday=pb.Weekday(d), start_time="00:00", end_time="24:00")
        for d in range(1, 8)
    ]
)


def at(day: int, hour: int, minute: int = 0, month: int = 1) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def eur(minor: int) -> common_pb.Money:
    return common_pb.Money(currency_code="EUR", amount_minor=minor)


@pytest.fixture
def database_schemas() -> Sequence[str]:
    return ("marketplace",)


@pytest.fixture
def tokens(clock: FixedClock) -> tuple[TokenIssuer, TokenVerifier]:
    # Their own clock: tests move the service's clock by months; tokens are not the subject.
    return token_pair(FixedClock(clock.now()))


@pytest.fixture
def service(migrated_database: Database, clock: FixedClock) -> MarketplaceService:
    return MarketplaceService(migrated_database, clock)


class ObservedFanout(EventFanout):
    """The fanout, telling tests when a watcher is registered (events published after
    that reach it), so no test has to guess with a sleep."""

    def __init__(self, bus: EventBus, *, name: str) -> None:
        super().__init__(bus, name=name)
        self.listeners = 0
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def listen(self, topics: Sequence[str], predicate: Any) -> AsyncIterator[Any]:
        async with super().listen(topics, predicate) as events:
            async with self._changed:
                self.listeners += 1
                self._changed.notify_all()
            try:
                yield events
            finally:
                self.listeners -= 1

    async def wait_for_listeners(self, count: int) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.listeners >= count), 10)


@dataclass
class Harness:
    channel: grpc.aio.Channel
    service: MarketplaceService
    clock: FixedClock
    issuer: TokenIssuer
    relay: OutboxRelay
    fanout: ObservedFanout
    database: Database
    _stubs: dict[tuple[str, tuple[str, ...]], Stub] = field(default_factory=dict)

    def as_user(self, user_id: str, *roles: str) -> Stub:
        key = (user_id, roles)
        if key not in self._stubs:
            token = access_token(self.issuer, user_id, *roles)
            self._stubs[key] = stub(Stub, self.channel, access_token=token)
        return self._stubs[key]

    def anonymous(self) -> Stub:
        return stub(Stub, self.channel)

    def owner(self, user_id: str = "owner-1") -> Stub:
        return self.as_user(user_id, "space_owner")

    def admin(self, user_id: str = "admin-1") -> Stub:
        return self.as_user(user_id, "admin")

    def tutor(self, user_id: str = "tutor-1") -> Stub:
        return self.as_user(user_id, "tutor")

    def learner(self, user_id: str = "student-1") -> Stub:
        return self.as_user(user_id, "learner")

    async def create_space(
        self,
        owner: str = "owner-1",
        *,
        availability: pb.Availability | None = None,
        time_zone: str = "UTC",
        rate: int = 2000,
        **fields: Any,
    ) -> pb.LearningSpace:
        request = pb.CreateSpaceRequest(
            name=fields.pop("name", "Biblioteca Norte"),
            description=fields.pop("description", "Quiet study rooms"),
            address=fields.pop("address", "Calle Mayor 1, Madrid"),
            time_zone=time_zone,
            capacity=fields.pop("capacity", 8),
            hourly_rate=eur(rate),
            availability=availability or ALL_WEEK,
            **fields,
        )
        return (await self.owner(owner).create_space(request)).space

    async def book(
        self,
        space_id: str,
        start: datetime,
        end: datetime,
        *,
        tutor: str = "tutor-1",
        student: str = "student-1",
        request_id: str = "",
    ) -> pb.Reservation:
        response = await self.tutor(tutor).create_reservation(
            pb.CreateReservationRequest(
                space_id=space_id,
                student_id=student,
                start_time=start,
                end_time=end,
                request_id=request_id,
            )
        )
        return response.reservation

    async def accept(self, user: str = "student-1") -> list[common_pb.Invitation]:
        """`user` accepts every invitation pending for them (issue 9: consent)."""
        me = self.learner(user)
        pending = await me.list_invitations(
            pb.ListInvitationsRequest(
                statuses=[common_pb.InvitationStatus(common_pb.InvitationStatus.PENDING)]
            )
        )
        accepted = []
        for invitation in pending.invitations:
            answered = await me.respond_to_invitation(
                pb.RespondToInvitationRequest(invitation_id=invitation.id, accept=True)
            )
            accepted.append(answered.invitation)
        return accepted

    async def verified_child_safe_space(self, owner: str = "owner-1") -> pb.LearningSpace:
        space = await self.create_space(owner)
        added = await self.owner(owner).add_certification(
            pb.AddCertificationRequest(
                space_id=space.id, name="Child protection", issuer="Ayuntamiento", reference="CP-1"
            )
        )
        await self.owner(owner).request_verification(
            pb.RequestVerificationRequest(space_id=space.id)
        )
        await self.admin().attest_certification(
            pb.AttestCertificationRequest(
                space_id=space.id,
                certification_id=added.certification.id,
                child_protection=True,
            )
        )
        reviewed = await self.admin().review_verification(
            pb.ReviewVerificationRequest(space_id=space.id, approve=True)
        )
        return reviewed.space


@pytest.fixture
async def harness(
    migrated_database: Database,
    clock: FixedClock,
    tokens: tuple[TokenIssuer, TokenVerifier],
    event_bus: EventBus,
) -> AsyncIterator[Harness]:
    issuer, verifier = tokens
    relay = OutboxRelay(migrated_database, outbox, event_bus, poll_interval=0.05)
    service = MarketplaceService(migrated_database, clock, on_commit=relay.notify)
    fanout = ObservedFanout(event_bus, name="marketplace-test")
    stop = asyncio.Event()
    relay_task = asyncio.create_task(relay.run(stop))
    try:
        async with running_server(
            [MarketplaceServicer(service, fanout)], token_verifier=verifier
        ) as channel:
            yield Harness(channel, service, clock, issuer, relay, fanout, migrated_database)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await relay_task
        await fanout.close()


async def outbox_events(db: Database, topic: str) -> list[dict[str, Any]]:
    """Payloads enqueued under `topic`, in order."""
    async with db.session() as session:
        rows = await session.execute(
            select(outbox.c.payload).where(outbox.c.topic == topic).order_by(outbox.c.seq)
        )
        return [row.payload for row in rows]


async def rpc_error(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def expect_invalid(call: Awaitable[Any], field_path: str, reason: str) -> None:
    """INVALID_ARGUMENT with exactly this field violation."""
    error = await rpc_error(call)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert field_violations(error) == [(field_path, reason)]
    assert error.details() == f"{field_path}: {reason}"


async def expect_code(call: Awaitable[Any], code: grpc.StatusCode, details: str) -> None:
    error = await rpc_error(call)
    assert (error.code(), error.details()) == (code, details)
