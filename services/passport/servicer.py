"""The keiko.passport.v1.PassportService gRPC servicer: decode, authorize, call, encode.

Public RPCs (no access token): GetSharedPassport, GetPassport, GetPassportVersion,
GetTimeline, GetEntry, VerifyEntry and VerifyPassport; without a token they only reach
public passports or go through a share token (see :mod:`services.passport.service`).
WatchPassport: owner only.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import betterproto
import grpc

from chain.translator.authors import AuthorKind
from chain.verify import AsyncChainReader
from services.api.keiko.common import v1 as common
from services.api.keiko.passport import v1 as pb
from services.kit import tracing
from services.kit.auth import TokenIssuer, current_principal, optional_principal
from services.kit.clock import Clock
from services.kit.errors import PermissionDenied, ValidationError
from services.kit.events import Event, EventBus
from services.kit.events.dedupe import (
    Deduplicator,
    handle_once,
    handle_page_once,
    run_page_consumer,
)
from services.kit.events.fanout import EventFanout
from services.kit.events.outbox import OutboxRelay
from services.kit.logging import get_logger
from services.kit.runtime import BackgroundJob, ServiceRuntime
from services.passport.credentials.service import CredentialService
from services.passport.credentials.servicer import CREDENTIAL_PUBLIC_METHODS, CredentialsServicer
from services.passport.credentials.signing import SERVICE_PRINCIPAL, TranslatorSigning
from services.passport.domain import (
    FULL,
    INTERACTION_TYPES,
    LEARNING_STYLES,
    Disclosure,
    Entry,
    Group,
    Level,
    PrivacySettings,
    as_utc,
    group_entries,
    page_size,
)
from services.passport.service import (
    CONSUMED_TOPICS,
    ENTRY_ADDED,
    ENTRY_ANCHOR_CHANGED,
    PRIVACY_UPDATED,
    PROFILE_UPDATED,
    TOPIC_PASSPORT_UPDATED,
    Access,
    ChainReaderFactory,
    PassportService,
    ProofSource,
    ShareLink,
    TimelineFilter,
    Verification,
)
from services.passport.storage import outbox, processed_events

log = get_logger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CONSUMER_GROUP = "passport"

_TYPE_TO_PB = {name: common.InteractionType.from_string(name.upper()) for name in INTERACTION_TYPES}
_TYPE_FROM_PB = {int(v): k for k, v in _TYPE_TO_PB.items()}
_STATUS_TO_PB: dict[str, common.AnchorStatus] = {
    name: common.AnchorStatus.from_string(name.upper())
    for name in ("pending", "anchored", "failed")
}
_LEVEL_TO_PB: dict[Level, pb.TimelineLevel] = {
    level: pb.TimelineLevel.from_string(level.name) for level in Level
}
_KIND_TO_PB: dict[str, pb.PassportUpdateKind] = {
    kind: pb.PassportUpdateKind.from_string(kind.upper())
    for kind in (ENTRY_ADDED, ENTRY_ANCHOR_CHANGED, PROFILE_UPDATED, PRIVACY_UPDATED)
}
_NO_KIND = pb.PassportUpdateKind.from_string("UNSPECIFIED")
# Recent events whose passport updates are kept for the streams still to send them.
_SHARED_UPDATES = 256
_PREFERENCE_ENUMS: dict[str, type[betterproto.Enum]] = {
    "pace": pb.PacePreference,
    "interaction_style": pb.InteractionStyle,
    "feedback_frequency": pb.FeedbackFrequency,
    "difficulty_progression": pb.DifficultyProgression,
}


def _time(value: datetime | None) -> datetime | None:
    if value is None or as_utc(value) == _EPOCH:
        return None
    return as_utc(value)


# -- decoding ---------------------------------------------------------------------------


def interaction_types_from_pb(values: list[common.InteractionType], field: str) -> list[str]:
    out = []
    for i, value in enumerate(values):
        name = _TYPE_FROM_PB.get(int(value))
        if name is None:
            raise ValidationError(f"{field}[{i}]", "must be a known interaction type")
        out.append(name)
    return out


def disclosure_from_pb(message: pb.Disclosure, field: str) -> Disclosure:
    return Disclosure.build(
        field,
        interaction_types_from_pb(list(message.interaction_types), f"{field}.interaction_types"),
        list(message.course_ids),
        message.show_scores,
        message.show_identity,
        message.show_content,
    )


def privacy_from_pb(message: pb.PrivacySettings) -> PrivacySettings:
    return PrivacySettings(
        bool(message.public),
        disclosure_from_pb(message.public_disclosure, "settings.public_disclosure"),
        disclosure_from_pb(message.share_link_disclosure, "settings.share_link_disclosure"),
    )


def _enum_name(value: betterproto.Enum, enum: type[betterproto.Enum], field: str) -> str:
    try:
        member = enum(int(value))
    except ValueError:
        raise ValidationError(field, "must be a known value") from None
    return "" if int(member) == 0 else str(member.name).lower()


def profile_from_pb(message: pb.LearningProfile) -> dict[str, Any]:
    scores = message.learning_style_scores
    prefs = message.preferences
    return {
        "learning_style": _enum_name(
            message.learning_style, pb.LearningStyle, "profile.learning_style"
        ),
        "learning_style_scores": {
            "visual": scores.visual,
            "auditory": scores.auditory,
            "reading_writing": scores.reading_writing,
            "kinesthetic": scores.kinesthetic,
        },
        "preferences": {
            key: _enum_name(getattr(prefs, key), enum, f"profile.preferences.{key}")
            for key, enum in _PREFERENCE_ENUMS.items()
        },
        "strengths": [_skill_json(s) for s in message.strengths],
        "areas_for_improvement": [_skill_json(s) for s in message.areas_for_improvement],
        "last_assessment": _iso(_time(message.last_assessment)),
    }


def _skill_json(skill: pb.Skill) -> dict[str, Any]:
    return {
        "domain": skill.domain,
        "level": skill.level,
        "confidence": skill.confidence,
        "last_updated": _iso(_time(skill.last_updated)),
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


# -- encoding ---------------------------------------------------------------------------


def disclosure_to_pb(d: Disclosure) -> pb.Disclosure:
    return pb.Disclosure(
        interaction_types=[_TYPE_TO_PB[t] for t in sorted(d.interaction_types or ())],
        course_ids=sorted(d.course_ids or ()),
        show_scores=d.show_scores,
        show_identity=d.show_identity,
        show_content=d.show_content,
    )


def privacy_to_pb(p: PrivacySettings) -> pb.PrivacySettings:
    return pb.PrivacySettings(
        public=p.public,
        public_disclosure=disclosure_to_pb(p.public_disclosure),
        share_link_disclosure=disclosure_to_pb(p.share_link_disclosure),
    )


def _parse_time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def profile_to_pb(profile: dict[str, Any]) -> pb.LearningProfile:
    def skill(s: dict[str, Any]) -> pb.Skill:
        message = pb.Skill(domain=s["domain"], level=s["level"], confidence=s["confidence"])
        when = _parse_time(s.get("last_updated"))
        if when is not None:
            message.last_updated = when
        return message

    style = profile.get("learning_style") or ""
    scores = profile.get("learning_style_scores") or {}
    prefs = profile.get("preferences") or {}
    learning_style = pb.LearningStyle(0)
    if style in LEARNING_STYLES:
        learning_style = pb.LearningStyle.from_string(style.upper())
    message = pb.LearningProfile(
        learning_style=learning_style,
        learning_style_scores=pb.LearningStyleScores(
            **{
                k: int(scores.get(k, 0))
                for k in ("visual", "auditory", "reading_writing", "kinesthetic")
            }
        ),
        preferences=pb.LearningPreferences(
            **{
                key: enum.from_string(prefs[key].upper()) if prefs.get(key) else enum(0)
                for key, enum in _PREFERENCE_ENUMS.items()
            }
        ),
        strengths=[skill(s) for s in profile.get("strengths") or []],
        areas_for_improvement=[skill(s) for s in profile.get("areas_for_improvement") or []],
    )
    when = _parse_time(profile.get("last_assessment"))
    if when is not None:
        message.last_assessment = when
    return message


def anchor_to_pb(entry: Entry) -> common.AnchorState:
    a = entry.anchor
    status = a.status.value
    if status == "anchored" and a.proof is None:
        status = "pending"  # anchored, but its inclusion proof is not here yet
    message = common.AnchorState(
        status=_STATUS_TO_PB[status],
        batch_id=a.batch_id,
        merkle_root=a.root,
        leaf_index=a.leaf_index,
        block_number=a.block,
        tx_hash=a.tx_hash,
        failure_reason=a.failure_reason,
    )
    if a.anchored_at is not None and status == "anchored":
        message.anchored_at = a.anchored_at
    return message


_AUTHOR_KIND_TO_PB = {kind: pb.AuthorKind.from_string(kind.name) for kind in AuthorKind}


def author_to_pb(entry: Entry, disclosure: Disclosure) -> pb.EntryAuthor:
    author = entry.author(disclosure.show_identity)
    return pb.EntryAuthor(
        kind=_AUTHOR_KIND_TO_PB[author.kind],
        id=author.id,
        display_name=author.display_name,
        public_key_hex=author.public_key.hex(),
        legacy=entry.legacy,
        label=entry.author_label(disclosure.show_identity),
    )


def entry_to_pb(entry: Entry, disclosure: Disclosure) -> pb.PassportEntry:
    message = pb.PassportEntry(
        statement_id=entry.statement_id,
        interaction_type=_TYPE_TO_PB.get(entry.interaction_type, common.InteractionType(0)),
        summary=entry.summary(disclosure.show_scores),
        timestamp=entry.timestamp,
        statement_json=entry.statement_json if disclosure.show_content else "",
        signature_hex=entry.signature_hex,
        public_key_hex=entry.public_key_hex,
        anchor=anchor_to_pb(entry),
        proof_leaf=entry.anchor.leaf,
        proof=list(entry.anchor.proof or ()),
        author=author_to_pb(entry, disclosure),
    )
    score = entry.score_scaled() if disclosure.show_scores else None
    if score is not None:
        message.score_scaled = score
    return message


def group_to_pb(group: Group, disclosure: Disclosure) -> pb.TimelineGroup:
    return pb.TimelineGroup(
        level=_LEVEL_TO_PB[group.level],
        id=group.id,
        title=group.title,
        children=[group_to_pb(g, disclosure) for g in group.children],
        entries=[entry_to_pb(e, disclosure) for e in group.entries],
    )


def link_to_pb(link: ShareLink) -> pb.ShareLink:
    message = pb.ShareLink(
        id=link.id,
        label=link.label,
        scope=disclosure_to_pb(link.scope),
        created_at=link.created_at,
        view_count=link.view_count,
    )
    if link.expires_at is not None:
        message.expires_at = link.expires_at
    if link.revoked_at is not None:
        message.revoked_at = link.revoked_at
    return message


def verification_to_pb(v: Verification) -> pb.EntryVerification:
    return pb.EntryVerification(
        statement_id=v.statement_id,
        signature_valid=v.signature_valid,
        inclusion_valid=v.inclusion_valid,
        root_on_chain=v.root_on_chain,
        verified=v.verified,
        reason=v.reason,
        block_number=v.block,
        tx_hash=v.tx_hash,
        key_holder=v.key_holder,
        key_registration=v.key_registration,
        key_custody=v.key_custody,
        key_registered_block=v.key_registered_block,
    )


class PassportServicer(CredentialsServicer, pb.PassportServiceBase):
    public_methods = frozenset(
        {
            "GetSharedPassport",
            "GetPassport",
            "GetPassportVersion",
            "GetTimeline",
            "GetEntry",
            "VerifyEntry",
            "VerifyPassport",
            *CREDENTIAL_PUBLIC_METHODS,
        }
    )

    def __init__(
        self,
        service: PassportService,
        fanout: EventFanout | None = None,
        chain_id: str = "",
        credentials: CredentialService | None = None,
    ) -> None:
        self.service = service
        self.fanout = fanout
        self.chain_id = chain_id
        # The update an event makes for a passport, built once and shared by every stream
        # watching that passport (its owner's devices and tabs): one lookup, not one each.
        self._updates: OrderedDict[tuple[str, str], asyncio.Future[pb.WatchPassportResponse]]
        self._updates = OrderedDict()
        self.credentials = credentials or CredentialService(
            service, None, public_base_url=service.share_base_url
        )

    async def _passport_pb(self, access: Access) -> pb.Passport:
        p = access.passport
        show_identity = access.is_owner or access.disclosure.show_identity
        message = pb.Passport(
            id=p.id,
            owner_id=p.owner_id if show_identity else "",
            owner_display_name=(
                await self.service.owner_display_name(p.owner_id) if show_identity else ""
            ),
            ed25519_public_key=p.public_key_hex,
            entry_count=await self.service.entry_count(access),
            created_at=p.created_at,
            updated_at=p.updated_at,
        )
        if access.is_owner:
            if p.profile is not None:
                message.learning_profile = profile_to_pb(p.profile)
            message.privacy_settings = privacy_to_pb(p.privacy)
        return message

    async def get_passport(
        self, get_passport_request: pb.GetPassportRequest
    ) -> pb.GetPassportResponse:
        access = await self.service.access(optional_principal(), get_passport_request.passport_id)
        return pb.GetPassportResponse(passport=await self._passport_pb(access))

    async def get_passport_version(
        self, get_passport_version_request: pb.GetPassportVersionRequest
    ) -> pb.GetPassportVersionResponse:
        # Resolved exactly as GetPassport and GetTimeline resolve the viewer's access: the
        # answer is NOT_FOUND whenever they would be.
        access = await self.service.access(
            optional_principal(), get_passport_version_request.passport_id
        )
        return pb.GetPassportVersionResponse(
            passport_id=access.passport.id, version=access.passport.version
        )

    async def get_timeline(
        self, get_timeline_request: pb.GetTimelineRequest
    ) -> pb.GetTimelineResponse:
        r = get_timeline_request
        access = await self.service.access(optional_principal(), r.passport_id)
        since, until = _time(r.since), _time(r.until)
        if since is not None and until is not None and until <= since:
            raise ValidationError("until", "must be after since")
        filters = TimelineFilter(
            course_id=r.course_id.strip(),
            interaction_types=frozenset(
                interaction_types_from_pb(list(r.interaction_types), "interaction_types")
            ),
            since=since,
            until=until,
        )
        found, token = await self.service.entry_page(
            access, filters, page_size(r.page_size), r.page_token
        )
        return pb.GetTimelineResponse(
            groups=[group_to_pb(g, access.disclosure) for g in group_entries(found)],
            next_page_token=token,
        )

    async def get_entry(self, get_entry_request: pb.GetEntryRequest) -> pb.GetEntryResponse:
        r = get_entry_request
        entry, disclosure = await self._entry(r.statement_id, r.share_token)
        return pb.GetEntryResponse(entry=entry_to_pb(entry, disclosure))

    async def _entry(self, statement_id: str, token: str) -> tuple[Entry, Disclosure]:
        if token:
            access = await self.service.share_access(token, count_view=False)
            return await self.service.entry(access, statement_id), access.disclosure
        entry = await self.service.entry_for(optional_principal(), statement_id, "")
        return entry, FULL

    async def get_learning_profile(
        self, get_learning_profile_request: pb.GetLearningProfileRequest
    ) -> pb.GetLearningProfileResponse:
        caller = current_principal()
        access = await self.service.access(caller, get_learning_profile_request.passport_id)
        if not access.is_owner:
            raise PermissionDenied("only the owner sees the learning profile")
        profile = access.passport.profile
        return pb.GetLearningProfileResponse(
            profile=profile_to_pb(profile) if profile is not None else pb.LearningProfile()
        )

    async def update_learning_profile(
        self, update_learning_profile_request: pb.UpdateLearningProfileRequest
    ) -> pb.UpdateLearningProfileResponse:
        caller = current_principal()
        profile = profile_from_pb(update_learning_profile_request.profile)
        saved = await self.service.update_profile(caller, profile)
        return pb.UpdateLearningProfileResponse(profile=profile_to_pb(saved))

    async def get_privacy_settings(
        self, get_privacy_settings_request: pb.GetPrivacySettingsRequest
    ) -> pb.GetPrivacySettingsResponse:
        passport = await self.service.own_passport(current_principal())
        return pb.GetPrivacySettingsResponse(settings=privacy_to_pb(passport.privacy))

    async def update_privacy_settings(
        self, update_privacy_settings_request: pb.UpdatePrivacySettingsRequest
    ) -> pb.UpdatePrivacySettingsResponse:
        caller = current_principal()
        settings = privacy_from_pb(update_privacy_settings_request.settings)
        saved = await self.service.update_privacy(caller, settings)
        return pb.UpdatePrivacySettingsResponse(settings=privacy_to_pb(saved))

    async def create_share_link(
        self, create_share_link_request: pb.CreateShareLinkRequest
    ) -> pb.CreateShareLinkResponse:
        caller = current_principal()
        r = create_share_link_request
        scope = (
            disclosure_from_pb(r.scope, "scope")
            if betterproto.serialized_on_wire(r.scope)
            else None
        )
        created = await self.service.create_link(
            caller, r.label, scope, _time(r.expires_at), r.request_id
        )
        return pb.CreateShareLinkResponse(
            link=link_to_pb(created.link), token=created.token, url=created.url
        )

    async def revoke_share_link(
        self, revoke_share_link_request: pb.RevokeShareLinkRequest
    ) -> pb.RevokeShareLinkResponse:
        link = await self.service.revoke_link(
            current_principal(), revoke_share_link_request.link_id
        )
        return pb.RevokeShareLinkResponse(link=link_to_pb(link))

    async def list_share_links(
        self, list_share_links_request: pb.ListShareLinksRequest
    ) -> pb.ListShareLinksResponse:
        r = list_share_links_request
        links, token = await self.service.list_links(
            current_principal(), r.include_inactive, page_size(r.page_size), r.page_token
        )
        return pb.ListShareLinksResponse(
            links=[link_to_pb(link) for link in links], next_page_token=token
        )

    async def get_shared_passport(
        self, get_shared_passport_request: pb.GetSharedPassportRequest
    ) -> pb.GetSharedPassportResponse:
        r = get_shared_passport_request
        access = await self.service.share_access(r.token, count_view=not r.page_token)
        found, token = await self.service.entry_page(
            access, TimelineFilter(), page_size(r.page_size), r.page_token
        )
        message = pb.GetSharedPassportResponse(
            passport=await self._passport_pb(access),
            groups=[group_to_pb(g, access.disclosure) for g in group_entries(found)],
            next_page_token=token,
        )
        assert access.link is not None
        if access.link.expires_at is not None:
            message.expires_at = access.link.expires_at
        return message

    async def verify_entry(
        self, verify_entry_request: pb.VerifyEntryRequest
    ) -> pb.VerifyEntryResponse:
        r = verify_entry_request
        entry, disclosure = await self._entry(r.statement_id, r.share_token)
        [result] = await self.service.verify_entries([entry], disclosure.show_identity)
        return pb.VerifyEntryResponse(verification=verification_to_pb(result))

    async def verify_passport(
        self, verify_passport_request: pb.VerifyPassportRequest
    ) -> pb.VerifyPassportResponse:
        r = verify_passport_request
        access = await self.service.access(optional_principal(), r.passport_id, r.share_token)
        found, token = await self.service.entry_page(
            access, TimelineFilter(), page_size(r.page_size), r.page_token
        )
        results = await self.service.verify_entries(found, access.disclosure.show_identity)
        statuses = [v.status.value for v in results]
        return pb.VerifyPassportResponse(
            entries=[verification_to_pb(v) for v in results],
            verified_count=statuses.count("verified"),
            failed_count=statuses.count("failed"),
            pending_count=statuses.count("unanchored"),
            next_page_token=token,
            chain_id=self.chain_id,
        )

    async def watch_passport(
        self, watch_passport_request: pb.WatchPassportRequest
    ) -> AsyncIterator[pb.WatchPassportResponse]:
        caller = current_principal()
        access = await self.service.access(caller, watch_passport_request.passport_id)
        if not access.is_owner:
            raise PermissionDenied("only the owner may watch a passport")
        if self.fanout is None:
            raise RuntimeError("WatchPassport needs the process's event fanout")
        passport_id = access.passport.id

        def mine(event: Event) -> bool:
            return (
                event.topic == TOPIC_PASSPORT_UPDATED
                and event.payload.get("passport_id") == passport_id
                and event.payload.get("owner_id") == caller.user_id
            )

        async with self.fanout.listen([TOPIC_PASSPORT_UPDATED], mine) as events:
            async for event in events:
                yield await self._update(event, access)

    async def _update(self, event: Event, access: Access) -> pb.WatchPassportResponse:
        """The owner's update for ``event`` (the same for all the owner's streams: only
        owners watch), made by the first stream to ask and awaited by the others."""
        key = (event.id, access.passport.id)
        pending = self._updates.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._build_update(event, access))
            self._updates[key] = pending
            while len(self._updates) > _SHARED_UPDATES:
                self._updates.popitem(last=False)
        # Shielded: a stream that goes away does not cancel the others' update.
        return await asyncio.shield(pending)

    async def _build_update(self, event: Event, access: Access) -> pb.WatchPassportResponse:
        with tracing.event_span(
            "WatchPassport update",
            event.traceparent,
            tracing.SpanKind.INTERNAL,
            event.topic,
            "process",
        ):
            return await self._make_update(event, access)

    async def _make_update(self, event: Event, access: Access) -> pb.WatchPassportResponse:
        kind = str(event.payload.get("kind", ""))
        update = pb.PassportUpdated(
            passport_id=access.passport.id,
            kind=_KIND_TO_PB.get(kind, _NO_KIND),
            occurred_at=event.occurred_at,
        )
        statement_id = str(event.payload.get("statement_id") or "")
        if statement_id:
            found = await self.service.entries_by_id(access, [statement_id])
            if found:
                update.entry = entry_to_pb(found[0], FULL)
        return pb.WatchPassportResponse(update=update)


# -- composition ----------------------------------------------------------------------------


def chain_reader_factory(rpc_url: str, deployment: Path | str) -> ChainReaderFactory:
    """Readers over the anchoring contract at ``rpc_url`` (read-only: no account used)."""
    from chain.verify.cli import anchor_reader

    def factory() -> AbstractAsyncContextManager[AsyncChainReader]:
        return anchor_reader(rpc_url, deployment=deployment)

    return factory


class GrpcProofSource:
    """Inclusion proofs from the translator's public GetInclusionProof (one channel,
    opened on first use)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._channel: grpc.aio.Channel | None = None

    async def siblings(self, domain: str, record_id: str) -> list[str]:
        from services.api.keiko.chain import v1 as chain_pb
        from services.kit.grpc.client import open_channel, stub

        if self._channel is None:
            self._channel = open_channel(self.target)
        client = stub(chain_pb.ChainServiceStub, self._channel)
        reply = await client.get_inclusion_proof(
            chain_pb.GetInclusionProofRequest(
                domain=chain_pb.AnchorDomain.from_string(domain.upper()), record_id=record_id
            ),
            timeout=10,
        )
        return list(reply.proof.siblings)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None


