"""The rules of a statement's parts (`StatementValidator`): verbs, objects (Activities and
their definitions, StatementRefs, SubStatements), results and scores, contexts,
attachments, and the core every statement and SubStatement shares; on the value and
actor rules of `primitives.BaseValidator`. Each failure names the JSON path."""

from __future__ import annotations

from collections.abc import Callable

from services.learning.xapi import formats, vocab
from services.learning.xapi.json_intake import JSON, JsonObject, fail, json_type, show
from services.learning.xapi.primitives import BaseValidator
from services.learning.xapi.properties import (
    ACTIVITY_KEYS,
    ATTACHMENT_KEYS,
    COMPONENT_LISTS,
    CONTEXT_ACTIVITY_KEYS,
    DEFINITION_KEYS,
    INTERACTION_COMPONENTS,
    INTERACTION_TYPES,
    RESULT_KEYS,
    SCORE_KEYS,
    SUBSTATEMENT_FORBIDDEN,
    SUBSTATEMENT_KEYS,
)
from services.learning.xapi.version import XAPIVersion


class StatementValidator(BaseValidator):
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
        return self._context_actors(value, path, "a Context Agent", "agent", self.agent)

    def context_groups(self, value: JSON, path: str) -> list[JsonObject]:
        return self._context_actors(value, path, "a Context Group", "group", self.group)

    def _context_actors(
        self,
        value: JSON,
        path: str,
        what: str,
        key: str,
        actor: Callable[[JSON, str], JsonObject],
    ) -> list[JsonObject]:
        """`contextAgents` / `contextGroups` (2.0): objects of type context<Key> holding
        the actor under `key` and optional relevantTypes."""
        object_type = f"context{key.capitalize()}"
        out = []
        for i, item in enumerate(self.array(value, path)):
            p = f"{path}[{i}]"
            obj = self.obj(item, p, what, ("objectType", key, "relevantTypes"))
            if obj.get("objectType") != object_type:
                fail(f"{p}.objectType", f'must be "{object_type}"')
            if key not in obj:
                fail(f"{p}.{key}", "is required")
            c = dict(obj)
            c[key] = actor(obj[key], f"{p}.{key}")
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
