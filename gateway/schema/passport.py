"""The Life-Learning Passport over GraphQL: the passport, its timeline as a Relay-style
connection, the learning profile, privacy settings and share links, server-side
verification, and the `passportUpdated` / `interactionAnchored` subscriptions (both fed by
WatchPassport, so a subscriber only ever sees their own passport).

Every resolver calls the passport service over gRPC; none imports its Python code.
`PassportEntry.verification` resolves through a per-request DataLoader: all entries of a
page are verified by one VerifyPassport call per passport (and page), not one VerifyEntry
per entry.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import betterproto
import strawberry
from strawberry.dataloader import DataLoader

from gateway.context import Info
from gateway.errors import ClientError, rpc, rpc_stream
from gateway.schema.learning import InteractionAnchor, InteractionType
from services.api.keiko.common import v1 as common_pb
from services.api.keiko.passport import v1 as pb

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_FIRST = 500
# Each verified entry checks a signature, a Merkle proof and an on-chain root: a smaller
# page (docs/limits.md), and a higher cost per item (gateway.cost.PER_ITEM_WEIGHTS).
MAX_VERIFICATION_FIRST = 100


def _when(value: datetime | None) -> datetime | None:
    if value is None or value.replace(tzinfo=UTC) == _EPOCH:
        return None
    return value


def _type_from_pb(value: int) -> InteractionType | None:
    name = common_pb.InteractionType(value).name
    return InteractionType[name] if name and name in InteractionType.__members__ else None


def _type_to_pb(value: InteractionType) -> common_pb.InteractionType:
    return common_pb.InteractionType.from_string(value.value)


def _first(first: int, maximum: int = MAX_FIRST) -> int:
    if first < 1 or first > maximum:
        raise ClientError(f"first must be between 1 and {maximum}", "BAD_USER_INPUT", field="first")
    return first


# -- enums ---------------------------------------------------------------------------------


@strawberry.enum(description="Dominant learning style (VARK).")
class LearningStyle(enum.Enum):
    UNSPECIFIED = "UNSPECIFIED"
    VISUAL = "VISUAL"
    AUDITORY = "AUDITORY"
    READING_WRITING = "READING_WRITING"
    KINESTHETIC = "KINESTHETIC"
    MULTIMODAL = "MULTIMODAL"


@strawberry.enum
class PacePreference(enum.Enum):
    UNSPECIFIED = "UNSPECIFIED"
    SLOW = "SLOW"
    MODERATE = "MODERATE"
    FAST = "FAST"


@strawberry.enum
class InteractionStyle(enum.Enum):
    UNSPECIFIED = "UNSPECIFIED"
    COLLABORATIVE = "COLLABORATIVE"
    INDEPENDENT = "INDEPENDENT"
    MIXED = "MIXED"


@strawberry.enum
class FeedbackFrequency(enum.Enum):
    UNSPECIFIED = "UNSPECIFIED"
    IMMEDIATE = "IMMEDIATE"
    PERIODIC = "PERIODIC"
    FINAL = "FINAL"


@strawberry.enum
class DifficultyProgression(enum.Enum):
    UNSPECIFIED = "UNSPECIFIED"
    GRADUAL = "GRADUAL"
    MODERATE = "MODERATE"
    CHALLENGING = "CHALLENGING"


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


@strawberry.enum
class PassportUpdateKind(enum.Enum):
    UNSPECIFIED = "UNSPECIFIED"
    ENTRY_ADDED = "ENTRY_ADDED"
    ENTRY_ANCHOR_CHANGED = "ENTRY_ANCHOR_CHANGED"
    PROFILE_UPDATED = "PROFILE_UPDATED"
    PRIVACY_UPDATED = "PRIVACY_UPDATED"


def _enum_from(value: int, pb_enum: type, gql_enum: type[enum.Enum]) -> enum.Enum:
    name = pb_enum(value).name or "UNSPECIFIED"
    return gql_enum[name] if name in gql_enum.__members__ else gql_enum["UNSPECIFIED"]


# -- types ---------------------------------------------------------------------------------


@strawberry.type(description="What a viewer may see of a passport.")
class Disclosure:
    interaction_types: list[InteractionType] = strawberry.field(description="Empty: every type.")
    course_ids: list[str] = strawberry.field(description="Empty: every course.")
    show_scores: bool
    show_identity: bool
    show_content: bool = strawberry.field(
        description="Reveal the signed statements (needed to verify signatures)."
    )

    @staticmethod
    def from_pb(d: pb.Disclosure) -> Disclosure:
        return Disclosure(
            interaction_types=[t for t in map(_type_from_pb, d.interaction_types) if t],
            course_ids=list(d.course_ids),
            show_scores=d.show_scores,
            show_identity=d.show_identity,
            show_content=d.show_content,
        )


@strawberry.input
class DisclosureInput:
    # The defaults are the passport service's own (services.passport.domain.DEFAULT_SHARE):
    # scores and content shown, identity not. Content is what independent verification
    # checks signatures against, so `{}` keeps a passport verifiable.
    interaction_types: list[InteractionType] = strawberry.field(default_factory=list)
    course_ids: list[str] = strawberry.field(default_factory=list)
    show_scores: bool = True
    show_identity: bool = False
    show_content: bool = True

    def to_pb(self) -> pb.Disclosure:
        return pb.Disclosure(
            interaction_types=[_type_to_pb(t) for t in self.interaction_types],
            course_ids=list(self.course_ids),
            show_scores=self.show_scores,
            show_identity=self.show_identity,
            show_content=self.show_content,
        )


@strawberry.type
class PrivacySettings:
    public: bool = strawberry.field(description="Anyone with the passport id may read it.")
    public_disclosure: Disclosure
    share_link_disclosure: Disclosure = strawberry.field(
        description="Upper bound of what share links reveal; the default scope of new links."
    )

    @staticmethod
    def from_pb(p: pb.PrivacySettings) -> PrivacySettings:
        return PrivacySettings(
            public=p.public,
            public_disclosure=Disclosure.from_pb(p.public_disclosure),
            share_link_disclosure=Disclosure.from_pb(p.share_link_disclosure),
        )


@strawberry.input
class PrivacySettingsInput:
    public: bool
    public_disclosure: DisclosureInput
    share_link_disclosure: DisclosureInput


@strawberry.type
class Skill:
    domain: str
    level: int
    confidence: int
    last_updated: datetime | None


@strawberry.input
class SkillInput:
    domain: str
    level: int
    confidence: int = 0
    last_updated: datetime | None = None


@strawberry.type
class LearningStyleScores:
    visual: int
    auditory: int
    reading_writing: int
    kinesthetic: int


@strawberry.type
class LearningPreferences:
    pace: PacePreference
    interaction_style: InteractionStyle
    feedback_frequency: FeedbackFrequency
    difficulty_progression: DifficultyProgression


@strawberry.type
class LearningProfile:
    learning_style: LearningStyle
    learning_style_scores: LearningStyleScores
    preferences: LearningPreferences
    strengths: list[Skill]
    areas_for_improvement: list[Skill]
    last_assessment: datetime | None

    @staticmethod
    def from_pb(p: pb.LearningProfile) -> LearningProfile:
        def skills(items: Sequence[pb.Skill]) -> list[Skill]:
            return [
                Skill(
                    domain=s.domain,
                    level=s.level,
                    confidence=s.confidence,
                    last_updated=_when(s.last_updated),
                )
                for s in items
            ]

        s, prefs = p.learning_style_scores, p.preferences
        return LearningProfile(
            learning_style=_enum_from(p.learning_style, pb.LearningStyle, LearningStyle),  # type: ignore[arg-type]
            learning_style_scores=LearningStyleScores(
                visual=s.visual,
                auditory=s.auditory,
                reading_writing=s.reading_writing,
                kinesthetic=s.kinesthetic,
            ),
            preferences=LearningPreferences(
                pace=_enum_from(prefs.pace, pb.PacePreference, PacePreference),  # type: ignore[arg-type]
                interaction_style=_enum_from(  # type: ignore[arg-type]
                    prefs.interaction_style, pb.InteractionStyle, InteractionStyle
                ),
                feedback_frequency=_enum_from(  # type: ignore[arg-type]
                    prefs.feedback_frequency, pb.FeedbackFrequency, FeedbackFrequency
                ),
                difficulty_progression=_enum_from(  # type: ignore[arg-type]
                    prefs.difficulty_progression, pb.DifficultyProgression, DifficultyProgression
                ),
            ),
            strengths=skills(p.strengths),
            areas_for_improvement=skills(p.areas_for_improvement),
            last_assessment=_when(p.last_assessment),
        )


@strawberry.input
class LearningProfileInput:
    learning_style: LearningStyle = LearningStyle.UNSPECIFIED
    visual: int = 0
    auditory: int = 0
    reading_writing: int = 0
    kinesthetic: int = 0
    pace: PacePreference = PacePreference.UNSPECIFIED
    interaction_style: InteractionStyle = InteractionStyle.UNSPECIFIED
    feedback_frequency: FeedbackFrequency = FeedbackFrequency.UNSPECIFIED
    difficulty_progression: DifficultyProgression = DifficultyProgression.UNSPECIFIED
    strengths: list[SkillInput] = strawberry.field(default_factory=list)
    areas_for_improvement: list[SkillInput] = strawberry.field(default_factory=list)
    last_assessment: datetime | None = None

    def to_pb(self) -> pb.LearningProfile:
        def percent(value: int, field: str) -> int:
            if not 0 <= value <= 100:
                raise ClientError(
                    f"{field} must be between 0 and 100", "BAD_USER_INPUT", field=field
                )
            return value

        def skills(items: list[SkillInput], name: str) -> list[pb.Skill]:
            out = []
            for i, s in enumerate(items):
                skill = pb.Skill(
                    domain=s.domain,
                    level=percent(s.level, f"profile.{name}[{i}].level"),
                    confidence=percent(s.confidence, f"profile.{name}[{i}].confidence"),
                )
                if s.last_updated is not None:
                    skill.last_updated = s.last_updated
                out.append(skill)
            return out

        profile = pb.LearningProfile(
            learning_style=pb.LearningStyle.from_string(self.learning_style.value),
            learning_style_scores=pb.LearningStyleScores(
                visual=percent(self.visual, "profile.visual"),
                auditory=percent(self.auditory, "profile.auditory"),
                reading_writing=percent(self.reading_writing, "profile.reading_writing"),
                kinesthetic=percent(self.kinesthetic, "profile.kinesthetic"),
            ),
            preferences=pb.LearningPreferences(
                pace=pb.PacePreference.from_string(self.pace.value),
                interaction_style=pb.InteractionStyle.from_string(self.interaction_style.value),
                feedback_frequency=pb.FeedbackFrequency.from_string(self.feedback_frequency.value),
                difficulty_progression=pb.DifficultyProgression.from_string(
                    self.difficulty_progression.value
                ),
            ),
            strengths=skills(self.strengths, "strengths"),
            areas_for_improvement=skills(self.areas_for_improvement, "areas_for_improvement"),
        )
        if self.last_assessment is not None:
            profile.last_assessment = self.last_assessment
        return profile


@strawberry.type(description="The result of checking one entry against Keikochain.")
class EntryVerification:
    statement_id: strawberry.ID
    signature_valid: bool
    inclusion_valid: bool
    root_on_chain: bool = strawberry.field(description="The root was read from the chain.")
    verified: bool
    reason: str = strawberry.field(description="Why it failed (first failing check).")
    block_number: int
    tx_hash: str
    status: str = strawberry.field(description="verified, failed or pending.")
    key_holder: str = strawberry.field(
        description="Whose key signed it: the author, or the learner for a legacy entry; "
        "empty when the learner's identity is not disclosed."
    )
    key_registration: str = strawberry.field(
        description="What the chain's key directory says about the signing key: registered "
        "on chain, revoked on chain, not registered on chain, or not readable."
    )
    key_custody: str = strawberry.field(description="custodial, device or service, if bound.")
    key_registered_block: int = strawberry.field(description="Block that bound the key.")

    @staticmethod
    def from_pb(v: pb.EntryVerification) -> EntryVerification:
        status = "verified" if v.verified else ("failed" if v.reason else "pending")
        return EntryVerification(
            key_holder=v.key_holder,
            key_registration=v.key_registration,
            key_custody=v.key_custody,
            key_registered_block=v.key_registered_block,
            statement_id=strawberry.ID(v.statement_id),
            signature_valid=v.signature_valid,
            inclusion_valid=v.inclusion_valid,
            root_on_chain=v.root_on_chain,
            verified=v.verified,
            reason=v.reason,
            block_number=v.block_number,
            tx_hash=v.tx_hash,
            status=status,
        )


@dataclass(frozen=True)
class _Scope:
    """How the viewer reached an entry (verification must go the same way)."""

    passport_id: str = ""
    share_token: str = ""


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
            author=EntryAuthor.from_pb(e.author),
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


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


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


def _connection(
    groups: Sequence[pb.TimelineGroup], token: str, scope: _Scope
) -> TimelineConnection:
    return TimelineConnection(
        edges=[TimelineEdge(cursor=token, node=TimelineGroup.from_pb(g, scope)) for g in groups],
        page_info=PageInfo(has_next_page=bool(token), end_cursor=token or None),
    )


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


def _on_wire(message: betterproto.Message) -> bool:
    return bool(betterproto.serialized_on_wire(message))


@strawberry.type
class ShareLink:
    id: strawberry.ID
    label: str
    scope: Disclosure
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    view_count: int

    @staticmethod
    def from_pb(link: pb.ShareLink) -> ShareLink:
        return ShareLink(
            id=strawberry.ID(link.id),
            label=link.label,
            scope=Disclosure.from_pb(link.scope),
            created_at=link.created_at,
            expires_at=_when(link.expires_at),
            revoked_at=_when(link.revoked_at),
            view_count=link.view_count,
        )


@strawberry.type
class ShareLinkConnection:
    nodes: list[ShareLink]
    page_info: PageInfo


@strawberry.type
class CreatedShareLink:
    link: ShareLink
    token: str = strawberry.field(
        description="Shown once: only its hash is stored (empty on a request-id replay)."
    )
    url: str


@strawberry.input
class CreateShareLinkInput:
    label: str = ""
    scope: DisclosureInput | None = strawberry.field(
        default=None, description="Null: your share-link disclosure."
    )
    expires_at: datetime | None = None
    request_id: str = strawberry.field(
        default="", description="Client-chosen id: a retried creation returns the same link."
    )


@strawberry.type
class SharedPassport:
    passport: Passport
    timeline: TimelineConnection
    expires_at: datetime | None


@strawberry.type
class PassportVerification:
    entries: list[EntryVerification]
    verified_count: int
    failed_count: int
    pending_count: int
    chain_id: str
    page_info: PageInfo


@strawberry.type
class PassportUpdate:
    passport_id: strawberry.ID
    kind: PassportUpdateKind
    entry: PassportEntry | None
    occurred_at: datetime


# -- plumbing ----------------------------------------------------------------------------------


def passport_client(info: Info) -> pb.PassportServiceStub:
    return info.context.client(pb.PassportServiceStub)  # type: ignore[no-any-return]


def verification_loader(info: Info) -> DataLoader[tuple[_Scope, str], EntryVerification | None]:
    found: DataLoader[tuple[_Scope, str], EntryVerification | None] | None = getattr(
        info.context, "_passport_verifications", None
    )
    if found is not None:
        return found
    client = passport_client(info)

    async def load(keys: list[tuple[_Scope, str]]) -> list[EntryVerification | None]:
        results: dict[tuple[_Scope, str], EntryVerification] = {}
        for scope in dict.fromkeys(k[0] for k in keys):
            wanted = {k[1] for k in keys if k[0] == scope}
            token = ""
            while wanted:
                reply = await rpc(
                    client.verify_passport(
                        pb.VerifyPassportRequest(
                            passport_id=scope.passport_id,
                            share_token=scope.share_token,
                            page_size=MAX_VERIFICATION_FIRST,
                            page_token=token,
                        )
                    )
                )
                for v in reply.entries:
                    results[(scope, v.statement_id)] = EntryVerification.from_pb(v)
                    wanted.discard(v.statement_id)
                token = reply.next_page_token
                if not token:
                    break
        return [results.get(k) for k in keys]

    loader: DataLoader[tuple[_Scope, str], EntryVerification | None] = DataLoader(load_fn=load)
    info.context._passport_verifications = loader  # type: ignore[attr-defined]
    return loader


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
                    token=scope.share_token, page_size=_first(first), page_token=after or ""
                )
            )
        )
        return _connection(shared.groups, shared.next_page_token, scope)
    request = pb.GetTimelineRequest(
        passport_id=passport_id,
        course_id=course_id or "",
        interaction_types=[_type_to_pb(t) for t in types or []],
        page_size=_first(first),
        page_token=after or "",
    )
    if since is not None:
        request.since = since
    if until is not None:
        request.until = until
    reply = await rpc(passport_client(info).get_timeline(request))
    return _connection(reply.groups, reply.next_page_token, scope)


# -- operations -------------------------------------------------------------------------------


@strawberry.type
class PassportQuery:
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

    @strawberry.field(description="Your learning profile.")
    async def learning_profile(self, info: Info) -> LearningProfile:
        info.context.require_token()
        reply = await rpc(
            passport_client(info).get_learning_profile(pb.GetLearningProfileRequest())
        )
        return LearningProfile.from_pb(reply.profile)

    @strawberry.field(description="Your share links, newest first (never their tokens).")
    async def share_links(
        self, info: Info, include_inactive: bool = False, first: int = 50, after: str | None = None
    ) -> ShareLinkConnection:
        info.context.require_token()
        reply = await rpc(
            passport_client(info).list_share_links(
                pb.ListShareLinksRequest(
                    include_inactive=include_inactive,
                    page_size=_first(first),
                    page_token=after or "",
                )
            )
        )
        token = reply.next_page_token
        return ShareLinkConnection(
            nodes=[ShareLink.from_pb(link) for link in reply.links],
            page_info=PageInfo(has_next_page=bool(token), end_cursor=token or None),
        )

    @strawberry.field(description="A passport through a share link (public).")
    async def shared_passport(
        self, info: Info, token: str, first: int = 50, after: str | None = None
    ) -> SharedPassport:
        reply = await rpc(
            passport_client(info).get_shared_passport(
                pb.GetSharedPassportRequest(
                    token=token, page_size=_first(first), page_token=after or ""
                )
            )
        )
        scope = _Scope(share_token=token)
        return SharedPassport(
            passport=Passport.from_pb(reply.passport, scope),
            timeline=_connection(reply.groups, reply.next_page_token, scope),
            expires_at=_when(reply.expires_at),
        )

    @strawberry.field(description="Verify a page of a passport against Keikochain.")
    async def passport_verification(
        self,
        info: Info,
        passport_id: strawberry.ID | None = None,
        share_token: str | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> PassportVerification:
        reply = await rpc(
            passport_client(info).verify_passport(
                pb.VerifyPassportRequest(
                    passport_id=str(passport_id or ""),
                    share_token=share_token or "",
                    page_size=_first(first, MAX_VERIFICATION_FIRST),
                    page_token=after or "",
                )
            )
        )
        token = reply.next_page_token
        return PassportVerification(
            entries=[EntryVerification.from_pb(v) for v in reply.entries],
            verified_count=reply.verified_count,
            failed_count=reply.failed_count,
            pending_count=reply.pending_count,
            chain_id=reply.chain_id,
            page_info=PageInfo(has_next_page=bool(token), end_cursor=token or None),
        )


@strawberry.type
class PassportMutation:
    @strawberry.mutation(description="Create a share link; its token is returned only here.")
    async def create_share_link(self, info: Info, input: CreateShareLinkInput) -> CreatedShareLink:
        info.context.require_token()
        request = pb.CreateShareLinkRequest(label=input.label, request_id=input.request_id)
        if input.scope is not None:
            request.scope = input.scope.to_pb()
        if input.expires_at is not None:
            request.expires_at = input.expires_at
        reply = await rpc(passport_client(info).create_share_link(request))
        return CreatedShareLink(
            link=ShareLink.from_pb(reply.link), token=reply.token, url=reply.url
        )

    @strawberry.mutation(description="Revoke one of your share links (idempotent).")
    async def revoke_share_link(self, info: Info, id: strawberry.ID) -> ShareLink:
        info.context.require_token()
        reply = await rpc(
            passport_client(info).revoke_share_link(pb.RevokeShareLinkRequest(link_id=str(id)))
        )
        return ShareLink.from_pb(reply.link)

    @strawberry.mutation(description="Replace your privacy settings; links are narrowed.")
    async def update_privacy_settings(
        self, info: Info, input: PrivacySettingsInput
    ) -> PrivacySettings:
        info.context.require_token()
        reply = await rpc(
            passport_client(info).update_privacy_settings(
                pb.UpdatePrivacySettingsRequest(
                    settings=pb.PrivacySettings(
                        public=input.public,
                        public_disclosure=input.public_disclosure.to_pb(),
                        share_link_disclosure=input.share_link_disclosure.to_pb(),
                    )
                )
            )
        )
        return PrivacySettings.from_pb(reply.settings)

    @strawberry.mutation(description="Replace your learning profile.")
    async def update_learning_profile(
        self, info: Info, input: LearningProfileInput
    ) -> LearningProfile:
        info.context.require_token()
        reply = await rpc(
            passport_client(info).update_learning_profile(
                pb.UpdateLearningProfileRequest(profile=input.to_pb())
            )
        )
        return LearningProfile.from_pb(reply.profile)


@strawberry.type
class PassportSubscription:
    @strawberry.subscription(description="Changes to your passport (entries, anchors, settings).")
    async def passport_updated(self, info: Info) -> AsyncGenerator[PassportUpdate, None]:
        info.context.require_token()
        stream = passport_client(info).watch_passport(pb.WatchPassportRequest())
        async for reply in rpc_stream(stream):
            u = reply.update
            yield PassportUpdate(
                passport_id=strawberry.ID(u.passport_id),
                kind=_enum_from(u.kind, pb.PassportUpdateKind, PassportUpdateKind),  # type: ignore[arg-type]
                entry=PassportEntry.from_pb(u.entry, _Scope()) if _on_wire(u.entry) else None,
                occurred_at=u.occurred_at,
            )

    @strawberry.subscription(description="Your entries as their anchors change on Keikochain.")
    async def interaction_anchored(self, info: Info) -> AsyncGenerator[PassportEntry, None]:
        info.context.require_token()
        stream = passport_client(info).watch_passport(pb.WatchPassportRequest())
        changed = pb.PassportUpdateKind.from_string("ENTRY_ANCHOR_CHANGED")
        async for reply in rpc_stream(stream):
            u = reply.update
            if u.kind == changed and _on_wire(u.entry):
                yield PassportEntry.from_pb(u.entry, _Scope())
