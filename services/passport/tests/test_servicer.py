"""The passport servicer over real gRPC: the status codes, field paths and reasons a
client gets, public and shared reads, verification, WatchPassport over the outbox ->
bus -> fanout path, and the composition factory with its background jobs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from nacl.signing import SigningKey

from chain.verify import InMemoryChainReader
from services.api.keiko.common import v1 as common
from services.api.keiko.passport import v1 as pb
from services.kit.auth import TokenIssuer
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.events import EventBus
from services.kit.events.fanout import EventFanout
from services.kit.events.outbox import OutboxRelay
from services.kit.grpc.client import stub
from services.kit.grpc.errors import field_violations
from services.kit.grpc.testing import access_token, running_server, token_pair
from services.passport.service import PassportService
from services.passport.servicer import PassportServicer
from services.passport.storage import anchors, entries, outbox
from services.passport.tests.conftest import consume
from services.passport.tests.factories import batch, interaction, recorded_event
from services.passport.tests.test_service import reader_factory
from services.passport.wiring import GrpcProofSource, build_passport_servicer

Stub = pb.PassportServiceStub
ANSWER = common.InteractionType.from_string("ANSWER")
QUESTION = common.InteractionType.from_string("QUESTION")


@dataclass
class Harness:
    channel: grpc.aio.Channel
    issuer: TokenIssuer
    service: PassportService
    relay: OutboxRelay
    fanout: EventFanout

    def client(self, user_id: str | None = None, *roles: str) -> Stub:
        token = access_token(self.issuer, user_id, *roles) if user_id else None
        return stub(Stub, self.channel, access_token=token)


@pytest.fixture
async def harness(
    service: PassportService, clock: FixedClock, event_bus: EventBus
) -> AsyncIterator[Harness]:
    issuer, verifier = token_pair(clock)
    fanout = EventFanout(event_bus, name="passport-test")
    servicer = PassportServicer(service, fanout, chain_id="0x4b45494b4f")
    try:
        async with running_server([servicer], token_verifier=verifier) as channel:
            yield Harness(
                channel, issuer, service, OutboxRelay(service.db, outbox, event_bus), fanout
            )
    finally:
        await fanout.close()


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


def disclosure(**kw: Any) -> pb.Disclosure:
    return pb.Disclosure(**{"show_scores": True, "show_content": True, **kw})


async def test_owner_public_and_private_reads(harness: Harness, ana_key: SigningKey) -> None:
    clock = harness.service.clock
    items = [interaction(ana_key, "ana", clock.now() + timedelta(minutes=i)) for i in range(3)]
    await consume(harness.service, *(recorded_event(i) for i in items))
    ana, ben, anonymous = harness.client("ana"), harness.client("ben"), harness.client()

    mine = (await ana.get_passport(pb.GetPassportRequest())).passport
    assert mine.owner_id == "ana" and mine.entry_count == 3
    assert mine.ed25519_public_key == items[0].public_key.hex()
    assert not mine.privacy_settings.public

    for client in (ben, anonymous):
        err = await rpc_error(client.get_passport(pb.GetPassportRequest(passport_id=mine.id)))
        assert err.code() == grpc.StatusCode.NOT_FOUND
        assert err.details() == f"no public passport {mine.id}"
    err = await rpc_error(anonymous.get_passport(pb.GetPassportRequest()))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    err = await rpc_error(anonymous.get_privacy_settings(pb.GetPrivacySettingsRequest()))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED

    settings = pb.PrivacySettings(
        public=True,
        public_disclosure=disclosure(),
        share_link_disclosure=disclosure(),
    )
    await ana.update_privacy_settings(pb.UpdatePrivacySettingsRequest(settings=settings))
    public = (await anonymous.get_passport(pb.GetPassportRequest(passport_id=mine.id))).passport
    assert public.owner_id == "" and public.entry_count == 3
    timeline = await anonymous.get_timeline(pb.GetTimelineRequest(passport_id=mine.id, page_size=2))
    [course] = timeline.groups
    assert course.level == pb.TimelineLevel.COURSE and course.id == "course-1"
    [klass] = course.children
    assert [e.statement_id for e in klass.entries] == [i.statement_id for i in items[:2]]
    assert klass.entries[0].score_scaled == pytest.approx(0.8)
    assert klass.entries[0].anchor.status == common.AnchorStatus.PENDING
    rest = await anonymous.get_timeline(
        pb.GetTimelineRequest(passport_id=mine.id, page_token=timeline.next_page_token)
    )
    assert rest.groups[0].children[0].entries[0].statement_id == items[2].statement_id
    assert rest.next_page_token == ""

    # Profile: owner only.
    profile = pb.LearningProfile(
        learning_style=pb.LearningStyle.from_string("VISUAL"),
        learning_style_scores=pb.LearningStyleScores(visual=80, auditory=20),
        strengths=[pb.Skill(domain="linear algebra", level=70, confidence=60)],
    )
    saved = await ana.update_learning_profile(pb.UpdateLearningProfileRequest(profile=profile))
    assert saved.profile.strengths[0].domain == "linear algebra"
    got = await ana.get_learning_profile(pb.GetLearningProfileRequest())
    assert got.profile.learning_style_scores.visual == 80
    err = await rpc_error(
        ben.get_learning_profile(pb.GetLearningProfileRequest(passport_id=mine.id))
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_bad_input_names_the_field(harness: Harness) -> None:
    ana = harness.client("ana")
    cases: list[tuple[Any, str, str]] = [
        (
            ana.get_timeline(pb.GetTimelineRequest(page_token="%%")),
            "page_token",
            "is not a page token of this list",
        ),
        (
            ana.get_timeline(pb.GetTimelineRequest(page_size=-1)),
            "page_size",
            "must not be negative",
        ),
        (
            ana.update_privacy_settings(
                pb.UpdatePrivacySettingsRequest(
                    settings=pb.PrivacySettings(public_disclosure=pb.Disclosure(show_content=True))
                )
            ),
            "settings.public_disclosure.show_content",
            "the statement content contains the scores: set show_scores too",
        ),
        (
            ana.update_privacy_settings(
                pb.UpdatePrivacySettingsRequest(
                    settings=pb.PrivacySettings(
                        share_link_disclosure=pb.Disclosure(interaction_types=[99])  # type: ignore[list-item]
                    )
                )
            ),
            "settings.share_link_disclosure.interaction_types[0]",
            "must be a known interaction type",
        ),
        (
            ana.update_learning_profile(
                pb.UpdateLearningProfileRequest(
                    profile=pb.LearningProfile(strengths=[pb.Skill(domain="x", level=101)])
                )
            ),
            "profile.strengths[0].level",
            "must be between 0 and 100",
        ),
        (
            ana.update_learning_profile(
                pb.UpdateLearningProfileRequest(
                    profile=pb.LearningProfile(learning_style=99)  # type: ignore[arg-type]
                )
            ),
            "profile.learning_style",
            "must be a known value",
        ),
        (
            ana.get_entry(pb.GetEntryRequest(statement_id="x" * 201)),
            "statement_id",
            "must be at most 200 characters",
        ),
        (
            ana.create_share_link(pb.CreateShareLinkRequest(label="l" * 201)),
            "label",
            "must be at most 200 characters",
        ),
        (
            ana.create_share_link(
                pb.CreateShareLinkRequest(scope=pb.Disclosure(show_identity=True))
            ),
            "scope",
            "reveals more than your share-link disclosure allows: widen that first",
        ),
    ]
    for call, field_path, reason in cases:
        err = await rpc_error(call)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (field_path, err.details())
        assert field_violations(err) == [(field_path, reason)]


async def test_share_links_over_grpc(harness: Harness, ana_key: SigningKey) -> None:
    clock = harness.service.clock
    assert isinstance(clock, FixedClock)
    answer = interaction(ana_key, "ana", clock.now())
    question = interaction(ana_key, "ana", clock.now() + timedelta(minutes=1), kind="question")
    await consume(harness.service, recorded_event(answer), recorded_event(question))
    ana, ben, anonymous = harness.client("ana"), harness.client("ben"), harness.client()

    err = await rpc_error(anonymous.create_share_link(pb.CreateShareLinkRequest()))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    created = await ana.create_share_link(
        pb.CreateShareLinkRequest(
            label="ACME",
            scope=disclosure(interaction_types=[ANSWER]),
            expires_at=clock.now() + timedelta(days=7),
            request_id="req-1",
        )
    )
    assert created.token and created.url.endswith(created.token)
    assert created.link.expires_at == clock.now() + timedelta(days=7)
    shared = await anonymous.get_shared_passport(pb.GetSharedPassportRequest(token=created.token))
    assert shared.passport.owner_id == "" and shared.passport.entry_count == 1
    assert [e.statement_id for e in shared.groups[0].children[0].entries] == [answer.statement_id]
    assert shared.expires_at == created.link.expires_at
    entry = await anonymous.get_entry(
        pb.GetEntryRequest(statement_id=answer.statement_id, share_token=created.token)
    )
    assert entry.entry.signature_hex == answer.signature.hex()
    err = await rpc_error(
        anonymous.get_entry(
            pb.GetEntryRequest(statement_id=question.statement_id, share_token=created.token)
        )
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND  # outside the link's scope

    err = await rpc_error(ben.revoke_share_link(pb.RevokeShareLinkRequest(link_id=created.link.id)))
    assert (err.code(), err.details()) == (
        grpc.StatusCode.NOT_FOUND,
        f"no share link {created.link.id}",
    )
    listed = await ana.list_share_links(pb.ListShareLinksRequest())
    assert [link.id for link in listed.links] == [created.link.id]
    assert listed.links[0].view_count == 1
    revoked = await ana.revoke_share_link(pb.RevokeShareLinkRequest(link_id=created.link.id))
    assert revoked.link.revoked_at == clock.now()
    err = await rpc_error(
        anonymous.get_shared_passport(pb.GetSharedPassportRequest(token=created.token))
    )
    assert (err.code(), err.details()) == (grpc.StatusCode.NOT_FOUND, "no such share link")
    assert (await ana.list_share_links(pb.ListShareLinksRequest())).links == []


async def test_verify_passport_and_entry(harness: Harness, ana_key: SigningKey) -> None:
    clock = harness.service.clock
    items = [interaction(ana_key, "ana", clock.now() + timedelta(minutes=i)) for i in range(3)]
    anchored = batch(items[:2])
    await consume(harness.service, *(recorded_event(i) for i in items), *anchored.events())
    # The chain knows the batch; one root is tampered in Keiko's database afterwards:
    # verification still reads the chain's root and reports the mismatch.
    chain = InMemoryChainReader([(anchored.batch_id, anchored.info(), anchored.tx_hash)])
    harness.service.chain_reader = reader_factory(chain)
    ana = harness.client("ana")
    created = await ana.create_share_link(pb.CreateShareLinkRequest())
    anonymous = harness.client()
    result = await anonymous.verify_passport(pb.VerifyPassportRequest(share_token=created.token))
    assert (result.verified_count, result.failed_count, result.pending_count) == (2, 0, 1)
    assert result.chain_id == "0x4b45494b4f"
    assert result.entries[0].verified and result.entries[0].tx_hash == hex(anchored.tx_hash)

    async with harness.service.db.transaction() as s:
        await s.execute(
            anchors.update()
            .where(anchors.c.record_id == items[0].statement_id)
            .values(root="0x1234")
        )
        await s.execute(
            entries.update()
            .where(entries.c.statement_id == items[1].statement_id)
            .values(statement_json=recorded_event(items[2]).payload["statement_json"])
        )
    one = await ana.verify_entry(pb.VerifyEntryRequest(statement_id=items[0].statement_id))
    v = one.verification
    assert not v.verified and v.signature_valid and not v.root_on_chain
    assert v.reason.startswith("batch root mismatch")
    two = await ana.verify_entry(pb.VerifyEntryRequest(statement_id=items[1].statement_id))
    assert not two.verification.signature_valid
    assert two.verification.reason.startswith("signature invalid")
    err = await rpc_error(anonymous.verify_entry(pb.VerifyEntryRequest(statement_id="x")))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_watch_passport_owner_only(harness: Harness, ana_key: SigningKey) -> None:
    ana, ben = harness.client("ana"), harness.client("ben")
    mine = (await ana.get_passport(pb.GetPassportRequest())).passport
    await ana.update_privacy_settings(
        pb.UpdatePrivacySettingsRequest(
            settings=pb.PrivacySettings(
                public=True, public_disclosure=disclosure(), share_link_disclosure=disclosure()
            )
        )
    )
    denied = ben.watch_passport(pb.WatchPassportRequest(passport_id=mine.id)).__aiter__()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await asyncio.wait_for(denied.__anext__(), 10)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    while await harness.relay.relay_once():
        pass

    # Two streams of the owner (two devices): the update is looked up once, sent to both.
    lookups: list[list[str]] = []
    entries_by_id = harness.service.entries_by_id

    async def counted(access: Any, ids: list[str]) -> Any:
        lookups.append(list(ids))
        return await entries_by_id(access, ids)

    harness.service.entries_by_id = counted  # type: ignore[method-assign,assignment]
    streams = [ana.watch_passport(pb.WatchPassportRequest()).__aiter__() for _ in range(2)]
    firsts = [asyncio.ensure_future(stream.__anext__()) for stream in streams]
    for _ in range(200):  # until both watchers are registered with the fanout
        if len(harness.fanout._watchers) == 2:
            break
        await asyncio.sleep(0.05)
    item = interaction(ana_key, "ana", harness.service.clock.now())
    await consume(harness.service, recorded_event(item))
    while await harness.relay.relay_once():
        pass
    for first in firsts:
        update = (await asyncio.wait_for(first, 10)).update
        assert update.passport_id == mine.id
        assert update.kind == pb.PassportUpdateKind.ENTRY_ADDED
        assert update.entry.statement_id == item.statement_id
    assert lookups == [[item.statement_id]]
    for stream in streams:
        await stream.aclose()  # type: ignore[attr-defined]


class NoProofs:
    async def siblings(self, domain: str, record_id: str) -> list[str]:
        raise AssertionError("no anchor events in this test")


@dataclass
class FakeRuntime:
    database: Database
    event_bus: EventBus
    clock: FixedClock
    fanout: EventFanout
    settings: Any = None
    jobs: dict[str, Any] = field(default_factory=dict)

    def run_in_background(self, name: str, job: Any) -> None:
        self.jobs[name] = job


async def test_factory_consumes_events_once(
    migrated_database: Database, clock: FixedClock, event_bus: EventBus, ana_key: SigningKey
) -> None:
    fanout = EventFanout(event_bus, name="factory-test")
    runtime = FakeRuntime(migrated_database, event_bus, clock, fanout)
    servicer = build_passport_servicer(
        runtime,
        chain_reader=reader_factory(InMemoryChainReader()),
        proof_source=NoProofs(),
        share_base_url="https://keiko.test",
    )
    assert set(runtime.jobs) == {
        "passport.outbox_relay",
        "passport.consumer",
        "passport.status_publisher",
    }
    stop = asyncio.Event()
    tasks = [asyncio.create_task(job(stop)) for job in runtime.jobs.values()]
    try:
        item = interaction(ana_key, "ana", clock.now())
        event = recorded_event(item)
        await event_bus.publish(event)
        await event_bus.publish(event)  # a redelivery: handled once
        for _ in range(200):
            async with migrated_database.session() as read:
                rows = (await read.execute(entries.select())).all()
            if rows:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the consumer never built the timeline")
        assert [r._mapping["statement_id"] for r in rows] == [item.statement_id]
        assert servicer.service.db is migrated_database
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 15)
        await fanout.close()


async def test_factory_defaults_from_settings(
    migrated_database: Database,
    clock: FixedClock,
    event_bus: EventBus,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from keiko.settings import Settings

    monkeypatch.delenv("KEIKO_PUBLIC_BASE_URL", raising=False)
    monkeypatch.delenv("KEIKO_CHAIN_RPC_URL", raising=False)
    fanout = EventFanout(event_bus, name="factory-defaults")
    settings = Settings(data_dir=tmp_path, http_port=8123, grpc_port=50999)
    runtime = FakeRuntime(migrated_database, event_bus, clock, fanout, settings=settings)
    try:
        servicer = build_passport_servicer(runtime)
        service = servicer.service
        # localhost, the name browsers accept passkeys for (and the default RP id).
        assert service.share_url("t") == "http://localhost:8123/verify/share/t"
        assert isinstance(service.proof_source, GrpcProofSource)
        assert service.proof_source.translator.target == "127.0.0.1:50999"
        assert service.chain_reader is not None
    finally:
        await fanout.close()
