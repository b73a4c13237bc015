"""THE authorization matrix: one entry per operation, one outcome per caller kind.

Adding an operation (a GraphQL field or an RPC)? Add its entry here, next to its
siblings: `rows(op, PROFILE, args, **overrides)`. Profiles and outcomes are in
`matrix.py` (OK, ALLOWED, INPUT_CHECKED, NEEDS_CHAIN, DENIED, NOT_FOUND,
UNAUTHENTICATED); `args(x)` returns the GraphQL variables or the gRPC request (proto JSON
names) from the shared fixture (`x.course_id`, `x.me`, `x.user(PARTICIPANT)`...; see
`world.py`). Entries run in this order, each entry's callers in `matrix.RUN_ORDER`: an
entry that changes what later entries read targets an object made for it (`x.fresh_*`).

Design of the outcomes: no or a bad token is UNAUTHENTICATED; a signed-in caller who may
not act on an object is PERMISSION_DENIED (GraphQL FORBIDDEN), also when the object is
someone else's private record; NOT_FOUND only where the id itself is a secret the caller
would have to guess (another user's session or credential ids).
"""

from __future__ import annotations

from tests.authz.matrix import (
    ADMIN_ONLY,
    ALLOWED,
    DENIED,
    INPUT_CHECKED,
    MEMBERS,
    NEEDS_CHAIN,
    NOT_FOUND,
    OK,
    OWNER_OR_ADMIN,
    PARTIES,
    PUBLIC,
    SIGNED_IN,
    UNAUTHENTICATED,
    Caller,
    Rows,
    expect,
    rows,
)
from tests.authz.world import Ctx

PARTICIPANT = Caller.PARTICIPANT
OWNER = Caller.OWNER
INVITED = Caller.INVITED
# Keiko's internal services (role "service") and admins; no end user.
TRUSTED = ADMIN_ONLY
# A learner's record: the learner, an admin.
SELF_OR_ADMIN = OWNER_OR_ADMIN
# The participant's record as a tutor sees it: the participant, their tutors (the owner and
# the other tutor, each scoped to their own sessions) and admins.
STUDENT_RECORD = expect(
    DENIED, anonymous=UNAUTHENTICATED, participant=OK, owner=OK, other_tutor=OK, admin=OK
)
# Acting on the caller's own proof of humanity, with a deliberately empty sample.
OWN_SAMPLE = expect(INPUT_CHECKED, anonymous=UNAUTHENTICATED)
NOT_ENROLLED = expect(ALLOWED, anonymous=UNAUTHENTICATED)
SAMPLE = {"irisImage": "", "genome": "", "genomeFormat": "GENOME_FORMAT_VCF"}


def interaction(x: Ctx, **extra: object) -> dict[str, object]:
    return {
        "interactionType": "INTERACTION_TYPE_EXERCISE",
        "title": "Exercise",
        "content": "solve it",
        **extra,
    }


def gql_interaction(x: Ctx, **extra: object) -> dict[str, object]:
    return {"interactionType": "EXERCISE", "title": "Exercise", "content": "solve it", **extra}


IDENTITY: list[Rows] = [
    rows("IdentityService/GetUser", SIGNED_IN, lambda x: {"userId": x.user(OWNER)}),
    rows("Query.user", SIGNED_IN, lambda x: {"id": x.user(OWNER)}),
    rows("IdentityService/GetMe", SIGNED_IN),
    rows("Query.me", SIGNED_IN),
    rows("IdentityService/ListUsers", ADMIN_ONLY),
    rows("Query.users", ADMIN_ONLY),
    rows(
        "IdentityService/UpdateProfile",
        OWNER_OR_ADMIN,
        lambda x: {"userId": x.user(OWNER), "bio": "teaches algebra"},
    ),
    rows("Mutation.updateProfile", SIGNED_IN, lambda x: {"input": {"bio": "hello"}}),
    rows(
        "IdentityService/SetRoles",
        ADMIN_ONLY,
        lambda x: {"userId": x.user(Caller.LEARNER), "roles": ["ROLE_LEARNER"]},
    ),
    rows(
        "Mutation.setUserRoles",
        ADMIN_ONLY,
        lambda x: {"userId": x.user(Caller.LEARNER), "roles": ["LEARNER"]},
    ),
    rows("IdentityService/BeginRegistration", PUBLIC, lambda x: x.registration_begin()),
    rows("Mutation.beginRegistration", PUBLIC, lambda x: x.registration_begin(graphql=True)),
    rows("IdentityService/FinishRegistration", PUBLIC, lambda x: x.registration_finish()),
    rows(
        "Mutation.finishRegistration",
        PUBLIC,
        lambda x: x.registration_finish(graphql=True),
    ),
    rows("IdentityService/BeginLogin", PUBLIC, lambda x: {"email": x.email(OWNER)}),
    rows("Mutation.beginLogin", PUBLIC, lambda x: {"email": x.email(OWNER)}),
    rows("IdentityService/FinishLogin", PUBLIC, lambda x: x.login_finish()),
    rows("Mutation.finishLogin", PUBLIC, lambda x: x.login_finish(graphql=True)),
    rows("IdentityService/RefreshTokens", PUBLIC, lambda x: x.refresh_token()),
    rows("Mutation.refreshTokens", PUBLIC, lambda x: x.refresh_token()),
    rows("IdentityService/ListSessions", SIGNED_IN),
    rows("Query.sessions", SIGNED_IN),
    # Another user's session ids are secrets: guessing one is NOT_FOUND.
    rows(
        "IdentityService/Logout",
        expect(NOT_FOUND, anonymous=UNAUTHENTICATED, owner=OK, admin=OK),
        lambda x: x.spare_session(),
    ),
    rows(
        "Mutation.logout",
        expect(NOT_FOUND, anonymous=UNAUTHENTICATED, owner=OK, admin=OK),
        lambda x: x.spare_session(),
    ),
    rows(
        "IdentityService/RevokeSession",
        expect(NOT_FOUND, anonymous=UNAUTHENTICATED, owner=OK, admin=OK),
        lambda x: x.spare_session(),
    ),
    rows(
        "Mutation.revokeSession",
        expect(NOT_FOUND, anonymous=UNAUTHENTICATED, owner=OK, admin=OK),
        lambda x: x.spare_session(),
    ),
    rows("IdentityService/BeginAddCredential", SIGNED_IN),
    rows("IdentityService/FinishAddCredential", SIGNED_IN, lambda x: x.credential_finish()),
    rows("IdentityService/ListCredentials", SIGNED_IN),
    rows(
        "IdentityService/RemoveCredential",
        expect(NOT_FOUND, anonymous=UNAUTHENTICATED, owner=ALLOWED),
        lambda x: x.owner_credential(),
    ),
    # Proof of humanity acts on the caller only; the matrix sends an empty sample (a real
    # enrollment is tested in the identity service's own tests).
    rows("IdentityService/EnrollHumanity", OWN_SAMPLE, lambda x: {"sample": SAMPLE}),
    rows("IdentityService/VerifyHumanity", OWN_SAMPLE, lambda x: {"sample": SAMPLE}),
    rows("IdentityService/RecoverSigningKey", OWN_SAMPLE, lambda x: {"sample": SAMPLE}),
    rows("Mutation.enrollHumanity", OWN_SAMPLE, lambda x: x.humanity_upload(True)),
    # Over GraphQL the enrollment is checked before the sample: FAILED_PRECONDITION.
    rows("Mutation.verifyHumanity", NOT_ENROLLED, lambda x: x.humanity_upload(False)),
    rows("Mutation.recoverSigningKey", NOT_ENROLLED, lambda x: x.humanity_upload(False)),
    rows(
        "IdentityService/GetHumanityStatus",
        OWNER_OR_ADMIN,
        lambda x: {"userId": x.user(OWNER)},
    ),
    rows("Query.humanityStatus", OWNER_OR_ADMIN, lambda x: {"userId": x.user(OWNER)}),
]

