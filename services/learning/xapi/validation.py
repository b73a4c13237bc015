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
object may carry), `primitives` (values and actors), `statement_parts` (verbs, objects,
definitions, results, contexts, attachments, SubStatements) and this module (the whole
statement, its authority, and the public API).
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
    to_json,
)
from services.learning.xapi.primitives import agent_key
from services.learning.xapi.properties import IFI_PROPERTIES, STATEMENT_KEYS
from services.learning.xapi.statement_parts import StatementValidator
from services.learning.xapi.version import XAPIVersion, coerce_version


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


def _statement(
    v: StatementValidator,
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


def _authority(v: StatementValidator, value: JSON, path: str) -> JsonObject:
    """An Agent, or (3-legged OAuth) an anonymous Group of exactly two Agents."""
    value = to_json(value, path)
    if isinstance(value, dict) and value.get("objectType") == "Group":
        group = v.group(value, path)
        if any(k in group for k in IFI_PROPERTIES) or len(group.get("member", [])) != 2:
            fail(path, "a Group authority must be an anonymous Group of exactly two Agents (OAuth)")
        return group
    return v.agent(value, path)


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
    return _statement(StatementValidator(api_version), data, path, stored=stored, authority=auth)


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
    v = StatementValidator(coerce_version(version))
    if allow_group:
        return v.actor(data, path)
    if isinstance(data, dict) and data.get("objectType") == "Group":
        fail(f"{path}.objectType", 'must be "Agent" (a Group is not accepted here)')
    return v.agent(data, path)


def validate_iri(value: object, path: str) -> str:
    """An absolute IRI (an activity id, a verb id) given as a request parameter."""
    return StatementValidator(XAPIVersion.V1_0_3).iri(to_json(value, path), path)


def validate_score(score: Mapping[str, Any], path: str) -> JsonObject:
    """Validate an xAPI Score object alone (used by builders to report their own paths)."""
    return StatementValidator(XAPIVersion.V1_0_3).score(to_json(score, path), path)


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
        validated = _statement(
            StatementValidator(api_version), item, p, stored=stored, authority=auth
        )
        if validated.id in seen:
            fail(f"{p}.id", f"duplicates the id of {path}[{seen[validated.id]}]")
        seen[validated.id] = i
        out.append(validated)
    return out
