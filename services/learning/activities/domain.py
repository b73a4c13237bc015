"""Canonical activity definitions, language selection and the `ids` / `canonical`
statement formats. No I/O.

* Communication 2.5: GET /activities returns the Activity object the LRS knows; without a
  canonical definition it still returns `{"objectType": "Activity", "id": ...}`.
* The canonical definition is merged from the statements the owner stored: language maps
  (name, description, interaction component descriptions) keep every language, the
  latest value of each language winning; other properties take the latest value.
* Communication 2.1.3 `format`: `ids` keeps only what identifies Agents, Groups,
  Activities and Verbs; `canonical` replaces Activity definitions and Verb displays with
  the canonical ones, one language per map chosen with Accept-Language (RFC 7231 5.3.5,
  applied to each map separately, 2.1.3.s4), Agents and Groups as received.
* Communication 2.4: the Person object for an Agent lists its identifiers and names.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from services.learning.xapi.properties import IFI_PROPERTIES

JsonObject = dict[str, Any]
LANGUAGE_MAPS = ("name", "description")
COMPONENT_LISTS = ("choices", "scale", "source", "target", "steps")


def merge_definition(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> JsonObject:
    """The canonical definition after receiving `new` (see module docs)."""
    out: JsonObject = copy.deepcopy(dict(old or {}))
    for key, value in new.items():
        if key in LANGUAGE_MAPS and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        elif key in COMPONENT_LISTS and isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = _merge_components(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _merge_components(old: list[Any], new: list[Any]) -> list[Any]:
    previous = {c.get("id"): c for c in old if isinstance(c, dict)}
    merged = []
    for comp in new:
        if isinstance(comp, dict) and isinstance(previous.get(comp.get("id")), dict):
            before = previous[comp.get("id")].get("description")
            after = comp.get("description")
            if isinstance(before, dict) and isinstance(after, dict):
                comp = {**comp, "description": {**before, **after}}
        merged.append(copy.deepcopy(comp))
    return merged


def activities_with_definitions(statement: Mapping[str, Any]) -> list[JsonObject]:
    """Every Activity object of a statement that carries a definition (object, context
    activities, and the same inside a SubStatement)."""
    found: list[JsonObject] = []

    def visit(st: Mapping[str, Any]) -> None:
        obj = st.get("object")
        if isinstance(obj, dict):
            kind = obj.get("objectType", "Activity")
            if kind == "Activity" and isinstance(obj.get("definition"), dict):
                found.append(obj)
            elif kind == "SubStatement":
                visit(obj)
        context = st.get("context")
        if isinstance(context, dict) and isinstance(context.get("contextActivities"), dict):
            for value in context["contextActivities"].values():
                for act in value if isinstance(value, list) else [value]:
                    if isinstance(act, dict) and isinstance(act.get("definition"), dict):
                        found.append(act)

    visit(statement)
    return found


# -- languages ----------------------------------------------------------------------------


def parse_accept_language(header: str) -> list[str]:
    """Language ranges by preference (q > 0, highest first, ties in order given)."""
    ranges: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")):
        pieces = [p.strip() for p in part.split(";")]
        tag = pieces[0].lower()
        if not tag:
            continue
        q = 1.0
        for param in pieces[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0:
            ranges.append((-q, i, tag))
    return [tag for _, _, tag in sorted(ranges)]


def pick_language(language_map: Mapping[str, Any], preferred: list[str]) -> JsonObject:
    """One entry of a language map: the first range that matches a tag exactly or as a
    prefix (`en` matches `en-US`), `*` matching anything; else the map's first entry."""
    if not language_map:
        return {}
    tags = list(language_map)
    for wanted in preferred:
        for tag in tags:
            low = tag.lower()
            if wanted == "*" or low == wanted or low.startswith(wanted + "-"):
                return {tag: language_map[tag]}
        for tag in tags:  # a more specific range matches its primary language (en-GB ~ en)
            if wanted.split("-")[0] == tag.lower():
                return {tag: language_map[tag]}
    return {tags[0]: language_map[tags[0]]}


def one_language(definition: Mapping[str, Any], preferred: list[str]) -> JsonObject:
    out: JsonObject = dict(definition)
    for key in LANGUAGE_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = pick_language(out[key], preferred)
    for key in COMPONENT_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [
                {**c, "description": pick_language(c["description"], preferred)}
                if isinstance(c, dict) and isinstance(c.get("description"), dict)
                else c
                for c in out[key]
            ]
    return out


