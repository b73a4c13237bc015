"""Every operation has a deadline (issue 10): a GraphQL operation, and each call the
gateway makes to a service. A service that never answers is told to the client as
TIMEOUT (GraphQL) or 504 with the reason (REST); nothing hangs. The fakes below never
answer, so no timing is asserted: only the answer a client gets."""

from __future__ import annotations

import asyncio

from gateway.tests.conftest import GatewayFactory
from services.api.keiko.identity import v1 as identity_pb
from services.api.keiko.learning import v1 as learning_pb
from services.kit.grpc.testing import access_token


class _NeverAnswers:
    """Holds each call until the caller gives up (the server then cancels it)."""

    def __init__(self) -> None:
        self.calls = 0

    async def hold(self) -> None:
        self.calls += 1
        await asyncio.Event().wait()


class StuckIdentity(identity_pb.IdentityServiceBase):
    def __init__(self) -> None:
        self.stuck = _NeverAnswers()

    async def get_me(self, get_me_request: identity_pb.GetMeRequest) -> identity_pb.GetMeResponse:
        await self.stuck.hold()
        raise AssertionError("unreachable")


class StuckLearning(learning_pb.LearningServiceBase):
    def __init__(self) -> None:
        self.stuck = _NeverAnswers()

    async def get_activity(
        self, get_activity_request: learning_pb.GetActivityRequest
    ) -> learning_pb.GetActivityResponse:
        await self.stuck.hold()
        raise AssertionError("unreachable")


async def test_a_graphql_operation_past_its_deadline_is_answered_timeout(
    live_gateway: GatewayFactory,
) -> None:
    identity = StuckIdentity()
    # The call's own deadline is far off: the operation's deadline ends it.
    async with live_gateway(
        [identity], graphql_deadline_seconds=0.2, gateway_rpc_deadline_seconds=600
    ) as gw:
        token = access_token(gw.issuer, "user-1")
        result = await gw.graphql("{ me { id } }", token=token)
        health = await gw.http.get("/healthz")
    assert identity.stuck.calls == 1
    assert result == {
        "data": None,
        "errors": [
            {
                "message": "the operation did not finish within its deadline of 0.2 s",
                "extensions": {"code": "TIMEOUT"},
            }
        ],
    }
    assert health.json() == {"status": "ok"}


async def test_a_service_call_past_its_deadline_is_timeout_in_graphql_and_504_in_rest(
    live_gateway: GatewayFactory,
) -> None:
    identity, learning = StuckIdentity(), StuckLearning()
    async with live_gateway(
        [identity, learning], graphql_deadline_seconds=600, gateway_rpc_deadline_seconds=0.2
    ) as gw:
        token = access_token(gw.issuer, "user-1")
        result = await gw.graphql("{ me { id } }", token=token)
        xapi = await gw.http.get(
            "/xapi/activities",
            params={"activityId": "https://keiko.example/activities/1"},
            headers={"authorization": f"Bearer {token}", "X-Experience-API-Version": "1.0.3"},
        )
    assert (identity.stuck.calls, learning.stuck.calls) == (1, 1)
    [error] = result["errors"]
    assert error["extensions"] == {"code": "TIMEOUT"}
    assert error["message"] == "the operation did not finish within its deadline"
    assert result["data"] is None
    assert xapi.status_code == 504
    assert xapi.json() == {"error": "the operation did not finish within its deadline"}
