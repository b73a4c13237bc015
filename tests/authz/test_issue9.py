"""The findings of issue 9, each tried again as the attacker did, over gRPC and GraphQL:
each is now refused, with the same code on both (GraphQL names PERMISSION_DENIED
`FORBIDDEN`). The shared fixture (`world.py`) without the chain node: none is needed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from keiko import registry
from keiko.platform import running_platform
from tests.authz.calls import GraphQLCalls, GrpcCalls, Result
from tests.authz.matrix import Caller
from tests.authz.operations import all_operations
from tests.authz.world import World
from tests.e2e_support import e2e_settings, engine_env, migrate_all

LEARNER, OWNER, PARTICIPANT = Caller.LEARNER, Caller.OWNER, Caller.PARTICIPANT


@pytest.fixture
async def world(
    tmp_path: Path, database_url: str, event_bus_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[World]:
    engine_env(monkeypatch, database_url)
    settings = e2e_settings(tmp_path / "data", database_url, event_bus_url)
    settings = settings.model_copy(update={"humanity_warm_up": False})
    await migrate_all(database_url)
    async with (
        running_platform(settings, registry.resolve(None), with_chain=False) as running,
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{running.http_port}",
            timeout=60,
            limits=httpx.Limits(max_keepalive_connections=0),
        ) as http,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel,
    ):
        built = World(
            running,
            GrpcCalls(channel),
            GraphQLCalls(http, f"ws://127.0.0.1:{running.http_port}/graphql"),
        )
        await built.build()
        yield built


async def gql(world: World, caller: Caller, op: str, variables: Mapping[str, Any]) -> Result:
    return await world.graphql.execute(all_operations()[op], variables, world.token(caller))


def refused(grpc_result: Result, graphql_result: Result, code: str) -> None:
    graphql_code = {"PERMISSION_DENIED": "FORBIDDEN"}.get(code, code)
    assert (grpc_result.code, graphql_result.code) == (code, graphql_code), (
        grpc_result,
        graphql_result,
    )


async def test_naming_someone_a_student_gives_no_access(world: World) -> None:
    """Finding 1: a learner names A (the participant) as the student of a session, starts
    it, and tries to read, record about and stream A's record, also after its end."""
    a = world.user(PARTICIPANT)
    made = await world.must(
        LEARNER,
        "LearningService/CreateTutorialSession",
        {"studentIds": [a], "sessionType": "SESSION_TYPE_HUMAN", "topic": "Nothing"},
    )
    session_id = made["session"]["id"]
    assert made["session"]["invitations"][0]["status"] == "INVITATION_STATUS_PENDING"
    await world.must(LEARNER, "LearningService/StartTutorialSession", {"sessionId": session_id})
    for ended in (False, True):
        if ended:
            await world.must(
                LEARNER, "LearningService/EndTutorialSession", {"sessionId": session_id}
            )
        refused(
            await world.call(LEARNER, "LearningService/ListInteractions", {"learnerId": a}),
            await gql(world, LEARNER, "Query.interactions", {"learnerId": a}),
            "PERMISSION_DENIED",
        )
        feedback = {
            "learnerId": a,
            "interactionType": "INTERACTION_TYPE_FEEDBACK",
            "content": "bad",
            "context": {"tutorialSessionId": session_id},
        }
        refused(
            await world.call(
                LEARNER, "LearningService/RecordInteraction", {"interaction": feedback}
            ),
            await gql(
                world,
                LEARNER,
                "Mutation.recordInteraction",
                {
                    "input": {
                        "learnerId": a,
                        "interactionType": "FEEDBACK",
                        "content": "bad",
                        "tutorialSessionId": session_id,
                    }
                },
            ),
            # Before the end: not accepted (PERMISSION_DENIED); after: still refused
            # for that reason first.
            "PERMISSION_DENIED",
        )
        op = all_operations()["LearningService/WatchInteractions"]
        stream = world.grpc.first(op, world.grpc.stream(op, {"learnerId": a}, world.token(LEARNER)))
        sub = await world.graphql.subscription(
            all_operations()["Subscription.interactionRecorded"],
            {"learnerId": a},
            world.token(LEARNER),
        )
        refused(await stream, await sub.first(), "PERMISSION_DENIED")
    # Even the owner's accepted session shows the owner nothing of A's own history.
    listed = await world.must(OWNER, "LearningService/ListInteractions", {"learnerId": a})
    ids = {i["id"] for i in listed.get("interactions", [])}
    assert world.session_interaction_id in ids
    assert world.participant_interaction_id not in ids


