"""The keiko.passport.v1.PassportService gRPC servicer: decode, authorize, call, encode.

Public RPCs (no access token): GetSharedPassport, GetPassport, GetPassportVersion,
GetTimeline, GetEntry, VerifyEntry and VerifyPassport; without a token they only reach
public passports or go through a share token (see :mod:`services.passport.service`).
WatchPassport: owner only.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator

import betterproto

from services.api.keiko.passport import v1 as pb
from services.kit import tracing
from services.kit.auth import current_principal, optional_principal
from services.kit.errors import PermissionDenied, ValidationError
from services.kit.events import Event
from services.kit.events.fanout import EventFanout
from services.kit.paging import page_size
from services.passport.credentials.service import CredentialService
from services.passport.credentials.servicer import CREDENTIAL_PUBLIC_METHODS, CredentialsServicer
from services.passport.domain import (
    FULL,
    MAX_PAGE,
    Disclosure,
    Entry,
    Statements,
    group_entries,
)
from services.passport.messages import (
    disclosure_from_pb,
    entry_to_pb,
    group_to_pb,
    interaction_types_from_pb,
    link_to_pb,
    privacy_from_pb,
    privacy_to_pb,
    profile_from_pb,
    profile_to_pb,
    time_from_pb,
    verification_to_pb,
)
from services.passport.service import (
    ENTRY_ADDED,
    ENTRY_ANCHOR_CHANGED,
    PRIVACY_UPDATED,
    PROFILE_UPDATED,
    TOPIC_PASSPORT_UPDATED,
    Access,
    PassportService,
    TimelineFilter,
)
from services.passport.timeline_json import groups_json

_KIND_TO_PB: dict[str, pb.PassportUpdateKind] = {
    kind: pb.PassportUpdateKind.from_string(kind.upper())
    for kind in (ENTRY_ADDED, ENTRY_ANCHOR_CHANGED, PROFILE_UPDATED, PRIVACY_UPDATED)
}


_NO_KIND = pb.PassportUpdateKind.from_string("UNSPECIFIED")
# Recent events whose passport updates are kept for the streams still to send them.
_SHARED_UPDATES = 256


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
        count, owner_name = await self.service.count_and_owner_name(access, show_identity)
        message = pb.Passport(
            id=p.id,
            owner_id=p.owner_id if show_identity else "",
            owner_display_name=owner_name,
            ed25519_public_key=p.public_key_hex,
            entry_count=count,
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
        since, until = time_from_pb(r.since), time_from_pb(r.until)
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
            access, filters, page_size(r.page_size, maximum=MAX_PAGE), r.page_token
        )
        statements = Statements()
        groups = group_entries(found, statements)
        if r.groups_json:
            return pb.GetTimelineResponse(
                groups_json=groups_json(groups, access.disclosure, statements),
                next_page_token=token,
            )
        return pb.GetTimelineResponse(
            groups=[group_to_pb(g, access.disclosure, statements) for g in groups],
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
            caller, r.label, scope, time_from_pb(r.expires_at), r.request_id
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
            current_principal(),
            r.include_inactive,
            page_size(r.page_size, maximum=MAX_PAGE),
            r.page_token,
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
            access, TimelineFilter(), page_size(r.page_size, maximum=MAX_PAGE), r.page_token
        )
        statements = Statements()
        groups = group_entries(found, statements)
        message = pb.GetSharedPassportResponse(
            passport=await self._passport_pb(access), next_page_token=token
        )
        if r.groups_json:
            message.groups_json = groups_json(groups, access.disclosure, statements)
        else:
            message.groups = [group_to_pb(g, access.disclosure, statements) for g in groups]
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
            access, TimelineFilter(), page_size(r.page_size, maximum=MAX_PAGE), r.page_token
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