# An actor link's learner (the owner) and vouching institution (the other tutor).
LINK_PARTIES = expect(DENIED, anonymous=UNAUTHENTICATED, owner=OK, other_tutor=OK, admin=OK)
MATRIX_ACTIVITY = "https://matrix.example/a"
MATRIX_AGENT = '{"objectType": "Agent", "mbox": "mailto:matrix@example.org"}'
MATRIX_DOCUMENT = {
    "key": {
        "kind": "DOCUMENT_KIND_STATE",
        "activityId": MATRIX_ACTIVITY,
        "agentJson": MATRIX_AGENT,
        "documentId": "bookmark",
    },
    "content": "e30=",  # {} (proto JSON bytes are base64)
    "contentType": "application/json",
    "merge": True,
}

LEARNING: list[Rows] = [
    # -- statements (the xAPI resource's RPCs) ------------------------------------------
    rows("LearningService/RecordStatements", SIGNED_IN, lambda x: x.own_statement()),
    rows(
        "LearningService/GetStatement",
        SELF_OR_ADMIN,
        lambda x: {"statementId": x.owner_interaction_id},
    ),
    # A query answers only with statements the caller may see (its own, or recorded by
    # it): asking about someone else is allowed and returns nothing of theirs.
    rows("LearningService/QueryStatements", SIGNED_IN, lambda x: {"learnerId": x.user(OWNER)}),
    rows("Query.statements", SIGNED_IN, lambda x: {"learnerId": x.user(OWNER)}),
    # -- the xAPI document, activity and agent resources: each caller acts in their own
    # namespace (their user id; an LRS client's owner's), so every signed-in caller may.
    rows("LearningService/PutDocument", SIGNED_IN, lambda x: MATRIX_DOCUMENT),
    rows("LearningService/GetDocument", SIGNED_IN, lambda x: {"key": MATRIX_DOCUMENT["key"]}),
    rows("LearningService/ListDocuments", SIGNED_IN, lambda x: {"key": MATRIX_DOCUMENT["key"]}),
    rows("LearningService/DeleteDocuments", SIGNED_IN, lambda x: {"key": MATRIX_DOCUMENT["key"]}),
    rows("LearningService/GetActivity", SIGNED_IN, lambda x: {"activityId": MATRIX_ACTIVITY}),
    rows("LearningService/GetPerson", SIGNED_IN, lambda x: {"agentJson": MATRIX_AGENT}),
    # Attachment data of statements the caller may read (others' are left out, not refused).
    rows("LearningService/GetAttachments", SIGNED_IN, lambda x: {"sha2": ["0" * 64]}),
    # Actor linking: the learner makes codes; an institution confirms one (a wrong code is
    # NOT_FOUND: codes are secrets); both parties (and admins) may revoke the link.
    rows("LearningService/CreateActorLinkCode", SIGNED_IN),
    rows("Mutation.createActorLinkCode", SIGNED_IN),
    rows(
        "LearningService/ConfirmActorLink",
        expect(NOT_FOUND, anonymous=UNAUTHENTICATED),
        lambda x: {"agentJson": MATRIX_AGENT, "code": "NOSUC-HCODE-ATALL-XXXXX"},
    ),
    rows(
        "Mutation.confirmActorLink",
        expect(NOT_FOUND, anonymous=UNAUTHENTICATED),
        lambda x: {"agent": {"mbox": "mailto:matrix@example.org"}, "code": "NOSUC-HCODE"},
    ),
    rows("LearningService/ListActorLinks", SIGNED_IN),
    rows("Query.actorLinks", SIGNED_IN),
    rows("LearningService/RevokeActorLink", LINK_PARTIES, lambda x: x.fresh_actor_link()),
    rows("Mutation.revokeActorLink", LINK_PARTIES, lambda x: x.fresh_actor_link(graphql=True)),
    # -- the hierarchy ----------------------------------------------------------------------
    rows(
        "LearningService/CreateCourse",
        expect(DENIED, anonymous=UNAUTHENTICATED, owner=OK, other_tutor=OK, admin=OK),
        lambda x: {"title": "A course"},
    ),
    rows(
        "Mutation.createCourse",
        expect(DENIED, anonymous=UNAUTHENTICATED, owner=OK, other_tutor=OK, admin=OK),
        lambda x: {"title": "A course", "description": ""},
    ),
    rows("LearningService/GetCourse", SIGNED_IN, lambda x: {"courseId": x.course_id}),
    rows("Query.course", SIGNED_IN, lambda x: {"id": x.course_id}),
    rows("LearningService/ListCourses", SIGNED_IN),
    rows("Query.courses", SIGNED_IN),
    rows(
        "LearningService/UpdateCourse",
        OWNER_OR_ADMIN,
        lambda x: {"courseId": x.course_id, "description": "linear algebra"},
    ),
    rows(
        "Mutation.updateCourse",
        OWNER_OR_ADMIN,
        lambda x: {"id": x.course_id, "description": "linear algebra"},
    ),
    rows(
        "LearningService/CreateClass",
        OWNER_OR_ADMIN,
        lambda x: {"courseId": x.course_id, "title": "Another class"},
    ),
    rows(
        "Mutation.createClass",
        OWNER_OR_ADMIN,
        lambda x: {"courseId": x.course_id, "title": "Another class", "description": ""},
    ),
    rows("LearningService/GetClass", SIGNED_IN, lambda x: {"classId": x.class_id}),
    rows("Query.class", SIGNED_IN, lambda x: {"id": x.class_id}),
    rows("LearningService/ListClasses", SIGNED_IN, lambda x: {"courseId": x.course_id}),
    rows("Query.classes", SIGNED_IN, lambda x: {"courseId": x.course_id}),
    rows(
        "LearningService/UpdateClass",
        OWNER_OR_ADMIN,
        lambda x: {"classId": x.class_id, "description": "matrices"},
    ),
    # -- tutorial sessions ------------------------------------------------------------------
    rows(
        "LearningService/CreateTutorialSession",
        OWNER_OR_ADMIN,
        lambda x: x.tutorial_session_request(),
    ),
    rows(
        "Mutation.createTutorialSession",
        OWNER_OR_ADMIN,
        lambda x: x.tutorial_session_request(graphql=True),
    ),
    rows(
        "LearningService/GetTutorialSession",
        PARTIES,
        lambda x: {"sessionId": x.tutorial_session_id},
    ),
    rows("Query.tutorialSession", PARTIES, lambda x: {"id": x.tutorial_session_id}),
    # The invited student sees what they are invited to.
    rows(
        "LearningService/GetTutorialSession",
        PARTIES,
        lambda x: {"sessionId": x.pending_session_id},
        invited=OK,
        participant=DENIED,
        variant="pending invitation",
    ),
    rows("LearningService/ListTutorialSessions", SIGNED_IN, lambda x: {"tutorId": x.me}),
    rows("Query.tutorialSessions", SIGNED_IN, lambda x: {"tutorId": x.me}),
    rows(
        "LearningService/StartTutorialSession",
        OWNER_OR_ADMIN,
        lambda x: {"sessionId": x.tutorial_session_id},
    ),
    rows(
        "Mutation.startTutorialSession",
        OWNER_OR_ADMIN,
        lambda x: {"id": x.tutorial_session_id},
    ),
    # -- study sessions ---------------------------------------------------------------------
    rows("LearningService/StartStudySession", SIGNED_IN, lambda x: {"topic": "revision"}),
    rows("Mutation.startStudySession", SIGNED_IN, lambda x: {"topic": "revision"}),
    rows(
        "LearningService/GetStudySession",
        SELF_OR_ADMIN,
        lambda x: {"sessionId": x.study_session_id},
    ),
    rows(
        "LearningService/ListStudySessions",
        SELF_OR_ADMIN,
        lambda x: {"learnerId": x.user(OWNER)},
    ),
    rows("Query.studySessions", SIGNED_IN),
    # -- interactions -----------------------------------------------------------------------
    rows(
        "LearningService/PrepareInteraction",
        SIGNED_IN,
        lambda x: {"interaction": interaction(x)},
    ),
    rows(
        "Mutation.prepareInteraction",
        SIGNED_IN,
        lambda x: {"input": gql_interaction(x)},
    ),
    rows(
        "LearningService/RecordInteraction",
        SIGNED_IN,
        lambda x: {"interaction": interaction(x)},
    ),
    rows("Mutation.recordInteraction", SIGNED_IN, lambda x: {"input": gql_interaction(x)}),
    rows(
        "Mutation.recordInteractions",
        SIGNED_IN,
        lambda x: {"interactions": [{"input": gql_interaction(x)}]},
    ),
    # Recording about the participant: only in a session the caller runs with them.
    rows(
        "LearningService/RecordInteraction",
        expect(DENIED, anonymous=UNAUTHENTICATED, owner=OK, participant=OK, admin=OK),
        lambda x: {
            "interaction": interaction(
                x,
                learnerId=x.user(PARTICIPANT),
                interactionType="INTERACTION_TYPE_FEEDBACK",
                context={"tutorialSessionId": x.tutorial_session_id},
            )
        },
        variant="about the participant",
    ),
    rows(
        "LearningService/RecordInteractions",
        SIGNED_IN,
        lambda x: {"interactions": [{"interaction": interaction(x)}]},
    ),
    # One item about the participant: the whole call is authorized as that item would be.
    rows(
        "LearningService/RecordInteractions",
        expect(DENIED, anonymous=UNAUTHENTICATED, owner=OK, participant=OK, admin=OK),
        lambda x: {
            "interactions": [
                {"interaction": interaction(x)},
                {
                    "interaction": interaction(
                        x,
                        learnerId=x.user(PARTICIPANT),
                        interactionType="INTERACTION_TYPE_FEEDBACK",
                        context={"tutorialSessionId": x.tutorial_session_id},
                    )
                },
            ]
        },
        variant="one about the participant",
    ),
    rows(
        "LearningService/GetInteraction",
        STUDENT_RECORD,
        lambda x: {"interactionId": x.session_interaction_id},
        other_tutor=DENIED,
    ),
    rows(
        "Query.interaction",
        STUDENT_RECORD,
        lambda x: {"id": x.session_interaction_id},
        other_tutor=DENIED,
    ),
    rows(
        "LearningService/ListInteractions",
        STUDENT_RECORD,
        lambda x: {"learnerId": x.user(PARTICIPANT)},
    ),
    rows(
        "Query.interactions",
        STUDENT_RECORD,
        lambda x: {"learnerId": x.user(PARTICIPANT)},
    ),
    rows(
        "LearningService/WatchInteractions",
        STUDENT_RECORD,
        lambda x: {"learnerId": x.user(PARTICIPANT)},
        trigger=lambda x, a: x.participant_records(a),
    ),
    rows(
        "Subscription.interactionRecorded",
        STUDENT_RECORD,
        lambda x: {"learnerId": x.user(PARTICIPANT)},
        trigger=lambda x, a: x.participant_records(a),
    ),
    # -- LRS clients and webhook sources (the caller's own) -------------------------------
    rows("LearningService/RegisterLrsClient", SIGNED_IN, lambda x: {"name": "lms"}),
    rows("LearningService/ListLrsClients", SIGNED_IN),
    rows(
        "LearningService/RevokeLrsClient",
        OWNER_OR_ADMIN,
        lambda x: {"clientId": x.lrs_client_id},
    ),
    rows("Mutation.registerLrsClient", SIGNED_IN, lambda x: {"name": "lms"}),
    rows("Query.lrsClients", SIGNED_IN),
    rows("Mutation.revokeLrsClient", OWNER_OR_ADMIN, lambda x: {"id": x.lrs_client_id}),
    rows(
        "LearningService/RegisterWebhookSource",
        SIGNED_IN,
        lambda x: {"name": "https://lms.example", "kind": "WEBHOOK_SOURCE_KIND_MOODLE"},
    ),
    rows("LearningService/ListWebhookSources", SIGNED_IN),
    rows(
        "LearningService/RevokeWebhookSource",
        OWNER_OR_ADMIN,
        lambda x: {"sourceId": x.webhook_source_id},
    ),
    rows(
        "Mutation.registerWebhookSource",
        SIGNED_IN,
        lambda x: {"input": {"name": "https://lms.example", "kind": "MOODLE"}},
    ),
    rows("Query.webhookSources", SIGNED_IN),
    rows("Mutation.revokeWebhookSource", OWNER_OR_ADMIN, lambda x: {"id": x.webhook_source_id}),
    # The gateway's webhook endpoint calls it for an unauthenticated sender; the body's
    # signature is the credential (a wrong one is UNAUTHENTICATED for everyone).
    rows(
        "LearningService/ImportWebhook",
        expect(UNAUTHENTICATED),
        lambda x: {"sourceId": x.webhook_source_id, "body": ""},
    ),
    # -- state changes last ------------------------------------------------------------------
    rows(
        "LearningService/VoidStatement",
        SELF_OR_ADMIN,
        lambda x: x.fresh_owner_statement(),
    ),
    rows("Mutation.voidStatement", SELF_OR_ADMIN, lambda x: x.fresh_owner_statement(graphql=True)),
    rows(
        "LearningService/EndStudySession",
        SELF_OR_ADMIN,
        lambda x: x.fresh_study_session(),
    ),
    rows("Mutation.endStudySession", SELF_OR_ADMIN, lambda x: x.fresh_study_session(graphql=True)),
    rows(
        "LearningService/EndTutorialSession",
        PARTIES,
        lambda x: x.fresh_tutorial_session(),
    ),
    rows("Mutation.endTutorialSession", PARTIES, lambda x: x.fresh_tutorial_session(graphql=True)),
]