async def test_booking_someone_gives_no_rating(world: World) -> None:
    """Finding 2: the space owner books A (the invited account) as the student of a tutor
    session without their agreement, and tries to rate them."""
    session_id, reservation_id = await world.tutor_session(Caller.INVITED)
    got = await world.must(OWNER, "MarketplaceService/GetTutorSession", {"sessionId": session_id})
    assert got["session"]["studentInvitation"] == "INVITATION_STATUS_PENDING"
    rating = {
        "ratedId": world.user(Caller.INVITED),
        "sessionId": session_id,
        "score": 1,
        "comment": "",
    }
    refused(
        await world.call(
            OWNER, "ReputationService/SubmitRating", {**rating, "raterRole": "RATER_ROLE_TUTOR"}
        ),
        await gql(
            world,
            OWNER,
            "Mutation.submitRating",
            {"input": {**rating, "raterRole": "TUTOR", "requestId": ""}},
        ),
        "NOT_FOUND",
    )
    # Declining ends it: the booking is cancelled.
    invitation = await world.invitation(Caller.INVITED, "tutor_session", session_id)
    await world.must(
        Caller.INVITED,
        "MarketplaceService/RespondToInvitation",
        {"invitationId": invitation, "accept": False},
    )
    cancelled = await world.must(
        OWNER, "MarketplaceService/GetReservation", {"reservationId": reservation_id}
    )
    assert cancelled["reservation"]["status"] == "RESERVATION_STATUS_CANCELLED"


async def test_another_instructors_class_is_closed(world: World) -> None:
    """Finding 3: attaching sessions, study and interactions to the owner's class."""
    session = {
        "classId": world.class_id,
        "studentIds": [world.user(Caller.NON_MEMBER)],
        "sessionType": "SESSION_TYPE_HUMAN",
        "topic": "Squatting",
    }
    refused(
        await world.call(Caller.OTHER_TUTOR, "LearningService/CreateTutorialSession", session),
        await gql(
            world,
            Caller.OTHER_TUTOR,
            "Mutation.createTutorialSession",
            {
                "input": {
                    **session,
                    "sessionType": "HUMAN",
                }
            },
        ),
        "PERMISSION_DENIED",
    )
    refused(
        await world.call(
            LEARNER,
            "LearningService/StartStudySession",
            {"classId": world.class_id, "topic": "x"},
        ),
        await gql(
            world, LEARNER, "Mutation.startStudySession", {"classId": world.class_id, "topic": "x"}
        ),
        "PERMISSION_DENIED",
    )
    refused(
        await world.call(
            LEARNER,
            "LearningService/RecordInteraction",
            {
                "interaction": {
                    "interactionType": "INTERACTION_TYPE_EXERCISE",
                    "content": "x",
                    "context": {"classId": world.class_id},
                }
            },
        ),
        await gql(
            world,
            LEARNER,
            "Mutation.recordInteraction",
            {"input": {"interactionType": "EXERCISE", "content": "x", "classId": world.class_id}},
        ),
        "PERMISSION_DENIED",
    )
    seen = await world.must(LEARNER, "LearningService/GetClass", {"classId": world.class_id})
    assert "interactionCount" not in seen["class"] and "tutorialSessionIds" not in seen["class"]
    owner_view = await world.must(OWNER, "LearningService/GetClass", {"classId": world.class_id})
    assert world.tutorial_session_id in owner_view["class"]["tutorialSessionIds"]


async def test_a_closed_communitys_standards_are_for_members(world: World) -> None:
    """Finding 4."""
    refused(
        await world.call(
            Caller.NON_MEMBER,
            "GovernanceService/GetStandards",
            {
                "communityId": world.closed_community_id,
                "kind": "STANDARDS_KIND_COMMUNITY_STANDARDS",
            },
        ),
        await gql(
            world,
            Caller.NON_MEMBER,
            "Query.communityStandards",
            {"communityId": world.closed_community_id, "kind": "COMMUNITY_STANDARDS", "version": 0},
        ),
        "PERMISSION_DENIED",
    )


async def test_user_shows_others_the_public_profile(world: World) -> None:
    """Finding 6: the admin's roles, bio, locale and time zone are not shown to others."""
    admin = world.user(Caller.ADMIN)
    await world.must(
        Caller.ADMIN,
        "IdentityService/UpdateProfile",
        {"bio": "moderator", "locale": "es-MX", "timeZone": "America/Lima"},
    )
    seen = (await world.must(LEARNER, "IdentityService/GetUser", {"userId": admin}))["user"]
    assert set(seen) <= {"id", "displayName", "profile", "humanVerified"}, seen
    assert seen.get("profile", {}) == {}
    answer = await world.graphql.raw(
        "query($id: ID!) { user(id: $id) { displayName roles email "
        "profile { bio locale timeZone } } }",
        {"id": admin},
        world.token(LEARNER),
    )
    assert answer["user"] == {
        "displayName": "Admin",
        "roles": [],
        "email": None,
        "profile": {"bio": "", "locale": "", "timeZone": ""},
    }
