"""Strict validation of xAPI statements, versions 1.0.3 and 2.0 (IEEE 9274.1.1).

`validate_statement` takes a statement (a mapping, or JSON text) and either returns a
`ValidatedStatement` (the normalized statement plus a typed summary for storage and
queries) or raises `services.kit.errors.ValidationError(field, reason)` where `field` is
the JSON path of the first offending value, e.g. `statement.actor.mbox` or
`statements[3].context.contextActivities.parent[0].id`.

What "strict" means here (each rule is tested in services/learning/tests):

* Only JSON: strings, finite numbers, booleans, null, arrays, objects with string keys;
  integers within the I-JSON range (|n| <= 2**53-1), no unpaired surrogates, no
  duplicate keys in JSON text. Canonicalization (RFC 8785) can then never fail.
* No property outside the specification at any level (except inside `extensions`),
  no `null` value and no empty object outside `extensions`.
* Agents and identified Groups carry exactly one inverse functional identifier;
  anonymous Groups carry `member`; Group members are Agents.
* IRIs are absolute; language maps are keyed by RFC 5646 tags; ids are UUIDs in standard
  string form; durations are ISO 8601.
* Keiko is stricter than 1.0.3's SHOULDs in two places: timestamps must be RFC 3339 with
  a timezone (and not the "unknown offset" `-00:00`), and an anonymous Group's `member`
  must not be empty.
* Result scores: `scaled` in [-1, 1], `min` < `max`, `min` <= `raw` <= `max`.
* Context: `revision`/`platform` only when the object is an Activity; `team` is a Group;
  `contextActivities` values are normalized to arrays (the LRS must accept one Activity
  object); `contextAgents`/`contextGroups` only in 2.0.
* SubStatements have no `id`, `stored`, `version`, `authority` and no nested SubStatement.
* The voiding verb must target a StatementRef.

Normalization (the returned statement): `id` assigned (uuid4) when missing and
lower-cased; `stored` set from the caller's clock; `timestamp` defaults to `stored`;
`authority` replaced by the caller's; `version` defaults to "1.0.0" (1.0.3) or "2.0.0";
single contextActivities objects wrapped in arrays. Nothing else is changed.

The rules are split by layer: `json_intake` (strict JSON), `properties` (what each
object may carry), `primitives` (values and actors), this module (the statement parts:
verbs, objects, definitions, results, contexts, attachments, SubStatements, authority)
and the public API.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.kit.clock import Clock
from services.learning.xapi import formats, vocab
from services.learning.xapi.json_intake import (
    JSON,
    JsonObject,
    fail,
    json_type,
    parse_json,
    show,
    to_json,
)
from services.learning.xapi.primitives import BaseValidator, agent_key
from services.learning.xapi.properties import (
    ACTIVITY_KEYS,
    ATTACHMENT_KEYS,
    COMPONENT_LISTS,
    CONTEXT_ACTIVITY_KEYS,
    DEFINITION_KEYS,
    IFI_PROPERTIES,
    INTERACTION_COMPONENTS,
    INTERACTION_TYPES,
    RESULT_KEYS,
    SCORE_KEYS,
    STATEMENT_KEYS,
    SUBSTATEMENT_FORBIDDEN,
    SUBSTATEMENT_KEYS,
)
from services.learning.xapi.version import XAPIVersion, coerce_version

# --- results ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ValidatedStatement:
    """A statement that passed validation, with what storage and queries need typed.

    `statement` is the normalized statement (plain dicts/lists, JSON-ready; sign its
    `canonical_bytes`). Agent keys are the strings `agent_key` returns.
    """

    statement: JsonObject
    id: str
    version: XAPIVersion
    actor_key: str | None
    verb_id: str
    object_type: str
    object_id: str | None
    registration: str | None
    timestamp: datetime | None
    stored: datetime | None
    voided_statement_id: str | None
    activity_ids: tuple[str, ...]
    agent_keys: tuple[str, ...]

    @property
    def is_voiding(self) -> bool:
        return self.voided_statement_id is not None


class _Validator(BaseValidator):
    """The statement parts, on the value and actor rules of `BaseValidator`."""

    # verb ------------------------------------------------------------------------

    def verb(self, value: JSON, path: str) -> JsonObject:
        obj = self.obj(value, path, "a Verb", ("id", "display"))
        if "id" not in obj:
            fail(f"{path}.id", "is required")
        self.iri(obj["id"], f"{path}.id")
        out = dict(obj)
        if "display" in obj:
            out["display"] = self.language_map(obj["display"], f"{path}.display")
        return out

    # objects ---------------------------------------------------------------------

    def activity(self, value: JSON, path: str) -> JsonObject:
        obj = self.obj(value, path, "an Activity", ACTIVITY_KEYS)
        if "objectType" in obj and obj["objectType"] != "Activity":
            fail(f"{path}.objectType", f'must be "Activity", got {show(obj["objectType"])}')
        if "id" not in obj:
            fail(f"{path}.id", "is required")
        activity_id = self.iri(obj["id"], f"{path}.id")
        if activity_id not in self.activity_ids:
            self.activity_ids.append(activity_id)
        out = dict(obj)
        if "definition" in obj:
            out["definition"] = self.definition(obj["definition"], f"{path}.definition")
        return out

    def definition(self, value: JSON, path: str) -> JsonObject:
        # Every property of a definition is optional, so {} is a valid one (Data 2.4.4.1).
        obj = self.obj(value, path, "an Activity Definition", DEFINITION_KEYS, may_be_empty=True)
        out = dict(obj)
        for key in ("name", "description"):
            if key in obj:
                out[key] = self.language_map(obj[key], f"{path}.{key}")
        if "type" in obj:
            self.iri(obj["type"], f"{path}.type")
        if "moreInfo" in obj:
            self.irl(obj["moreInfo"], f"{path}.moreInfo")
        if "extensions" in obj:
            out["extensions"] = self.extensions(obj["extensions"], f"{path}.extensions")
        interaction_props = [k for k in ("correctResponsesPattern", *COMPONENT_LISTS) if k in obj]
        interaction_type: str | None = None
        if "interactionType" in obj:
            interaction_type = self.string(obj["interactionType"], f"{path}.interactionType")
            if interaction_type not in INTERACTION_TYPES:
                fail(
                    f"{path}.interactionType",
                    f"must be one of {', '.join(INTERACTION_TYPES)}, got {show(interaction_type)}",
                )
        elif interaction_props:
            fail(f"{path}.interactionType", f"is required when {interaction_props[0]} is present")
        if "correctResponsesPattern" in obj:
            patterns = self.array(obj["correctResponsesPattern"], f"{path}.correctResponsesPattern")
            for i, pattern in enumerate(patterns):
                self.string(pattern, f"{path}.correctResponsesPattern[{i}]")
        allowed = INTERACTION_COMPONENTS.get(interaction_type or "", ())
        for key in COMPONENT_LISTS:
            if key not in obj:
                continue
            if key not in allowed:
                fail(f"{path}.{key}", f'is not allowed for interactionType "{interaction_type}"')
            out[key] = self.components(obj[key], f"{path}.{key}")
        return out

    def components(self, value: JSON, path: str) -> list[JsonObject]:
        items = self.array(value, path)
        seen: dict[str, int] = {}
        out = []
        for i, item in enumerate(items):
            p = f"{path}[{i}]"
            comp = self.obj(item, p, "an Interaction Component", ("id", "description"))
            if "id" not in comp:
                fail(f"{p}.id", "is required")
            cid = self.string(comp["id"], f"{p}.id", non_empty=True)
            if cid in seen:
                fail(f"{p}.id", f'duplicates the id "{cid}" of {path}[{seen[cid]}]')
            seen[cid] = i
            c = dict(comp)
            if "description" in comp:
                c["description"] = self.language_map(comp["description"], f"{p}.description")
            out.append(c)
        return out

    def statement_ref(self, value: JSON, path: str) -> JsonObject:
        obj = self.obj(value, path, "a StatementRef", ("objectType", "id"))
        if obj.get("objectType") != "StatementRef":
            fail(
                f"{path}.objectType",
                'is required ("StatementRef")'
                if "objectType" not in obj
                else f'must be "StatementRef", got {show(obj["objectType"])}',
            )
        if "id" not in obj:
            fail(f"{path}.id", "is required")
        return {"objectType": "StatementRef", "id": self.uuid(obj["id"], f"{path}.id")}

    def object(self, value: JSON, path: str, *, in_substatement: bool) -> JsonObject:
        if not isinstance(value, dict):
            fail(path, f"must be an object, got {json_type(value)}")
        object_type = value.get("objectType", "Activity")
        if object_type == "Activity":
            return self.activity(value, path)
        if object_type == "Agent":
            return self.agent(value, path, object_type_required=True)
        if object_type == "Group":
            return self.group(value, path)
        if object_type == "StatementRef":
            return self.statement_ref(value, path)
        if object_type == "SubStatement":
            if in_substatement:
                fail(f"{path}.objectType", "a SubStatement must not contain a SubStatement")
            return self.substatement(value, path)
        fail(
            f"{path}.objectType",
            "must be one of Activity, Agent, Group, StatementRef, SubStatement, "
            f"got {show(object_type)}",
        )

    # result ----------------------------------------------------------------------

    def result(self, value: JSON, path: str) -> JsonObject:
        obj = self.obj(value, path, "a Result", RESULT_KEYS)
        out = dict(obj)
        if "score" in obj:
            out["score"] = self.score(obj["score"], f"{path}.score")
        for key in ("success", "completion"):
            if key in obj:
                self.boolean(obj[key], f"{path}.{key}")
        if "response" in obj:
            self.string(obj["response"], f"{path}.response")
        if "duration" in obj:
            text = self.string(obj["duration"], f"{path}.duration")
            if not formats.is_duration(text):
                fail(
                    f"{path}.duration",
                    f"must be an ISO 8601 duration (e.g. PT1H30M), got {show(text)}",
                )
        if "extensions" in obj:
            out["extensions"] = self.extensions(obj["extensions"], f"{path}.extensions")
        return out

    def score(self, value: JSON, path: str) -> JsonObject:
        obj = self.obj(value, path, "a Score", SCORE_KEYS)
        nums = {k: self.number(obj[k], f"{path}.{k}") for k in SCORE_KEYS if k in obj}
        if "scaled" in nums and not -1.0 <= nums["scaled"] <= 1.0:
            fail(f"{path}.scaled", f"must be between -1 and 1, got {obj['scaled']}")
        if "min" in nums and "max" in nums and not nums["min"] < nums["max"]:
            fail(f"{path}.max", f"must be greater than min ({obj['min']}), got {obj['max']}")
        if "raw" in nums:
            if "min" in nums and nums["raw"] < nums["min"]:
                fail(
                    f"{path}.raw",
                    f"must be greater than or equal to min ({obj['min']}), got {obj['raw']}",
                )
            if "max" in nums and nums["raw"] > nums["max"]:
                fail(
                    f"{path}.raw",
                    f"must be less than or equal to max ({obj['max']}), got {obj['raw']}",
                )
        return dict(obj)

    # context ---------------------------------------------------------------------

    def context(self, value: JSON, path: str, *, object_is_activity: bool) -> JsonObject:
        obj = self.obj(value, path, "a Context", self.context_keys)
        out = dict(obj)
        if "registration" in obj:
            out["registration"] = self.uuid(obj["registration"], f"{path}.registration")
        if "instructor" in obj:
            out["instructor"] = self.actor(obj["instructor"], f"{path}.instructor")
        if "team" in obj:
            team = obj["team"]
            if isinstance(team, dict) and team.get("objectType") != "Group":
                fail(f"{path}.team.objectType", 'the team must be a Group (objectType "Group")')
            out["team"] = self.group(team, f"{path}.team")
        if "contextActivities" in obj:
            out["contextActivities"] = self.context_activities(
                obj["contextActivities"], f"{path}.contextActivities"
            )
        for key in ("revision", "platform"):
            if key in obj:
                if not object_is_activity:
                    fail(
                        f"{path}.{key}",
                        "is only allowed when the statement's object is an Activity",
                    )
                self.string(obj[key], f"{path}.{key}")
        if "language" in obj:
            lang = self.string(obj["language"], f"{path}.language")
            if not formats.is_language_tag(lang):
                fail(f"{path}.language", f"must be an RFC 5646 language tag, got {show(lang)}")
        if "statement" in obj:
            out["statement"] = self.statement_ref(obj["statement"], f"{path}.statement")
        if "extensions" in obj:
            out["extensions"] = self.extensions(obj["extensions"], f"{path}.extensions")
        if "contextAgents" in obj:
            out["contextAgents"] = self.context_agents(
                obj["contextAgents"], f"{path}.contextAgents"
            )
        if "contextGroups" in obj:
            out["contextGroups"] = self.context_groups(
                obj["contextGroups"], f"{path}.contextGroups"
            )
        return out

    def context_activities(self, value: JSON, path: str) -> JsonObject:
        obj = self.obj(value, path, "a ContextActivities object", CONTEXT_ACTIVITY_KEYS)
        out: JsonObject = {}
        for key in CONTEXT_ACTIVITY_KEYS:
            if key not in obj:
                continue
            item = obj[key]
            if isinstance(item, dict):
                # The spec requires an LRS to accept a single Activity and store an array.
                out[key] = [self.activity(item, f"{path}.{key}")]
                continue
            items = self.array(item, f"{path}.{key}")
            out[key] = [self.activity(a, f"{path}.{key}[{i}]") for i, a in enumerate(items)]
        return out

    def relevant_types(self, obj: JsonObject, path: str) -> None:
        if "relevantTypes" in obj:
            types = self.array(obj["relevantTypes"], f"{path}.relevantTypes", non_empty=True)
            for i, t in enumerate(types):
                self.iri(t, f"{path}.relevantTypes[{i}]")

    def context_agents(self, value: JSON, path: str) -> list[JsonObject]:
        out = []
        for i, item in enumerate(self.array(value, path)):
            p = f"{path}[{i}]"
            obj = self.obj(item, p, "a Context Agent", ("objectType", "agent", "relevantTypes"))
            if obj.get("objectType") != "contextAgent":
                fail(f"{p}.objectType", 'must be "contextAgent"')
            if "agent" not in obj:
                fail(f"{p}.agent", "is required")
            c = dict(obj)
            c["agent"] = self.agent(obj["agent"], f"{p}.agent")
            self.relevant_types(obj, p)
            out.append(c)
        return out

    def context_groups(self, value: JSON, path: str) -> list[JsonObject]:
        out = []
        for i, item in enumerate(self.array(value, path)):
            p = f"{path}[{i}]"
            obj = self.obj(item, p, "a Context Group", ("objectType", "group", "relevantTypes"))
            if obj.get("objectType") != "contextGroup":
                fail(f"{p}.objectType", 'must be "contextGroup"')
            if "group" not in obj:
                fail(f"{p}.group", "is required")
            c = dict(obj)
            c["group"] = self.group(obj["group"], f"{p}.group")
            self.relevant_types(obj, p)
            out.append(c)
        return out

    # attachments -----------------------------------------------------------------

    def attachments(self, value: JSON, path: str) -> list[JsonObject]:
        out = []
        for i, item in enumerate(self.array(value, path)):
            p = f"{path}[{i}]"
            obj = self.obj(item, p, "an Attachment", ATTACHMENT_KEYS)
            for key in ("usageType", "display", "contentType", "length", "sha2"):
                if key not in obj:
                    fail(f"{p}.{key}", "is required")
            usage = self.iri(obj["usageType"], f"{p}.usageType")
            a = dict(obj)
            a["display"] = self.language_map(obj["display"], f"{p}.display")
            if "description" in obj:
                a["description"] = self.language_map(obj["description"], f"{p}.description")
            content_type = self.string(obj["contentType"], f"{p}.contentType")
            if not formats.is_media_type(content_type):
                fail(
                    f"{p}.contentType",
                    f"must be an Internet Media Type (type/subtype), got {show(content_type)}",
                )
            if usage == vocab.ATTACHMENT_SIGNATURE and content_type != "application/octet-stream":
                fail(
                    f"{p}.contentType",
                    'must be "application/octet-stream" for a signature attachment',
                )
            length = obj["length"]
            if isinstance(length, bool) or not isinstance(length, int) or length < 0:
                fail(f"{p}.length", f"must be a non-negative integer, got {show(length)}")
            sha2 = self.string(obj["sha2"], f"{p}.sha2")
            if not formats.is_sha2_hex(sha2):
                fail(f"{p}.sha2", "must be the hex digest of SHA-224, SHA-256, SHA-384 or SHA-512")
            if "fileUrl" in obj:
                self.irl(obj["fileUrl"], f"{p}.fileUrl")
            out.append(a)
        return out

    # statements ------------------------------------------------------------------

    def core(self, obj: JsonObject, path: str, out: JsonObject, *, in_substatement: bool) -> None:
        """actor, verb, object, result, context, timestamp, attachments (SubStatement too)."""
        for key in ("actor", "verb", "object"):
            if key not in obj:
                fail(f"{path}.{key}", "is required")
        out["actor"] = self.actor(obj["actor"], f"{path}.actor")
        out["verb"] = self.verb(obj["verb"], f"{path}.verb")
        out["object"] = self.object(
            obj["object"], f"{path}.object", in_substatement=in_substatement
        )
        if (
            out["verb"]["id"] == vocab.VERB_VOIDED
            and out["object"].get("objectType") != "StatementRef"
        ):
            fail(
                f"{path}.object.objectType",
                f'must be "StatementRef" when the verb is {vocab.VERB_VOIDED}',
            )
        if "result" in obj:
            out["result"] = self.result(obj["result"], f"{path}.result")
        if "context" in obj:
            object_is_activity = out["object"].get("objectType", "Activity") == "Activity"
            out["context"] = self.context(
                obj["context"], f"{path}.context", object_is_activity=object_is_activity
            )
        if "timestamp" in obj:
            self.timestamp(obj["timestamp"], f"{path}.timestamp")
        if "attachments" in obj:
            out["attachments"] = self.attachments(obj["attachments"], f"{path}.attachments")

    def substatement(self, value: JSON, path: str) -> JsonObject:
        if isinstance(value, dict):
            for key in SUBSTATEMENT_FORBIDDEN:
                if key in value:
                    fail(f"{path}.{key}", "is not allowed in a SubStatement")
        obj = self.obj(value, path, "a SubStatement", SUBSTATEMENT_KEYS)
        out: JsonObject = {"objectType": "SubStatement"}
        self.core(obj, path, out, in_substatement=True)
        if "timestamp" in obj:
            out["timestamp"] = obj["timestamp"]
        return {k: out[k] for k in obj}  # keep the client's property order

    def version_property(self, value: JSON, path: str) -> str:
        text = self.string(value, path)
        parts = text.split(".")
        # "1.0" is "1.0.0" (Communication 3.3.s3.b3); a patch must be digits.
        ok = len(parts) == 2 or (len(parts) == 3 and parts[2].isdigit() and parts[2].isascii())
        if self.version is XAPIVersion.V1_0_3:
            if not (ok and parts[:2] == ["1", "0"]):
                fail(path, f'must be a 1.0.x version (start with "1.0."), got {show(text)}')
        elif not (ok and parts[:2] in (["1", "0"], ["2", "0"])):
            fail(path, f"must be a 1.0.x or 2.0.x version, got {show(text)}")
        return text


def _statement(
    v: _Validator,
    raw: JSON,
    path: str,
    *,
    stored: datetime | None,
    authority: JsonObject | None,
) -> ValidatedStatement:
    obj = v.obj(raw, path, "a Statement", STATEMENT_KEYS)
    out: JsonObject = {}
    statement_id = v.uuid(obj["id"], f"{path}.id") if "id" in obj else str(uuid.uuid4())
    out["id"] = statement_id
    v.core(obj, path, out, in_substatement=False)

    timestamp_text: str | None = None
    timestamp: datetime | None = None
    if "timestamp" in obj:
        timestamp_text, timestamp = v.timestamp(obj["timestamp"], f"{path}.timestamp")
    stored_text: str | None = None
    stored_at: datetime | None = None
    if stored is not None:
        stored_text = formats.format_timestamp(stored)
        stored_at = formats.parse_timestamp(stored_text)
    elif "stored" in obj:
        stored_text, stored_at = v.timestamp(obj["stored"], f"{path}.stored")
    if timestamp_text is None and stored_text is not None:
        timestamp_text, timestamp = stored_text, stored_at
    if timestamp_text is not None:
        out["timestamp"] = timestamp_text
    if stored_text is not None:
        out["stored"] = stored_text

    if "authority" in obj:
        # Validated even when the LRS replaces it: an invalid authority is an invalid
        # actor, 400 (Data 2.4.9, Communication 3.2).
        out["authority"] = _authority(v, obj["authority"], f"{path}.authority")
    if authority is not None:
        out["authority"] = _authority(v, authority, "authority")

    if "version" in obj:
        out["version"] = v.version_property(obj["version"], f"{path}.version")
    else:
        out["version"] = "1.0.0" if v.version is XAPIVersion.V1_0_3 else "2.0.0"

    # Keep the client's property order, then the ones the LRS added.
    ordered = {k: out[k] for k in obj if k in out}
    ordered.update({k: val for k, val in out.items() if k not in ordered})

    obj_out = ordered["object"]
    object_type = obj_out.get("objectType", "Activity")
    object_id = agent_key(obj_out) if object_type in ("Agent", "Group") else obj_out.get("id")
    context = ordered.get("context", {})
    return ValidatedStatement(
        statement=ordered,
        id=statement_id,
        version=v.version,
        actor_key=agent_key(ordered["actor"]),
        verb_id=ordered["verb"]["id"],
        object_type=object_type,
        object_id=object_id,
        registration=context.get("registration"),
        timestamp=timestamp,
        stored=stored_at,
        voided_statement_id=obj_out["id"] if ordered["verb"]["id"] == vocab.VERB_VOIDED else None,
        activity_ids=tuple(v.activity_ids),
        agent_keys=tuple(v.agent_keys),
    )


def _authority(v: _Validator, value: JSON, path: str) -> JsonObject:
    """An Agent, or (3-legged OAuth) an anonymous Group of exactly two Agents."""
    value = to_json(value, path)
    if isinstance(value, dict) and value.get("objectType") == "Group":
        group = v.group(value, path)
        if any(k in group for k in IFI_PROPERTIES) or len(group.get("member", [])) != 2:
            fail(path, "a Group authority must be an anonymous Group of exactly two Agents (OAuth)")
        return group
    return v.agent(value, path)


# --- public API ------------------------------------------------------------------------


def validate_statement(
    raw: Mapping[str, Any] | str | bytes,
    *,
    version: XAPIVersion | str = XAPIVersion.V1_0_3,
    clock: Clock | None = None,
    authority: Mapping[str, Any] | None = None,
    path: str = "statement",
) -> ValidatedStatement:
    """Validate one statement under the rules of `version`; return it normalized.

    `clock`, when given, sets `stored` (and `timestamp` when the statement has none);
    without it, a client-supplied `stored` is validated and kept. `authority`, when
    given, replaces the statement's authority (the LRS sets it from the credentials).
    Raises ValidationError naming the JSON path under `path` (default "statement").
    """
    api_version = coerce_version(version)
    data = parse_json(raw, path) if isinstance(raw, str | bytes) else raw
    data = to_json(data, path)
    stored = clock.now() if clock is not None else None
    auth = dict(authority) if authority is not None else None
    return _statement(_Validator(api_version), data, path, stored=stored, authority=auth)


def validate_agent(
    raw: Mapping[str, Any] | str | bytes,
    path: str,
    *,
    version: XAPIVersion | str = XAPIVersion.V1_0_3,
    allow_group: bool = False,
) -> JsonObject:
    """An Agent (or, with `allow_group`, a Group) given as a request parameter, validated
    as a statement's actor would be."""
    data = parse_json(raw, path) if isinstance(raw, (str, bytes)) else to_json(raw, path)
    v = _Validator(coerce_version(version))
    if allow_group:
        return v.actor(data, path)
    if isinstance(data, dict) and data.get("objectType") == "Group":
        fail(f"{path}.objectType", 'must be "Agent" (a Group is not accepted here)')
    return v.agent(data, path)