# A private passport (the default) is NOT_FOUND to everyone but its learner: its existence
# is not disclosed. Public ones and share links are how others read it.
PRIVATE = expect(NOT_FOUND, owner=OK)
UNKNOWN_CREDENTIAL = "urn:uuid:00000000-0000-4000-8000-000000000000"
PRIVATE_SIGNED_IN = expect(NOT_FOUND, anonymous=UNAUTHENTICATED, owner=OK)
PASSPORT: list[Rows] = [
    rows("PassportService/GetPassport", PRIVATE, lambda x: {"passportId": x.passport_id}),
    rows("PassportService/GetPassportVersion", PRIVATE, lambda x: {"passportId": x.passport_id}),
    rows("Query.passport", PRIVATE, lambda x: {"id": x.passport_id}),
    rows("PassportService/GetTimeline", PRIVATE, lambda x: {"passportId": x.passport_id}),
    rows("Query.passportTimeline", PRIVATE, lambda x: {"passportId": x.passport_id}),
    rows(
        "PassportService/GetEntry",
        PRIVATE_SIGNED_IN,
        lambda x: {"statementId": x.owner_interaction_id},
    ),
    rows(
        "PassportService/GetLearningProfile",
        PRIVATE_SIGNED_IN,
        lambda x: {"passportId": x.passport_id},
    ),
    rows("Query.learningProfile", SIGNED_IN),
    rows("PassportService/UpdateLearningProfile", SIGNED_IN, lambda x: {"profile": {}}),
    rows("Mutation.updateLearningProfile", SIGNED_IN, lambda x: x.gql_learning_profile()),
    rows("PassportService/GetPrivacySettings", SIGNED_IN),
    rows("PassportService/UpdatePrivacySettings", SIGNED_IN, lambda x: {"settings": {}}),
    rows("Mutation.updatePrivacySettings", SIGNED_IN, lambda x: x.gql_privacy()),
    rows("PassportService/CreateShareLink", SIGNED_IN, lambda x: {"label": "cv"}),
    rows("Mutation.createShareLink", SIGNED_IN, lambda x: {"input": {"label": "cv"}}),
    rows("PassportService/ListShareLinks", SIGNED_IN),
    rows("Query.shareLinks", SIGNED_IN),
    # A share link is a bearer credential: whoever holds the token reads what it reveals.
    rows("PassportService/GetSharedPassport", PUBLIC, lambda x: {"token": x.share_token}),
    rows("Query.sharedPassport", PUBLIC, lambda x: {"token": x.share_token}),
    rows(
        "PassportService/VerifyEntry",
        PRIVATE_SIGNED_IN,
        lambda x: {"statementId": x.owner_interaction_id},
    ),
    rows("PassportService/VerifyPassport", PRIVATE, lambda x: {"passportId": x.passport_id}),
    rows("Query.passportVerification", PRIVATE, lambda x: {"passportId": x.passport_id}),
    rows(
        "PassportService/WatchPassport",
        PRIVATE_SIGNED_IN,
        lambda x: {"passportId": x.passport_id},
        trigger=lambda x, a: x.owner_records(a),
    ),
    rows("Subscription.passportUpdated", SIGNED_IN, trigger=lambda x, a: x.self_records(a)),
    rows(
        "Subscription.interactionAnchored",
        SIGNED_IN,
        trigger=lambda x, a: x.self_records(a),
        together=True,
    ),
    rows(
        "PassportService/RevokeShareLink",
        PRIVATE_SIGNED_IN,
        lambda x: x.fresh_share_link(),
    ),
    rows(
        "Mutation.revokeShareLink",
        PRIVATE_SIGNED_IN,
        lambda x: x.fresh_share_link(graphql=True),
    ),
    # Credentials: a learner issues from their own entries only (another learner's entry id
    # is not in the caller's passport); the owner's entry is not anchored in this fixture.
    rows(
        "PassportService/IssueCredentials",
        expect(NOT_FOUND, anonymous=UNAUTHENTICATED, owner=NEEDS_CHAIN),
        lambda x: {
            "format": "CREDENTIAL_FORMAT_PER_ENTRY",
            "statementIds": [x.owner_interaction_id],
        },
    ),
    rows(
        "Mutation.issueCredentials",
        expect(NOT_FOUND, anonymous=UNAUTHENTICATED, owner=NEEDS_CHAIN),
        lambda x: {"input": {"format": "PER_ENTRY", "statementIds": [x.owner_interaction_id]}},
    ),
    rows("PassportService/ListCredentials", SIGNED_IN, lambda x: {"issuedByMe": True}),
    rows("Query.credentials", SIGNED_IN, lambda x: {"issuedByMe": True}),
    rows(
        "PassportService/ListCredentials",
        PUBLIC,
        lambda x: {"shareToken": x.share_token},
        variant="through a share link",
    ),
    rows(
        "Query.credentials",
        PUBLIC,
        lambda x: {"shareToken": x.share_token},
        variant="through a share link",
    ),
    rows("Query.credential", expect(NOT_FOUND), lambda x: {"id": UNKNOWN_CREDENTIAL}),
    rows(
        "Mutation.revokeCredential",
        expect(NOT_FOUND, anonymous=UNAUTHENTICATED),
        lambda x: {"id": UNKNOWN_CREDENTIAL},
    ),
    rows(
        "Query.sharedPresentation",
        expect(ALLOWED),
        lambda x: {"token": x.share_token, "challenge": "c1", "domain": "verifier.example"},
    ),
    rows(
        "PassportService/GetCredential",
        expect(NOT_FOUND),
        lambda x: {"credentialId": UNKNOWN_CREDENTIAL},
    ),
    rows(
        "PassportService/RevokeCredential",
        expect(NOT_FOUND, anonymous=UNAUTHENTICATED),
        lambda x: {"credentialId": UNKNOWN_CREDENTIAL},
    ),
    rows("PassportService/GetStatusList", expect(NOT_FOUND), lambda x: {"listId": "none"}),
    # Public through the share token; no credential issued for it yet.
    rows(
        "PassportService/GetSharedPresentation",
        expect(ALLOWED),
        lambda x: {"token": x.share_token, "challenge": "c1", "domain": "verifier.example"},
    ),
]

