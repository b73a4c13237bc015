"""The xAPI value rules every statement part is built from: JSON types, IRIs, UUIDs,
timestamps, language maps, extensions, and actors (Agents, Groups and their inverse
functional identifiers, Data 2.4.2). `agent_key` names an actor for storage and queries."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from services.learning.xapi import formats
from services.learning.xapi.json_intake import JSON, JsonObject, fail, json_type, show
from services.learning.xapi.properties import (
    AGENT_KEYS,
    CONTEXT_KEYS_V1,
    CONTEXT_KEYS_V2,
    GROUP_KEYS,
    IFI_PROPERTIES,
)
from services.learning.xapi.version import XAPIVersion


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


class BaseValidator:
    """The value checks (primitives, IRIs, UUIDs, timestamps, language maps,
    extensions) and the actors (Agents, Groups, their identifiers) of one xAPI version;
    each failure names the JSON path. `validation` builds the statement parts on it."""

    def __init__(self, version: XAPIVersion) -> None:
        self.version = version
        self.context_keys = CONTEXT_KEYS_V2 if version is XAPIVersion.V2_0_0 else CONTEXT_KEYS_V1
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
            fail(path, f"must be an object ({what}), got {json_type(value)}")
        if not value and not may_be_empty:
            fail(path, "must not be an empty object")
        for key in value:
            if key not in allowed:
                fail(f"{path}.{key}", f"is not a property of {what} in xAPI {self.version}")
        return value

    def string(self, value: JSON, path: str, *, non_empty: bool = False) -> str:
        if not isinstance(value, str):
            fail(path, f"must be a string, got {json_type(value)}")
        if non_empty and not value:
            fail(path, "must not be empty")
        return value

    def boolean(self, value: JSON, path: str) -> bool:
        if not isinstance(value, bool):
            fail(path, f"must be a boolean, got {json_type(value)}")
        return value

    def number(self, value: JSON, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            fail(path, f"must be a number, got {json_type(value)}")
        return float(value)

    def array(self, value: JSON, path: str, *, non_empty: bool = False) -> list[Any]:
        if not isinstance(value, list):
            fail(path, f"must be an array, got {json_type(value)}")
        if non_empty and not value:
            fail(path, "must not be an empty array")
        return value

    def iri(self, value: JSON, path: str) -> str:
        text = self.string(value, path)
        if not formats.is_iri(text):
            fail(path, f"must be an absolute IRI (scheme:...), got {show(text)}")
        return text

    def irl(self, value: JSON, path: str) -> str:
        text = self.string(value, path)
        if not formats.is_irl(text):
            fail(
                path,
                f"must be an IRL (an absolute IRI with an authority, e.g. https://host/), got {show(text)}",  # noqa: E501
            )
        return text

    def uuid(self, value: JSON, path: str) -> str:
        text = self.string(value, path)
        if not formats.is_uuid(text):
            fail(
                path,
                f"must be a UUID in standard form (e.g. 6ba7b810-9dad-41d1-80b4-00c04fd430c8), got {show(text)}",  # noqa: E501
            )
        return text.lower()

    def timestamp(self, value: JSON, path: str) -> tuple[str, datetime]:
        text = self.string(value, path)
        try:
            return text, formats.parse_timestamp(text)
        except formats.TimestampError as exc:
            fail(path, f"{exc}, got {show(text)}")

    def language_map(self, value: JSON, path: str) -> JsonObject:
        if not isinstance(value, dict):
            fail(path, f"must be a language map (object), got {json_type(value)}")
        if not value:
            fail(path, "must not be an empty object")
        for tag, text in value.items():
            if not formats.is_language_tag(tag):
                fail(f"{path}.{tag}", f'"{tag}" is not an RFC 5646 language tag')
            self.string(text, f"{path}.{tag}")
        return dict(value)

    def extensions(self, value: JSON, path: str) -> JsonObject:
        if not isinstance(value, dict):
            fail(path, f"must be an object, got {json_type(value)}")
        for key in value:
            if not formats.is_iri(key):
                fail(f"{path}.{key}", f'extension key "{key}" must be an absolute IRI')
        return dict(value)

    # agents and groups -----------------------------------------------------------

    def ifi(self, obj: JsonObject, path: str, what: str) -> None:
        present = [k for k in IFI_PROPERTIES if k in obj]
        if len(present) > 1:
            fail(
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
                fail(p, f"must be a mailto IRI (mailto:name@example.org), got {show(text)}")
        elif key == "mbox_sha1sum":
            text = self.string(value, p)
            if not formats.is_sha1_hex(text):
                fail(p, "must be the 40 hex digit SHA-1 of a mailto IRI")
        elif key == "openid":
            self.iri(value, p)
        else:
            account = self.obj(value, p, "an Account", ("homePage", "name"))
            if "homePage" not in account:
                fail(f"{p}.homePage", "is required")
            self.irl(account["homePage"], f"{p}.homePage")
            if "name" not in account:
                fail(f"{p}.name", "is required")
            self.string(account["name"], f"{p}.name", non_empty=True)

    def agent(self, value: JSON, path: str, *, object_type_required: bool = False) -> JsonObject:
        obj = self.obj(value, path, "an Agent", AGENT_KEYS)
        if "objectType" in obj:
            if obj["objectType"] != "Agent":
                fail(f"{path}.objectType", f'must be "Agent", got {show(obj["objectType"])}')
        elif object_type_required:
            fail(f"{path}.objectType", 'is required ("Agent")')
        if "name" in obj:
            self.string(obj["name"], f"{path}.name")
        self.ifi(obj, path, "an Agent")
        if not any(k in obj for k in IFI_PROPERTIES):
            fail(
                path,
                "an Agent must have exactly one inverse functional identifier "
                "(mbox, mbox_sha1sum, openid or account), found none",
            )
        self._note_agent(obj)
        return dict(obj)

    def group(self, value: JSON, path: str) -> JsonObject:
        obj = self.obj(value, path, "a Group", GROUP_KEYS)
        if obj.get("objectType") != "Group":
            fail(
                f"{path}.objectType",
                'is required ("Group")'
                if "objectType" not in obj
                else f'must be "Group", got {show(obj["objectType"])}',
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
            fail(
                f"{path}.member",
                "is required for an anonymous Group (a Group without an identifier)",
            )
        self._note_agent(obj)
        return out

    def member(self, value: JSON, path: str) -> JsonObject:
        if isinstance(value, dict) and value.get("objectType") == "Group":
            fail(f"{path}.objectType", "a Group member must be an Agent, not a Group")
        return self.agent(value, path)

    def actor(self, value: JSON, path: str) -> JsonObject:
        if isinstance(value, dict) and value.get("objectType") == "Group":
            return self.group(value, path)
        return self.agent(value, path)

    def _note_agent(self, obj: JsonObject) -> None:
        key = agent_key(obj)
        if key is not None and key not in self.agent_keys:
            self.agent_keys.append(key)
