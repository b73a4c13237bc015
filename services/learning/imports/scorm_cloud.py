"""SCORM Cloud registration postback -> one Keiko statement per postback.

SCORM Cloud (API v2) POSTs a registration's rollup as JSON (the `RegistrationSchema`) to
the registration's `postBack.url`, authenticated with HTTP Basic (`authType: "httpbasic"`,
`userName`/`password`). Fields used:

    id                        registration id (required)
    instance                  registration instance (retake number), default 0
    updated                   last update, RFC 3339 (part of the event id)
    xapiRegistrationId        UUID -> context.registration (else a UUID v5 of `id`)
    course.id, course.title   the course (id required)
    learner.id                the learner (required); firstName/lastName -> agent name
    registrationCompletion    COMPLETED | INCOMPLETE | UNKNOWN
    registrationSuccess       PASSED | FAILED | UNKNOWN
    score.scaled              percentage 0-100 -> result.score.scaled = value / 100
    totalSecondsTracked       -> result.duration (ISO 8601)
    completedDate             -> timestamp when completed (else `updated`)

Verb: PASSED -> passed, FAILED -> failed, else COMPLETED -> completed, else attempted.
The learner is an Agent `account {homePage: <app home page>, name: learner.id}`; the
course activity is `<app home page>/courses/<course id>` (type ADL course). The event id
is `<id>:<instance>:<updated>` (or a hash of the whole payload when `updated` is absent).
"""

from __future__ import annotations

import math
import urllib.parse
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from services.kit.clock import Clock
from services.kit.errors import ValidationError
from services.learning.imports import common
from services.learning.xapi import formats, vocab
from services.learning.xapi.validation import ValidatedStatement, validate_statement

SOURCE = "scorm-cloud"
DEFAULT_HOME_PAGE = "https://cloud.scorm.com"

_COMPLETION = {"COMPLETED": True, "INCOMPLETE": False, "UNKNOWN": None}
_SUCCESS = {"PASSED": True, "FAILED": False, "UNKNOWN": None}


def verify_request(headers: Mapping[str, str], *, username: str, password: str) -> None:
    """HTTP Basic credentials configured as the registration's postback userName/password."""
    common.verify_basic_auth(headers, username, password)


def _enum(obj: Mapping[str, Any], key: str, table: Mapping[str, bool | None]) -> bool | None:
    value = obj.get(key, "UNKNOWN")
    if value is None:
        return None
    if not isinstance(value, str) or value.upper() not in table:
        raise ValidationError(f"payload.{key}", f"must be one of {', '.join(table)}, got {value!r}")
    return table[value.upper()]


def map_payload(
    payload: Any,
    *,
    app_home_page: str = DEFAULT_HOME_PAGE,
    clock: Clock | None = None,
) -> list[ValidatedStatement]:
    """Map one registration postback. `app_home_page` scopes learner and course ids to the
    SCORM Cloud application (e.g. `https://cloud.scorm.com/apps/<app id>`)."""
    home = common.site_url(app_home_page, "app_home_page")
    data = common.require_object(common.load_payload(payload), "payload")
    path = "payload"
    registration_id = common.id_field(data, "id", path)
    instance = data.get("instance", 0)
    if isinstance(instance, bool) or not isinstance(instance, int) or instance < 0:
        raise ValidationError(f"{path}.instance", "must be a non-negative integer")
    updated = common.timestamp_field(data, "updated", path)
    completed_date = common.timestamp_field(data, "completedDate", path)

    course = common.require_object(data.get("course"), f"{path}.course")
    course_id = common.id_field(course, "id", f"{path}.course")
    course_title = common.optional_string(course, "title", f"{path}.course")
    learner = common.require_object(data.get("learner"), f"{path}.learner")
    learner_id = common.id_field(learner, "id", f"{path}.learner")
    names = [
        common.optional_string(learner, k, f"{path}.learner") for k in ("firstName", "lastName")
    ]
    learner_name = " ".join(n.strip() for n in names if n)

    completion = _enum(data, "registrationCompletion", _COMPLETION)
    success = _enum(data, "registrationSuccess", _SUCCESS)

    result: dict[str, Any] = {}
    if completion is not None:
        result["completion"] = completion
    if success is not None:
        result["success"] = success
    if data.get("score") is not None:
        score = common.require_object(data["score"], f"{path}.score")
        scaled = common.optional_number(score, "scaled", f"{path}.score")
        if scaled is not None:
            if not 0 <= scaled <= 100:
                raise ValidationError(
                    f"{path}.score.scaled",
                    f"must be a percentage between 0 and 100, got {scaled:g}",
                )
            result["score"] = {"scaled": round(scaled / 100, 6)}
    seconds = common.optional_number(data, "totalSecondsTracked", path)
    if seconds is not None:
        if seconds < 0 or not math.isfinite(seconds) or seconds > 10**9:
            raise ValidationError(
                f"{path}.totalSecondsTracked", "must be between 0 and 1e9 seconds"
            )
        result["duration"] = formats.format_duration(timedelta(seconds=seconds))

    if success is True:
        verb = vocab.VERB_PASSED
    elif success is False:
        verb = vocab.VERB_FAILED
    elif completion is True:
        verb = vocab.VERB_COMPLETED
    else:
        verb = vocab.VERB_ATTEMPTED

    xapi_registration = data.get("xapiRegistrationId")
    if isinstance(xapi_registration, str) and formats.is_uuid(xapi_registration):
        registration = xapi_registration.lower()
    elif xapi_registration is None:
        registration = str(
            uuid.uuid5(common.IMPORT_NAMESPACE, f"{SOURCE}|{home}|{registration_id}")
        )
    else:
        raise ValidationError(f"{path}.xapiRegistrationId", "must be a UUID")

    event_id = (
        f"{registration_id}:{instance}:{updated}"
        if updated is not None
        else common.content_event_id(data)
    )
    definition: dict[str, Any] = {"type": vocab.TYPE_COURSE}
    if course_title:
        definition["name"] = {"und": course_title}
    actor: dict[str, Any] = {
        "objectType": "Agent",
        "account": {"homePage": home, "name": learner_id},
    }
    if learner_name:
        actor["name"] = learner_name
    statement: dict[str, Any] = {
        "id": common.import_statement_id(f"{SOURCE}|{home}", event_id),
        "actor": actor,
        "verb": {"id": verb, "display": {"en-US": verb.rsplit("/", 1)[-1]}},
        "object": {
            "objectType": "Activity",
            "id": f"{home}/courses/{urllib.parse.quote(course_id, safe='')}",
            "definition": definition,
        },
        "context": {"registration": registration},
    }
    timestamp = completed_date if completion and completed_date else updated
    if timestamp is not None:
        statement["timestamp"] = timestamp
    if result:
        statement["result"] = result
    common.add_provenance(statement, source=SOURCE, event_id=event_id, site=home)
    return [validate_statement(statement, clock=clock, path="statement")]
