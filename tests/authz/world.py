"""The one fixture every row of the matrix shares: a platform (every service on one gRPC
port, the gateway in front, no chain node) and, built through the public API, the
accounts of each caller kind and the owner's objects the rows target.

Built once per matrix run; rows then read ids from it (`Ctx`, which adds `me`: the
calling account's user id). Writes in rows that must not disturb later rows target
objects made for them (`fresh_*`)."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from keiko.authenticator import SoftwareAuthenticator
from keiko.platform import RunningPlatform
from services.kit.auth import Principal, TokenIssuer
from services.kit.clock import SystemClock
from services.kit.events.fanout import EventFanout
from tests.authz.calls import GraphQLCalls, GrpcCalls, Result
from tests.authz.matrix import Caller
from tests.authz.operations import all_operations

ORIGIN = "http://localhost:8000"
TOKEN_TTL = timedelta(hours=1)

ROLES: dict[Caller, tuple[str, ...]] = {
    Caller.OWNER: ("learner", "tutor", "space_owner"),
    Caller.LEARNER: ("learner",),
    Caller.INVITED: ("learner",),
    Caller.PARTICIPANT: ("learner",),
    Caller.OTHER_TUTOR: ("learner", "tutor"),
    Caller.MEMBER: ("learner",),
    Caller.NON_MEMBER: ("learner",),
    Caller.ADMIN: ("learner", "admin"),
}

REGISTER = """
mutation Begin($email: String!, $name: String!) {
  beginRegistration(email: $email, displayName: $name) { id optionsJson }
}"""
FINISH_REGISTRATION = """
mutation Finish($id: ID!, $credential: String!) {
  finishRegistration(registrationId: $id, credentialJson: $credential) {
    user { id } tokens { accessToken refreshToken sessionId }
  }
}"""

LOGIN = "mutation Login($email: String!) { beginLogin(email: $email) { id optionsJson } }"
FINISH_LOGIN = """
mutation FinishLogin($id: ID!, $credential: String!) {
  finishLogin(loginId: $id, credentialJson: $credential) {
    tokens { accessToken refreshToken sessionId }
  }
}"""
RULES = {
    "votingMethod": "VOTING_METHOD_SINGLE_CHOICE",
    "votingMode": "VOTING_MODE_OFF_CHAIN",
    "quorumBps": 1000,
    "approvalThresholdBps": 5001,
    "defaultVotingPeriod": "86400s",
    "proposerRole": "MEMBER_ROLE_MEMBER",
    "openMembership": False,
}
WEEK = [
    {"weekday": f"WEEKDAY_{day}", "startTime": "00:00", "endTime": "24:00"}
    for day in ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Account:
    user_id: str
    token: str
    session_id: str
    refresh_token: str
    authenticator: SoftwareAuthenticator
    email: str


@dataclass
class World:
    running: RunningPlatform
    grpc: GrpcCalls
    graphql: GraphQLCalls
    accounts: dict[Caller, Account] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    start: datetime = field(default_factory=lambda: datetime.now(UTC))
    _slots: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def fanout(self) -> EventFanout:
        """The platform's event fanout: its watcher count says when a stream is listening."""
        for servicer in self.running.host.servicers:
            fanout = getattr(servicer, "fanout", None)
            if isinstance(fanout, EventFanout):
                return fanout
        raise AssertionError("no servicer with an event fanout in the platform")

    # -- calling --------------------------------------------------------------------------

    def token(self, caller: Caller) -> str | None:
        return None if caller is Caller.ANONYMOUS else self.accounts[caller].token

    def user(self, caller: Caller) -> str:
        return self.accounts[caller].user_id

    async def call(self, caller: Caller, op: str, request: Mapping[str, Any]) -> Result:
        return await self.grpc.unary(all_operations()[op], request, self.token(caller))

    async def must(self, caller: Caller, op: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """A fixture-building call: it must succeed."""
        result = await self.call(caller, op, request)
        if result.code != "OK":
            raise AssertionError(f"fixture: {op} as {caller} failed: {result}")
        return dict(result.data)

    def __getattr__(self, name: str) -> str:
        ids = self.__dict__.get("ids", {})
        if name in ids:
            return str(ids[name])
        raise AttributeError(name)

    # -- accounts -------------------------------------------------------------------------

    async def sign_up(self, caller: Caller, issuer: TokenIssuer) -> None:
        authenticator = SoftwareAuthenticator(origin=ORIGIN, rp_id="localhost")
        email = f"{caller.value}-{uuid.uuid4().hex[:6]}@matrix.example"
        begun = (
            await self.graphql.raw(
                REGISTER, {"email": email, "name": caller.value.replace("_", " ").title()}, None
            )
        )["beginRegistration"]
        finished = (
            await self.graphql.raw(
                FINISH_REGISTRATION,
                {"id": begun["id"], "credential": authenticator.create(begun["optionsJson"])},
                None,
            )
        )["finishRegistration"]
        user_id = finished["user"]["id"]
        tokens = finished["tokens"]
        # Same session, the caller kind's roles (identity's SetRoles records them too).
        token = issuer.issue(
            Principal(user_id, frozenset(ROLES[caller]), session_id=tokens["sessionId"])
        ).token
        self.accounts[caller] = Account(
            user_id, token, tokens["sessionId"], tokens["refreshToken"], authenticator, email
        )

    # -- objects --------------------------------------------------------------------------

    def _lift_ceremony_rate_limit(self) -> None:
        """Every ceremony of the run comes from 127.0.0.1: the per-address limit (tested
        in the identity service's own tests) would refuse most of them."""
        from services.identity.servicer import IdentityServicer
        from services.identity.settings import RateLimit

        for servicer in self.running.host.servicers:
            if isinstance(servicer, IdentityServicer):
                service = servicer.service
                service.settings = replace(
                    service.settings, ceremony_rate_limit=RateLimit(10_000, 1_000)
                )

    async def build(self) -> None:
        self._lift_ceremony_rate_limit()
        key = self.running.settings.jwt_key_path.read_bytes()
        issuer = TokenIssuer(key, SystemClock(), TOKEN_TTL)
        for caller in ROLES:
            await self.sign_up(caller, issuer)
        for caller, roles in ROLES.items():
            await self.must(
                Caller.ADMIN,
                "IdentityService/SetRoles",
                {"userId": self.user(caller), "roles": [f"ROLE_{r.upper()}" for r in roles]},
            )
        await self._learning()
        await self._marketplace()
        await self._governance()
        await self._passport()
        await self._reputation()

    async def _learning(self) -> None:
        owner = Caller.OWNER
        course = await self.must(owner, "LearningService/CreateCourse", {"title": "Algebra"})
        self.ids["course_id"] = course["course"]["id"]
        klass = await self.must(
            owner,
            "LearningService/CreateClass",
            {"courseId": self.course_id, "title": "Class 1"},
        )
        self.ids["class_id"] = klass["class"]["id"]
        self.ids["tutorial_session_id"] = await self.tutorial_session(owner, Caller.PARTICIPANT)
        self.ids["pending_session_id"] = await self.tutorial_session(owner, Caller.INVITED)
        self.ids["other_session_id"] = await self.tutorial_session(
            Caller.OTHER_TUTOR, Caller.PARTICIPANT, in_class=False
        )
        study = await self.must(owner, "LearningService/StartStudySession", {"topic": "revision"})
        self.ids["study_session_id"] = study["session"]["id"]
        own = await self.must(
            owner,
            "LearningService/RecordInteraction",
            {
                "interaction": {
                    "interactionType": "INTERACTION_TYPE_QUESTION",
                    "title": "Own question",
                    "content": "what is a matrix?",
                    "context": {"studySessionId": self.study_session_id},
                }
            },
        )
        self.ids["owner_interaction_id"] = own["interaction"]["id"]
        feedback = await self.must(
            owner,
            "LearningService/RecordInteraction",
            {
                "interaction": {
                    "learnerId": self.user(Caller.PARTICIPANT),
                    "interactionType": "INTERACTION_TYPE_FEEDBACK",
                    "title": "Feedback",
                    "content": "well done",
                    "context": {"tutorialSessionId": self.tutorial_session_id},
                }
            },
        )
        self.ids["session_interaction_id"] = feedback["interaction"]["id"]
        private = await self.must(
            Caller.PARTICIPANT,
            "LearningService/RecordInteraction",
            {
                "interaction": {
                    "interactionType": "INTERACTION_TYPE_EXERCISE",
                    "title": "Own exercise",
                    "content": "private work",
                }
            },
        )
        self.ids["participant_interaction_id"] = private["interaction"]["id"]
        client = await self.must(owner, "LearningService/RegisterLrsClient", {"name": "lms"})
        self.ids["lrs_client_id"] = client["client"]["id"]
        source = await self.must(
            owner,
            "LearningService/RegisterWebhookSource",
            {
                "name": "https://moodle.example",
                "kind": "WEBHOOK_SOURCE_KIND_MOODLE",
                "courseId": self.course_id,
            },
        )
        self.ids["webhook_source_id"] = source["source"]["id"]

    async def tutorial_session(
        self, tutor: Caller, student: Caller, *, in_class: bool = True
    ) -> str:
        """A started HUMAN tutorial session; a PARTICIPANT student has accepted it."""
        request: dict[str, Any] = {
            "studentIds": [self.user(student)],
            "sessionType": "SESSION_TYPE_HUMAN",
            "topic": "Matrices",
        }
        if in_class:
            request["classId"] = self.class_id
        made = await self.must(tutor, "LearningService/CreateTutorialSession", request)
        session_id = str(made["session"]["id"])
        if student is Caller.PARTICIPANT:
            await self.accept(student, "tutorial_session", session_id)
        await self.must(tutor, "LearningService/StartTutorialSession", {"sessionId": session_id})
        return session_id

    async def invitation(self, invitee: Caller, kind: str, subject_id: str) -> str:
        """The id of `invitee`'s pending invitation of `kind` to `subject_id`."""
        service = "LearningService" if kind == "tutorial_session" else "MarketplaceService"
        listed = await self.must(
            invitee,
            f"{service}/ListInvitations",
            {"statuses": ["INVITATION_STATUS_PENDING"], "pageSize": 200},
        )
        for invitation in listed.get("invitations", []):
            if invitation["subjectId"] == subject_id:
                return str(invitation["id"])
        raise AssertionError(f"fixture: no {kind} invitation of {invitee} to {subject_id}")

    async def accept(self, invitee: Caller, kind: str, subject_id: str) -> None:
        """The invitee accepts the invitation of `kind` to `subject_id`."""
        service = "LearningService" if kind == "tutorial_session" else "MarketplaceService"
        await self.must(
            invitee,
            f"{service}/RespondToInvitation",
            {"invitationId": await self.invitation(invitee, kind, subject_id), "accept": True},
        )

    async def _marketplace(self) -> None:
        space = await self.must(
            Caller.OWNER,
            "MarketplaceService/CreateSpace",
            {
                "name": "Room",
                "address": "1 Main St",
                "timeZone": "UTC",
                "capacity": 4,
                "hourlyRate": {"currencyCode": "EUR", "amountMinor": "1000"},
                "availability": {"weekly": WEEK},
            },
        )
        self.ids["space_id"] = space["space"]["id"]
        self.ids["reservation_id"] = await self.reservation(Caller.PARTICIPANT)
        self.ids["pending_reservation_id"] = await self.reservation(Caller.INVITED)
        session_id, reservation_id = await self.tutor_session(Caller.PARTICIPANT)
        self.ids["tutor_session_id"] = session_id
        self.ids["tutor_session_reservation_id"] = reservation_id

    def slot(self, days: int) -> datetime:
        base = self.start.replace(minute=0, second=0, microsecond=0) + timedelta(days=days)
        return base.replace(hour=0)

    def next_slot(self) -> tuple[datetime, datetime]:
        """A free hour in the space: each booking of the run gets its own."""
        start = self.slot(2) + timedelta(hours=next(self._slots))
        return start, start + timedelta(hours=1)

    async def reservation(self, student: Caller, *, accept: bool = True) -> str:
        start, end = self.next_slot()
        made = await self.must(
            Caller.OWNER,
            "MarketplaceService/CreateReservation",
            {
                "spaceId": self.space_id,
                "studentId": self.user(student),
                "startTime": iso(start),
                "endTime": iso(end),
            },
        )
        reservation_id = str(made["reservation"]["id"])
        if accept and student is Caller.PARTICIPANT:
            await self.accept(student, "reservation", reservation_id)
        return reservation_id

    async def tutor_session(self, student: Caller) -> tuple[str, str]:
        start, end = self.next_slot()
        booked = await self.must(
            Caller.OWNER,
            "MarketplaceService/BookTutorSession",
            {
                "studentId": self.user(student),
                "spaceId": self.space_id,
                "startTime": iso(start),
                "endTime": iso(end),
                "subject": "Algebra",
            },
        )
        session_id = str(booked["session"]["id"])
        if student is Caller.PARTICIPANT:
            await self.accept(student, "tutor_session", session_id)
        return session_id, str(booked["reservation"]["id"])

    async def _governance(self) -> None:
        owner = Caller.OWNER
        for name, open_membership in (("closed_community_id", False), ("open_community_id", True)):
            made = await self.must(
                owner,
                "GovernanceService/CreateCommunity",
                {
                    "name": f"{name} {uuid.uuid4().hex[:6]}",
                    "rules": {**RULES, "openMembership": open_membership},
                    "initialStandards": "# Be kind",
                },
            )
            community_id = made["community"]["id"]
            self.ids[name] = community_id
            await self.must(
                owner,
                "GovernanceService/SetMemberRole",
                {
                    "communityId": community_id,
                    "userId": self.user(Caller.MEMBER),
                    "role": "MEMBER_ROLE_MEMBER",
                },
            )
        self.ids["proposal_id"] = await self.proposal()

    async def proposal(self) -> str:
        made = await self.must(
            Caller.OWNER,
            "GovernanceService/CreateProposal",
            {
                "communityId": self.closed_community_id,
                "title": "Meet weekly",
                "kind": "PROPOSAL_KIND_GENERAL",
            },
        )
        return str(made["proposal"]["id"])

    async def _passport(self) -> None:
        passport = await self.must(Caller.OWNER, "PassportService/GetPassport", {})
        self.ids["passport_id"] = passport["passport"]["id"]
        link = await self.must(Caller.OWNER, "PassportService/CreateShareLink", {"label": "cv"})
        self.ids["share_token"] = link["token"]
        self.ids["share_link_id"] = link["link"]["id"]

    async def _reputation(self) -> None:
        """A completed session between the owner (tutor) and the participant, rated by
        the participant. Completing one through the marketplace takes an hour of real
        time, so its rating window is opened the way the session's completion event
        opens it (`ReputationService.open_subject`)."""
        from services.reputation.domain import Role, SubjectKind
        from services.reputation.servicer import ReputationServicer

        servicer = next(s for s in self.running.host.servicers if isinstance(s, ReputationServicer))
        service = servicer.service
        subject_id = f"matrix-session-{uuid.uuid4().hex[:8]}"
        async with service.db.transaction() as session:
            await service.open_subject(
                session,
                kind=SubjectKind.SESSION,
                subject_id=subject_id,
                participants={
                    self.user(Caller.OWNER): Role.TUTOR,
                    self.user(Caller.PARTICIPANT): Role.STUDENT,
                },
                completed_at=datetime.now(UTC),
            )
        self.ids["rated_session_id"] = subject_id
        rated = await self.must(
            Caller.PARTICIPANT,
            "ReputationService/SubmitRating",
            {
                "ratedId": self.user(Caller.OWNER),
                "raterRole": "RATER_ROLE_STUDENT",
                "sessionId": subject_id,
                "score": 2,
            },
        )
        self.ids["rating_id"] = rated["rating"]["id"]
        # The counterpart rating reveals both: the owner may then report it.
        await self.must(
            Caller.OWNER,
            "ReputationService/SubmitRating",
            {
                "ratedId": self.user(Caller.PARTICIPANT),
                "raterRole": "RATER_ROLE_TUTOR",
                "sessionId": subject_id,
                "score": 5,
            },
        )


@dataclass(frozen=True)
class Ctx:
    """What a row's `args` and `trigger` see: the world's ids as attributes, `me` the
    calling account's user id, and helpers that make fresh objects or requests."""

    world: World
    caller: Caller

    @property
    def me(self) -> str:
        return "" if self.caller is Caller.ANONYMOUS else self.world.user(self.caller)

    def user(self, caller: Caller) -> str:
        return self.world.user(caller)

    def email(self, caller: Caller) -> str:
        return self.world.accounts[caller].email

    def __getattr__(self, name: str) -> Any:
        return getattr(self.world, name)

    # -- identity ceremonies (each row gets its own) ------------------------------------

    def registration_begin(self, graphql: bool = False) -> dict[str, Any]:
        name = "displayName"
        return {"email": f"new-{uuid.uuid4().hex[:8]}@matrix.example", name: "New"}

    async def registration_finish(self, graphql: bool = False) -> dict[str, Any]:
        authenticator = SoftwareAuthenticator(origin=ORIGIN, rp_id="localhost")
        begun = (
            await self.world.graphql.raw(
                REGISTER, {"email": f"new-{uuid.uuid4().hex[:8]}@m.example", "name": "N"}, None
            )
        )["beginRegistration"]
        args = {
            "registrationId": begun["id"],
            "credentialJson": authenticator.create(begun["optionsJson"]),
        }
        if graphql:
            args["credentialName"] = "key"
        return args

    async def login_finish(self, graphql: bool = False) -> dict[str, Any]:
        account = self.world.accounts[Caller.OWNER]
        begun = (await self.world.graphql.raw(LOGIN, {"email": account.email}, None))["beginLogin"]
        return {
            "loginId": begun["id"],
            "credentialJson": account.authenticator.get(begun["optionsJson"]),
        }

    async def _owner_login(self) -> dict[str, Any]:
        args = await self.login_finish()
        data = await self.world.graphql.raw(
            FINISH_LOGIN, {"id": args["loginId"], "credential": args["credentialJson"]}, None
        )
        return dict(data["finishLogin"]["tokens"])

    async def refresh_token(self) -> dict[str, Any]:
        return {"refreshToken": (await self._owner_login())["refreshToken"]}

    async def spare_session(self) -> dict[str, Any]:
        """A second session of the owner's (never the one the matrix calls with)."""
        return {"sessionId": (await self._owner_login())["sessionId"]}

    async def credential_finish(self) -> dict[str, Any]:
        if self.caller is Caller.ANONYMOUS:
            return {"registrationId": "none", "credentialJson": "{}"}
        begun = await self.world.must(self.caller, "IdentityService/BeginAddCredential", {})
        account = self.world.accounts[self.caller]
        return {
            "registrationId": begun["registrationId"],
            "credentialJson": account.authenticator.create(begun["optionsJson"]),
        }

    async def owner_credential(self) -> dict[str, Any]:
        listed = await self.world.must(Caller.OWNER, "IdentityService/ListCredentials", {})
        return {"credentialId": listed["credentials"][0]["id"]}

    def humanity_upload(self, enroll: bool) -> dict[str, Any]:
        args: dict[str, Any] = {"irisImage": b"", "genome": b"", "genomeFormat": "VCF"}
        if enroll:
            args["requestId"] = ""
        return args

    # -- learning -----------------------------------------------------------------------

    def own_statement(self) -> dict[str, Any]:
        statement = {
            "actor": {
                "objectType": "Agent",
                "account": {"homePage": "https://keiko.network", "name": self.me or "nobody"},
            },
            "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
            "object": {"objectType": "Activity", "id": "https://matrix.example/a"},
        }
        return {"statementJsons": [json.dumps(statement)]}

    @property
    def student(self) -> str:
        """Whom a booking or session made by this caller names as its student: the
        participant (the invited account when the participant itself books)."""
        who = Caller.INVITED if self.caller is Caller.PARTICIPANT else Caller.PARTICIPANT
        return self.user(who)

    def tutorial_session_request(self, graphql: bool = False) -> dict[str, Any]:
        if graphql:
            return {
                "input": {
                    "classId": self.class_id,
                    "studentIds": [self.student],
                    "sessionType": "HUMAN",
                    "topic": "Another",
                }
            }
        return {
            "classId": self.class_id,
            "studentIds": [self.student],
            "sessionType": "SESSION_TYPE_HUMAN",
            "topic": "Another",
        }

    async def record_about_participant(self, tutor: Caller, session_id: str) -> None:
        await self.world.must(
            tutor,
            "LearningService/RecordInteraction",
            {
                "interaction": {
                    "learnerId": self.user(Caller.PARTICIPANT),
                    "interactionType": "INTERACTION_TYPE_FEEDBACK",
                    "title": "Feedback",
                    "content": "good",
                    "context": {"tutorialSessionId": session_id},
                }
            },
        )

    async def participant_records(self, _: Mapping[str, Any]) -> None:
        """An interaction about the participant that this caller may watch."""
        if self.caller is Caller.OTHER_TUTOR:
            await self.record_about_participant(Caller.OTHER_TUTOR, self.other_session_id)
        else:
            await self.record_about_participant(Caller.OWNER, self.tutorial_session_id)

    async def record_own(self, caller: Caller) -> str:
        made = await self.world.must(
            caller,
            "LearningService/RecordInteraction",
            {
                "interaction": {
                    "interactionType": "INTERACTION_TYPE_EXERCISE",
                    "title": "Exercise",
                    "content": "x",
                }
            },
        )
        return str(made["interaction"]["id"])

    async def owner_records(self, _: Mapping[str, Any]) -> None:
        await self.record_own(Caller.OWNER)

    async def self_records(self, _: Mapping[str, Any]) -> None:
        await self.record_own(self.caller)

    async def fresh_owner_statement(self, graphql: bool = False) -> dict[str, Any]:
        statement_id = await self.record_own(Caller.OWNER)
        return {"id": statement_id} if graphql else {"statementId": statement_id}

    async def fresh_study_session(self, graphql: bool = False) -> dict[str, Any]:
        made = await self.world.must(
            Caller.OWNER, "LearningService/StartStudySession", {"topic": "more"}
        )
        session_id = made["session"]["id"]
        return {"id": session_id} if graphql else {"sessionId": session_id}

    async def fresh_actor_link(self, graphql: bool = False) -> dict[str, Any]:
        """A link of an external identity to the owner (the learner), vouched for by the
        other tutor (as an institution)."""
        made = await self.world.must(Caller.OWNER, "LearningService/CreateActorLinkCode", {})
        agent = {"mbox": f"mailto:{uuid.uuid4().hex}@lms.example"}
        link = await self.world.must(
            Caller.OTHER_TUTOR,
            "LearningService/ConfirmActorLink",
            {"agentJson": json.dumps(agent), "code": made["code"]},
        )
        link_id = link["link"]["id"]
        return {"id": link_id} if graphql else {"linkId": link_id}

    async def fresh_tutorial_session(self, graphql: bool = False) -> dict[str, Any]:
        session_id = await self.world.tutorial_session(Caller.OWNER, Caller.PARTICIPANT)
        return {"id": session_id} if graphql else {"sessionId": session_id}

    # -- invitations --------------------------------------------------------------------

    async def fresh_invitation(self, service: str, graphql: bool = False) -> dict[str, Any]:
        """A new pending invitation of the invited account, to answer."""
        if service == "learning":
            made = await self.world.must(
                Caller.OWNER,
                "LearningService/CreateTutorialSession",
                {
                    "studentIds": [self.user(Caller.INVITED)],
                    "sessionType": "SESSION_TYPE_HUMAN",
                    "topic": "Invited",
                },
            )
            kind, subject = "tutorial_session", str(made["session"]["id"])
        else:
            kind = "reservation"
            subject = await self.world.reservation(Caller.INVITED, accept=False)
        invitation_id = await self.world.invitation(Caller.INVITED, kind, subject)
        if graphql:
            return {"id": invitation_id}
        return {"invitationId": invitation_id, "accept": True}

    async def invite_me(self, service: str) -> None:
        """An invitation this caller sees on its stream: the owner invites it (or, for
        the owner itself, the participant)."""
        who = self.user(Caller.PARTICIPANT) if self.caller is Caller.OWNER else self.me
        if service == "learning":
            await self.world.must(
                Caller.OWNER,
                "LearningService/CreateTutorialSession",
                {"studentIds": [who], "sessionType": "SESSION_TYPE_HUMAN", "topic": "For you"},
            )
            return
        start, end = self.world.next_slot()
        await self.world.must(
            Caller.OWNER,
            "MarketplaceService/CreateReservation",
            {
                "spaceId": self.space_id,
                "studentId": who,
                "startTime": iso(start),
                "endTime": iso(end),
            },
        )

    async def fresh_lrs_client(self) -> dict[str, Any]:
        made = await self.world.must(
            Caller.OWNER, "LearningService/RegisterLrsClient", {"name": "x"}
        )
        return {"id": made["client"]["id"]}

    async def fresh_webhook_source(self) -> dict[str, Any]:
        made = await self.world.must(
            Caller.OWNER,
            "LearningService/RegisterWebhookSource",
            {"name": "https://x.example", "kind": "WEBHOOK_SOURCE_KIND_MOODLE"},
        )
        return {"id": made["source"]["id"]}

    # -- passport -----------------------------------------------------------------------

    def gql_learning_profile(self) -> dict[str, Any]:
        return {
            "input": {
                "learningStyle": "VISUAL",
                "visual": 50,
                "auditory": 20,
                "readingWriting": 20,
                "kinesthetic": 10,
                "pace": "MODERATE",
                "interactionStyle": "MIXED",
                "feedbackFrequency": "PERIODIC",
                "difficultyProgression": "GRADUAL",
                "strengths": [],
                "areasForImprovement": [],
            }
        }

    def gql_privacy(self) -> dict[str, Any]:
        closed = {
            "interactionTypes": [],
            "courseIds": [],
            "showScores": False,
            "showIdentity": False,
            "showContent": False,
        }
        return {
            "input": {"public": False, "publicDisclosure": closed, "shareLinkDisclosure": closed}
        }

    async def fresh_share_link(self, graphql: bool = False) -> dict[str, Any]:
        made = await self.world.must(
            Caller.OWNER, "PassportService/CreateShareLink", {"label": "to revoke"}
        )
        link_id = made["link"]["id"]
        return {"id": link_id} if graphql else {"linkId": link_id}

    # -- reputation ---------------------------------------------------------------------

    def rating_request(self, graphql: bool = False) -> dict[str, Any]:
        request: dict[str, Any] = {
            "ratedId": self.user(Caller.OWNER),
            "sessionId": self.rated_session_id,
            "score": 4,
            "comment": "",
        }
        if graphql:
            return {"input": {**request, "raterRole": "STUDENT", "requestId": ""}}
        return {**request, "raterRole": "RATER_ROLE_STUDENT"}

    # -- governance ---------------------------------------------------------------------

    def community_request(self, graphql: bool = False) -> dict[str, Any]:
        name = f"c-{uuid.uuid4().hex[:8]}"
        if graphql:
            return {
                "input": {
                    "name": name,
                    "description": "",
                    "initialStandards": "",
                    "initialValidationRules": "",
                    "requestId": "",
                }
            }
        return {"name": name, "rules": RULES}

    async def fresh_proposal(self, graphql: bool = False) -> dict[str, Any]:
        proposal_id = await self.world.proposal()
        return {"proposalId": proposal_id, "reason": "withdrawn"}

    async def watched_proposal(self) -> dict[str, Any]:
        return {"proposalId": await self.world.proposal()}

    async def proposal_changes(self, args: Mapping[str, Any]) -> None:
        await self.world.must(
            Caller.OWNER,
            "GovernanceService/CancelProposal",
            {"proposalId": args["proposalId"], "reason": "changed"},
        )

    # -- marketplace --------------------------------------------------------------------

    def window(self) -> dict[str, Any]:
        start = self.world.slot(1)
        return {"startTime": iso(start), "endTime": iso(start + timedelta(days=1))}

    def availability(self, graphql: bool = False) -> dict[str, Any]:
        if graphql:
            return {"weekly": [dict(s, weekday=s["weekday"][8:]) for s in WEEK], "exceptions": []}
        return {"weekly": WEEK}

    def space_request(self, graphql: bool = False) -> dict[str, Any]:
        if graphql:
            return {
                "input": {
                    "name": "Another room",
                    "address": "2 Main St",
                    "timeZone": "UTC",
                    "capacity": 2,
                    "hourlyRate": {"currencyCode": "EUR", "amountMinor": 500},
                    "description": "",
                    "amenities": [],
                    "accessibilityFeatures": [],
                    "requestId": "",
                }
            }
        return {
            "name": "Another room",
            "address": "2 Main St",
            "timeZone": "UTC",
            "capacity": 2,
            "hourlyRate": {"currencyCode": "EUR", "amountMinor": "500"},
        }

    async def certification(self, graphql: bool = False) -> dict[str, Any]:
        added = await self.world.must(
            Caller.OWNER,
            "MarketplaceService/AddCertification",
            {"spaceId": self.space_id, "name": "First aid", "issuer": "Red Cross"},
        )
        return {
            "spaceId": self.space_id,
            "certificationId": added["certification"]["id"],
            "childProtection": False,
        }

    def _slot(self, graphql: bool) -> dict[str, Any]:
        start, end = self.world.next_slot()
        return {"startTime": iso(start), "endTime": iso(end)}

    def reservation_request(self, graphql: bool = False) -> dict[str, Any]:
        request = {"spaceId": self.space_id, **self._slot(graphql)}
        if graphql:
            return {"input": {**request, "safetyRequirements": [], "requestId": ""}}
        return request

    def booking_request(self, graphql: bool = False) -> dict[str, Any]:
        request = {
            "spaceId": self.space_id,
            "studentId": self.student,
            "subject": "Algebra",
            **self._slot(graphql),
        }
        if graphql:
            return {"input": {**request, "safetyRequirements": [], "requestId": ""}}
        return request

    async def reservation_changes(self, _: Mapping[str, Any]) -> None:
        await self.world.reservation(Caller.PARTICIPANT, accept=False)

    def space_rating(self, graphql: bool = False) -> dict[str, Any]:
        request = {
            "spaceId": self.space_id,
            "reservationId": self.reservation_id,
            "overall": 5,
            "safety": 5,
            "cleanliness": 5,
            "accessibility": 5,
            "comment": "",
        }
        return {"input": request} if graphql else request

    async def fresh_reservation(self, graphql: bool = False) -> dict[str, Any]:
        reservation_id = await self.world.reservation(Caller.PARTICIPANT)
        key = "id" if graphql else "reservationId"
        return {key: reservation_id, "reason": "cannot come"}

    async def fresh_tutor_session(self, graphql: bool = False) -> dict[str, Any]:
        session_id, _ = await self.world.tutor_session(Caller.PARTICIPANT)
        key = "id" if graphql else "sessionId"
        return {key: session_id, "reason": "cannot come"}