REPORT = expect(DENIED, anonymous=UNAUTHENTICATED, owner=ALLOWED)
REPUTATION: list[Rows] = [
    rows("ReputationService/GetReputation", PUBLIC, lambda x: {"userId": x.user(OWNER)}),
    rows("Query.reputation", PUBLIC, lambda x: {"userId": x.user(OWNER)}),
    rows(
        "ReputationService/WatchReputation",
        PUBLIC,
        lambda x: {"userId": x.user(OWNER)},
    ),
    rows("Subscription.reputationUpdated", PUBLIC, lambda x: {"userId": x.user(OWNER)}),
    # The rating the participant gave the owner, revealed (both sides rated): public.
    rows(
        "ReputationService/GetRating",
        SIGNED_IN,
        lambda x: {"ratingId": x.rating_id},
    ),
    rows(
        "Query.rating",
        SIGNED_IN,
        lambda x: {"id": x.rating_id},
    ),
    rows("ReputationService/ListRatings", SIGNED_IN, lambda x: {"userId": x.user(OWNER)}),
    rows("Query.ratings", SIGNED_IN, lambda x: {"userId": x.user(OWNER)}),
    rows("ReputationService/ListFlaggedRatings", ADMIN_ONLY),
    rows("Query.flaggedRatings", ADMIN_ONLY),
    # Rating the owner for the rated session: only its other participant.
    rows(
        "ReputationService/SubmitRating",
        expect(DENIED, anonymous=UNAUTHENTICATED, participant=ALLOWED),
        lambda x: x.rating_request(),
    ),
    rows(
        "Mutation.submitRating",
        expect(DENIED, anonymous=UNAUTHENTICATED, participant=ALLOWED),
        lambda x: x.rating_request(graphql=True),
    ),
    # Reporting: the rated user (the owner) only; the rating is hidden from strangers.
    rows(
        "ReputationService/ReportRating",
        REPORT,
        lambda x: {"ratingId": x.rating_id, "reason": "unfair"},
    ),
    rows("Mutation.reportRating", REPORT, lambda x: {"ratingId": x.rating_id, "reason": "unfair"}),
    rows(
        "ReputationService/ReviewFlag",
        ADMIN_ONLY,
        lambda x: {"ratingId": x.rating_id, "decision": "FLAG_DECISION_DISMISS"},
        admin=ALLOWED,
    ),
    rows(
        "Mutation.reviewFlag",
        ADMIN_ONLY,
        lambda x: {"ratingId": x.rating_id, "decision": "DISMISS", "note": ""},
        admin=ALLOWED,
    ),
]

