"""The passport and its timeline over GraphQL: entries grouped by the learning hierarchy,
as a Relay-style connection whose pages count entries."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import strawberry

from chain.translator.leaves import LEAF_ENCODING_V1
from gateway.context import Info
from gateway.errors import rpc
from gateway.schema.learning.common import AnchorStatus, InteractionAnchor, InteractionType
from gateway.schema.passport.common import (
    PageInfo,
    _enum_from,
    _first,
    _on_wire,
    _Scope,
    _type_from_pb,
    _type_to_pb,
    passport_client,
)
from gateway.schema.passport.privacy import PrivacySettings
from gateway.schema.passport.profile import LearningProfile
from gateway.schema.passport.verification import EntryVerification, verification_loader
from services.api.keiko.passport import v1 as pb


@strawberry.enum(description="Level of the learning hierarchy a timeline group stands for.")
class TimelineLevel(enum.Enum):
    UNSPECIFIED = "UNSPECIFIED"
    COURSE = "COURSE"
    CLASS = "CLASS"
    TUTORIAL_SESSION = "TUTORIAL_SESSION"
    STUDY_SESSION = "STUDY_SESSION"
    UNGROUPED = "UNGROUPED"


@strawberry.enum(description="Who wrote an entry.")
class AuthorKind(enum.Enum):
    UNSPECIFIED = "UNSPECIFIED"
    SELF = "SELF"
    USER = "USER"
    SERVICE = "SERVICE"


_LEVELS = {level.value: level for level in TimelineLevel}
_AUTHOR_KINDS = {kind.value: kind for kind in AuthorKind}
_ANCHOR_STATUSES = {status.value: status for status in AnchorStatus}
_TYPES = {kind.value: kind for kind in InteractionType}


@strawberry.type(description="Who wrote an entry and the key that signed it.")
class EntryAuthor:
    kind: AuthorKind
    id: str = strawberry.field(
        description="User or service id; empty for the learner's own entries when the "
        "learner's identity is not disclosed."
    )
    display_name: str = strawberry.field(description="The attesting user's or service's name.")
    public_key_hex: str = strawberry.field(description="The key that signed the entry.")
    legacy: bool = strawberry.field(
        description="Written by someone else before Keiko signed entries with their author's "
        "key: signed with the learner's key, so neither the learner's own nor the author's "
        "signature."
    )
    label: str = strawberry.field(description='"self", "attested by <name>" or legacy wording.')

    @staticmethod
    def from_pb(a: pb.EntryAuthor) -> EntryAuthor:
        return EntryAuthor(
            kind=_enum_from(a.kind, pb.AuthorKind, AuthorKind),  # type: ignore[arg-type]
            id=a.id,
            display_name=a.display_name,
            public_key_hex=a.public_key_hex,
            legacy=a.legacy,
            label=a.label,
        )


@strawberry.type(description="One signed interaction with everything needed to verify it.")
class PassportEntry:
    statement_id: strawberry.ID
    interaction_type: InteractionType | None
    summary: str
    timestamp: datetime
    score_scaled: float | None
    statement_json: str | None = strawberry.field(description="Null when not disclosed.")
    signature_hex: str
    public_key_hex: str
    anchor: InteractionAnchor
    proof_leaf: str
    proof: list[str]
    leaf_encoding: str = strawberry.field(
        description='How proofLeaf is computed: "keiko.leaf.v1" or "keiko.leaf.v2".'
    )
    author: EntryAuthor = strawberry.field(
        description='Who wrote it: the learner ("self") or an attesting user or Keiko service.'
    )
    scope: strawberry.Private[_Scope]

    @strawberry.field(description="Checked server side against the chain (batched per page).")
    async def verification(self, info: Info) -> EntryVerification | None:
        return await verification_loader(info).load((self.scope, str(self.statement_id)))

    @staticmethod
    def from_pb(e: pb.PassportEntry, scope: _Scope) -> PassportEntry:
        return PassportEntry(
            statement_id=strawberry.ID(e.statement_id),
            interaction_type=_type_from_pb(e.interaction_type),
            summary=e.summary,
            timestamp=e.timestamp,
            score_scaled=e.score_scaled,
            statement_json=e.statement_json or None,
            signature_hex=e.signature_hex,
            public_key_hex=e.public_key_hex,
            anchor=InteractionAnchor.from_pb(e.anchor),
            proof_leaf=e.proof_leaf,
            proof=list(e.proof),
            leaf_encoding=e.leaf_encoding or LEAF_ENCODING_V1,
            author=EntryAuthor.from_pb(e.author),
            scope=scope,
        )

    @staticmethod
    def from_json(e: dict[str, Any], scope: _Scope) -> PassportEntry:
        """One entry of GetTimelineResponse.groups_json: the values `from_pb` gives."""
        a = e["anchor"]
        author = e["author"]
        kind = e["interaction_type"]
        anchored_at = a["anchored_at"]
        return PassportEntry(
            statement_id=strawberry.ID(e["statement_id"]),
            interaction_type=_TYPES.get(kind) if kind else None,
            summary=e["summary"],
            timestamp=datetime.fromisoformat(e["timestamp"]),
            score_scaled=e["score_scaled"],
            statement_json=e["statement_json"] or None,
            signature_hex=e["signature_hex"],
            public_key_hex=e["public_key_hex"],
            anchor=InteractionAnchor(
                status=_ANCHOR_STATUSES.get(a["status"], AnchorStatus.UNSPECIFIED),
                batch_id=a["batch_id"],
                merkle_root=a["merkle_root"],
                tx_hash=a["tx_hash"],
                block_number=a["block_number"],
                failure_reason=a["failure_reason"],
                anchored_at=None if anchored_at is None else datetime.fromisoformat(anchored_at),
            ),
            proof_leaf=e["proof_leaf"],
            proof=e["proof"],
            leaf_encoding=e.get("leaf_encoding") or LEAF_ENCODING_V1,
            author=EntryAuthor(
                kind=_AUTHOR_KINDS.get(author["kind"], AuthorKind.UNSPECIFIED),
                id=author["id"],
                display_name=author["display_name"],
                public_key_hex=author["public_key_hex"],
                legacy=author["legacy"],
                label=author["label"],
            ),
            scope=scope,
        )


@strawberry.type(description="A course, class or session with its entries and sub-groups.")
class TimelineGroup:
    level: TimelineLevel
    id: str
    title: str
    children: list[TimelineGroup]
    entries: list[PassportEntry]

    @staticmethod
    def from_pb(g: pb.TimelineGroup, scope: _Scope) -> TimelineGroup:
        return TimelineGroup(
            level=_enum_from(g.level, pb.TimelineLevel, TimelineLevel),  # type: ignore[arg-type]
            id=g.id,
            title=g.title,
            children=[TimelineGroup.from_pb(c, scope) for c in g.children],
            entries=[PassportEntry.from_pb(e, scope) for e in g.entries],
        )

    @staticmethod
    def from_json(g: dict[str, Any], scope: _Scope) -> TimelineGroup:
        return TimelineGroup(
            level=_LEVELS.get(g["level"], TimelineLevel.UNSPECIFIED),
            id=g["id"],
            title=g["title"],
            children=[TimelineGroup.from_json(c, scope) for c in g["children"]],
            entries=[PassportEntry.from_json(e, scope) for e in g["entries"]],
        )


@strawberry.type
class TimelineEdge:
    cursor: str = strawberry.field(description="The page's end cursor (pages count entries).")
    node: TimelineGroup


@strawberry.type(
    description="A page of the timeline: pages count entries, not groups; a group cut by "
    "a page boundary appears again on the next page with the same (level, id)."
)
class TimelineConnection:
    edges: list[TimelineEdge]
    page_info: PageInfo


def _connection(groups: Sequence[TimelineGroup], token: str) -> TimelineConnection:
    return TimelineConnection(
        edges=[TimelineEdge(cursor=token, node=g) for g in groups],
        page_info=PageInfo(has_next_page=bool(token), end_cursor=token or None),
    )


def _groups_of_pb(groups: Sequence[pb.TimelineGroup], scope: _Scope) -> list[TimelineGroup]:
    return [TimelineGroup.from_pb(g, scope) for g in groups]


def _groups_of_json(text: str, scope: _Scope) -> list[TimelineGroup]:
    return [TimelineGroup.from_json(g, scope) for g in orjson.loads(text)]


def groups_of(
    reply: pb.GetTimelineResponse | pb.GetSharedPassportResponse, scope: _Scope
) -> list[TimelineGroup]:
    """The groups of a reply to a request that asked for groups_json; the messages when a
    service that predates it answers them (a rolling deploy)."""
    if reply.groups_json:
        return _groups_of_json(reply.groups_json, scope)
    return _groups_of_pb(reply.groups, scope)


@strawberry.type
class Passport:
    id: strawberry.ID
    owner_id: str | None = strawberry.field(description="Null when identity is withheld.")
    owner_display_name: str | None
    ed25519_public_key: str
    entry_count: int
    learning_profile: LearningProfile | None = strawberry.field(description="Owner only.")
    privacy_settings: PrivacySettings | None = strawberry.field(description="Owner only.")
    created_at: datetime
    updated_at: datetime
    scope: strawberry.Private[_Scope]

    @strawberry.field(description="The timeline grouped by the learning hierarchy.")
    async def timeline(
        self,
        info: Info,
        first: int = 50,
        after: str | None = None,
        course_id: str | None = None,
        types: list[InteractionType] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> TimelineConnection:
        return await _timeline(
            info, self.scope, first, after, course_id, types, since, until, str(self.id)
        )

    @staticmethod
    def from_pb(p: pb.Passport, scope: _Scope) -> Passport:
        return Passport(
            id=strawberry.ID(p.id),
            owner_id=p.owner_id or None,
            owner_display_name=p.owner_display_name or None,
            ed25519_public_key=p.ed25519_public_key,
            entry_count=p.entry_count,
            learning_profile=LearningProfile.from_pb(p.learning_profile)
            if _on_wire(p.learning_profile)
            else None,
            privacy_settings=PrivacySettings.from_pb(p.privacy_settings)
            if _on_wire(p.privacy_settings)
            else None,
            created_at=p.created_at,
            updated_at=p.updated_at,
            scope=scope,
        )


async def _timeline(
    info: Info,
    scope: _Scope,
    first: int,
    after: str | None,
    course_id: str | None,
    types: list[InteractionType] | None,
    since: datetime | None,
    until: datetime | None,
    passport_id: str,
) -> TimelineConnection:
    if scope.share_token:
        shared = await rpc(
            passport_client(info).get_shared_passport(
                pb.GetSharedPassportRequest(
                    token=scope.share_token,
                    page_size=_first(first),
                    page_token=after or "",
                    groups_json=True,
                )
            )
        )
        return _connection(groups_of(shared, scope), shared.next_page_token)
    request = pb.GetTimelineRequest(
        passport_id=passport_id,
        course_id=course_id or "",
        interaction_types=[_type_to_pb(t) for t in types or []],
        page_size=_first(first),
        page_token=after or "",
        groups_json=True,
    )
    if since is not None:
        request.since = since
    if until is not None:
        request.until = until
    reply = await rpc(passport_client(info).get_timeline(request))
    return _connection(groups_of(reply, scope), reply.next_page_token)


@strawberry.type
class TimelineQuery:
    @strawberry.field(description="A passport: yours (no id), or a public one by id.")
    async def passport(self, info: Info, id: strawberry.ID | None = None) -> Passport:
        passport_id = str(id or "")
        if not passport_id:
            info.context.require_token()
        reply = await rpc(
            passport_client(info).get_passport(pb.GetPassportRequest(passport_id=passport_id))
        )
        # Your own passport is verified as yours (id empty), a public one by its id.
        scope = _Scope(passport_id=passport_id)
        return Passport.from_pb(reply.passport, scope)

    @strawberry.field(description="A page of a passport's timeline (yours without an id).")
    async def passport_timeline(
        self,
        info: Info,
        passport_id: strawberry.ID | None = None,
        first: int = 50,
        after: str | None = None,
        course_id: str | None = None,
        types: list[InteractionType] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> TimelineConnection:
        pid = str(passport_id or "")
        if not pid:
            info.context.require_token()
        return await _timeline(
            info, _Scope(passport_id=pid), first, after, course_id, types, since, until, pid
        )
