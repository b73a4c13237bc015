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
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, cast

from services.kit.clock import Clock
from services.kit.errors import ValidationError
from services.learning.xapi import formats, vocab
from services.learning.xapi.version import XAPIVersion, coerce_version

JSON = Any
JsonObject = dict[str, Any]

MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 64

IFI_PROPERTIES = ("mbox", "mbox_sha1sum", "openid", "account")

INTERACTION_TYPES = (
    "true-false",
    "choice",
    "fill-in",
    "long-fill-in",
    "matching",
    "performance",
    "sequencing",
    "likert",
    "numeric",
    "other",
)
# Which interaction component lists each interactionType may carry.
INTERACTION_COMPONENTS: dict[str, tuple[str, ...]] = {
    "choice": ("choices",),
    "sequencing": ("choices",),
    "likert": ("scale",),
    "matching": ("source", "target"),
    "performance": ("steps",),
}
COMPONENT_LISTS = ("choices", "scale", "source", "target", "steps")
CONTEXT_ACTIVITY_KEYS = ("parent", "grouping", "category", "other")

_STATEMENT_KEYS = (
    "id",
    "actor",
    "verb",
    "object",
    "result",
    "context",
    "timestamp",
    "stored",
    "authority",
    "version",
    "attachments",
)
_SUBSTATEMENT_KEYS = (
    "objectType",
    "actor",
    "verb",
    "object",
    "result",
    "context",
    "timestamp",
    "attachments",
)
_SUBSTATEMENT_FORBIDDEN = ("id", "stored", "version", "authority")
_AGENT_KEYS = ("objectType", "name", *IFI_PROPERTIES)
_GROUP_KEYS = ("objectType", "name", "member", *IFI_PROPERTIES)
_ACTIVITY_KEYS = ("objectType", "id", "definition")
_DEFINITION_KEYS = (
    "name",
    "description",
    "type",
    "moreInfo",
    "interactionType",
    "correctResponsesPattern",
    *COMPONENT_LISTS,
    "extensions",
)
_RESULT_KEYS = ("score", "success", "completion", "response", "duration", "extensions")
_SCORE_KEYS = ("scaled", "raw", "min", "max")
_CONTEXT_KEYS_V1 = (
    "registration",
    "instructor",
    "team",
    "contextActivities",
    "revision",
    "platform",
    "language",
    "statement",
    "extensions",
)
_CONTEXT_KEYS_V2 = (*_CONTEXT_KEYS_V1, "contextAgents", "contextGroups")
_ATTACHMENT_KEYS = (
    "usageType",
    "display",
    "description",
    "contentType",
    "length",
    "sha2",
    "fileUrl",
)


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


def agent_key(agent: Mapping[str, Any]) -> str | None:
    """A stable string naming an Agent or identified Group by its IFI; None if anonymous.

    `mailto:ana@example.org`, `sha1:<40 hex, lower case>`, `openid:<uri>`,
    `account:["<homePage>","<name>"]` (JSON array, so no separator can be ambiguous).
    """
    if "mbox" in agent:
        return str(agent["mbox"])
    if "mbox_sha1sum" in agent:
        return "sha1:" + str(agent["mbox_sha1sum"]).lower()
    if "openid" in agent:
        return "openid:" + str(agent["openid"])
    account = agent.get("account")
    if isinstance(account, Mapping):
        return "account:" + json.dumps(
            [account.get("homePage"), account.get("name")],
            ensure_ascii=False,
            separators=(",", ":"),
        )
    return None


# --- JSON intake -----------------------------------------------------------------------


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


json_type = _json_type


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not allowed in JSON")


