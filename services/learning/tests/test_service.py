"""Learning use cases on a migrated schema (SQLite by default, PostgreSQL with
KEIKO_TEST_BACKEND=real): storage queries and pagination, voiding, idempotency,
authorization, interactions and their outbox events, LRS clients."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import nacl.signing
import pytest
from sqlalchemy import select

from services.kit.auth import Principal
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    ValidationError,
)
from services.learning.clients.cache import credential_digest, verified_credentials
from services.learning.clients.storage import LrsClientRepository
from services.learning.hierarchy.domain import KEIKO_HOME_PAGE
from services.learning.hierarchy.storage import ClassRecord, CourseRecord
from services.learning.interactions.inputs import InteractionInput, ScoreInput
from services.learning.service import LearningService
from services.learning.statements.domain import DeviceSignature
from services.learning.storage import outbox
from services.learning.xapi import canonical_bytes, statement_hash_hex

ANA = Principal("ana", frozenset({"learner"}))
BEN = Principal("ben", frozenset({"learner"}))
TOM = Principal("tom", frozenset({"tutor"}))
ADMIN = Principal("root", frozenset({"admin"}))
ANSWERED = "http://adlnet.gov/expapi/verbs/answered"
EXPERIENCED = "http://adlnet.gov/expapi/verbs/experienced"
ACT = "https://example.org/activities/"


@pytest.fixture
def database_schemas() -> Sequence[str]:
    return ("learning",)


@pytest.fixture
def service(migrated_database: Database, clock: FixedClock) -> LearningService:
    return LearningService(migrated_database, clock)


def keiko_actor(user: str) -> dict[str, Any]:
    return {"objectType": "Agent", "account": {"homePage": KEIKO_HOME_PAGE, "name": user}}


def statement(
    user: str = "ana",
    *,
    verb: str = ANSWERED,
    activity: str = ACT + "q1",
    id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "actor": keiko_actor(user),
        "verb": {"id": verb, "display": {"en-US": verb.rsplit("/", 1)[-1]}},
        "object": {"id": activity},
        **extra,
    }
    if id is not None:
        out["id"] = id
    return out


def texts(*statements: dict[str, Any]) -> list[str]:
    return [json.dumps(s) for s in statements]


async def events(db: Database) -> list[dict[str, Any]]:
    async with db.session() as s:
        rows = (await s.execute(select(outbox).order_by(outbox.c.seq))).all()
    return [dict(r._mapping) for r in rows]


# -- statements -------------------------------------------------------------------------------


async def test_record_and_get_keeps_exact_json_and_emits_the_event(
    service: LearningService, migrated_database: Database, clock: FixedClock
) -> None:
    [row] = await service.statements.record_statements(
        ANA, texts(statement(result={"score": {"scaled": 0.8}}))
    )
    assert row.learner_id == "ana" and row.recorded_by == "ana"
    stored = json.loads(row.statement_json)
    assert stored["stored"] == "2026-01-01T00:00:00.000Z"
    assert stored["authority"]["account"]["name"] == "ana"
    assert row.canonical_hash == statement_hash_hex(stored)
    again = await service.statements.get_statement(ANA, row.id)
    assert again.statement_json == row.statement_json
    [event] = await events(migrated_database)
    assert event["topic"] == "learning.interaction_recorded" and event["key"] == "ana"
    payload = event["payload"]
    assert payload["statement_id"] == row.id
    assert payload["statement_json"] == row.statement_json
    assert payload["canonical_hash"] == row.canonical_hash
    assert payload["verb_id"] == ANSWERED and payload["object_id"] == ACT + "q1"
    assert payload["device_signature"] is None


async def test_invalid_statement_names_index_and_path(service: LearningService) -> None:
    bad = statement()
    bad["actor"] = {"mbox": "ana@example.org"}
    with pytest.raises(ValidationError) as caught:
        await service.statements.record_statements(ANA, texts(statement(), bad))
    assert caught.value.field == "statements[1].actor.mbox"
    with pytest.raises(ValidationError) as caught:
        await service.statements.record_statements(ANA, texts(statement()), xapi_version="3.0")
    assert caught.value.field == "X-Experience-API-Version"


async def test_batch_is_atomic(service: LearningService) -> None:
    sid = str(uuid.uuid4())
    bad = statement(id=str(uuid.uuid4()))
    bad["verb"]["id"] = "not an iri"
    with pytest.raises(ValidationError):
        await service.statements.record_statements(ANA, texts(statement(id=sid), bad))
    with pytest.raises(NotFound):
        await service.statements.get_statement(ANA, sid)


async def test_same_id_same_content_is_a_noop_different_content_conflicts(
    service: LearningService, migrated_database: Database, clock: FixedClock
) -> None:
    sid = str(uuid.uuid4())
    [first] = await service.statements.record_statements(ANA, texts(statement(id=sid)))
    clock.advance(timedelta(minutes=5))
    [again] = await service.statements.record_statements(ANA, texts(statement(id=sid)))
    assert again.statement_json == first.statement_json
    assert len(await events(migrated_database)) == 1
    with pytest.raises(AlreadyExists, match=f"statement {sid} is already stored"):
        await service.statements.record_statements(
            ANA, texts(statement(id=sid, activity=ACT + "other"))
        )


async def test_request_id_replays_the_batch(service: LearningService) -> None:
    first = await service.statements.record_statements(ANA, texts(statement()), request_id="r1")
    again = await service.statements.record_statements(ANA, texts(statement()), request_id="r1")
    assert [r.id for r in again] == [r.id for r in first]


async def test_learner_cannot_write_another_learners_record(service: LearningService) -> None:
    with pytest.raises(PermissionDenied, match=r"statements\[0\].actor"):
        await service.statements.record_statements(ANA, texts(statement("ben")))
    # External actors (not Keiko users) are allowed; admins may write for anyone.
    external = statement()
    external["actor"] = {"mbox": "mailto:someone@example.org"}
    [row] = await service.statements.record_statements(ANA, texts(external))
    assert row.learner_id is None
    [row] = await service.statements.record_statements(ADMIN, texts(statement("ben")))
    assert row.learner_id == "ben"


async def test_reads_are_limited_to_own_statements(service: LearningService) -> None:
    [row] = await service.statements.record_statements(ANA, texts(statement()))
    with pytest.raises(PermissionDenied):
        await service.statements.get_statement(BEN, row.id)
    page = await service.statements.query_statements(BEN)
    assert page.items == []
    assert [r.id for r in (await service.statements.query_statements(ADMIN)).items] == [row.id]


async def test_query_filters(service: LearningService, clock: FixedClock) -> None:
    registration = str(uuid.uuid4())
    [a] = await service.statements.record_statements(ANA, texts(statement()))
    clock.advance(timedelta(seconds=1))
    [b] = await service.statements.record_statements(
        ANA,
        texts(
            statement(
                verb=EXPERIENCED,
                activity=ACT + "video",
                context={
                    "registration": registration,
                    "contextActivities": {"parent": [{"id": ACT + "q1"}]},
                },
            )
        ),
    )
    clock.advance(timedelta(seconds=1))
    [c] = await service.statements.record_statements(ADMIN, texts(statement("ben")))

    async def ids(**kw: Any) -> list[str]:
        return [r.id for r in (await service.statements.query_statements(ADMIN, **kw)).items]

    assert await ids() == [c.id, b.id, a.id]
    assert await ids(ascending=True) == [a.id, b.id, c.id]
    assert await ids(learner_id="ana") == [b.id, a.id]
    assert await ids(verb_id=EXPERIENCED) == [b.id]
    assert await ids(activity_id=ACT + "q1") == [c.id, a.id]
    assert await ids(activity_id=ACT + "q1", related_activities=True) == [c.id, b.id, a.id]
    assert await ids(registration=registration) == [b.id]
    assert await ids(since=b.stored) == [c.id, b.id]
    assert await ids(until=b.stored) == [b.id, a.id]
    actor_key = 'account:["https://keiko.network","ben"]'
    assert await ids(learner_id=actor_key) == [c.id]
    with pytest.raises(ValidationError) as caught:
        await service.statements.query_statements(ADMIN, registration="nope")
    assert caught.value.field == "registration"


@pytest.mark.parametrize("ascending", [False, True])
async def test_pagination_is_stable_when_rows_arrive_between_pages(
    service: LearningService, clock: FixedClock, ascending: bool
) -> None:
    recorded = []
    for _ in range(5):
        recorded += await service.statements.record_statements(ANA, texts(statement(), statement()))
        clock.advance(timedelta(seconds=1))
    expected = sorted(recorded, key=lambda r: (r.stored, r.id), reverse=not ascending)
    first = await service.statements.query_statements(ANA, requested_size=4, ascending=ascending)
    assert [r.id for r in first.items] == [r.id for r in expected[:4]]
    # New statements, one at the very instant of the cursor row.
    clock.set(first.items[-1].stored)
    await service.statements.record_statements(ANA, texts(statement(), statement()))
    seen = list(first.items)
    token = first.next_page_token
    while token:
        page = await service.statements.query_statements(
            ANA, requested_size=4, ascending=ascending, page_token=token
        )
        seen += page.items
        token = page.next_page_token
    old = {r.id for r in recorded}
    seen_old = [r.id for r in seen if r.id in old]
    assert seen_old == [r.id for r in expected]  # none repeated, none skipped
    assert len(seen) == len({r.id for r in seen})


async def test_page_token_is_checked(service: LearningService) -> None:
    for _ in range(3):
        await service.statements.record_statements(ANA, texts(statement()))
    page = await service.statements.query_statements(ANA, requested_size=1)
    with pytest.raises(ValidationError) as caught:
        await service.statements.query_statements(ANA, requested_size=1, page_token="garbage!")
    assert caught.value.field == "page_token"
    with pytest.raises(ValidationError, match="other filters"):
        await service.statements.query_statements(
            ANA, verb_id=EXPERIENCED, requested_size=1, page_token=page.next_page_token
        )


# -- voiding ----------------------------------------------------------------------------------


async def test_voiding_hides_the_statement_but_keeps_it(
    service: LearningService, migrated_database: Database
) -> None:
    [row] = await service.statements.record_statements(ANA, texts(statement()))
    voiding = await service.statements.void_statement(ANA, row.id)
    assert voiding.voids_statement_id == row.id and voiding.verb_id.endswith("/voided")
    ids = [r.id for r in (await service.statements.query_statements(ANA)).items]
    assert row.id not in ids and voiding.id in ids
    everything = await service.statements.query_statements(ANA, include_voided=True)
    assert row.id in [r.id for r in everything.items]
    assert (await service.statements.get_statement(ANA, row.id)).voided is True
    payloads = [e["payload"] for e in await events(migrated_database)]
    assert payloads[-1]["voided_statement_id"] == row.id


async def test_voiding_rules(service: LearningService) -> None:
    missing = str(uuid.uuid4())
    voider = statement(verb="http://adlnet.gov/expapi/verbs/voided")
    voider["object"] = {"objectType": "StatementRef", "id": missing}
    # xAPI Data 2.3.2: a voiding statement whose target is not stored is accepted; the
    # target, arriving later from the same author, is stored voided.
    [early] = await service.statements.record_statements(ANA, texts(voider))
    assert early.voids_statement_id == missing
    await service.statements.record_statements(ANA, texts(statement(id=missing)))
    assert (await service.statements.get_statement(ANA, missing)).voided
    [row] = await service.statements.record_statements(ANA, texts(statement()))
    voiding = await service.statements.void_statement(ANA, row.id)
    with pytest.raises(ValidationError, match="is a voiding statement"):
        await service.statements.void_statement(ANA, voiding.id)
    with pytest.raises(NotFound):
        await service.statements.void_statement(ANA, str(uuid.uuid4()))
    [bens] = await service.statements.record_statements(ADMIN, texts(statement("ben")))
    with pytest.raises(PermissionDenied):
        await service.statements.void_statement(ANA, bens.id)
    # A voiding statement and its target in one batch.
    target = statement(id=str(uuid.uuid4()))
    voider["object"]["id"] = target["id"]
    rows = await service.statements.record_statements(ANA, texts(target, voider))
    assert (await service.statements.get_statement(ANA, rows[0].id)).voided


async def test_void_is_idempotent_by_request_id(service: LearningService) -> None:
    [row] = await service.statements.record_statements(ANA, texts(statement()))
    first = await service.statements.void_statement(ANA, row.id, request_id="v1")
    again = await service.statements.void_statement(ANA, row.id, request_id="v1")
    assert first.id == again.id


# -- hierarchy and interactions ---------------------------------------------------------------


async def course_and_class(service: LearningService) -> tuple[CourseRecord, ClassRecord]:
    course = await service.hierarchy.create_course(TOM, "Linear Algebra", "Vectors")
    klass = await service.hierarchy.create_class(TOM, "Class 2", course_id=course.id)
    return course, klass


async def test_hierarchy_crud_and_permissions(service: LearningService) -> None:
    with pytest.raises(PermissionDenied):
        await service.hierarchy.create_course(ANA, "Mine")
    course, klass = await course_and_class(service)
    assert (await service.hierarchy.get_course(ANA, course.id)).class_ids == [klass.id]
    with pytest.raises(ValidationError) as caught:
        await service.hierarchy.create_course(TOM, "  ")
    assert caught.value.field == "course.title"
    with pytest.raises(PermissionDenied):
        await service.hierarchy.update_course(ANA, course.id, title="Hacked")
    updated = await service.hierarchy.update_course(TOM, course.id, title="Linear Algebra I")
    assert updated.title == "Linear Algebra I"
    with pytest.raises(PermissionDenied):
        await service.hierarchy.create_class(
            Principal("eve", frozenset({"tutor"})), "X", course_id=course.id
        )
    again = await service.hierarchy.create_course(TOM, "Dup", request_id="c1")
    assert (await service.hierarchy.create_course(TOM, "Dup", request_id="c1")).id == again.id
    page = await service.hierarchy.list_courses(ANA, instructor_id="tom", requested=1)
    assert len(page.items) == 1 and page.next_page_token
    rest = await service.hierarchy.list_courses(
        ANA, instructor_id="tom", token=page.next_page_token
    )
    assert len(rest.items) == 1


async def test_tutorial_session_interactions(
    service: LearningService, migrated_database: Database, clock: FixedClock
) -> None:
    course, klass = await course_and_class(service)
    session = await service.sessions.create_tutorial_session(
        TOM, tutor_kind="human", student_ids=["ana"], class_id=klass.id, topic="Vectors"
    )
    question = InteractionInput(
        kind="question", tutorial_session_id=session.id, content="What is a vector?"
    )
    with pytest.raises(FailedPrecondition, match="not started"):
        await service.interactions.record_interaction(ANA, question)
    with pytest.raises(PermissionDenied):
        await service.sessions.start_tutorial_session(ANA, session.id)
    await service.sessions.start_tutorial_session(TOM, session.id)
    asked = await service.interactions.record_interaction(ANA, question)
    clock.advance(timedelta(seconds=1))
    assert (asked.course_id, asked.class_id, asked.tutorial_session_id) == (
        course.id,
        klass.id,
        session.id,
    )
    # The tutor records the answer's evaluation... as feedback for the student.
    answer = await service.interactions.record_interaction(
        ANA,
        InteractionInput(
            kind="answer",
            tutorial_session_id=session.id,
            related_interaction_id=asked.id,
            response="An arrow",
            success=True,
            score=ScoreInput(scaled=0.8),
        ),
    )
    assert answer.object_id == asked.object_id
    clock.advance(timedelta(seconds=1))
    tom_feedback = InteractionInput(
        kind="feedback",
        learner_id="ana",
        tutorial_session_id=session.id,
        related_interaction_id=answer.id,
        content="Good",
    )
    # Issue 9: naming Ana invited her; nothing about her is recorded before she accepts.
    [invitation] = session.invitations
    assert (invitation.invitee_id, invitation.status) == ("ana", "pending")
    with pytest.raises(PermissionDenied, match="has not accepted this tutorial session"):
        await service.interactions.record_interaction(TOM, tom_feedback)
    await service.sessions.respond_to_invitation(ANA, invitation.id, True)
    feedback = await service.interactions.record_interaction(
        TOM,
        InteractionInput(
            kind="feedback",
            learner_id="ana",
            tutorial_session_id=session.id,
            related_interaction_id=answer.id,
            content="Good",
        ),
    )
    assert feedback.learner_id == "ana" and feedback.recorded_by == "tom"
    # Ben is not in the session: he cannot record into it, nor can Tom record for him.
    with pytest.raises(PermissionDenied):
        await service.interactions.record_interaction(BEN, question)
    with pytest.raises(PermissionDenied):
        await service.interactions.record_interaction(
            TOM, InteractionInput(**{**question.__dict__, "learner_id": "ben"})
        )
    # A learner cannot record for another learner.
    with pytest.raises(PermissionDenied):
        await service.interactions.record_interaction(
            ANA, InteractionInput(kind="question", learner_id="ben", content="?")
        )
    # Evaluations are not recorded in a tutorial session (the domain's hierarchy rules).
    with pytest.raises(ValidationError) as caught:
        await service.interactions.record_interaction(
            ANA,
            InteractionInput(
                kind="evaluation",
                tutorial_session_id=session.id,
                title="Quiz",
                score=ScoreInput(raw=1, min=0, max=2),
            ),
        )
    assert caught.value.field == "interaction.kind"
    view = await service.sessions.get_tutorial_session(ANA, session.id)
    assert view.interaction_count == 3
    assert (await service.hierarchy.get_class(ANA, klass.id)).interaction_count == 3
    listed = await service.interactions.list_interactions(TOM, learner_id="ana")
    assert [r.id for r in listed.items] == [asked.id, answer.id, feedback.id]
    await service.sessions.end_tutorial_session(ANA, session.id)
    clock.advance(timedelta(seconds=1))
    with pytest.raises(FailedPrecondition, match="ended"):
        await service.interactions.record_interaction(ANA, question)
    payload = (await events(migrated_database))[-1]["payload"]
    assert payload["interaction_type"] == "feedback"
    assert payload["tutorial_session_id"] == session.id
    assert payload["class_id"] == klass.id and payload["course_id"] == course.id


async def test_study_session_and_request_id(service: LearningService, clock: FixedClock) -> None:
    study = await service.sessions.start_study_session(ANA, topic="Matrices")
    exercise = InteractionInput(
        kind="exercise",
        study_session_id=study.id,
        title="Ex 1",
        completion=True,
        duration=timedelta(minutes=3),
    )
    first = await service.interactions.record_interaction(ANA, exercise, request_id="x1")
    again = await service.interactions.record_interaction(ANA, exercise, request_id="x1")
    assert first.id == again.id
    assert first.interaction is not None and first.interaction.duration == "PT3M"
    with pytest.raises(PermissionDenied):
        await service.interactions.record_interaction(BEN, exercise)
    with pytest.raises(PermissionDenied):
        await service.sessions.get_study_session(BEN, study.id)
    await service.sessions.end_study_session(ANA, study.id)
    await service.sessions.end_study_session(ANA, study.id)  # no-op
    clock.advance(timedelta(seconds=1))
    with pytest.raises(FailedPrecondition):
        await service.interactions.record_interaction(ANA, exercise)


async def test_device_signed_interaction(
    service: LearningService, migrated_database: Database, clock: FixedClock
) -> None:
    key = nacl.signing.SigningKey.generate()
    inp = InteractionInput(kind="question", content="Why?")
    prepared = await service.interactions.prepare_interaction(ANA, inp)
    assert json.loads(prepared.statement_json)["id"] == prepared.statement_id
    canonical = prepared.canonical_json.encode()
    assert canonical == canonical_bytes(json.loads(prepared.statement_json))
    clock.advance(timedelta(seconds=30))
    bad = DeviceSignature("00" * 64, key.verify_key.encode().hex())
    with pytest.raises(ValidationError) as caught:
        await service.interactions.record_interaction(
            ANA, inp, statement_id=prepared.statement_id, device_signature=bad
        )
    assert caught.value.field == "device_signature.signature_hex"
    good = DeviceSignature(key.sign(canonical).signature.hex(), key.verify_key.encode().hex())
    with pytest.raises(ValidationError) as caught:
        await service.interactions.record_interaction(
            ANA,
            InteractionInput(kind="question", content="Other"),
            statement_id=prepared.statement_id,
            device_signature=good,
        )
    assert caught.value.field == "interaction"
    row = await service.interactions.record_interaction(
        ANA, inp, statement_id=prepared.statement_id, device_signature=good
    )
    assert row.statement_json == prepared.statement_json
    again = await service.interactions.record_interaction(
        ANA, inp, statement_id=prepared.statement_id, device_signature=good
    )
    assert again.id == row.id
    payload = (await events(migrated_database))[-1]["payload"]
    assert payload["device_signature"] == {
        "signature_hex": good.signature_hex,
        "public_key_hex": good.public_key_hex,
    }
    with pytest.raises(PermissionDenied):
        await service.interactions.record_interaction(
            BEN, inp, statement_id=prepared.statement_id, device_signature=good
        )
    with pytest.raises(ValidationError) as caught:
        await service.interactions.record_interaction(ANA, inp, device_signature=good)
    assert caught.value.field == "statement_id"


async def test_interaction_input_errors(service: LearningService) -> None:
    with pytest.raises(ValidationError) as caught:
        await service.interactions.record_interaction(ANA, InteractionInput(kind="dance"))
    assert caught.value.field == "interaction.interaction_type"
    with pytest.raises(ValidationError) as caught:
        await service.interactions.record_interaction(
            ANA, InteractionInput(kind="question", content="")
        )
    assert caught.value.field == "interaction.question.text"
    with pytest.raises(ValidationError) as caught:
        await service.interactions.record_interaction(
            ANA, InteractionInput(kind="answer", response="x")
        )
    assert caught.value.field == "interaction.activity_id"
    with pytest.raises(ValidationError) as caught:
        await service.interactions.record_interaction(
            ANA, InteractionInput(kind="evaluation", title="Quiz", score=ScoreInput(scaled=2))
        )
    assert caught.value.field == "interaction.evaluation.score.scaled"
    with pytest.raises(NotFound):
        await service.interactions.record_interaction(
            ANA, InteractionInput(kind="question", content="?", class_id="nope")
        )


# -- LRS clients ------------------------------------------------------------------------------


async def test_lrs_client_lifecycle(service: LearningService) -> None:
    creds = await service.clients.register_lrs_client(ANA, "Moodle LRS")
    principal = await service.clients.authenticate_lrs_client(creds.client.key, creds.secret)
    assert principal.user_id == "ana" and principal.session_id == f"lrs:{creds.client.id}"
    with pytest.raises(Unauthenticated):
        await service.clients.authenticate_lrs_client(creds.client.key, "wrong")
    with pytest.raises(Unauthenticated):
        await service.clients.authenticate_lrs_client("nope", creds.secret)
    [row] = await service.statements.record_statements(principal, texts(statement()))
    assert row.lrs_client_id == creds.client.id
    with pytest.raises(PermissionDenied):
        await service.statements.record_statements(principal, texts(statement("ben")))
    assert [c.id for c in (await service.clients.list_lrs_clients(ANA)).items] == [creds.client.id]
    with pytest.raises(PermissionDenied):
        await service.clients.revoke_lrs_client(BEN, creds.client.id)
    await service.clients.revoke_lrs_client(ANA, creds.client.id)
    with pytest.raises(Unauthenticated, match="revoked"):
        await service.clients.authenticate_lrs_client(creds.client.key, creds.secret)


async def test_verified_lrs_credentials_outlive_another_process_revocation_one_second(
    service: LearningService, migrated_database: Database, clock: FixedClock
) -> None:
    """The per-process cache of verified credentials: a revocation committed by another
    process (straight in the database here) takes effect within its one-second TTL; a
    wrong secret is never served from it."""
    now = [100.0]
    service.clients.verified = verified_credentials(monotonic=lambda: now[0])
    creds = await service.clients.register_lrs_client(ANA, "Tool")
    principal = await service.clients.authenticate_lrs_client(creds.client.key, creds.secret)
    async with migrated_database.transaction() as s:
        await LrsClientRepository(s).set_revoked(creds.client.id, clock.now())
    now[0] += 0.9
    assert await service.clients.authenticate_lrs_client(creds.client.key, creds.secret) == (
        principal
    )
    with pytest.raises(Unauthenticated, match="invalid"):
        await service.clients.authenticate_lrs_client(creds.client.key, creds.secret + "x")
    now[0] += 0.1
    with pytest.raises(Unauthenticated, match="revoked"):
        await service.clients.authenticate_lrs_client(creds.client.key, creds.secret)


def test_verified_credentials_drop_a_verification_that_raced_a_revocation() -> None:
    verified = verified_credentials(max_entries=2)
    principal = Principal("ana", frozenset())
    started = verified.generation
    verified.clear()  # a revocation commits while the verification reads the client
    verified.put(credential_digest("k", "s"), principal, started)
    assert verified.get(credential_digest("k", "s")) is None
    for i in range(3):
        verified.put(credential_digest("k", str(i)), principal, verified.generation)
    kept = [verified.get(credential_digest("k", str(i))) for i in range(3)]
    assert kept == [None, principal, principal]
