"""The generated protobuf code in services/api/ imports, round-trips and matches proto/.

buf lint runs separately in CI; this checks what Python code depends on: every generated
package imports, well-known types map to Python types, the descriptor set served for
reflection holds every service, every RPC is reachable through the generated service
bases, and the committed code has not drifted from proto/.
"""

from __future__ import annotations

import importlib
import importlib.util
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import betterproto
import pytest
from betterproto.casing import safe_snake_case
from google.protobuf import descriptor_pb2

import services.api
from services.api.keiko.common import v1 as common_v1
from services.api.keiko.identity import v1 as identity_v1
from services.api.keiko.learning import v1 as learning_v1

REPO_ROOT = Path(__file__).resolve().parent.parent
API_ROOT = REPO_ROOT / "services" / "api"

PROTO_PACKAGES = (
    "common",
    "identity",
    "learning",
    "passport",
    "reputation",
    "governance",
    "marketplace",
    "chain",
)

# The RPCs the foundation issue requires of each service (services may offer more).
REQUIRED_RPCS: dict[str, set[str]] = {
    "keiko.identity.v1.IdentityService": {
        "GetUser",
        "GetMe",
        "UpdateProfile",
        "SetRoles",
        "BeginRegistration",
        "FinishRegistration",
        "BeginLogin",
        "FinishLogin",
        "RefreshTokens",
        "Logout",
        "ListSessions",
        "RevokeSession",
        "ListCredentials",
        "RemoveCredential",
        "EnrollHumanity",
        "VerifyHumanity",
        "RecoverSigningKey",
        "GetHumanityStatus",
    },
    "keiko.learning.v1.LearningService": {
        "RecordStatements",
        "GetStatement",
        "QueryStatements",
        "VoidStatement",
        "CreateCourse",
        "GetCourse",
        "ListCourses",
        "CreateClass",
        "GetClass",
        "ListClasses",
        "CreateTutorialSession",
        "GetTutorialSession",
        "ListTutorialSessions",
        "StartTutorialSession",
        "EndTutorialSession",
        "StartStudySession",
        "EndStudySession",
        "GetStudySession",
        "ListStudySessions",
        "RecordInteraction",
        "RegisterLrsClient",
        "ListLrsClients",
        "RevokeLrsClient",
        "RegisterWebhookSource",
        "ImportWebhook",
        "WatchInteractions",
    },
    "keiko.passport.v1.PassportService": {
        "GetPassport",
        "GetPassportVersion",
        "GetTimeline",
        "GetLearningProfile",
        "UpdateLearningProfile",
        "GetPrivacySettings",
        "UpdatePrivacySettings",
        "CreateShareLink",
        "RevokeShareLink",
        "ListShareLinks",
        "GetSharedPassport",
        "VerifyEntry",
        "VerifyPassport",
        "WatchPassport",
    },
    "keiko.reputation.v1.ReputationService": {
        "SubmitRating",
        "GetRating",
        "ListRatings",
        "GetReputation",
        "ListFlaggedRatings",
        "ReviewFlag",
        "WatchReputation",
    },
    "keiko.governance.v1.GovernanceService": {
        "CreateCommunity",
        "GetCommunity",
        "ListCommunities",
        "JoinCommunity",
        "LeaveCommunity",
        "SetMemberRole",
        "CreateProposal",
        "GetProposal",
        "ListProposals",
        "CastVote",
        "GetTally",
        "FinalizeProposal",
        "ExecuteProposal",
        "CancelProposal",
        "GetStandards",
        "ListStandardsVersions",
        "WatchProposal",
    },
    "keiko.marketplace.v1.MarketplaceService": {
        "CreateSpace",
        "UpdateSpace",
        "GetSpace",
        "SearchSpaces",
        "SetAvailability",
        "RequestVerification",
        "AttestCertification",
        "CreateReservation",
        "ConfirmReservation",
        "CancelReservation",
        "CompleteReservation",
        "GetReservation",
        "ListReservations",
        "BookTutorSession",
        "CompleteTutorSession",
        "RateSpace",
        "ListSpaceRatings",
        "WatchReservations",
    },
    "keiko.chain.v1.ChainService": {
        "SignInteraction",
        "SubmitForAnchoring",
        "GetAnchorStatus",
        "GetInclusionProof",
        "GetBatch",
        "RegisterHumanity",
        "GetChainInfo",
        "WatchAnchors",
    },
}


def _generated_module(package: str) -> ModuleType:
    return importlib.import_module(f"services.api.keiko.{package}.v1")


def _descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    return descriptor_pb2.FileDescriptorSet.FromString(
        services.api.DESCRIPTOR_SET_PATH.read_bytes()
    )