# -- formats ------------------------------------------------------------------------------


def _ids_agent(agent: Mapping[str, Any]) -> JsonObject:
    out: JsonObject = {}
    if "objectType" in agent:
        out["objectType"] = agent["objectType"]
    for key in IFI_PROPERTIES:
        if key in agent:
            out[key] = agent[key]
            return out
    if isinstance(agent.get("member"), list):  # anonymous Group: identify each member
        out["member"] = [_ids_agent(m) for m in agent["member"] if isinstance(m, dict)]
    return out


def _ids_activity(activity: Mapping[str, Any], _definitions: Any = None) -> JsonObject:
    return {"objectType": "Activity", "id": activity["id"]}


def _transform(
    statement: Mapping[str, Any],
    agent: Callable[[Mapping[str, Any]], JsonObject],
    activity: Callable[[Mapping[str, Any]], JsonObject],
    verb: Callable[[Mapping[str, Any]], JsonObject],
) -> JsonObject:
    out: JsonObject = dict(statement)
    if isinstance(out.get("actor"), dict):
        out["actor"] = agent(out["actor"])
    if isinstance(out.get("authority"), dict):
        out["authority"] = agent(out["authority"])
    if isinstance(out.get("verb"), dict):
        out["verb"] = verb(out["verb"])
    obj = out.get("object")
    if isinstance(obj, dict):
        kind = obj.get("objectType", "Activity")
        if kind == "Activity":
            out["object"] = activity(obj)
        elif kind in ("Agent", "Group"):
            out["object"] = agent(obj)
        elif kind == "SubStatement":
            out["object"] = _transform(obj, agent, activity, verb)
    context = out.get("context")
    if isinstance(context, dict):
        ctx: JsonObject = dict(context)
        for key in ("instructor", "team"):
            if isinstance(ctx.get(key), dict):
                ctx[key] = agent(ctx[key])
        if isinstance(ctx.get("contextActivities"), dict):
            ctx["contextActivities"] = {
                k: [activity(a) for a in v] if isinstance(v, list) else activity(v)
                for k, v in ctx["contextActivities"].items()
            }
        for key, inner in (("contextAgents", "agent"), ("contextGroups", "group")):
            if isinstance(ctx.get(key), list):
                ctx[key] = [
                    {**item, inner: agent(item[inner])}
                    if isinstance(item, dict) and isinstance(item.get(inner), dict)
                    else item
                    for item in ctx[key]
                ]
        out["context"] = ctx
    return out


def ids_format(statement: Mapping[str, Any]) -> JsonObject:
    """Communication 2.1.3 format=ids."""
    return _transform(statement, _ids_agent, _ids_activity, lambda v: {"id": v["id"]})


def canonical_format(
    statement: Mapping[str, Any],
    definitions: Mapping[str, Mapping[str, Any]],
    preferred: list[str],
) -> JsonObject:
    """Communication 2.1.3 format=canonical: Activities with the canonical definition (the
    statement's own when the store has none), Verb display, one language per map."""

    def activity(act: Mapping[str, Any]) -> JsonObject:
        out: JsonObject = dict(act)
        definition = definitions.get(act["id"], act.get("definition"))
        if isinstance(definition, Mapping):
            out["definition"] = one_language(definition, preferred)
        return out

    def verb(v: Mapping[str, Any]) -> JsonObject:
        out: JsonObject = dict(v)
        if isinstance(out.get("display"), dict):
            out["display"] = pick_language(out["display"], preferred)
        return out

    return _transform(statement, lambda a: dict(a), activity, verb)


def activity_ids(statement: Mapping[str, Any]) -> set[str]:
    """Ids of every Activity object in a statement (for loading canonical definitions)."""
    found: set[str] = set()

    def grab(act: Mapping[str, Any]) -> JsonObject:
        found.add(str(act["id"]))
        return dict(act)

    _transform(statement, lambda a: dict(a), grab, lambda v: dict(v))
    return found


def person_of(agent: Mapping[str, Any], names: list[str] | None = None) -> JsonObject:
    """Communication 2.4 Person: each property an array; the agent's identifier and name."""
    person: JsonObject = {"objectType": "Person"}
    all_names = [*([agent["name"]] if isinstance(agent.get("name"), str) else []), *(names or [])]
    if all_names:
        person["name"] = list(dict.fromkeys(all_names))
    for key in IFI_PROPERTIES:
        if key in agent:
            person[key] = [agent[key]]
    return person
