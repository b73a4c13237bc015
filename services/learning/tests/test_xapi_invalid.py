"""Every rejection rule, with the exact JSON path and reason of the ValidationError."""

from __future__ import annotations

from typing import Any

import pytest

from services.kit.errors import ValidationError
from services.learning.tests.examples import (
    ATTACHMENT,
    CHOICE_ANSWER,
    LONG,
    MISSING,
    SIMPLE,
    SUBSTATEMENT,
    V2_CONTEXT_AGENTS,
    clone,
    setting,
)
from services.learning.xapi import validate_statement, validate_statements

V1 = "1.0.3"
V2 = "2.0.0"
IRL_REASON = 'must be an IRL (an absolute IRI with an authority, e.g. https://host/), got "{}"'
UUID_REASON = (
    'must be a UUID in standard form (e.g. 6ba7b810-9dad-41d1-80b4-00c04fd430c8), got "{}"'
)
NO_IFI = (
    "an Agent must have exactly one inverse functional identifier "
    "(mbox, mbox_sha1sum, openid or account), found none"
)
ANON = {**SIMPLE, "actor": {"objectType": "Group", "member": [{"mbox": "mailto:a@example.org"}]}}
AGENT_OBJECT = {"objectType": "Agent", "mbox": "mailto:bo@example.org"}
CHOICES = "object.definition.choices"


def case(name: str, statement: Any, path: str, reason: str, version: str = V1) -> Any:
    return pytest.param(statement, version, path, reason, id=name)