# The owner created both communities (their admin); the member belongs to both.
VOTERS = expect(DENIED, anonymous=UNAUTHENTICATED, owner=ALLOWED, member=ALLOWED, admin=ALLOWED)
COMMUNITY_ADMIN = expect(DENIED, anonymous=UNAUTHENTICATED, owner=OK)
GOVERNANCE: list[Rows] = [
    rows(
        "GovernanceService/GetCommunity",
        SIGNED_IN,
        lambda x: {"communityId": x.closed_community_id},
    ),
    rows("Query.community", SIGNED_IN, lambda x: {"id": x.closed_community_id}),
    rows("GovernanceService/ListCommunities", SIGNED_IN),
    rows("Query.communities", SIGNED_IN),
    rows(
        "GovernanceService/ListMembers",
        MEMBERS,
        lambda x: {"communityId": x.closed_community_id},
    ),
    rows("Query.communityMembers", MEMBERS, lambda x: {"communityId": x.closed_community_id}),
    rows("GovernanceService/GetProposal", MEMBERS, lambda x: {"proposalId": x.proposal_id}),
    rows("Query.proposal", MEMBERS, lambda x: {"id": x.proposal_id}),
    rows(
        "GovernanceService/ListProposals",
        MEMBERS,
        lambda x: {"communityId": x.closed_community_id},
    ),
    rows("Query.proposals", MEMBERS, lambda x: {"communityId": x.closed_community_id}),
    rows("GovernanceService/GetTally", MEMBERS, lambda x: {"proposalId": x.proposal_id}),
    rows("Query.proposalTally", MEMBERS, lambda x: {"proposalId": x.proposal_id}),
    # Issue 9: a closed community's standards are for its members.
    rows(
        "GovernanceService/GetStandards",
        MEMBERS,
        lambda x: {
            "communityId": x.closed_community_id,
            "kind": "STANDARDS_KIND_COMMUNITY_STANDARDS",
        },
    ),
    rows(
        "Query.communityStandards",
        MEMBERS,
        lambda x: {
            "communityId": x.closed_community_id,
            "kind": "COMMUNITY_STANDARDS",
            "version": 0,
        },
    ),
    rows(
        "GovernanceService/ListStandardsVersions",
        MEMBERS,
        lambda x: {
            "communityId": x.closed_community_id,
            "kind": "STANDARDS_KIND_COMMUNITY_STANDARDS",
        },
    ),
    rows(
        "Query.communityStandardsVersions",
        MEMBERS,
        lambda x: {"communityId": x.closed_community_id, "kind": "COMMUNITY_STANDARDS"},
    ),
    rows(
        "GovernanceService/WatchProposal",
        MEMBERS,
        lambda x: x.watched_proposal(),
        trigger=lambda x, a: x.proposal_changes(a),
    ),
    rows(
        "Subscription.proposalUpdated",
        MEMBERS,
        lambda x: x.watched_proposal(),
        trigger=lambda x, a: x.proposal_changes(a),
    ),
    rows("GovernanceService/CreateCommunity", SIGNED_IN, lambda x: x.community_request()),
    rows("Mutation.createCommunity", SIGNED_IN, lambda x: x.community_request(graphql=True)),
    rows(
        "GovernanceService/JoinCommunity", SIGNED_IN, lambda x: {"communityId": x.open_community_id}
    ),
    rows("Mutation.joinCommunity", SIGNED_IN, lambda x: {"communityId": x.open_community_id}),
    rows(
        "GovernanceService/SetMemberRole",
        COMMUNITY_ADMIN,
        lambda x: {
            "communityId": x.closed_community_id,
            "userId": x.user(Caller.MEMBER),
            "role": "MEMBER_ROLE_MEMBER",
        },
    ),
    rows(
        "Mutation.setCommunityMemberRole",
        COMMUNITY_ADMIN,
        lambda x: {
            "communityId": x.closed_community_id,
            "userId": x.user(Caller.MEMBER),
            "role": "MEMBER",
        },
    ),
    rows(
        "GovernanceService/CreateProposal",
        MEMBERS,
        lambda x: {
            "communityId": x.closed_community_id,
            "title": "Another",
            "kind": "PROPOSAL_KIND_GENERAL",
        },
        admin=DENIED,
    ),
    rows(
        "Mutation.createProposal",
        MEMBERS,
        lambda x: {
            "input": {
                "communityId": x.closed_community_id,
                "title": "Another",
                "body": "",
                "kind": "GENERAL",
                "options": [],
                "requestId": "",
            }
        },
        admin=DENIED,
    ),
    # One verified human, one vote: the fixture's members are not verified humans, so
    # an allowed vote ends FAILED_PRECONDITION.
    rows(
        "GovernanceService/CastVote",
        MEMBERS,
        lambda x: {"proposalId": x.proposal_id, "choices": [{"optionIndex": 0}]},
        owner=ALLOWED,
        member=ALLOWED,
        admin=DENIED,
    ),
    rows(
        "Mutation.castVote",
        MEMBERS,
        lambda x: {
            "proposalId": x.proposal_id,
            "choices": [{"optionIndex": 0, "weight": 0, "credits": 0}],
            "requestId": "",
        },
        owner=ALLOWED,
        member=ALLOWED,
        admin=DENIED,
    ),
    # Any member may close voting after the window (idempotent); before, FAILED_PRECONDITION.
    rows("GovernanceService/FinalizeProposal", VOTERS, lambda x: {"proposalId": x.proposal_id}),
    rows("Mutation.finalizeProposal", VOTERS, lambda x: {"proposalId": x.proposal_id}),
    rows(
        "GovernanceService/ExecuteProposal",
        VOTERS,
        lambda x: {"proposalId": x.proposal_id},
        admin=DENIED,
    ),
    rows("Mutation.executeProposal", VOTERS, lambda x: {"proposalId": x.proposal_id}, admin=DENIED),
    rows(
        "GovernanceService/CancelProposal",
        COMMUNITY_ADMIN,
        lambda x: x.fresh_proposal(),
    ),
    rows("Mutation.cancelProposal", COMMUNITY_ADMIN, lambda x: x.fresh_proposal(graphql=True)),
    rows(
        "GovernanceService/LeaveCommunity",
        expect(ALLOWED, anonymous=UNAUTHENTICATED),
        lambda x: {"communityId": x.open_community_id},
    ),
    rows(
        "Mutation.leaveCommunity",
        expect(ALLOWED, anonymous=UNAUTHENTICATED),
        lambda x: {"communityId": x.open_community_id},
    ),
]