def parse_json(text: str | bytes, path: str) -> JSON:
    """Parse JSON text strictly: no NaN/Infinity, no duplicate keys, UTF-8 only."""

    def pairs(items: list[tuple[str, Any]]) -> JsonObject:
        out: JsonObject = {}
        for key, value in items:
            if key in out:
                raise ValueError(f'duplicate property "{key}"')
            out[key] = value
        return out

    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text, object_pairs_hook=pairs, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            path, f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except UnicodeDecodeError:
        raise ValidationError(path, "is not valid UTF-8") from None
    except RecursionError:
        raise ValidationError(path, f"is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise ValidationError(path, f"is not valid JSON: {exc}") from None


def _has_lone_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def to_json(value: object, path: str, depth: int = 0) -> JSON:
    """Deep-copy `value` into plain JSON types, rejecting anything RFC 8785 cannot encode."""
    if depth > MAX_DEPTH:
        raise ValidationError(path, f"is nested deeper than {MAX_DEPTH} levels")
    kind = type(value)
    if kind is str:
        if _has_lone_surrogate(cast(str, value)):
            raise ValidationError(path, "string contains an unpaired UTF-16 surrogate")
        return value
    if kind is dict or isinstance(value, Mapping):
        out: JsonObject = {}
        mapping = cast(Mapping[object, object], value)
        for key, item in mapping.items():
            if type(key) is not str:
                raise ValidationError(path, f"object keys must be strings, got {_json_type(key)}")
            if _has_lone_surrogate(key):
                raise ValidationError(path, "property name contains an unpaired UTF-16 surrogate")
            out[key] = to_json(item, f"{path}.{key}", depth + 1)
        return out
    if kind is list or kind is tuple:
        items = cast(Sequence[object], value)
        return [to_json(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(items)]
    if value is None or kind is bool:
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise ValidationError(path, "integer is outside the I-JSON range of +/-(2**53-1)")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(path, "number must be finite (NaN and Infinity are not JSON)")
        return float(value)
    if isinstance(value, str):
        return to_json(str(value), path, depth)
    if isinstance(value, list | tuple):
        return to_json(list(value), path, depth)
    raise ValidationError(path, f"is not a JSON value ({type(value).__name__})")


# --- the validator ---------------------------------------------------------------------


def _show(value: object, limit: int = 80) -> str:
    """A value quoted for an error reason, truncated so a huge input cannot bloat errors."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 4] + '..."'


def _fail(path: str, reason: str) -> NoReturn:
    raise ValidationError(path, reason)


class _Validator:
    def __init__(self, version: XAPIVersion) -> None:
        self.version = version
        self.context_keys = _CONTEXT_KEYS_V2 if version is XAPIVersion.V2_0_0 else _CONTEXT_KEYS_V1
        self.activity_ids: list[str] = []
        self.agent_keys: list[str] = []

    # primitives ------------------------------------------------------------------

    def obj(
        self,
        value: JSON,
        path: str,
        what: str,
        allowed: Sequence[str],
        *,
        may_be_empty: bool = False,
    ) -> JsonObject:
        if not isinstance(value, dict):
            _fail(path, f"must be an object ({what}), got {_json_type(value)}")
        if not value and not may_be_empty:
            _fail(path, "must not be an empty object")
        for key in value:
            if key not in allowed:
                _fail(f"{path}.{key}", f"is not a property of {what} in xAPI {self.version}")
        return value

    def string(self, value: JSON, path: str, *, non_empty: bool = False) -> str:
        if not isinstance(value, str):
            _fail(path, f"must be a string, got {_json_type(value)}")
        if non_empty and not value:
            _fail(path, "must not be empty")
        return value

    def boolean(self, value: JSON, path: str) -> bool:
        if not isinstance(value, bool):
            _fail(path, f"must be a boolean, got {_json_type(value)}")
        return value

    def number(self, value: JSON, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            _fail(path, f"must be a number, got {_json_type(value)}")
        return float(value)

    def array(self, value: JSON, path: str, *, non_empty: bool = False) -> list[Any]:
        if not isinstance(value, list):
            _fail(path, f"must be an array, got {_json_type(value)}")
        if non_empty and not value:
            _fail(path, "must not be an empty array")
        return value

    def iri(self, value: JSON, path: str) -> str:
        text = self.string(value, path)
        if not formats.is_iri(text):
            _fail(path, f"must be an absolute IRI (scheme:...), got {_show(text)}")
        return text

    def irl(self, value: JSON, path: str) -> str:
        text = self.string(value, path)
        if not formats.is_irl(text):
            _fail(
                path,
                f"must be an IRL (an absolute IRI with an authority, e.g. https://host/), got {_show(text)}",  # noqa: E501
            )
        return text

    def uuid(self, value: JSON, path: str) -> str:
        text = self.string(value, path)
        if not formats.is_uuid(text):
            _fail(
                path,
                f"must be a UUID in standard form (e.g. 6ba7b810-9dad-41d1-80b4-00c04fd430c8), got {_show(text)}",  # noqa: E501
            )
        return text.lower()

    def timestamp(self, value: JSON, path: str) -> tuple[str, datetime]:
        text = self.string(value, path)
        try:
            return text, formats.parse_timestamp(text)
        except formats.TimestampError as exc:
            _fail(path, f"{exc}, got {_show(text)}")

    def language_map(self, value: JSON, path: str) -> JsonObject:
        if not isinstance(value, dict):
            _fail(path, f"must be a language map (object), got {_json_type(value)}")
        if not value:
            _fail(path, "must not be an empty object")
        for tag, text in value.items():
            if not formats.is_language_tag(tag):
                _fail(f"{path}.{tag}", f'"{tag}" is not an RFC 5646 language tag')
            self.string(text, f"{path}.{tag}")
        return dict(value)

    def extensions(self, value: JSON, path: str) -> JsonObject:
        if not isinstance(value, dict):
            _fail(path, f"must be an object, got {_json_type(value)}")
        for key in value:
            if not formats.is_iri(key):
                _fail(f"{path}.{key}", f'extension key "{key}" must be an absolute IRI')
        return dict(value)

    # agents and groups -----------------------------------------------------------

    def ifi(self, obj: JsonObject, path: str, what: str) -> None:
        present = [k for k in IFI_PROPERTIES if k in obj]
        if len(present) > 1:
            _fail(
                path,
                f"{what} must have exactly one inverse functional identifier, "
                f"found {len(present)}: {', '.join(present)}",
            )
        if not present:
            return
        key = present[0]
        value = obj[key]
        p = f"{path}.{key}"
        if key == "mbox":
            text = self.string(value, p)
            if not formats.is_mailto(text):
                _fail(p, f"must be a mailto IRI (mailto:name@example.org), got {_show(text)}")
        elif key == "mbox_sha1sum":
            text = self.string(value, p)
            if not formats.is_sha1_hex(text):
                _fail(p, "must be the 40 hex digit SHA-1 of a mailto IRI")
        elif key == "openid":
            self.iri(value, p)
        else:
            account = self.obj(value, p, "an Account", ("homePage", "name"))
            if "homePage" not in account:
                _fail(f"{p}.homePage", "is required")
            self.irl(account["homePage"], f"{p}.homePage")
            if "name" not in account:
                _fail(f"{p}.name", "is required")
            self.string(account["name"], f"{p}.name", non_empty=True)

    def agent(self, value: JSON, path: str, *, object_type_required: bool = False) -> JsonObject:
        obj = self.obj(value, path, "an Agent", _AGENT_KEYS)
        if "objectType" in obj:
            if obj["objectType"] != "Agent":
                _fail(f"{path}.objectType", f'must be "Agent", got {_show(obj["objectType"])}')
        elif object_type_required:
            _fail(f"{path}.objectType", 'is required ("Agent")')
        if "name" in obj:
            self.string(obj["name"], f"{path}.name")
        self.ifi(obj, path, "an Agent")
        if not any(k in obj for k in IFI_PROPERTIES):
            _fail(
                path,
                "an Agent must have exactly one inverse functional identifier "
                "(mbox, mbox_sha1sum, openid or account), found none",
            )
        self._note_agent(obj)
        return dict(obj)

    def group(self, value: JSON, path: str) -> JsonObject:
        obj = self.obj(value, path, "a Group", _GROUP_KEYS)
        if obj.get("objectType") != "Group":
            _fail(
                f"{path}.objectType",
                'is required ("Group")'
                if "objectType" not in obj
                else f'must be "Group", got {_show(obj["objectType"])}',
            )
        if "name" in obj:
            self.string(obj["name"], f"{path}.name")
        self.ifi(obj, path, "an identified Group")
        identified = any(k in obj for k in IFI_PROPERTIES)
        out = dict(obj)
        if "member" in obj:
            members = self.array(obj["member"], f"{path}.member", non_empty=not identified)
            out["member"] = [self.member(m, f"{path}.member[{i}]") for i, m in enumerate(members)]
        elif not identified:
            _fail(
                f"{path}.member",
                "is required for an anonymous Group (a Group without an identifier)",
            )
        self._note_agent(obj)
        return out

    def member(self, value: JSON, path: str) -> JsonObject:
        if isinstance(value, dict) and value.get("objectType") == "Group":
            _fail(f"{path}.objectType", "a Group member must be an Agent, not a Group")
        return self.agent(value, path)

    def actor(self, value: JSON, path: str) -> JsonObject:
        if isinstance(value, dict) and value.get("objectType") == "Group":
            return self.group(value, path)
        return self.agent(value, path)

    def _note_agent(self, obj: JsonObject) -> None:
        key = agent_key(obj)
        if key is not None and key not in self.agent_keys:
            self.agent_keys.append(key)

    # verb ------------------------------------------------------------------------

    def verb(self, value: JSON, path: str) -> JsonObject:
        obj = self.obj(value, path, "a Verb", ("id", "display"))
        if "id" not in obj:
            _fail(f"{path}.id", "is required")
        self.iri(obj["id"], f"{path}.id")
        out = dict(obj)
        if "display" in obj:
            out["display"] = self.language_map(obj["display"], f"{path}.display")
        return out

    # objects ---------------------------------------------------------------------

    def activity(self, value: JSON, path: str) -> JsonObject:
        obj = self.obj(value, path, "an Activity", _ACTIVITY_KEYS)
        if "objectType" in obj and obj["objectType"] != "Activity":
            _fail(f"{path}.objectType", f'must be "Activity", got {_show(obj["objectType"])}')
        if "id" not in obj:
            _fail(f"{path}.id", "is required")
        activity_id = self.iri(obj["id"], f"{path}.id")
        if activity_id not in self.activity_ids:
            self.activity_ids.append(activity_id)
        out = dict(obj)
        if "definition" in obj:
            out["definition"] = self.definition(obj["definition"], f"{path}.definition")
        return out

    def definition(self, value: JSON, path: str) -> JsonObject:
        # Every property of a definition is optional, so {} is a valid one (Data 2.4.4.1).
        obj = self.obj(value, path, "an Activity Definition", _DEFINITION_KEYS, may_be_empty=True)
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
                _fail(
                    f"{path}.interactionType",
                    f"must be one of {', '.join(INTERACTION_TYPES)}, got {_show(interaction_type)}",
                )
        elif interaction_props:
            _fail(f"{path}.interactionType", f"is required when {interaction_props[0]} is present")
        if "correctResponsesPattern" in obj:
            patterns = self.array(obj["correctResponsesPattern"], f"{path}.correctResponsesPattern")
            for i, pattern in enumerate(patterns):
                self.string(pattern, f"{path}.correctResponsesPattern[{i}]")
        allowed = INTERACTION_COMPONENTS.get(interaction_type or "", ())
        for key in COMPONENT_LISTS:
            if key not in obj:
                continue
            if key not in allowed:
                _fail(f"{path}.{key}", f'is not allowed for interactionType "{interaction_type}"')
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
                _fail(f"{p}.id", "is required")
            cid = self.string(comp["id"], f"{p}.id", non_empty=True)
            if cid in seen:
                _fail(f"{p}.id", f'duplicates the id "{cid}" of {path}[{seen[cid]}]')
            seen[cid] = i
            c = dict(comp)
            if "description" in comp:
                c["description"] = self.language_map(comp["description"], f"{p}.description")
            out.append(c)
        return out

    def statement_ref(self, value: JSON, path: str) -> JsonObject:
        obj = self.obj(value, path, "a StatementRef", ("objectType", "id"))
        if obj.get("objectType") != "StatementRef":
            _fail(
                f"{path}.objectType",
                'is required ("StatementRef")'
                if "objectType" not in obj
                else f'must be "StatementRef", got {_show(obj["objectType"])}',
            )
        if "id" not in obj:
            _fail(f"{path}.id", "is required")
        return {"objectType": "StatementRef", "id": self.uuid(obj["id"], f"{path}.id")}

    def object(self, value: JSON, path: str, *, in_substatement: bool) -> JsonObject:
        if not isinstance(value, dict):
            _fail(path, f"must be an object, got {_json_type(value)}")
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
                _fail(f"{path}.objectType", "a SubStatement must not contain a SubStatement")
            return self.substatement(value, path)
        _fail(
            f"{path}.objectType",
            "must be one of Activity, Agent, Group, StatementRef, SubStatement, "
            f"got {_show(object_type)}",
        )

    # result ----------------------------------------------------------------------

    def result(self, value: JSON, path: str) -> JsonObject:
        obj = self.obj(value, path, "a Result", _RESULT_KEYS)
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
                _fail(
                    f"{path}.duration",
                    f"must be an ISO 8601 duration (e.g. PT1H30M), got {_show(text)}",
                )
        if "extensions" in obj:
            out["extensions"] = self.extensions(obj["extensions"], f"{path}.extensions")
        return out

    def score(self, value: JSON, path: str) -> JsonObject:
        obj = self.obj(value, path, "a Score", _SCORE_KEYS)
        nums = {k: self.number(obj[k], f"{path}.{k}") for k in _SCORE_KEYS if k in obj}
        if "scaled" in nums and not -1.0 <= nums["scaled"] <= 1.0:
            _fail(f"{path}.scaled", f"must be between -1 and 1, got {obj['scaled']}")
        if "min" in nums and "max" in nums and not nums["min"] < nums["max"]:
            _fail(f"{path}.max", f"must be greater than min ({obj['min']}), got {obj['max']}")
        if "raw" in nums:
            if "min" in nums and nums["raw"] < nums["min"]:
                _fail(
                    f"{path}.raw",
                    f"must be greater than or equal to min ({obj['min']}), got {obj['raw']}",
                )
            if "max" in nums and nums["raw"] > nums["max"]:
                _fail(
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
                _fail(f"{path}.team.objectType", 'the team must be a Group (objectType "Group")')
            out["team"] = self.group(team, f"{path}.team")
        if "contextActivities" in obj:
            out["contextActivities"] = self.context_activities(
                obj["contextActivities"], f"{path}.contextActivities"
            )
        for key in ("revision", "platform"):
            if key in obj:
                if not object_is_activity:
                    _fail(
                        f"{path}.{key}",
                        "is only allowed when the statement's object is an Activity",
                    )
                self.string(obj[key], f"{path}.{key}")
        if "language" in obj:
            lang = self.string(obj["language"], f"{path}.language")
            if not formats.is_language_tag(lang):
                _fail(f"{path}.language", f"must be an RFC 5646 language tag, got {_show(lang)}")
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
                _fail(f"{p}.objectType", 'must be "contextAgent"')
            if "agent" not in obj:
                _fail(f"{p}.agent", "is required")
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
                _fail(f"{p}.objectType", 'must be "contextGroup"')
            if "group" not in obj:
                _fail(f"{p}.group", "is required")
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
            obj = self.obj(item, p, "an Attachment", _ATTACHMENT_KEYS)
            for key in ("usageType", "display", "contentType", "length", "sha2"):
                if key not in obj:
                    _fail(f"{p}.{key}", "is required")
            usage = self.iri(obj["usageType"], f"{p}.usageType")
            a = dict(obj)
            a["display"] = self.language_map(obj["display"], f"{p}.display")
            if "description" in obj:
                a["description"] = self.language_map(obj["description"], f"{p}.description")
            content_type = self.string(obj["contentType"], f"{p}.contentType")
            if not formats.is_media_type(content_type):
                _fail(
                    f"{p}.contentType",
                    f"must be an Internet Media Type (type/subtype), got {_show(content_type)}",
                )
            if usage == vocab.ATTACHMENT_SIGNATURE and content_type != "application/octet-stream":
                _fail(
                    f"{p}.contentType",
                    'must be "application/octet-stream" for a signature attachment',
                )
            length = obj["length"]
            if isinstance(length, bool) or not isinstance(length, int) or length < 0:
                _fail(f"{p}.length", f"must be a non-negative integer, got {_show(length)}")
            sha2 = self.string(obj["sha2"], f"{p}.sha2")
            if not formats.is_sha2_hex(sha2):
                _fail(f"{p}.sha2", "must be the hex digest of SHA-224, SHA-256, SHA-384 or SHA-512")
            if "fileUrl" in obj:
                self.irl(obj["fileUrl"], f"{p}.fileUrl")
            out.append(a)
        return out

    # statements ------------------------------------------------------------------

    def core(self, obj: JsonObject, path: str, out: JsonObject, *, in_substatement: bool) -> None:
        """actor, verb, object, result, context, timestamp, attachments (SubStatement too)."""
        for key in ("actor", "verb", "object"):
            if key not in obj:
                _fail(f"{path}.{key}", "is required")
        out["actor"] = self.actor(obj["actor"], f"{path}.actor")
        out["verb"] = self.verb(obj["verb"], f"{path}.verb")
        out["object"] = self.object(
            obj["object"], f"{path}.object", in_substatement=in_substatement
        )
        if (
            out["verb"]["id"] == vocab.VERB_VOIDED
            and out["object"].get("objectType") != "StatementRef"
        ):
            _fail(
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
            for key in _SUBSTATEMENT_FORBIDDEN:
                if key in value:
                    _fail(f"{path}.{key}", "is not allowed in a SubStatement")
        obj = self.obj(value, path, "a SubStatement", _SUBSTATEMENT_KEYS)
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
                _fail(path, f'must be a 1.0.x version (start with "1.0."), got {_show(text)}')
        elif not (ok and parts[:2] in (["1", "0"], ["2", "0"])):
            _fail(path, f"must be a 1.0.x or 2.0.x version, got {_show(text)}")
        return text


def _statement(
    v: _Validator,
    raw: JSON,
    path: str,
    *,
    stored: datetime | None,
    authority: JsonObject | None,
) -> ValidatedStatement:
    obj = v.obj(raw, path, "a Statement", _STATEMENT_KEYS)
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
            _fail(
                path, "a Group authority must be an anonymous Group of exactly two Agents (OAuth)"
            )
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
        _fail(f"{path}.objectType", 'must be "Agent" (a Group is not accepted here)')
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
        _fail(path, f"must be an array of statements, got {_json_type(data)}")
    stored = clock.now() if clock is not None else None
    auth = dict(authority) if authority is not None else None
    out: list[ValidatedStatement] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(data):
        p = f"{path}[{i}]"
        validated = _statement(_Validator(api_version), item, p, stored=stored, authority=auth)
        if validated.id in seen:
            _fail(f"{p}.id", f"duplicates the id of {path}[{seen[validated.id]}]")
        seen[validated.id] = i
        out.append(validated)
    return out