def validate_iri(value: object, path: str) -> str:
    """An absolute IRI (an activity id, a verb id) given as a request parameter."""
    return _Validator(XAPIVersion.V1_0_3).iri(to_json(value, path), path)


def validate_score(score: Mapping[str, Any], path: str) -> JsonObject:
    """Validate an xAPI Score object alone (used by builders to report their own paths)."""
    return _Validator(XAPIVersion.V1_0_3).score(to_json(score, path), path)


def validate_statements(
    raw: Sequence[Mapping[str, Any]] | str | bytes,
    *,
    version: XAPIVersion | str = XAPIVersion.V1_0_3,
    clock: Clock | None = None,
    authority: Mapping[str, Any] | None = None,
    path: str = "statements",
) -> list[ValidatedStatement]:
    """Validate a batch (a JSON array); paths are `statements[i]...`.

    Also rejects two statements with the same id in one batch. All statements share
    one `stored` instant (one read of the clock), as an LRS stores a batch at once.
    """
    api_version = coerce_version(version)
    data = parse_json(raw, path) if isinstance(raw, str | bytes) else raw
    data = to_json(data, path)
    if not isinstance(data, list):
        fail(path, f"must be an array of statements, got {json_type(data)}")
    stored = clock.now() if clock is not None else None
    auth = dict(authority) if authority is not None else None
    out: list[ValidatedStatement] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(data):
        p = f"{path}[{i}]"
        validated = _statement(_Validator(api_version), item, p, stored=stored, authority=auth)
        if validated.id in seen:
            fail(f"{p}.id", f"duplicates the id of {path}[{seen[validated.id]}]")
        seen[validated.id] = i
        out.append(validated)
    return out