SPACE_OWNER = expect(DENIED, anonymous=UNAUTHENTICATED, owner=OK, admin=OK)
MARKETPLACE: list[Rows] = [
    rows("MarketplaceService/GetSpace", PUBLIC, lambda x: {"spaceId": x.space_id}),
    rows("Query.space", PUBLIC, lambda x: {"id": x.space_id}),
    rows("MarketplaceService/SearchSpaces", PUBLIC),
    rows("Query.searchSpaces", PUBLIC),
    rows(
        "MarketplaceService/GetSpaceAvailability",
        PUBLIC,
        lambda x: {"spaceId": x.space_id, "window": x.window()},
    ),
    rows(
        "Query.spaceAvailability",
        PUBLIC,
        lambda x: {"spaceId": x.space_id, "window": x.window()},
    ),
    rows("MarketplaceService/ListSpaceRatings", PUBLIC, lambda x: {"spaceId": x.space_id}),
    rows("Query.spaceRatings", PUBLIC, lambda x: {"spaceId": x.space_id}),
    rows(
        "MarketplaceService/CreateSpace",
        SPACE_OWNER,
        lambda x: x.space_request(),
    ),
    rows("Mutation.createSpace", SPACE_OWNER, lambda x: x.space_request(graphql=True)),
    rows(
        "MarketplaceService/UpdateSpace",
        SPACE_OWNER,
        lambda x: {"spaceId": x.space_id, "description": "quiet"},
    ),
    rows(
        "Mutation.updateSpace",
        SPACE_OWNER,
        lambda x: {"spaceId": x.space_id, "input": {"description": "quiet"}},
    ),
    rows(
        "MarketplaceService/SetAvailability",
        SPACE_OWNER,
        lambda x: {"spaceId": x.space_id, "availability": x.availability()},
    ),
    rows(
        "Mutation.setSpaceAvailability",
        SPACE_OWNER,
        lambda x: {"spaceId": x.space_id, "availability": x.availability(graphql=True)},
    ),
    rows(
        "MarketplaceService/AddCertification",
        SPACE_OWNER,
        lambda x: {"spaceId": x.space_id, "name": "Fire safety", "issuer": "City"},
    ),
    rows(
        "Mutation.addSpaceCertification",
        SPACE_OWNER,
        lambda x: {
            "input": {
                "spaceId": x.space_id,
                "name": "Fire safety",
                "issuer": "City",
                "reference": "",
                "requestId": "",
            }
        },
    ),
    rows(
        "MarketplaceService/RequestVerification",
        expect(DENIED, anonymous=UNAUTHENTICATED, owner=ALLOWED, admin=ALLOWED),
        lambda x: {"spaceId": x.space_id},
    ),
    rows(
        "Mutation.requestSpaceVerification",
        expect(DENIED, anonymous=UNAUTHENTICATED, owner=ALLOWED, admin=ALLOWED),
        lambda x: {"spaceId": x.space_id, "note": ""},
    ),
    rows(
        "MarketplaceService/AttestCertification",
        expect(DENIED, anonymous=UNAUTHENTICATED, admin=ALLOWED),
        lambda x: x.certification(),
    ),
    rows(
        "Mutation.attestSpaceCertification",
        expect(DENIED, anonymous=UNAUTHENTICATED, admin=ALLOWED),
        lambda x: x.certification(graphql=True),
    ),
    rows(
        "MarketplaceService/ReviewVerification",
        expect(DENIED, anonymous=UNAUTHENTICATED, admin=ALLOWED),
        lambda x: {"spaceId": x.space_id, "approve": False},
    ),
    rows(
        "Mutation.reviewSpaceVerification",
        expect(DENIED, anonymous=UNAUTHENTICATED, admin=ALLOWED),
        lambda x: {"spaceId": x.space_id, "approve": False, "note": ""},
    ),
    # -- reservations: the tutor (owner), the accepted student, the space owner (owner) ---
    rows(
        "MarketplaceService/GetReservation",
        PARTIES,
        lambda x: {"reservationId": x.reservation_id},
        invited=DENIED,
    ),
    rows("Query.reservation", PARTIES, lambda x: {"id": x.reservation_id}),
    # The invited student sees the reservation they are invited to.
    rows(
        "MarketplaceService/GetReservation",
        PARTIES,
        lambda x: {"reservationId": x.pending_reservation_id},
        invited=OK,
        participant=DENIED,
        variant="pending invitation",
    ),
    rows("MarketplaceService/ListReservations", SIGNED_IN),
    rows("Query.reservations", SIGNED_IN),
    rows(
        "MarketplaceService/ListReservations",
        SPACE_OWNER,
        lambda x: {"spaceId": x.space_id},
        variant="of a space",
    ),
    rows(
        "MarketplaceService/WatchReservations",
        SPACE_OWNER,
        lambda x: {"spaceId": x.space_id},
        trigger=lambda x, a: x.reservation_changes(a),
    ),
    rows(
        "Subscription.reservationChanged",
        SPACE_OWNER,
        lambda x: {"spaceId": x.space_id},
        trigger=lambda x, a: x.reservation_changes(a),
    ),
    rows(
        "MarketplaceService/GetTutorSession",
        PARTIES,
        lambda x: {"sessionId": x.tutor_session_id},
    ),
    rows("Query.tutorSession", PARTIES, lambda x: {"id": x.tutor_session_id}),
    rows("MarketplaceService/ListTutorSessions", SIGNED_IN),
    rows("Query.tutorSessions", SIGNED_IN),
    # Booking names a student: it invites them (an organizer books for others only as a
    # tutor or the student books for themselves).
    rows(
        "MarketplaceService/CreateReservation",
        expect(OK, anonymous=UNAUTHENTICATED),
        lambda x: x.reservation_request(),
    ),
    rows(
        "Mutation.createReservation",
        expect(OK, anonymous=UNAUTHENTICATED),
        lambda x: x.reservation_request(graphql=True),
    ),
    rows(
        "MarketplaceService/BookTutorSession",
        expect(DENIED, anonymous=UNAUTHENTICATED, owner=OK, other_tutor=OK, admin=OK),
        lambda x: x.booking_request(),
    ),
    rows(
        "Mutation.bookTutorSession",
        expect(DENIED, anonymous=UNAUTHENTICATED, owner=OK, other_tutor=OK, admin=OK),
        lambda x: x.booking_request(graphql=True),
    ),
    rows(
        "MarketplaceService/ConfirmReservation",
        SPACE_OWNER,
        lambda x: {"reservationId": x.reservation_id},
    ),
    rows("Mutation.confirmReservation", SPACE_OWNER, lambda x: {"id": x.reservation_id}),
    # Not ended yet: an authorized completion is FAILED_PRECONDITION.
    rows(
        "MarketplaceService/CompleteReservation",
        expect(DENIED, anonymous=UNAUTHENTICATED, owner=ALLOWED, admin=ALLOWED),
        lambda x: {"reservationId": x.reservation_id},
    ),
    rows(
        "Mutation.completeReservation",
        expect(DENIED, anonymous=UNAUTHENTICATED, owner=ALLOWED, admin=ALLOWED),
        lambda x: {"id": x.reservation_id},
    ),
    rows(
        "MarketplaceService/CompleteTutorSession",
        expect(DENIED, anonymous=UNAUTHENTICATED, owner=ALLOWED, admin=ALLOWED),
        lambda x: {"sessionId": x.tutor_session_id},
    ),
    rows(
        "Mutation.completeTutorSession",
        expect(DENIED, anonymous=UNAUTHENTICATED, owner=ALLOWED, admin=ALLOWED),
        lambda x: {"id": x.tutor_session_id},
    ),
    # Rating needs a completed reservation the rater took part in (not yet: ALLOWED).
    rows(
        "MarketplaceService/RateSpace",
        expect(DENIED, anonymous=UNAUTHENTICATED, participant=ALLOWED),
        lambda x: x.space_rating(),
    ),
    rows(
        "Mutation.rateSpace",
        expect(DENIED, anonymous=UNAUTHENTICATED, participant=ALLOWED),
        lambda x: x.space_rating(graphql=True),
    ),
    rows(
        "MarketplaceService/CancelReservation",
        PARTIES,
        lambda x: x.fresh_reservation(),
    ),
    rows("Mutation.cancelReservation", PARTIES, lambda x: x.fresh_reservation(graphql=True)),
    rows(
        "MarketplaceService/CancelTutorSession",
        PARTIES,
        lambda x: x.fresh_tutor_session(),
    ),
    rows("Mutation.cancelTutorSession", PARTIES, lambda x: x.fresh_tutor_session(graphql=True)),
]