CASES = [
    # --- statement ------------------------------------------------------------------
    case(
        "unknown-top-level",
        setting(SIMPLE, "foo", 1),
        "statement.foo",
        "is not a property of a Statement in xAPI 1.0.3",
    ),
    case(
        "unknown-top-level-v2",
        setting(SIMPLE, "objectType", "Statement"),
        "statement.objectType",
        "is not a property of a Statement in xAPI 2.0.0",
        V2,
    ),
    case("missing-actor", setting(SIMPLE, "actor", MISSING), "statement.actor", "is required"),
    case("missing-verb", setting(SIMPLE, "verb", MISSING), "statement.verb", "is required"),
    case("missing-object", setting(SIMPLE, "object", MISSING), "statement.object", "is required"),
    case("not-an-object", [SIMPLE], "statement", "must be an object (a Statement), got array"),
    case("empty", {}, "statement", "must not be an empty object"),
    case(
        "bad-id",
        setting(SIMPLE, "id", "not-a-uuid"),
        "statement.id",
        UUID_REASON.format("not-a-uuid"),
    ),
    case(
        "uuid-without-hyphens",
        setting(SIMPLE, "id", "fd41c918b88b4b20a0a5a4c32391aaa0"),
        "statement.id",
        UUID_REASON.format("fd41c918b88b4b20a0a5a4c32391aaa0"),
    ),
    case("null-id", setting(SIMPLE, "id", None), "statement.id", "must be a string, got null"),
    # --- actor ----------------------------------------------------------------------
    case("agent-without-ifi", setting(SIMPLE, "actor", {"name": "x"}), "statement.actor", NO_IFI),
    case(
        "agent-two-ifis",
        setting(SIMPLE, "actor.openid", "http://toby.openid.example.org/"),
        "statement.actor",
        "an Agent must have exactly one inverse functional identifier, found 2: mbox, openid",
    ),
    case(
        "mbox-not-mailto",
        setting(SIMPLE, "actor.mbox", "user@example.com"),
        "statement.actor.mbox",
        'must be a mailto IRI (mailto:name@example.org), got "user@example.com"',
    ),
    case(
        "mbox-no-domain",
        setting(SIMPLE, "actor.mbox", "mailto:user"),
        "statement.actor.mbox",
        'must be a mailto IRI (mailto:name@example.org), got "mailto:user"',
    ),
    case(
        "mbox-sha1-short",
        setting(SIMPLE, "actor", {"mbox_sha1sum": "abc123"}),
        "statement.actor.mbox_sha1sum",
        "must be the 40 hex digit SHA-1 of a mailto IRI",
    ),
    case(
        "openid-not-iri",
        setting(SIMPLE, "actor", {"openid": "not an iri"}),
        "statement.actor.openid",
        'must be an absolute IRI (scheme:...), got "not an iri"',
    ),
    case(
        "account-missing-name",
        setting(SIMPLE, "actor", {"account": {"homePage": "https://a.example"}}),
        "statement.actor.account.name",
        "is required",
    ),
    case(
        "account-empty-name",
        setting(SIMPLE, "actor", {"account": {"homePage": "https://a.example", "name": ""}}),
        "statement.actor.account.name",
        "must not be empty",
    ),
    case(
        "account-homepage-not-irl",
        setting(SIMPLE, "actor", {"account": {"homePage": "example.com", "name": "x"}}),
        "statement.actor.account.homePage",
        IRL_REASON.format("example.com"),
    ),
    case(
        "account-extra-property",
        setting(
            SIMPLE,
            "actor",
            {"account": {"homePage": "https://a.example", "name": "x", "email": "x@a.example"}},
        ),
        "statement.actor.account.email",
        "is not a property of an Account in xAPI 1.0.3",
    ),
    case(
        "actor-object-type",
        setting(SIMPLE, "actor.objectType", "Person"),
        "statement.actor.objectType",
        'must be "Agent", got "Person"',
    ),
    case(
        "anonymous-group-without-member",
        setting(SIMPLE, "actor", {"objectType": "Group"}),
        "statement.actor.member",
        "is required for an anonymous Group (a Group without an identifier)",
    ),
    case(
        "anonymous-group-empty-member",
        setting(ANON, "actor.member", []),
        "statement.actor.member",
        "must not be an empty array",
    ),
    case(
        "group-member-is-group",
        setting(
            SIMPLE,
            "actor",
            {
                "objectType": "Group",
                "member": [
                    {"mbox": "mailto:a@example.org"},
                    {"objectType": "Group", "mbox": "mailto:g@x.org"},
                ],
            },
        ),
        "statement.actor.member[1].objectType",
        "a Group member must be an Agent, not a Group",
    ),
    case(
        "group-member-without-ifi",
        setting(SIMPLE, "actor", {"objectType": "Group", "member": [{"name": "nobody"}]}),
        "statement.actor.member[0]",
        NO_IFI,
    ),
    case(
        "identified-group-two-ifis",
        setting(
            SIMPLE,
            "actor",
            {
                "objectType": "Group",
                "mbox": "mailto:g@x.org",
                "account": {"homePage": "https://x.org", "name": "g"},
            },
        ),
        "statement.actor",
        "an identified Group must have exactly one inverse functional identifier, "
        "found 2: mbox, account",
    ),
    case(
        "agent-with-member",
        setting(SIMPLE, "actor.member", []),
        "statement.actor.member",
        "is not a property of an Agent in xAPI 1.0.3",
    ),
    case(
        "agent-name-number",
        setting(SIMPLE, "actor.name", 7),
        "statement.actor.name",
        "must be a string, got number",
    ),
    # --- verb -----------------------------------------------------------------------
    case(
        "verb-id-missing", setting(SIMPLE, "verb.id", MISSING), "statement.verb.id", "is required"
    ),
    case(
        "verb-id-not-iri",
        setting(SIMPLE, "verb.id", "answered"),
        "statement.verb.id",
        'must be an absolute IRI (scheme:...), got "answered"',
    ),
    case(
        "verb-id-space",
        setting(SIMPLE, "verb.id", "http://example.com/a verb"),
        "statement.verb.id",
        'must be an absolute IRI (scheme:...), got "http://example.com/a verb"',
    ),
    case(
        "display-bad-tag",
        setting(SIMPLE, "verb.display", {"en_US": "sent"}),
        "statement.verb.display.en_US",
        '"en_US" is not an RFC 5646 language tag',
    ),
    case(
        "display-value-number",
        setting(SIMPLE, "verb.display.en-US", 3),
        "statement.verb.display.en-US",
        "must be a string, got number",
    ),
    case(
        "display-not-map",
        setting(SIMPLE, "verb.display", "sent"),
        "statement.verb.display",
        "must be a language map (object), got string",
    ),
    case(
        "display-empty",
        setting(SIMPLE, "verb.display", {}),
        "statement.verb.display",
        "must not be an empty object",
    ),
    # --- object ---------------------------------------------------------------------
    case(
        "activity-id-missing",
        setting(SIMPLE, "object.id", MISSING),
        "statement.object.id",
        "is required",
    ),
    case(
        "object-type-unknown",
        setting(SIMPLE, "object.objectType", "Thing"),
        "statement.object.objectType",
        'must be one of Activity, Agent, Group, StatementRef, SubStatement, got "Thing"',
    ),
    case(
        "definition-type-not-iri",
        setting(SIMPLE, "object.definition.type", "meeting"),
        "statement.object.definition.type",
        'must be an absolute IRI (scheme:...), got "meeting"',
    ),
    case(
        "more-info-not-irl",
        setting(SIMPLE, "object.definition.moreInfo", "urn:x:y"),
        "statement.object.definition.moreInfo",
        IRL_REASON.format("urn:x:y"),
    ),
    case(
        "interaction-type-unknown",
        setting(CHOICE_ANSWER, "object.definition.interactionType", "essay"),
        "statement.object.definition.interactionType",
        "must be one of true-false, choice, fill-in, long-fill-in, matching, performance, "
        'sequencing, likert, numeric, other, got "essay"',
    ),
    case(
        "components-wrong-interaction-type",
        setting(CHOICE_ANSWER, "object.definition.interactionType", "likert"),
        "statement.object.definition.choices",
        'is not allowed for interactionType "likert"',
    ),
    case(
        "pattern-without-interaction-type",
        setting(CHOICE_ANSWER, "object.definition", {"correctResponsesPattern": ["true"]}),
        "statement.object.definition.interactionType",
        "is required when correctResponsesPattern is present",
    ),
    case(
        "duplicate-component-id",
        setting(CHOICE_ANSWER, f"{CHOICES}[2].id", "golf"),
        f"statement.{CHOICES}[2].id",
        f'duplicates the id "golf" of statement.{CHOICES}[0]',
    ),
    case(
        "component-extra-property",
        setting(CHOICE_ANSWER, f"{CHOICES}[1].score", 1),
        f"statement.{CHOICES}[1].score",
        "is not a property of an Interaction Component in xAPI 1.0.3",
    ),
    case(
        "extension-key-not-iri",
        setting(SIMPLE, "object.definition.extensions", {"color": 1}),
        "statement.object.definition.extensions.color",
        'extension key "color" must be an absolute IRI',
    ),
    case(
        "statement-ref-bad-id",
        setting(SIMPLE, "object", {"objectType": "StatementRef", "id": "123"}),
        "statement.object.id",
        UUID_REASON.format("123"),
    ),
    case(
        "agent-object-without-object-type",
        setting(SIMPLE, "object", {"mbox": "mailto:a@b.org"}),
        "statement.object.mbox",
        "is not a property of an Activity in xAPI 1.0.3",
    ),
    case(
        "substatement-with-id",
        setting(SUBSTATEMENT, "object.id", "fd41c918-b88b-4b20-a0a5-a4c32391aaa0"),
        "statement.object.id",
        "is not allowed in a SubStatement",
    ),
    case(
        "substatement-with-stored",
        setting(SUBSTATEMENT, "object.stored", "2026-01-01T00:00:00Z"),
        "statement.object.stored",
        "is not allowed in a SubStatement",
    ),
    case(
        "substatement-with-version",
        setting(SUBSTATEMENT, "object.version", "1.0.0"),
        "statement.object.version",
        "is not allowed in a SubStatement",
    ),
    case(
        "nested-substatement",
        setting(SUBSTATEMENT, "object.object", clone(SUBSTATEMENT["object"])),  # type: ignore[arg-type]
        "statement.object.object.objectType",
        "a SubStatement must not contain a SubStatement",
    ),
    case(
        "substatement-missing-verb",
        setting(SUBSTATEMENT, "object.verb", MISSING),
        "statement.object.verb",
        "is required",
    ),
    case(
        "voided-needs-statement-ref",
        setting(SIMPLE, "verb.id", "http://adlnet.gov/expapi/verbs/voided"),
        "statement.object.objectType",
        'must be "StatementRef" when the verb is http://adlnet.gov/expapi/verbs/voided',
    ),
    # --- result ---------------------------------------------------------------------
    case(
        "scaled-above-one",
        setting(CHOICE_ANSWER, "result.score.scaled", 1.5),
        "statement.result.score.scaled",
        "must be between -1 and 1, got 1.5",
    ),
    case(
        "scaled-below-minus-one",
        setting(CHOICE_ANSWER, "result.score.scaled", -1.01),
        "statement.result.score.scaled",
        "must be between -1 and 1, got -1.01",
    ),
    case(
        "raw-above-max",
        setting(CHOICE_ANSWER, "result.score.raw", 11),
        "statement.result.score.raw",
        "must be less than or equal to max (10), got 11",
    ),
    case(
        "raw-below-min",
        setting(CHOICE_ANSWER, "result.score.raw", -1),
        "statement.result.score.raw",
        "must be greater than or equal to min (0), got -1",
    ),
    case(
        "min-not-below-max",
        setting(CHOICE_ANSWER, "result.score.min", 10),
        "statement.result.score.max",
        "must be greater than min (10), got 10",
    ),
    case(
        "scaled-string",
        setting(CHOICE_ANSWER, "result.score.scaled", "0.5"),
        "statement.result.score.scaled",
        "must be a number, got string",
    ),
    case(
        "raw-boolean",
        setting(CHOICE_ANSWER, "result.score.raw", True),
        "statement.result.score.raw",
        "must be a number, got boolean",
    ),
    case(
        "score-unknown-property",
        setting(CHOICE_ANSWER, "result.score.percent", 80),
        "statement.result.score.percent",
        "is not a property of a Score in xAPI 1.0.3",
    ),
    case(
        "success-string",
        setting(CHOICE_ANSWER, "result.success", "yes"),
        "statement.result.success",
        "must be a boolean, got string",
    ),
    case(
        "completion-null",
        setting(CHOICE_ANSWER, "result.completion", None),
        "statement.result.completion",
        "must be a boolean, got null",
    ),
    # ISO 8601 4.4.3.2: a duration in weeks stands alone (xAPI Data 4.6).
    case(
        "duration-weeks-with-days",
        setting(LONG, "result.duration", "P4W1D"),
        "statement.result.duration",
        'must be an ISO 8601 duration (e.g. PT1H30M), got "P4W1D"',
    ),
    case(
        "duration-weeks-with-time",
        setting(LONG, "result.duration", "P1WT2H"),
        "statement.result.duration",
        'must be an ISO 8601 duration (e.g. PT1H30M), got "P1WT2H"',
        V2,
    ),
    case(
        "duration-words",
        setting(LONG, "result.duration", "1 hour"),
        "statement.result.duration",
        'must be an ISO 8601 duration (e.g. PT1H30M), got "1 hour"',
    ),
    case(
        "duration-empty-time",
        setting(LONG, "result.duration", "PT"),
        "statement.result.duration",
        'must be an ISO 8601 duration (e.g. PT1H30M), got "PT"',
    ),
    case(
        "duration-fraction-not-last",
        setting(LONG, "result.duration", "PT1.5H30M"),
        "statement.result.duration",
        'must be an ISO 8601 duration (e.g. PT1H30M), got "PT1.5H30M"',
    ),
    case(
        "result-empty",
        setting(SIMPLE, "result", {}),
        "statement.result",
        "must not be an empty object",
    ),
    case(
        "response-number",
        setting(CHOICE_ANSWER, "result.response", 42),
        "statement.result.response",
        "must be a string, got number",
    ),
    # --- context --------------------------------------------------------------------
    case(
        "registration-not-uuid",
        setting(LONG, "context.registration", "reg-1"),
        "statement.context.registration",
        UUID_REASON.format("reg-1"),
    ),
    case(
        "context-activity-missing-id",
        setting(LONG, "context.contextActivities.parent[0].id", MISSING),
        "statement.context.contextActivities.parent[0].id",
        "is required",
    ),
    case(
        "context-activity-id-not-iri",
        setting(LONG, "context.contextActivities.other[1].id", "occurrence 3425567"),
        "statement.context.contextActivities.other[1].id",
        'must be an absolute IRI (scheme:...), got "occurrence 3425567"',
    ),
    case(
        "single-context-activity-bad",
        setting(CHOICE_ANSWER, "context.contextActivities.parent", {"id": "class 3"}),
        "statement.context.contextActivities.parent.id",
        'must be an absolute IRI (scheme:...), got "class 3"',
    ),
    case(
        "context-activities-unknown-key",
        setting(LONG, "context.contextActivities.siblings", []),
        "statement.context.contextActivities.siblings",
        "is not a property of a ContextActivities object in xAPI 1.0.3",
    ),
    case(
        "context-activities-string",
        setting(LONG, "context.contextActivities.grouping", "http://www.example.com/x"),
        "statement.context.contextActivities.grouping",
        "must be an array, got string",
    ),
    case(
        "revision-with-agent-object",
        setting(setting(SIMPLE, "object", AGENT_OBJECT), "context", {"revision": "2"}),
        "statement.context.revision",
        "is only allowed when the statement's object is an Activity",
    ),
    case(
        "platform-with-agent-object",
        setting(setting(LONG, "object", AGENT_OBJECT), "context.team", MISSING),
        "statement.context.platform",
        "is only allowed when the statement's object is an Activity",
    ),
    case(
        "team-is-agent",
        setting(LONG, "context.team", {"mbox": "mailto:a@example.org"}),
        "statement.context.team.objectType",
        'the team must be a Group (objectType "Group")',
    ),
    case(
        "language-bad",
        setting(LONG, "context.language", "english!"),
        "statement.context.language",
        'must be an RFC 5646 language tag, got "english!"',
    ),
    case(
        "context-statement-without-object-type",
        setting(LONG, "context.statement.objectType", MISSING),
        "statement.context.statement.objectType",
        'is required ("StatementRef")',
    ),
    case(
        "context-agents-in-1-0-3",
        V2_CONTEXT_AGENTS | {"version": "1.0.3"},
        "statement.context.contextAgents",
        "is not a property of a Context in xAPI 1.0.3",
    ),
    case(
        "context-agent-object-type",
        setting(V2_CONTEXT_AGENTS, "context.contextAgents[0].objectType", "Agent"),
        "statement.context.contextAgents[0].objectType",
        'must be "contextAgent"',
        V2,
    ),
    case(
        "context-agent-missing-agent",
        setting(V2_CONTEXT_AGENTS, "context.contextAgents[0].agent", MISSING),
        "statement.context.contextAgents[0].agent",
        "is required",
        V2,
    ),
    case(
        "context-group-relevant-types-empty",
        setting(V2_CONTEXT_AGENTS, "context.contextGroups[0].relevantTypes", []),
        "statement.context.contextGroups[0].relevantTypes",
        "must not be an empty array",
        V2,
    ),
    case(
        "context-agent-relevant-type-not-iri",
        setting(V2_CONTEXT_AGENTS, "context.contextAgents[0].relevantTypes[0]", "tutor"),
        "statement.context.contextAgents[0].relevantTypes[0]",
        'must be an absolute IRI (scheme:...), got "tutor"',
        V2,
    ),
    # --- timestamps -----------------------------------------------------------------
    case(
        "timestamp-without-timezone",
        setting(SIMPLE, "timestamp", "2026-01-31T12:00:00"),
        "statement.timestamp",
        "must be an RFC 3339 timestamp with a timezone, e.g. 2026-01-31T12:00:00.000Z, "
        'got "2026-01-31T12:00:00"',
    ),
    case(
        "timestamp-negative-zero-offset",
        setting(SIMPLE, "timestamp", "2026-01-31T12:00:00-00:00"),
        "statement.timestamp",
        'must not use the offset "-00:00", got "2026-01-31T12:00:00-00:00"',
    ),
    case(
        "timestamp-impossible-date",
        setting(SIMPLE, "timestamp", "2026-02-30T12:00:00Z"),
        "statement.timestamp",
        'is not a valid date-time (day is out of range for month), got "2026-02-30T12:00:00Z"',
    ),
    case(
        "timestamp-date-only",
        setting(SIMPLE, "timestamp", "2026-01-31"),
        "statement.timestamp",
        "must be an RFC 3339 timestamp with a timezone, e.g. 2026-01-31T12:00:00.000Z, "
        'got "2026-01-31"',
    ),
    case(
        "stored-bad",
        setting(SIMPLE, "stored", "yesterday"),
        "statement.stored",
        "must be an RFC 3339 timestamp with a timezone, e.g. 2026-01-31T12:00:00.000Z, "
        'got "yesterday"',
    ),
    # --- authority and version ------------------------------------------------------
    case(
        "authority-group-of-three",
        setting(
            SIMPLE,
            "authority",
            {
                "objectType": "Group",
                "member": [
                    {"mbox": "mailto:a@x.org"},
                    {"mbox": "mailto:b@x.org"},
                    {"mbox": "mailto:c@x.org"},
                ],
            },
        ),
        "statement.authority",
        "a Group authority must be an anonymous Group of exactly two Agents (OAuth)",
    ),
    case(
        "version-2-under-1-0-3",
        setting(SIMPLE, "version", "2.0.0"),
        "statement.version",
        'must be a 1.0.x version (start with "1.0."), got "2.0.0"',
    ),
    case(
        "version-1-without-minor",
        setting(SIMPLE, "version", "1"),
        "statement.version",
        'must be a 1.0.x version (start with "1.0."), got "1"',
    ),
    case(
        "version-3-under-2-0",
        setting(SIMPLE, "version", "3.0.0"),
        "statement.version",
        'must be a 1.0.x or 2.0.x version, got "3.0.0"',
        V2,
    ),
    # --- attachments ----------------------------------------------------------------
    case(
        "attachment-missing-sha2",
        setting(ATTACHMENT, "attachments[0].sha2", MISSING),
        "statement.attachments[0].sha2",
        "is required",
    ),
    case(
        "attachment-negative-length",
        setting(ATTACHMENT, "attachments[1].length", -1),
        "statement.attachments[1].length",
        "must be a non-negative integer, got -1",
    ),
    case(
        "attachment-fractional-length",
        setting(ATTACHMENT, "attachments[1].length", 1.5),
        "statement.attachments[1].length",
        "must be a non-negative integer, got 1.5",
    ),
    case(
        "signature-content-type",
        setting(ATTACHMENT, "attachments[0].contentType", "text/plain"),
        "statement.attachments[0].contentType",
        'must be "application/octet-stream" for a signature attachment',
    ),
    case(
        "attachment-content-type",
        setting(ATTACHMENT, "attachments[1].contentType", "text"),
        "statement.attachments[1].contentType",
        'must be an Internet Media Type (type/subtype), got "text"',
    ),
    case(
        "attachment-sha2-length",
        setting(ATTACHMENT, "attachments[1].sha2", "ab" * 5),
        "statement.attachments[1].sha2",
        "must be the hex digest of SHA-224, SHA-256, SHA-384 or SHA-512",
    ),
    case(
        "attachment-file-url",
        setting(ATTACHMENT, "attachments[1].fileUrl", "essay.txt"),
        "statement.attachments[1].fileUrl",
        IRL_REASON.format("essay.txt"),
    ),
    case(
        "attachments-not-array",
        setting(ATTACHMENT, "attachments", {}),
        "statement.attachments",
        "must be an array, got object",
    ),
    # --- JSON values ----------------------------------------------------------------
    case(
        "nan",
        setting(CHOICE_ANSWER, "result.score.raw", float("nan")),
        "statement.result.score.raw",
        "number must be finite (NaN and Infinity are not JSON)",
    ),
    case(
        "big-integer",
        setting(SIMPLE, "result", {"extensions": {"https://x.example/e": 2**60}}),
        "statement.result.extensions.https://x.example/e",
        "integer is outside the I-JSON range of +/-(2**53-1)",
    ),
    case(
        "lone-surrogate",
        setting(SIMPLE, "actor.name", "\ud800"),
        "statement.actor.name",
        "string contains an unpaired UTF-16 surrogate",
    ),
    case(
        "non-json-value",
        setting(SIMPLE, "timestamp", object()),
        "statement.timestamp",
        "is not a JSON value (object)",
    ),
    case(
        "non-string-key",
        setting(SIMPLE, "result", {"extensions": {1: 2}}),
        "statement.result.extensions",
        "object keys must be strings, got number",
    ),
    # Data 2.4.9 / 2.4.2: a client's authority is an actor and is validated as one, even
    # though the LRS replaces it (the authority "ignored" is still 400 when invalid).
    case(
        "authority-lowercase-agent",
        setting(SIMPLE, "authority", {"objectType": "agent", "mbox": "mailto:a@x.org"}),
        "statement.authority.objectType",
        'must be "Agent", got "agent"',
    ),
    case(
        "authority-without-identifier",
        setting(SIMPLE, "authority", {"objectType": "Agent", "name": "x"}),
        "statement.authority",
        NO_IFI,
        V2,
    ),
    case(
        "invalid-json",
        "{",
        "statement",
        "is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2",
    ),
    case(
        "duplicate-key-json",
        '{"id": "x", "id": "y"}',
        "statement",
        'is not valid JSON: duplicate property "id"',
    ),
    case(
        "nan-json",
        '{"result": {"score": {"raw": NaN}}}',
        "statement",
        "is not valid JSON: NaN is not allowed in JSON",
    ),
    case("invalid-utf8", b'{"a": "\xff"}', "statement", "is not valid UTF-8"),
]