def build_passport_servicer(
    runtime: ServiceRuntime,
    *,
    chain_reader: ChainReaderFactory | None = None,
    proof_source: ProofSource | None = None,
    share_base_url: str | None = None,
) -> PassportServicer:
    """Composition-root factory: the servicer plus its background jobs (outbox relay and
    the consumer of learning and chain events). Verification uses ``chain_reader``, by
    default the anchoring contract at ``settings.chain_rpc_url`` (or the embedded node's
    URL) with ``KEIKO_CHAIN_DEPLOYMENT_FILE`` or ``<data dir>/chain/deployment.json`` (as
    the translator); share-link URLs start with ``settings.public_gateway_url``
    (``KEIKO_PUBLIC_BASE_URL``, default ``http://localhost:<http port>``); proofs missing
    from anchor events come from the translator (:func:`translator_target`)."""
    settings = runtime.settings
    default_reader = chain_reader is None
    if chain_reader is None:
        from chain.translator.ports import chain_config_from_env

        config = chain_config_from_env(
            data_dir=settings.data_dir,
            rpc_url=settings.chain_rpc_url,
            node_host=settings.chain_node_host,
            node_port=settings.chain_node_port,
        )
        chain_reader = chain_reader_factory(config.rpc_url, config.deployment_file)
    if proof_source is None:
        proof_source = GrpcProofSource(translator_target(settings))
    base = share_base_url or settings.public_gateway_url
    service = PassportService(
        runtime.database,
        runtime.clock,
        share_base_url=base,
        chain_reader=chain_reader,
        proof_source=proof_source,
        # The default reader opens its own connection per use: safe on a worker thread.
        verify_in_thread=default_reader,
    )
    relay = OutboxRelay(runtime.database, outbox, runtime.event_bus, clock=runtime.clock)
    service.on_commit.append(relay.notify)
    runtime.run_in_background("passport.outbox_relay", relay.run)
    credentials = CredentialService(service, credential_signing(runtime), public_base_url=base)
    service.on_commit.append(credentials.notify)
    runtime.run_in_background("passport.status_publisher", credentials.publisher)
    runtime.run_in_background(
        "passport.consumer", consumer_job(service, runtime.event_bus, runtime.clock, relay)
    )
    return PassportServicer(service, runtime.fanout, credentials=credentials)