# The chain translator serves Keiko's services (role "service") and admins; verifiers
# read proofs and registrations without a token.
CHAIN: list[Rows] = [
    rows("ChainService/GetChainInfo", expect(NEEDS_CHAIN)),
    rows(
        "ChainService/GetInclusionProof",
        expect(NOT_FOUND),
        lambda x: {"domain": "ANCHOR_DOMAIN_LEARNING", "recordId": "no-such-record"},
    ),
    rows("ChainService/VerifyInclusion", expect(INPUT_CHECKED), lambda x: {"proof": {}}),
    rows(
        "ChainService/GetHumanityRegistration",
        expect(NEEDS_CHAIN),
        lambda x: {"commitment": "0x1"},
    ),
    # A learner may sign and anchor their own records only.
    rows(
        "ChainService/SignInteraction",
        expect(DENIED, anonymous=UNAUTHENTICATED, owner=OK, admin=OK),
        lambda x: {"learnerId": x.user(OWNER), "canonicalStatementJson": "{}"},
    ),
    rows(
        "ChainService/SubmitForAnchoring",
        expect(DENIED, anonymous=UNAUTHENTICATED, admin=OK),
        lambda x: {"domain": "ANCHOR_DOMAIN_REPUTATION", "recordId": "r1", "leafData": "eA=="},
    ),
    rows(
        "ChainService/GetAnchorStatus",
        expect(NOT_FOUND, anonymous=UNAUTHENTICATED, owner=OK, admin=OK),
        lambda x: {"domain": "ANCHOR_DOMAIN_LEARNING", "recordId": x.owner_interaction_id},
    ),
    rows(
        "ChainService/GetBatch",
        expect(NOT_FOUND, anonymous=UNAUTHENTICATED),
        lambda x: {"batchId": "0x1"},
    ),
    rows(
        "ChainService/WatchAnchors",
        SIGNED_IN,
        trigger=lambda x, a: x.self_records(a),
        together=True,
    ),
    # Signing a credential with a user's custodial key: that user (or a Keiko service).
    rows(
        "ChainService/SignCredential",
        expect(DENIED, anonymous=UNAUTHENTICATED, owner=INPUT_CHECKED, admin=INPUT_CHECKED),
        lambda x: {
            "purpose": "CREDENTIAL_PURPOSE_PRESENT",
            "holderId": x.user(OWNER),
            "learnerId": x.user(OWNER),
            "documentJson": "{}",
        },
    ),
    rows(
        "ChainService/RegisterHumanity",
        expect(DENIED, anonymous=UNAUTHENTICATED, admin=INPUT_CHECKED),
        lambda x: {"userId": x.me or "u", "commitment": "", "ed25519PublicKey": ""},
    ),
    # On-chain governance: proposals are created and finalized by Keiko's services; a vote
    # is cast for a registered human (by their commitment) by that human or a service. No
    # human holds this commitment: found by nobody.
    rows(
        "ChainService/CreateGovernanceProposal",
        expect(DENIED, anonymous=UNAUTHENTICATED, admin=INPUT_CHECKED),
        lambda x: {"communityId": "c"},
    ),
    rows(
        "ChainService/CastGovernanceVote",
        expect(NOT_FOUND, anonymous=UNAUTHENTICATED),
        lambda x: {
            "onchainProposalId": "0x1",
            "voterCommitment": "0x5",
            "votes": [{"optionIndex": 0, "votesMilli": "1000"}],
        },
    ),
    rows(
        "ChainService/FinalizeGovernanceProposal",
        expect(DENIED, anonymous=UNAUTHENTICATED, admin=INPUT_CHECKED),
        lambda x: {"onchainProposalId": "0x1"},
    ),
]

