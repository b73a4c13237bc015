"""Activities and Agents resource use cases, and the `ids` / `canonical` formats.

Authorization: the canonical definitions a caller sees are the ones built from the
statements of their own namespace (their user id; an LRS client's owner's). A Person is
built from the agent asked about (Communication 2.4.s3.b3): no identifiers of other
people are disclosed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import ValidationError
from services.learning.activities import domain as ad
from services.learning.activities.storage import ActivityRepository, activity_hash
from services.learning.common.usecases import LearningContext
from services.learning.xapi import validate_agent, validate_iri

FORMATS = ("exact", "ids", "canonical")
MAX_ACCEPT_LANGUAGE = 512


def check_format(value: str, field_name: str = "format") -> str:
    fmt = value or "exact"
    if fmt not in FORMATS:
        raise ValidationError(field_name, "must be exact, ids or canonical")
    return fmt


def _per_statement(statements: Sequence[Mapping[str, Any]]) -> list[dict[str, dict[str, Any]]]:
    """Each statement's activity definitions (by activity id), those without any left out."""
    per_statement = []
    for statement in statements:
        merged: dict[str, dict[str, Any]] = {}
        for activity in ad.activities_with_definitions(statement):
            merged[activity["id"]] = ad.merge_definition(
                merged.get(activity["id"]), activity["definition"]
            )
        if merged:
            per_statement.append(merged)
    return per_statement


def definition_hashes(statements: Sequence[Mapping[str, Any]]) -> list[str]:
    """The activity hashes whose stored definitions `Activities.remember` reads for
    `statements` (a caller may read them beforehand, with other reads)."""
    return list({activity_hash(a) for d in _per_statement(statements) for a in d})


class Activities:
    def __init__(self, ctx: LearningContext) -> None:
        self.ctx = ctx

    async def remember(
        self,
        s: AsyncSession,
        owner_id: str,
        statements: Sequence[Mapping[str, Any]],
        *,
        may_write: bool = True,
        stored: Mapping[str, str] | None = None,
    ) -> bool:
        """Fold the definitions stored statements carry into the owner's canonical ones, in
        the statements' order (in their transaction `s`). False when that would write and
        not `may_write` (see `ActivityRepository.remember`). `stored`: the owner's stored
        definition texts already read (by activity hash) for at least the statements'
        `definition_hashes`."""
        return await ActivityRepository(s).remember(
            owner_id,
            _per_statement(statements),
            self.ctx.clock.now(),
            may_write=may_write,
            seen=stored,
        )

    async def get_activity(self, caller: Principal, activity_id: str) -> dict[str, Any]:
        iri = validate_iri(activity_id, "activityId")
        async with self.ctx.db.session() as s:
            found = await ActivityRepository(s).definitions(caller.user_id, [iri])
        out: dict[str, Any] = {"objectType": "Activity", "id": iri}
        if found.get(iri):
            out["definition"] = found[iri]
        return out

    def get_person(self, agent_json: str) -> dict[str, Any]:
        if not agent_json:
            raise ValidationError("agent", "is required")
        return ad.person_of(validate_agent(agent_json, "agent"))

    async def render(
        self,
        caller: Principal,
        statement_jsons: Sequence[str],
        fmt: str,
        accept_language: str,
    ) -> list[str]:
        """The statements in `fmt` (exact: untouched, byte for byte)."""
        fmt = check_format(fmt)
        if fmt == "exact":
            return list(statement_jsons)
        if len(accept_language) > MAX_ACCEPT_LANGUAGE:
            raise ValidationError(
                "accept_language", f"must be at most {MAX_ACCEPT_LANGUAGE} characters"
            )
        statements = [json.loads(text) for text in statement_jsons]
        if fmt == "ids":
            rendered = [ad.ids_format(st) for st in statements]
        else:
            wanted: set[str] = set()
            for st in statements:
                wanted |= ad.activity_ids(st)
            async with self.ctx.db.session() as s:
                definitions = await ActivityRepository(s).definitions(caller.user_id, wanted)
            preferred = ad.parse_accept_language(accept_language)
            rendered = [ad.canonical_format(st, definitions, preferred) for st in statements]
        return [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in rendered]