def _services() -> dict[str, descriptor_pb2.ServiceDescriptorProto]:
    return {
        f"{file.package}.{service.name}": service
        for file in _descriptor_set().file
        for service in file.service
    }


@pytest.mark.parametrize("package", PROTO_PACKAGES)
def test_every_generated_package_imports(package: str) -> None:
    module = _generated_module(package)
    assert any(
        isinstance(value, type) and issubclass(value, betterproto.Message)
        for value in vars(module).values()
    )


def test_message_with_well_known_types_round_trips_through_bytes() -> None:
    issued = datetime(2026, 11, 22, 3, 50, 21, 123456, tzinfo=UTC)
    tokens = identity_v1.TokenPair(
        access_token="access",
        access_expires_at=issued + timedelta(minutes=15),
        refresh_token="refresh",
        refresh_expires_at=issued + timedelta(days=30),
        session_id="session-1",
    )
    decoded = identity_v1.TokenPair.FromString(bytes(tokens))
    # google.protobuf.Timestamp maps to an aware datetime, microseconds preserved.
    assert decoded.access_expires_at == issued + timedelta(minutes=15)
    assert decoded.access_expires_at.tzinfo is not None
    assert decoded.to_dict() == tokens.to_dict()

    # google.protobuf.Duration maps to timedelta; cross-package messages and enums
    # (keiko.common.v1) nest as plain fields. mypy reads betterproto enum members as
    # int, so they are passed through the enum's constructor, which returns the member.
    interaction = learning_v1.Interaction(
        id="statement-1",
        interaction_type=common_v1.InteractionType(common_v1.InteractionType.ANSWER),
        duration=timedelta(seconds=90),
        score=learning_v1.Score(scaled=0.8),
        anchor=common_v1.AnchorState(status=common_v1.AnchorStatus(common_v1.AnchorStatus.PENDING)),
    )
    decoded_interaction = learning_v1.Interaction.FromString(bytes(interaction))
    assert decoded_interaction.duration == timedelta(seconds=90)
    assert decoded_interaction.interaction_type is common_v1.InteractionType.ANSWER
    assert decoded_interaction.score.scaled == 0.8
    assert decoded_interaction.score.raw is None  # proto3 optional: unset reads as None
    assert decoded_interaction.anchor.status is common_v1.AnchorStatus.PENDING


def test_oneof_survives_round_trip() -> None:
    request = identity_v1.LogoutRequest(session_id="session-1")
    decoded = identity_v1.LogoutRequest.FromString(bytes(request))
    assert betterproto.which_one_of(decoded, "target") == ("session_id", "session-1")


def test_descriptor_set_holds_every_service_and_required_rpc() -> None:
    services = _services()
    assert set(services) == set(REQUIRED_RPCS)
    for full_name, required in REQUIRED_RPCS.items():
        methods = {method.name for method in services[full_name].method}
        assert required <= methods, f"{full_name} lacks {sorted(required - methods)}"


def test_descriptor_set_carries_doc_comments_for_reflection() -> None:
    identity_file = next(
        file for file in _descriptor_set().file if file.package == "keiko.identity.v1"
    )
    comments = [location.leading_comments for location in identity_file.source_code_info.location]
    assert any("passwordless" in comment for comment in comments)


@pytest.mark.parametrize("full_name", sorted(REQUIRED_RPCS))
def test_service_base_maps_every_rpc(full_name: str) -> None:
    """Every RPC of the descriptor is served by the generated base with the right shape."""
    package, service_name = full_name.rsplit(".", 1)
    module = importlib.import_module(f"services.api.{package}")
    base_class = getattr(module, f"{service_name}Base")
    assert hasattr(module, f"{service_name}Stub")
    mapping = base_class().__mapping__()
    service = _services()[full_name]
    assert set(mapping) == {f"/{full_name}/{method.name}" for method in service.method}
    for method in service.method:
        handler = mapping[f"/{full_name}/{method.name}"]
        assert handler.cardinality.value.server_streaming == method.server_streaming
        assert handler.cardinality.value.client_streaming == method.client_streaming
        assert handler.request_type.__name__ == method.input_type.rsplit(".", 1)[1]
        assert handler.reply_type.__name__ == method.output_type.rsplit(".", 1)[1]
        # Servicers override the snake_case method; hosts find it by this name.
        assert callable(getattr(base_class, safe_snake_case(method.name)))


def test_generated_code_matches_proto_sources() -> None:
    spec = importlib.util.spec_from_file_location(
        "gen_proto", REPO_ROOT / "scripts" / "gen_proto.py"
    )
    assert spec is not None and spec.loader is not None
    gen_proto = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_proto)
    problems = gen_proto.check(API_ROOT)
    assert problems == [], "run python scripts/gen_proto.py:\n" + "\n".join(problems)