# Issue 9: invitations. Each caller lists and watches its own; only the invitee answers.
ANSWER = expect(DENIED, anonymous=UNAUTHENTICATED, invited=OK)
INVITATIONS: list[Rows] = [
    rows("LearningService/ListInvitations", SIGNED_IN),
    rows("MarketplaceService/ListInvitations", SIGNED_IN),
    rows("Query.invitations", SIGNED_IN),
    rows(
        "LearningService/RespondToInvitation",
        ANSWER,
        lambda x: x.fresh_invitation("learning"),
    ),
    rows(
        "MarketplaceService/RespondToInvitation",
        ANSWER,
        lambda x: x.fresh_invitation("marketplace"),
    ),
    rows("Mutation.acceptInvitation", ANSWER, lambda x: x.fresh_invitation("learning", True)),
    rows("Mutation.declineInvitation", ANSWER, lambda x: x.fresh_invitation("marketplace", True)),
    rows(
        "LearningService/WatchInvitations",
        SIGNED_IN,
        trigger=lambda x, a: x.invite_me("learning"),
    ),
    rows(
        "MarketplaceService/WatchInvitations",
        SIGNED_IN,
        trigger=lambda x, a: x.invite_me("marketplace"),
    ),
    rows(
        "Subscription.invitationChanged",
        SIGNED_IN,
        trigger=lambda x, a: x.invite_me("marketplace"),
    ),
]

SYSTEM: list[Rows] = [
    rows("Subscription.serviceHealth", PUBLIC, lambda x: {"service": ""}),
]

TABLE: list[Rows] = [
    *IDENTITY,
    *LEARNING,
    *PASSPORT,
    *REPUTATION,
    *GOVERNANCE,
    *MARKETPLACE,
    *CHAIN,
    *INVITATIONS,
    *SYSTEM,
]