def credential_signing(runtime: ServiceRuntime) -> TranslatorSigning | None:
    """The translator's SignCredential with the passport's own service token, minted with
    the platform's JWT key; None (issuing answers UNAVAILABLE) in a process without it."""
    private_pem: bytes | None = getattr(runtime, "jwt_private_key_pem", None)
    if private_pem is None:
        return None
    issuer = TokenIssuer(private_pem, runtime.clock, timedelta(minutes=5))
    return TranslatorSigning(
        translator_target(runtime.settings), lambda: issuer.issue(SERVICE_PRINCIPAL).token
    )


def translator_target(settings: Any) -> str:
    """Where the chain translator answers: ``chain_translator_target`` (its replicas, when
    it runs apart), else this platform's own gRPC target."""
    return str(getattr(settings, "chain_translator_target", "") or settings.gateway_target)


def consumer_job(
    service: PassportService, bus: EventBus, clock: Clock, relay: OutboxRelay | None = None
) -> BackgroundJob:
    """Consume learning and chain events into the timeline, each event once in effect."""
    dedupe = Deduplicator(processed_events, group=CONSUMER_GROUP, clock=clock)

    async def on_event(event: Event) -> None:
        prepared = await service.prepare_event(event)
        if await handle_once(service.db, dedupe, prepared, service.handle_event) and relay:
            relay.notify()

    async def on_page(events: list[Event]) -> None:
        prepared = [await service.prepare_event(event) for event in events]
        if await handle_page_once(service.db, dedupe, prepared, service.handle_event) and relay:
            relay.notify()

    async def run(stop: asyncio.Event) -> None:
        subscription = bus.subscribe(
            list(CONSUMED_TOPICS),
            group=CONSUMER_GROUP,
            consumer=f"{socket.gethostname()}-{os.getpid()}",
            start="earliest",
        )
        consumer = asyncio.create_task(run_page_consumer(subscription, on_page, on_event))
        await stop.wait()
        await subscription.close()
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)

    return run
