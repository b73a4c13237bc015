"""Moodle events -> Keiko statements.

Moodle's event observers (a webhook plugin, or the logstore) deliver the standard event
record, i.e. `\\core\\event\\base::get_data()` as JSON, optionally with the log row `id`:

    {"eventname": "\\\\mod_quiz\\\\event\\\\attempt_submitted", "component": "mod_quiz",
     "action": "submitted", "target": "attempt", "objectid": 7, "contextinstanceid": 42,
     "userid": 5, "relateduserid": 5, "courseid": 3, "timecreated": 1767225600,
     "other": {...}}

The body must be signed: `X-Keiko-Signature: sha256=<HMAC-SHA256(secret, body)>`.
The site base URL comes from our configuration (never from the payload).

Verb table (ADL verbs; `learner` is whose record it is):

    eventname                                      verb         object  learner
    \\core\\event\\course_viewed                      experienced  course  userid
    \\mod_<x>\\event\\course_module_viewed            experienced  module  userid
    \\core\\event\\user_enrolment_created             registered   course  relateduserid
    \\core\\event\\course_completed                   completed    course  relateduserid
    \\core\\event\\course_module_completion_updated   completed | passed | failed
                      (other.completionstate 1 | 2 | 3)  module  relateduserid
    \\mod_quiz\\event\\attempt_started                attempted    module  relateduserid
    \\mod_quiz\\event\\attempt_submitted              completed    module  relateduserid
    \\mod_assign\\event\\assessable_submitted         completed    module  userid
    \\mod_forum\\event\\discussion_created            commented    module  userid
    \\mod_forum\\event\\post_created                  commented    module  userid
    \\core\\event\\user_graded                        scored (raw = other.finalgrade)
                                                               course  relateduserid

Any other event name is rejected (ValidationError on `payload.eventname`).
Objects: course `<site>/course/view.php?id=<courseid>` (ADL course); course module
`<site>/course/view.php?id=<courseid>#module-<contextinstanceid>` (its anchor on the course
page: one IRI per module, as completion events do not name the module type) with the course
as parent and, when the component names the module, `moreInfo`
`<site>/mod/<name>/view.php?id=<contextinstanceid>` and a type; module types:
quiz/assign -> assessment, forum -> Keiko discussion, page/book/lesson -> lesson,
resource/folder -> file, url -> link, others -> module. The actor is
`account {homePage: <site>, name: <user id>}`. Event id: the log `id` when sent, else
`eventname:objectid:contextinstanceid:userid:relateduserid:timecreated`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.kit.clock import Clock
from services.kit.errors import ValidationError
from services.learning.imports import common
from services.learning.xapi import vocab
from services.learning.xapi.json_intake import json_type
from services.learning.xapi.validation import ValidatedStatement, validate_statement

SOURCE = "moodle"


@dataclass(frozen=True, slots=True)
class _Rule:
    verb: str
    target: str  # "course" or "module"
    learner_field: str  # "userid" or "relateduserid"


EVENT_RULES: dict[str, _Rule] = {
    "\\core\\event\\course_viewed": _Rule(vocab.VERB_EXPERIENCED, "course", "userid"),
    "\\core\\event\\user_enrolment_created": _Rule(
        vocab.VERB_REGISTERED, "course", "relateduserid"
    ),
    "\\core\\event\\course_completed": _Rule(vocab.VERB_COMPLETED, "course", "relateduserid"),
    "\\core\\event\\course_module_completion_updated": _Rule(
        vocab.VERB_COMPLETED, "module", "relateduserid"
    ),
    "\\mod_quiz\\event\\attempt_started": _Rule(vocab.VERB_ATTEMPTED, "module", "relateduserid"),
    "\\mod_quiz\\event\\attempt_submitted": _Rule(vocab.VERB_COMPLETED, "module", "relateduserid"),
    "\\mod_assign\\event\\assessable_submitted": _Rule(vocab.VERB_COMPLETED, "module", "userid"),
    "\\mod_forum\\event\\discussion_created": _Rule(vocab.VERB_COMMENTED, "module", "userid"),
    "\\mod_forum\\event\\post_created": _Rule(vocab.VERB_COMMENTED, "module", "userid"),
    "\\core\\event\\user_graded": _Rule(vocab.VERB_SCORED, "course", "relateduserid"),
}
_MODULE_VIEWED = re.compile(r"\\mod_([a-z][a-z0-9_]*)\\event\\course_module_viewed")
_COMPONENT = re.compile(r"mod_([a-z][a-z0-9_]*)")
_COMPLETION_VERBS = {1: vocab.VERB_COMPLETED, 2: vocab.VERB_PASSED, 3: vocab.VERB_FAILED}
MODULE_TYPES = {
    "quiz": vocab.TYPE_ASSESSMENT,
    "assign": vocab.TYPE_ASSESSMENT,
    "forum": vocab.TYPE_KEIKO_DISCUSSION,
    "page": vocab.TYPE_LESSON,
    "book": vocab.TYPE_LESSON,
    "lesson": vocab.TYPE_LESSON,
    "resource": vocab.TYPE_FILE,
    "folder": vocab.TYPE_FILE,
    "url": vocab.TYPE_LINK,
}


def verify_request(headers: Mapping[str, str], body: bytes, *, secret: str | bytes) -> None:
    common.verify_hmac_signature(headers, body, secret)


def _positive_int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if value is None:
        raise ValidationError(f"payload.{key}", "is required")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValidationError(
            f"payload.{key}", f"must be a positive integer, got {json_type(value)}"
        )
    return value


def map_payload(payload: Any, *, site: str, clock: Clock | None = None) -> list[ValidatedStatement]:
    """Map one Moodle event. `site` is the configured Moodle base URL."""
    home = common.site_url(site, "site")
    data = common.require_object(common.load_payload(payload), "payload")
    event_name = common.string_field(data, "eventname", "payload")
    rule = EVENT_RULES.get(event_name)
    module_name: str | None = None
    if rule is None:
        viewed = _MODULE_VIEWED.fullmatch(event_name)
        if viewed is None:
            raise ValidationError(
                "payload.eventname", f"unsupported Moodle event {event_name!r} (see the verb table)"
            )
        rule = _Rule(vocab.VERB_EXPERIENCED, "module", "userid")
        module_name = viewed.group(1)

    learner_id = _positive_int(data, rule.learner_field)
    course_id = _positive_int(data, "courseid")
    timestamp = common.unix_timestamp(data.get("timecreated"), "payload.timecreated")
    other = data.get("other") or {}
    if not isinstance(other, dict):
        raise ValidationError("payload.other", f"must be an object, got {json_type(other)}")

    course_activity = {
        "objectType": "Activity",
        "id": f"{home}/course/view.php?id={course_id}",
        "definition": {"type": vocab.TYPE_COURSE},
    }
    verb = rule.verb
    context: dict[str, Any] = {}
    result: dict[str, Any] = {}
    if rule.target == "module":
        if module_name is None:
            component = common.string_field(data, "component", "payload")
            match = _COMPONENT.fullmatch(component)
            if match is not None:
                module_name = match.group(1)
            elif event_name != "\\core\\event\\course_module_completion_updated":
                raise ValidationError(
                    "payload.component",
                    f"must name an activity module (mod_<name>), got {component!r}",
                )
        cmid = _positive_int(data, "contextinstanceid")
        # One IRI per course module whatever the event (completion events do not name the
        # module type): its anchor on the course page.
        obj: dict[str, Any] = {
            "objectType": "Activity",
            "id": f"{home}/course/view.php?id={course_id}#module-{cmid}",
        }
        if module_name is not None:
            obj["definition"] = {
                "type": MODULE_TYPES.get(module_name, vocab.TYPE_MODULE),
                "moreInfo": f"{home}/mod/{module_name}/view.php?id={cmid}",
            }
        context["contextActivities"] = {"parent": [course_activity]}
    else:
        obj = course_activity

    if event_name == "\\core\\event\\course_module_completion_updated":
        state = other.get("completionstate")
        if state not in _COMPLETION_VERBS or isinstance(state, bool):
            raise ValidationError(
                "payload.other.completionstate",
                f"must be 1 (complete), 2 (pass) or 3 (fail); got {state!r}",
            )
        verb = _COMPLETION_VERBS[state]
        result["completion"] = True
        if state in (2, 3):
            result["success"] = state == 2
    elif event_name == "\\core\\event\\user_graded":
        grade = other.get("finalgrade")
        if isinstance(grade, str):
            try:
                grade = float(grade)
            except ValueError:
                grade = None
        if isinstance(grade, bool) or not isinstance(grade, int | float):
            raise ValidationError("payload.other.finalgrade", "must be a number")
        result["score"] = {"raw": grade}
    elif event_name in (
        "\\mod_quiz\\event\\attempt_submitted",
        "\\mod_assign\\event\\assessable_submitted",
        "\\core\\event\\course_completed",
    ):
        result["completion"] = True

    log_id = data.get("id")
    if isinstance(log_id, int) and not isinstance(log_id, bool) and log_id > 0:
        event_id = f"log:{log_id}"
    else:
        parts = [data.get(k) for k in ("objectid", "contextinstanceid", "userid", "relateduserid")]
        event_id = ":".join([event_name, *("" if p is None else str(p) for p in parts), timestamp])

    statement: dict[str, Any] = {
        "id": common.import_statement_id(f"{SOURCE}|{home}", event_id),
        "actor": {"objectType": "Agent", "account": {"homePage": home, "name": str(learner_id)}},
        "verb": {"id": verb, "display": {"en-US": verb.rsplit("/", 1)[-1]}},
        "object": obj,
        "context": context,
        "timestamp": timestamp,
    }
    if result:
        statement["result"] = result
    common.add_provenance(statement, source=SOURCE, event_id=event_id, site=home)
    return [validate_statement(statement, clock=clock, path="statement")]
