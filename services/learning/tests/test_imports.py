# ruff: noqa: E501
"""Webhook import mappers: payload mapping, idempotent ids, authentication, bad payloads."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from services.kit.clock import FixedClock
from services.kit.errors import Unauthenticated, ValidationError
from services.learning.imports import (
    canvas,
    common,
    hmac_signature,
    import_statement_id,
    learning_locker,
    moodle,
    scorm_cloud,
)
from services.learning.tests import examples as ex
from services.learning.xapi import canonical_bytes

ADL = "http://adlnet.gov/expapi/verbs/"
IMPORT_EXT = "https://keiko.network/xapi/extensions/import"
NOW = datetime(2026, 2, 1, 10, 0, tzinfo=UTC)


def _error(fn: Any, *args: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ValidationError) as info:
        fn(*args, **kwargs)
    return info.value.field, info.value.reason


# --- authentication ---------------------------------------------------------------------


def test_hmac_signature_roundtrip_and_failures() -> None:
    body = b'{"eventname": "x"}'
    sig = hmac_signature(body, "s3cret")
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    common.verify_hmac_signature({"x-keiko-signature": sig}, body, "s3cret")
    common.verify_hmac_signature(
        {"X-Keiko-Signature": "SHA256=" + sig[7:].upper()}, body, b"s3cret"
    )
    for headers, secret in [
        ({}, "s3cret"),
        ({"X-Keiko-Signature": sig}, "other"),
        ({"X-Keiko-Signature": sig[7:]}, "s3cret"),
        ({"X-Keiko-Signature": "sha256=zz"}, "s3cret"),
        ({"X-Keiko-Signature": "sha256=é"}, "s3cret"),
        ({"X-Keiko-Signature": sig}, ""),
    ]:
        with pytest.raises(Unauthenticated):
            common.verify_hmac_signature(headers, body, secret)
    with pytest.raises(Unauthenticated):
        common.verify_hmac_signature({"X-Keiko-Signature": sig}, body + b" ", "s3cret")


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_auth() -> None:
    learning_locker.verify_request(_basic("ll", "pw"), username="ll", password="pw")
    scorm_cloud.verify_request(
        {"authorization": _basic("sc", "p:w")["Authorization"]}, username="sc", password="p:w"
    )
    for headers in [
        {},
        _basic("ll", "nope"),
        {"Authorization": "Bearer abc"},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Basic"},
    ]:
        with pytest.raises(Unauthenticated):
            learning_locker.verify_request(headers, username="ll", password="pw")
    with pytest.raises(Unauthenticated):
        learning_locker.verify_request(_basic("", ""), username="", password="")


# --- Learning Locker --------------------------------------------------------------------

LL_STATEMENT = ex.clone(ex.LONG)


def test_learning_locker_bare_statement() -> None:
    [v] = learning_locker.map_payload(json.dumps(LL_STATEMENT).encode(), clock=FixedClock(NOW))
    assert v.id == import_statement_id("learning-locker", LL_STATEMENT["id"])
    assert v.statement["stored"] == "2026-02-01T10:00:00.000Z"
    assert "authority" not in v.statement
    assert v.statement["timestamp"] == LL_STATEMENT["timestamp"]
    assert v.statement["context"]["extensions"][IMPORT_EXT] == {
        "source": "learning-locker",
        "eventId": LL_STATEMENT["id"],
    }
    assert v.verb_id == ADL + "attended"


def test_learning_locker_full_document_and_batches_are_idempotent() -> None:
    doc = {
        "_id": "5a0d3c7c",
        "lrs_id": "5a0d3c7d",
        "statement": LL_STATEMENT,
        "hasGeneratedId": False,
    }
    [a] = learning_locker.map_payload(doc)
    [b] = learning_locker.map_payload(LL_STATEMENT)
    assert a.id == b.id and canonical_bytes(a.statement) == canonical_bytes(b.statement)
    out = learning_locker.map_payload([doc, ex.SIMPLE])
    assert [v.id for v in out] == [a.id, import_statement_id("learning-locker", ex.SIMPLE["id"])]


def test_learning_locker_rejections() -> None:
    assert _error(learning_locker.map_payload, ex.setting(ex.SIMPLE, "id", ex.MISSING)) == (
        "payload.id",
        "is required",
    )
    assert _error(
        learning_locker.map_payload, {"statement": ex.setting(ex.SIMPLE, "actor.mbox", "x")}
    ) == ("payload.statement.actor.mbox", 'must be a mailto IRI (mailto:name@example.org), got "x"')
    assert _error(learning_locker.map_payload, [ex.SIMPLE, {"statement": 3}]) == (
        "payload[1].statement",
        "must be an object, got number",
    )
    assert _error(learning_locker.map_payload, []) == ("payload", "must not be an empty array")
    assert _error(learning_locker.map_payload, b"nope")[0] == "payload"
    assert _error(learning_locker.map_payload, ex.setting(ex.SIMPLE, "id", "abc")) == (
        "payload.id",
        'must be a UUID, got "abc"',
    )


def test_learning_locker_2_0_statements_use_2_0_rules() -> None:
    [v] = learning_locker.map_payload(ex.V2_CONTEXT_AGENTS)
    assert v.version == "2.0.0"


# --- SCORM Cloud ------------------------------------------------------------------------

SCORM = {
    "id": "reg-42",
    "instance": 0,
    "xapiRegistrationId": "b4a1c2d3-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
    "updated": "2026-01-30T18:00:00.000Z",
    "registrationCompletion": "COMPLETED",
    "registrationCompletionAmount": 1.0,
    "registrationSuccess": "PASSED",
    "score": {"scaled": 87.5},
    "totalSecondsTracked": 3725.5,
    "firstAccessDate": "2026-01-30T16:00:00.000Z",
    "completedDate": "2026-01-30T17:59:00.000Z",
    "course": {"id": "golf-101", "title": "Golf Explained", "version": 0},
    "learner": {
        "id": "ana-77",
        "firstName": "Ana",
        "lastName": "Pérez",
        "email": "ana@example.org",
    },
    "activityDetails": {"id": "golf-101", "title": "Golf Explained"},
}
HOME = "https://cloud.scorm.com/apps/APP1"


def test_scorm_cloud_passed_registration() -> None:
    [v] = scorm_cloud.map_payload(SCORM, app_home_page=HOME, clock=FixedClock(NOW))
    s = v.statement
    assert s["verb"]["id"] == ADL + "passed"
    assert s["actor"] == {
        "objectType": "Agent",
        "account": {"homePage": HOME, "name": "ana-77"},
        "name": "Ana Pérez",
    }
    assert s["object"]["id"] == HOME + "/courses/golf-101"
    assert s["object"]["definition"] == {
        "type": "http://adlnet.gov/expapi/activities/course",
        "name": {"und": "Golf Explained"},
    }
    assert s["result"] == {
        "completion": True,
        "success": True,
        "score": {"scaled": 0.875},
        "duration": "PT1H2M5.5S",
    }
    assert s["context"]["registration"] == SCORM["xapiRegistrationId"]
    assert s["timestamp"] == "2026-01-30T17:59:00.000Z"
    assert s["stored"] == "2026-02-01T10:00:00.000Z"
    assert v.id == import_statement_id(f"scorm-cloud|{HOME}", "reg-42:0:2026-01-30T18:00:00.000Z")
    [again] = scorm_cloud.map_payload(json.dumps(SCORM), app_home_page=HOME)
    assert again.id == v.id


@pytest.mark.parametrize(
    ("completion", "success", "verb"),
    [
        ("COMPLETED", "FAILED", "failed"),
        ("COMPLETED", "UNKNOWN", "completed"),
        ("INCOMPLETE", "UNKNOWN", "attempted"),
        ("UNKNOWN", "UNKNOWN", "attempted"),
    ],
)
def test_scorm_cloud_verbs(completion: str, success: str, verb: str) -> None:
    payload = SCORM | {"registrationCompletion": completion, "registrationSuccess": success}
    [v] = scorm_cloud.map_payload(payload)
    assert v.verb_id == ADL + verb


def test_scorm_cloud_without_updated_or_xapi_registration() -> None:
    payload = {
        k: v
        for k, v in SCORM.items()
        if k not in ("updated", "xapiRegistrationId", "completedDate")
    }
    [a] = scorm_cloud.map_payload(payload)
    [b] = scorm_cloud.map_payload(dict(reversed(list(payload.items()))))
    assert a.id == b.id  # content hash is canonical
    assert a.registration is not None and a.timestamp is None


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"learner": {"firstName": "Ana"}}, "payload.learner.id", "is required"),
        ({"course": None}, "payload.course", "must be an object, got null"),
        ({"id": True}, "payload.id", "must be a string or an integer, got boolean"),
        (
            {"registrationSuccess": "GREAT"},
            "payload.registrationSuccess",
            "must be one of PASSED, FAILED, UNKNOWN, got 'GREAT'",
        ),
        (
            {"score": {"scaled": 150}},
            "payload.score.scaled",
            "must be a percentage between 0 and 100, got 150",
        ),
        (
            {"totalSecondsTracked": -5},
            "payload.totalSecondsTracked",
            "must be between 0 and 1e9 seconds",
        ),
        (
            {"updated": "yesterday"},
            "payload.updated",
            'must be an RFC 3339 timestamp with a timezone, e.g. 2026-01-31T12:00:00.000Z, got "yesterday"',
        ),
        ({"xapiRegistrationId": "nope"}, "payload.xapiRegistrationId", "must be a UUID"),
        ({"instance": -1}, "payload.instance", "must be a non-negative integer"),
    ],
)
def test_scorm_cloud_rejections(change: dict, field: str, reason: str) -> None:
    assert _error(scorm_cloud.map_payload, SCORM | change) == (field, reason)


def test_scorm_cloud_rejects_non_object() -> None:
    assert _error(scorm_cloud.map_payload, "[1]") == ("payload", "must be an object, got array")


# --- Moodle ----------------------------------------------------------------------------

SITE = "https://moodle.example.edu"


def moodle_event(name: str, **fields: Any) -> dict[str, Any]:
    base = {
        "eventname": name,
        "component": "core",
        "action": "viewed",
        "target": "course",
        "objectid": None,
        "crud": "r",
        "edulevel": 2,
        "contextid": 31,
        "contextlevel": 50,
        "contextinstanceid": 3,
        "userid": 5,
        "courseid": 3,
        "relateduserid": None,
        "anonymous": 0,
        "other": None,
        "timecreated": 1767225600,
    }
    return base | fields


@pytest.mark.parametrize(
    ("event", "verb", "object_id", "actor"),
    [
        (
            moodle_event("\\core\\event\\course_viewed"),
            "experienced",
            f"{SITE}/course/view.php?id=3",
            "5",
        ),
        (
            moodle_event(
                "\\mod_page\\event\\course_module_viewed",
                component="mod_page",
                contextinstanceid=42,
            ),
            "experienced",
            f"{SITE}/course/view.php?id=3#module-42",
            "5",
        ),
        (
            moodle_event("\\core\\event\\user_enrolment_created", userid=2, relateduserid=9),
            "registered",
            f"{SITE}/course/view.php?id=3",
            "9",
        ),
        (
            moodle_event("\\core\\event\\course_completed", userid=2, relateduserid=9),
            "completed",
            f"{SITE}/course/view.php?id=3",
            "9",
        ),
        (
            moodle_event(
                "\\mod_quiz\\event\\attempt_started",
                component="mod_quiz",
                contextinstanceid=42,
                relateduserid=5,
            ),
            "attempted",
            f"{SITE}/course/view.php?id=3#module-42",
            "5",
        ),
        (
            moodle_event(
                "\\mod_quiz\\event\\attempt_submitted",
                component="mod_quiz",
                contextinstanceid=42,
                relateduserid=5,
            ),
            "completed",
            f"{SITE}/course/view.php?id=3#module-42",
            "5",
        ),
        (
            moodle_event(
                "\\mod_assign\\event\\assessable_submitted",
                component="mod_assign",
                contextinstanceid=44,
            ),
            "completed",
            f"{SITE}/course/view.php?id=3#module-44",
            "5",
        ),
        (
            moodle_event(
                "\\mod_forum\\event\\post_created", component="mod_forum", contextinstanceid=45
            ),
            "commented",
            f"{SITE}/course/view.php?id=3#module-45",
            "5",
        ),
        (
            moodle_event(
                "\\mod_forum\\event\\discussion_created",
                component="mod_forum",
                contextinstanceid=45,
            ),
            "commented",
            f"{SITE}/course/view.php?id=3#module-45",
            "5",
        ),
        (
            moodle_event(
                "\\core\\event\\course_module_completion_updated",
                component="core",
                contextinstanceid=42,
                relateduserid=5,
                other={"relateduserid": 5, "overrideby": None, "completionstate": 2},
            ),
            "passed",
            f"{SITE}/course/view.php?id=3#module-42",
            "5",
        ),
        (
            moodle_event(
                "\\core\\event\\user_graded",
                userid=2,
                relateduserid=5,
                other={"itemid": 8, "overridden": False, "finalgrade": "7.50000"},
            ),
            "scored",
            f"{SITE}/course/view.php?id=3",
            "5",
        ),
    ],
)
def test_moodle_mapping(event: dict, verb: str, object_id: str, actor: str) -> None:
    [v] = moodle.map_payload(event, site=SITE + "/")
    s = v.statement
    assert s["verb"]["id"] == ADL + verb
    assert s["object"]["id"] == object_id
    assert s["actor"]["account"] == {"homePage": SITE, "name": actor}
    assert s["timestamp"] == "2026-01-01T00:00:00.000Z"
    assert s["context"]["extensions"][IMPORT_EXT]["source"] == "moodle"


def test_moodle_details() -> None:
    quiz = moodle_event(
        "\\mod_quiz\\event\\attempt_submitted",
        component="mod_quiz",
        contextinstanceid=42,
        relateduserid=5,
        objectid=7,
    )
    [v] = moodle.map_payload(quiz, site=SITE)
    assert v.statement["object"]["definition"] == {
        "type": "http://adlnet.gov/expapi/activities/assessment",
        "moreInfo": f"{SITE}/mod/quiz/view.php?id=42",
    }
    assert (
        v.statement["context"]["contextActivities"]["parent"][0]["id"]
        == f"{SITE}/course/view.php?id=3"
    )
    assert v.statement["result"] == {"completion": True}
    graded = moodle_event("\\core\\event\\user_graded", relateduserid=5, other={"finalgrade": 7.5})
    assert moodle.map_payload(graded, site=SITE)[0].statement["result"] == {"score": {"raw": 7.5}}
    failed = moodle_event(
        "\\core\\event\\course_module_completion_updated",
        contextinstanceid=42,
        relateduserid=5,
        other={"completionstate": 3},
    )
    [f] = moodle.map_payload(failed, site=SITE)
    assert f.verb_id == ADL + "failed" and f.statement["result"] == {
        "completion": True,
        "success": False,
    }
    # Completion events (component "core") do not name the module type: same IRI, no type.
    assert f.statement["object"] == {"objectType": "Activity", "id": v.statement["object"]["id"]}


def test_moodle_idempotent_ids() -> None:
    event = moodle_event("\\core\\event\\course_viewed")
    [a] = moodle.map_payload(event, site=SITE)
    [b] = moodle.map_payload(json.dumps(event).encode(), site=SITE)
    [c] = moodle.map_payload(event | {"timecreated": 1767225601}, site=SITE)
    [d] = moodle.map_payload(event, site="https://other.example.edu")
    assert a.id == b.id and len({a.id, c.id, d.id}) == 3
    [e] = moodle.map_payload(event | {"id": 991}, site=SITE)
    [f] = moodle.map_payload(event | {"id": 991, "timecreated": 5}, site=SITE)
    assert e.id == f.id == import_statement_id(f"moodle|{SITE}", "log:991")


@pytest.mark.parametrize(
    ("event", "field", "reason"),
    [
        (
            moodle_event("\\core\\event\\user_loggedin"),
            "payload.eventname",
            "unsupported Moodle event '\\\\core\\\\event\\\\user_loggedin' (see the verb table)",
        ),
        (
            moodle_event("\\core\\event\\course_viewed", userid=0),
            "payload.userid",
            "must be a positive integer, got number",
        ),
        (
            moodle_event("\\core\\event\\course_viewed", userid="5"),
            "payload.userid",
            "must be a positive integer, got string",
        ),
        (moodle_event("\\core\\event\\course_completed"), "payload.relateduserid", "is required"),
        (
            moodle_event("\\core\\event\\course_viewed", timecreated="2026-01-01"),
            "payload.timecreated",
            "must be a non-negative integer (seconds since the epoch)",
        ),
        (
            moodle_event("\\core\\event\\course_viewed", timecreated=10**15),
            "payload.timecreated",
            "is out of range",
        ),
        (
            moodle_event("\\mod_quiz\\event\\attempt_started", component="quiz", relateduserid=5),
            "payload.component",
            "must name an activity module (mod_<name>), got 'quiz'",
        ),
        (
            moodle_event(
                "\\core\\event\\course_module_completion_updated",
                relateduserid=5,
                other={"completionstate": 0},
            ),
            "payload.other.completionstate",
            "must be 1 (complete), 2 (pass) or 3 (fail); got 0",
        ),
        (
            moodle_event("\\core\\event\\user_graded", relateduserid=5, other={"finalgrade": None}),
            "payload.other.finalgrade",
            "must be a number",
        ),
        (
            moodle_event("\\core\\event\\course_viewed", other=[1]),
            "payload.other",
            "must be an object, got array",
        ),
        ({"userid": 5}, "payload.eventname", "is required"),
    ],
)
def test_moodle_rejections(event: dict, field: str, reason: str) -> None:
    assert _error(moodle.map_payload, event, site=SITE) == (field, reason)


def test_moodle_site_must_be_a_url() -> None:
    assert (
        _error(moodle.map_payload, moodle_event("\\core\\event\\course_viewed"), site="moodle")[0]
        == "site"
    )


def test_moodle_signed_request() -> None:
    body = json.dumps(moodle_event("\\core\\event\\course_viewed")).encode()
    moodle.verify_request({"X-Keiko-Signature": hmac_signature(body, "k")}, body, secret="k")
    with pytest.raises(Unauthenticated):
        moodle.verify_request({"X-Keiko-Signature": hmac_signature(body, "k")}, body, secret="j")


# --- Canvas ----------------------------------------------------------------------------

CANVAS = "https://school.instructure.com"


def live_event(name: str, body: dict[str, Any], **meta: Any) -> dict[str, Any]:
    metadata = {
        "event_name": name,
        "event_time": "2026-01-31T12:00:00.123Z",
        "user_id": "21070000000000001",
        "root_account_id": "21070000000000001",
        "context_type": "Course",
        "context_id": "21070000000000042",
        "request_id": "1dd9dc6f-2fb0-4c19-a6c5-7ee1bf3ed295",
        "hostname": "school.instructure.com",
    }
    return {"metadata": metadata | meta, "body": body}


COURSE = f"{CANVAS}/courses/21070000000000042"


@pytest.mark.parametrize(
    ("event", "verb", "object_id", "actor"),
    [
        (
            live_event(
                "submission_created",
                {
                    "submission_id": "9",
                    "assignment_id": "77",
                    "user_id": "21070000000000005",
                    "attempt": 1,
                    "submission_type": "online_text_entry",
                },
            ),
            "completed",
            f"{COURSE}/assignments/77",
            "21070000000000005",
        ),
        (
            live_event(
                "grade_change",
                {
                    "submission_id": "9",
                    "assignment_id": "77",
                    "student_id": "5",
                    "user_id": "5",
                    "grader_id": "3",
                    "score": 8,
                    "points_possible": 10,
                    "grade": "8",
                },
            ),
            "scored",
            f"{COURSE}/assignments/77",
            "5",
        ),
        (
            live_event(
                "asset_accessed",
                {
                    "asset_type": "wiki_page",
                    "asset_id": "12",
                    "asset_subtype": None,
                    "category": "wiki",
                    "role": "StudentEnrollment",
                    "level": None,
                },
            ),
            "experienced",
            f"{COURSE}/pages/12",
            "21070000000000001",
        ),
        (
            live_event("asset_accessed", {"asset_type": "course", "asset_id": "42"}),
            "experienced",
            f"{CANVAS}/courses/42",
            "21070000000000001",
        ),
        (
            live_event(
                "asset_accessed",
                {"asset_type": "calendar_event", "asset_id": "3"},
                context_type="User",
            ),
            "experienced",
            f"{CANVAS}/assets/calendar_event/3",
            "21070000000000001",
        ),
        (
            live_event(
                "discussion_entry_created",
                {
                    "discussion_entry_id": "4",
                    "discussion_topic_id": "8",
                    "user_id": "5",
                    "text": "<p>Buen punto</p>",
                },
            ),
            "commented",
            f"{COURSE}/discussion_topics/8",
            "5",
        ),
        (
            live_event("quiz_submitted", {"submission_id": "11", "quiz_id": "6"}),
            "completed",
            f"{COURSE}/quizzes/6",
            "21070000000000001",
        ),
        (
            live_event(
                "enrollment_created",
                {
                    "enrollment_id": "1",
                    "course_id": "42",
                    "user_id": "5",
                    "type": "StudentEnrollment",
                },
            ),
            "registered",
            f"{CANVAS}/courses/42",
            "5",
        ),
        (
            live_event(
                "course_completed",
                {
                    "progress": {"requirement_count": 3, "requirement_completed_count": 3},
                    "user": {"id": "5", "name": "Ana"},
                    "course": {"id": "42", "name": "Álgebra"},
                },
            ),
            "completed",
            f"{CANVAS}/courses/42",
            "5",
        ),
    ],
)
def test_canvas_mapping(event: dict, verb: str, object_id: str, actor: str) -> None:
    [v] = canvas.map_payload(event, canvas_url=CANVAS, clock=FixedClock(NOW))
    s = v.statement
    assert s["verb"]["id"] == ADL + verb
    assert s["object"]["id"] == object_id
    assert s["actor"]["account"] == {"homePage": CANVAS, "name": actor}
    assert s["timestamp"] == "2026-01-31T12:00:00.123Z"
    assert s["context"]["extensions"][IMPORT_EXT]["site"] == CANVAS


def test_canvas_grade_change_score_and_instructor() -> None:
    event = live_event(
        "grade_change",
        {
            "submission_id": "9",
            "assignment_id": "77",
            "student_id": "5",
            "grader_id": "3",
            "score": 8,
            "points_possible": 10,
        },
    )
    [v] = canvas.map_payload(event, canvas_url=CANVAS)
    assert v.statement["result"] == {"score": {"raw": 8, "min": 0, "max": 10, "scaled": 0.8}}
    assert v.statement["context"]["instructor"]["account"]["name"] == "3"
    assert v.statement["context"]["contextActivities"]["parent"][0]["id"] == COURSE
    extra_credit = event | {"body": event["body"] | {"score": 12}}
    assert canvas.map_payload(extra_credit, canvas_url=CANVAS)[0].statement["result"] == {
        "score": {"raw": 12}
    }


def test_canvas_idempotent_ids() -> None:
    event = live_event(
        "submission_created",
        {"submission_id": "9", "assignment_id": "77", "user_id": "5", "attempt": 2},
    )
    [a] = canvas.map_payload(event, canvas_url=CANVAS)
    [b] = canvas.map_payload(json.dumps(event), canvas_url=CANVAS)
    assert a.id == b.id == import_statement_id(f"canvas|{CANVAS}", "submission_created:9:2")
    retried = event | {"body": event["body"] | {"attempt": 3}}
    assert canvas.map_payload(retried, canvas_url=CANVAS)[0].id != a.id


@pytest.mark.parametrize(
    ("event", "field", "reason"),
    [
        (
            live_event("logged_in", {}),
            "payload.metadata.event_name",
            "unsupported Canvas event 'logged_in' (supported: submission_created, grade_change, asset_accessed, discussion_entry_created, quiz_submitted, enrollment_created, course_completed)",
        ),
        ({"body": {}}, "payload.metadata", "must be an object, got null"),
        (
            live_event(
                "grade_change",
                {"submission_id": "9", "assignment_id": "77", "student_id": "5", "score": None},
            ),
            "payload.body.score",
            "is required",
        ),
        (
            live_event(
                "grade_change",
                {"submission_id": "9", "assignment_id": "77", "student_id": "5", "score": "8"},
            ),
            "payload.body.score",
            "must be a number, got string",
        ),
        (
            live_event("submission_created", {"assignment_id": "77", "user_id": "5"}),
            "payload.body.submission_id",
            "is required",
        ),
        (
            live_event(
                "submission_created",
                {"submission_id": "9", "assignment_id": "77", "user_id": "5"},
                context_type="Account",
            ),
            "payload.metadata.context_type",
            'must be "Course" for submission_created',
        ),
        (
            live_event(
                "asset_accessed",
                {"asset_type": "wiki_page", "asset_id": "1"},
                event_time="2026-01-31T12:00:00",
            ),
            "payload.metadata.event_time",
            'must be an RFC 3339 timestamp with a timezone, e.g. 2026-01-31T12:00:00.000Z, got "2026-01-31T12:00:00"',
        ),
        (
            live_event(
                "asset_accessed", {"asset_type": "wiki_page", "asset_id": "1"}, event_time=None
            ),
            "payload.metadata.event_time",
            "is required",
        ),
        (
            live_event(
                "enrollment_created", {"enrollment_id": "1", "course_id": "4 2", "user_id": "5"}
            ),
            "payload.body.course_id",
            "must be a non-empty identifier without spaces",
        ),
    ],
)
def test_canvas_rejections(event: dict, field: str, reason: str) -> None:
    assert _error(canvas.map_payload, event, canvas_url=CANVAS) == (field, reason)


def _jwks_and_key() -> tuple[dict[str, Any], Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk |= {"kid": "2026-01-01T00:00:00Z", "alg": "RS256", "use": "sig"}
    return {"keys": [jwk]}, key


def test_canvas_signed_payload() -> None:
    jwks, key = _jwks_and_key()
    event = live_event("quiz_submitted", {"submission_id": "11", "quiz_id": "6"})
    token = jwt.encode(event, key, algorithm="RS256", headers={"kid": "2026-01-01T00:00:00Z"})
    claims = canvas.decode_signed_payload(token, jwks)
    [v] = canvas.map_payload(claims, canvas_url=CANVAS)
    assert v.verb_id == ADL + "completed"
    _, other_key = _jwks_and_key()
    forged = jwt.encode(
        event, other_key, algorithm="RS256", headers={"kid": "2026-01-01T00:00:00Z"}
    )
    for bad in [
        forged,
        token[:-4] + "AAAA",
        "not.a.jwt",
        jwt.encode(event, "s" * 32, algorithm="HS256"),
    ]:
        with pytest.raises(Unauthenticated):
            canvas.decode_signed_payload(bad, jwks)
    with pytest.raises(Unauthenticated):
        canvas.decode_signed_payload(
            jwt.encode(event, key, algorithm="RS256", headers={"kid": "unknown"}), jwks
        )


def test_canvas_hmac_request() -> None:
    body = b"{}"
    canvas.verify_request({"X-Keiko-Signature": hmac_signature(body, "k")}, body, secret="k")
    with pytest.raises(Unauthenticated):
        canvas.verify_request({}, body, secret="k")