@pytest.mark.parametrize(("statement", "version", "path", "reason"), CASES)
def test_rejected_with_exact_path_and_reason(
    statement: Any, version: str, path: str, reason: str
) -> None:
    with pytest.raises(ValidationError) as info:
        validate_statement(statement, version=version)
    assert (info.value.field, info.value.reason) == (path, reason)


def test_batch_paths_are_indexed() -> None:
    bad = setting(CHOICE_ANSWER, "result.score.scaled", 2)
    with pytest.raises(ValidationError) as info:
        validate_statements([SIMPLE, LONG, CHOICE_ANSWER, bad])
    assert info.value.field == "statements[3].result.score.scaled"
    assert info.value.reason == "must be between -1 and 1, got 2"


def test_batch_rejects_duplicate_ids() -> None:
    with pytest.raises(ValidationError) as info:
        validate_statements([SIMPLE, LONG, SIMPLE])
    assert (info.value.field, info.value.reason) == (
        "statements[2].id",
        "duplicates the id of statements[0]",
    )


def test_batch_must_be_an_array() -> None:
    with pytest.raises(ValidationError) as info:
        validate_statements('{"actor": {}}')
    assert (info.value.field, info.value.reason) == (
        "statements",
        "must be an array of statements, got object",
    )


@pytest.mark.parametrize("version", [V1, V2])
def test_an_invalid_client_authority_is_rejected_even_when_replaced(version: str) -> None:
    three = {
        "objectType": "Group",
        "member": [{"mbox": f"mailto:{n}@x.org"} for n in "abc"],
    }
    keiko = {"objectType": "Agent", "account": {"homePage": "https://keiko.network", "name": "k"}}
    with pytest.raises(ValidationError) as info:
        validate_statement(setting(SIMPLE, "authority", three), version=version, authority=keiko)
    assert info.value.field == "statement.authority"
    two = {**three, "member": three["member"][:2]}
    v = validate_statement(setting(SIMPLE, "authority", two), version=version, authority=keiko)
    assert v.statement["authority"] == keiko


def test_caller_authority_is_validated_under_its_own_path() -> None:
    with pytest.raises(ValidationError) as info:
        validate_statement(SIMPLE, authority={"name": "client"})
    assert (info.value.field, info.value.reason) == ("authority", NO_IFI)


def test_unknown_api_version() -> None:
    with pytest.raises(ValidationError) as info:
        validate_statement(SIMPLE, version="0.95")
    assert info.value.field == "X-Experience-API-Version"


def test_huge_values_are_truncated_in_reasons() -> None:
    with pytest.raises(ValidationError) as info:
        validate_statement(setting(SIMPLE, "verb.id", "x" * 100_000))
    assert info.value.field == "statement.verb.id"
    assert len(info.value.reason) < 200 and info.value.reason.endswith('..."')


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("id", "fd41c918-b88b-4b20-a0a5-a4c32391aa\uff10"),  # fullwidth digit
        ("verb.display", {"\u212aen": "sent"}),  # Kelvin sign folds to "k" under IGNORECASE
        ("timestamp", "2026-01-31T12:00:00\uff10Z"),
        ("result", {"duration": "PT\uff11H"}),
    ],
)
def test_non_ascii_lookalikes_are_rejected(path: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        validate_statement(setting(SIMPLE, path, value))
