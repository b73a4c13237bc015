"""Canvas Live Events (Canvas format) -> Keiko statements.

A Live Events data stream with HTTPS delivery POSTs one event per request:

    {"metadata": {"event_name": "grade_change", "event_time": "2026-01-31T12:00:00.123Z",
                  "user_id": "21070000000000001", "context_type": "Course",
                  "context_id": "21070000000000042", "request_id": "...", ...},
     "body": {...event specific...}}

Authentication: with "Sign Payload" the request body is a JWT signed by Canvas (RS256,
keys from Canvas's JWKS endpoint, matched by `kid`); `decode_signed_payload(token, jwks)`
checks it and returns the event claims. Unsigned delivery must carry
`X-Keiko-Signature: sha256=<HMAC-SHA256(secret, body)>` (`verify_request`).

Events mapped (ADL verbs; ids are Canvas local or global ids, as strings):

    event_name                verb         object                                   learner
    submission_created        completed    <canvas>/courses/<ctx>/assignments/<a>   body.user_id
    grade_change              scored       <canvas>/courses/<ctx>/assignments/<a>   body.student_id
                              (score raw/min 0/max points_possible; grader -> instructor)
    asset_accessed            experienced  the asset (see _ASSET_PATHS)             metadata.user_id
    discussion_entry_created  commented    <canvas>/courses/<ctx>/discussion_topics/<t>
                                                                            body.user_id
    quiz_submitted            completed    <canvas>/courses/<ctx>/quizzes/<q>       metadata.user_id
    enrollment_created        registered   <canvas>/courses/<course_id>             body.user_id
    course_completed          completed    <canvas>/courses/<course.id>             body.user.id

Other event names are rejected. The actor is `account {homePage: <canvas>, name: <user
id>}`; course-scoped objects get the course as `contextActivities.parent`. Canvas sends
no event id, so the event id is the event name plus the ids that identify the fact
(e.g. `submission_created:<submission_id>:<attempt>`; `grade_change:<submission_id>:
<event_time>`), which is stable across redeliveries of the same event.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any

import jwt

from services.kit.clock import Clock
from services.kit.errors import Unauthenticated, ValidationError
from services.learning.imports import common
from services.learning.xapi import vocab
from services.learning.xapi.validation import ValidatedStatement, validate_statement

SOURCE = "canvas"
SUPPORTED_EVENTS = (
    "submission_created",
    "grade_change",
    "asset_accessed",
    "discussion_entry_created",
    "quiz_submitted",
    "enrollment_created",
    "course_completed",
)
_ASSET_PATHS = {
    "assignment": ("assignments", vocab.TYPE_ASSESSMENT),
    "quiz": ("quizzes", vocab.TYPE_ASSESSMENT),
    "quizzes:quiz": ("quizzes", vocab.TYPE_ASSESSMENT),
    "wiki_page": ("pages", vocab.TYPE_LESSON),
    "discussion_topic": ("discussion_topics", vocab.TYPE_KEIKO_DISCUSSION),
    "attachment": ("files", vocab.TYPE_FILE),
    "context_module": ("modules", vocab.TYPE_MODULE),
}


def verify_request(headers: Mapping[str, str], body: bytes, *, secret: str | bytes) -> None:
    """Unsigned HTTPS delivery: the X-Keiko-Signature HMAC of the raw body."""
    common.verify_hmac_signature(headers, body, secret)


def decode_signed_payload(token: str | bytes, jwks: Mapping[str, Any]) -> dict[str, Any]:
    """Verify a "Sign Payload" JWT against Canvas's JWKS (a `{"keys": [...]}` document the
    caller fetched) and return its claims (the live event). Raises Unauthenticated."""
    try:
        text = token.decode("ascii") if isinstance(token, bytes) else token
        header = jwt.get_unverified_header(text.strip())
        kid = header.get("kid")
        keys = jwt.PyJWKSet.from_dict(dict(jwks)).keys
        matching = [k for k in keys if k.key_id == kid] if kid is not None else keys[:1]
        if not matching:
            raise Unauthenticated("no Canvas signing key matches the payload's kid")
        claims = jwt.decode(
            text.strip(),
            matching[0].key,
            algorithms=["RS256"],
            options={"require": [], "verify_aud": False},
        )
    except Unauthenticated:
        raise
    except (jwt.PyJWTError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise Unauthenticated("invalid Canvas payload signature") from None
    if not isinstance(claims, dict):
        raise Unauthenticated("invalid Canvas payload signature")
    return claims


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def map_payload(
    payload: Any, *, canvas_url: str, clock: Clock | None = None
) -> list[ValidatedStatement]:
    """Map one live event. `canvas_url` is the configured Canvas base URL."""
    home = common.site_url(canvas_url, "canvas_url")
    data = common.require_object(common.load_payload(payload), "payload")
    meta = common.require_object(data.get("metadata"), "payload.metadata")
    body = common.require_object(data.get("body"), "payload.body")
    event_name = common.string_field(meta, "event_name", "payload.metadata")
    if event_name not in SUPPORTED_EVENTS:
        raise ValidationError(
            "payload.metadata.event_name",
            f"unsupported Canvas event {event_name!r} (supported: {', '.join(SUPPORTED_EVENTS)})",
        )
    event_time = common.timestamp_field(meta, "event_time", "payload.metadata")
    if event_time is None:
        raise ValidationError("payload.metadata.event_time", "is required")

    def course_id() -> str:
        if meta.get("context_type") != "Course":
            raise ValidationError(
                "payload.metadata.context_type", f'must be "Course" for {event_name}'
            )
        return common.id_field(meta, "context_id", "payload.metadata")

    def course_activity(cid: str) -> dict[str, Any]:
        return {
            "objectType": "Activity",
            "id": f"{home}/courses/{_segment(cid)}",
            "definition": {"type": vocab.TYPE_COURSE},
        }

    def course_item(cid: str, collection: str, item_id: str, type_iri: str) -> dict[str, Any]:
        return {
            "objectType": "Activity",
            "id": f"{home}/courses/{_segment(cid)}/{collection}/{_segment(item_id)}",
            "definition": {"type": type_iri},
        }

    b = "payload.body"
    m = "payload.metadata"
    context: dict[str, Any] = {}
    result: dict[str, Any] = {}
    parent: str | None = None
    if event_name == "submission_created":
        learner = common.id_field(body, "user_id", b)
        cid = course_id()
        assignment = common.id_field(body, "assignment_id", b)
        submission = common.id_field(body, "submission_id", b)
        attempt = common.optional_id(body, "attempt", b)
        verb = vocab.VERB_COMPLETED
        obj = course_item(cid, "assignments", assignment, vocab.TYPE_ASSESSMENT)
        parent = cid
        result["completion"] = True
        event_id = f"{event_name}:{submission}:{attempt if attempt is not None else event_time}"
    elif event_name == "grade_change":
        learner = common.optional_id(body, "student_id", b) or common.id_field(body, "user_id", b)
        cid = course_id()
        assignment = common.id_field(body, "assignment_id", b)
        submission = common.id_field(body, "submission_id", b)
        score = common.number_field(body, "score", b)
        possible = common.optional_number(body, "points_possible", b)
        verb = vocab.VERB_SCORED
        obj = course_item(cid, "assignments", assignment, vocab.TYPE_ASSESSMENT)
        parent = cid
        xscore: dict[str, Any] = {"raw": score}
        if possible is not None and possible > 0 and 0 <= score <= possible:
            xscore.update({"min": 0, "max": possible, "scaled": round(score / possible, 6)})
        result["score"] = xscore
        grader = common.optional_id(body, "grader_id", b)
        if grader is not None:
            context["instructor"] = {
                "objectType": "Agent",
                "account": {"homePage": home, "name": grader},
            }
        event_id = f"{event_name}:{submission}:{event_time}"
    elif event_name == "asset_accessed":
        learner = common.id_field(meta, "user_id", m)
        asset_type = common.string_field(body, "asset_type", b)
        asset_id = common.id_field(body, "asset_id", b)
        verb = vocab.VERB_EXPERIENCED
        if asset_type == "course":
            obj = course_activity(asset_id)
        elif asset_type in _ASSET_PATHS and meta.get("context_type") == "Course":
            collection, type_iri = _ASSET_PATHS[asset_type]
            parent = course_id()
            obj = course_item(parent, collection, asset_id, type_iri)
        else:
            obj = {
                "objectType": "Activity",
                "id": f"{home}/assets/{_segment(asset_type)}/{_segment(asset_id)}",
                "definition": {"type": vocab.TYPE_LINK},
            }
        request = common.optional_id(meta, "request_id", m) or ""
        event_id = f"{event_name}:{request}:{asset_type}:{asset_id}:{event_time}"
    elif event_name == "discussion_entry_created":
        learner = common.id_field(body, "user_id", b)
        cid = course_id()
        topic = common.id_field(body, "discussion_topic_id", b)
        entry = common.id_field(body, "discussion_entry_id", b)
        verb = vocab.VERB_COMMENTED
        obj = course_item(cid, "discussion_topics", topic, vocab.TYPE_KEIKO_DISCUSSION)
        parent = cid
        text = body.get("text")
        if isinstance(text, str) and text.strip():
            result["response"] = text
        event_id = f"{event_name}:{entry}"
    elif event_name == "quiz_submitted":
        learner = common.id_field(meta, "user_id", m)
        cid = course_id()
        quiz = common.id_field(body, "quiz_id", b)
        submission = common.id_field(body, "submission_id", b)
        verb = vocab.VERB_COMPLETED
        obj = course_item(cid, "quizzes", quiz, vocab.TYPE_ASSESSMENT)
        parent = cid
        result["completion"] = True
        event_id = f"{event_name}:{submission}:{event_time}"
    elif event_name == "enrollment_created":
        learner = common.id_field(body, "user_id", b)
        cid = common.id_field(body, "course_id", b)
        enrollment = common.id_field(body, "enrollment_id", b)
        verb = vocab.VERB_REGISTERED
        obj = course_activity(cid)
        event_id = f"{event_name}:{enrollment}"
    else:  # course_completed
        user = common.require_object(body.get("user"), f"{b}.user")
        course = common.require_object(body.get("course"), f"{b}.course")
        learner = common.id_field(user, "id", f"{b}.user")
        cid = common.id_field(course, "id", f"{b}.course")
        verb = vocab.VERB_COMPLETED
        obj = course_activity(cid)
        name = course.get("name")
        if isinstance(name, str) and name.strip():
            obj["definition"]["name"] = {"und": name}
        result["completion"] = True
        event_id = f"{event_name}:{cid}:{learner}"

    if parent is not None:
        context["contextActivities"] = {"parent": [course_activity(parent)]}
    statement: dict[str, Any] = {
        "id": common.import_statement_id(f"{SOURCE}|{home}", event_id),
        "actor": {"objectType": "Agent", "account": {"homePage": home, "name": learner}},
        "verb": {"id": verb, "display": {"en-US": verb.rsplit("/", 1)[-1]}},
        "object": obj,
        "context": context,
        "timestamp": event_time,
    }
    if result:
        statement["result"] = result
    common.add_provenance(statement, source=SOURCE, event_id=event_id, site=home)
    return [validate_statement(statement, clock=clock, path="statement")]
