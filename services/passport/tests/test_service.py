"""The passport service on both engines: timeline from events, access rules, share
links on a fixed clock, privacy filtering, export and verification against a chain
reader (roots from the reader, never from the passport database)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from nacl.signing import SigningKey
from sqlalchemy import func, select

from chain.translator.authors import subject_of
from chain.verify import (
    AnchorTransaction,
    AsyncChainReader,
    BatchInfo,
    InMemoryChainReader,
    KeyInfo,
    verify_passport,
)
from services.kit.clock import FixedClock
from services.kit.errors import FailedPrecondition, NotFound, Unauthenticated, ValidationError
from services.kit.events import Event
from services.kit.races import twin_calls
from services.passport.domain import FULL, Disclosure, Level, PrivacySettings, group_entries
from services.passport.service import Access, ChainReaderFactory, PassportService, TimelineFilter
from services.passport.storage import share_links
from services.passport.tests.conftest import ANA, BEN, consume
from services.passport.tests.factories import (
    Interaction,
    batch,
    interaction,
    minutes,
    reader_for,
    recorded_event,
)
from services.passport.verification_cache import VerifiedEntries


class AsyncReader:
    """The in-memory reader behind the async protocol the service uses."""

    def __init__(self, inner: InMemoryChainReader) -> None:
        self.inner = inner

    async def is_root_anchored(self, root: int) -> bool:
        return self.inner.is_root_anchored(root)

    async def get_batch(self, batch_id: int) -> BatchInfo | None:
        return self.inner.get_batch(batch_id)

    async def anchor_transaction(self, tx_hash: int) -> AnchorTransaction | None:
        return self.inner.anchor_transaction(tx_hash)

    async def key_binding(self, public_key: bytes) -> KeyInfo | None:
        return self.inner.key_binding(public_key)


def reader_factory(inner: InMemoryChainReader) -> ChainReaderFactory:
    @asynccontextmanager
    async def factory() -> AsyncIterator[AsyncChainReader]:
        yield AsyncReader(inner)

    return factory


async def record(
    service: PassportService, key: SigningKey, n: int, learner: str = "ana", **kw: object
) -> list[Interaction]:
    items = []
    clock = service.clock
    assert isinstance(clock, FixedClock)
    for _ in range(n):
        item = interaction(key, learner, clock.now(), **kw)  # type: ignore[arg-type]
        clock.advance(minutes(1))
        items.append(item)
        assert await consume(service, recorded_event(item)) == [True]
    return items


async def own(service: PassportService) -> Access:
    return await service.access(ANA)


async def test_timeline_from_events_grouped_and_idempotent(
    service: PassportService, ana_key: SigningKey, clock: FixedClock
) -> None:
    in_session = await record(service, ana_key, 2, session_id="tut-1")
    other_class = await record(service, ana_key, 1, class_id="class-2")
    loose = await record(service, ana_key, 1, course_id="", class_id="")
    # Redelivery of the same events changes nothing.
    assert await consume(service, recorded_event(in_session[0])) == [True]  # new event id
    again = recorded_event(loose[0])
    assert await consume(service, again, again) == [True, False]

    access = await own(service)
    found, token = await service.entry_page(access)
    assert token == ""
    assert [e.statement_id for e in found] == [
        i.statement_id for i in in_session + other_class + loose
    ]
    groups = group_entries(found)
    assert [(g.level, g.id) for g in groups] == [(Level.COURSE, "course-1"), (Level.UNGROUPED, "")]
    course = groups[0]
    assert [(c.level, c.id) for c in course.children] == [
        (Level.CLASS, "class-1"),
        (Level.CLASS, "class-2"),
    ]
    session = course.children[0].children[0]
    assert (session.level, session.id) == (Level.TUTORIAL_SESSION, "tut-1")
    assert [e.statement_id for e in session.entries] == [i.statement_id for i in in_session]
    assert found[0].summary(True) == "answered Question 3 (0.8)"
    assert found[0].anchor.status.value == "pending"
    assert await service.entry_count(access) == 4


async def test_groups_are_titled_by_the_signed_statements(
    service: PassportService, ana_key: SigningKey
) -> None:
    """Group headings name the course, class and session, as the statements' context
    (signed, so verifiable) names them; a group no statement names keeps its id."""
    titles = {"course": "Linear Algebra", "class": "Class 2: Matrices", "tutorial-session": "Rank"}
    await record(service, ana_key, 1, session_id="tut-1", titles=titles)
    await record(service, ana_key, 1, course_id="course-2", class_id="class-9")
    found, _ = await service.entry_page(await own(service))
    named, unnamed = group_entries(found)
    assert named.title == "Linear Algebra"
    assert named.children[0].title == "Class 2: Matrices"
    assert named.children[0].children[0].title == "Rank"
    assert (unnamed.title, unnamed.children[0].title) == ("course-2", "class-9")


async def test_owner_display_name_follows_identity(service: PassportService) -> None:
    """identity.profile_changed (sign-up, rename) keeps the owner's display name; the
    last announcement wins and redelivery changes nothing."""

    def named(name: str) -> Event:
        return Event(
            "identity.profile_changed", key="ana", payload={"user_id": "ana", "display_name": name}
        )

    assert await service.owner_display_name("ana") == ""
    assert await consume(service, named("Ana")) == [True]
    assert await service.owner_display_name("ana") == "Ana"
    renamed = named("Ana María")
    assert await consume(service, renamed, renamed) == [True, False]
    assert await service.owner_display_name("ana") == "Ana María"


async def test_anchor_event_before_or_after_entry(
    service: PassportService, ana_key: SigningKey
) -> None:
    first = interaction(ana_key, "ana", service.clock.now())
    second = interaction(ana_key, "ana", service.clock.now() + minutes(1))
    anchored = batch([first, second])
    events = anchored.events()
    # Anchor of `first` arrives before its record; `second` the usual way.
    await consume(service, events[0], recorded_event(first), recorded_event(second), events[1])
    found, _ = await service.entry_page(await own(service))
    assert [e.anchor.status.value for e in found] == ["anchored", "anchored"]
    assert found[0].anchor.proof is not None and found[0].anchor.leaf_index == 0
    export = await service.export(await own(service))
    report = verify_passport(export, reader_for(anchored))
    assert report.ok and len(report.verified) == 2


async def test_custodial_signature_and_fetched_proof_from_anchor_event(
    service: PassportService, ana_key: SigningKey
) -> None:
    item = interaction(ana_key, "ana", service.clock.now())
    anchored = batch([item, interaction(ana_key, "ana", service.clock.now())])

    class Proofs:
        async def siblings(self, domain: str, record_id: str) -> list[str]:
            assert (domain, record_id) == ("learning", item.statement_id)
            return [hex(s) for s in anchored.tree.siblings(0)]

    service.proof_source = Proofs()
    # No device signature in the record; signature and key come with the anchor event.
    await consume(service, recorded_event(item, device=False))
    entry = (await service.entry_page(await own(service)))[0][0]
    assert entry.signature_hex == ""
    await consume(service, anchored.events(with_proof=False)[0])
    entry = (await service.entry_page(await own(service)))[0][0]
    assert entry.signature_hex == item.signature.hex()
    assert verify_passport(await service.export(await own(service)), reader_for(anchored)).ok


async def test_anchor_failed_and_not_overriding_anchored(
    service: PassportService, ana_key: SigningKey
) -> None:
    from services.kit.events import Event

    item = interaction(ana_key, "ana", service.clock.now())
    failed = Event(
        "chain.anchor_failed",
        key="ana",
        payload={"record_id": item.statement_id, "learner_id": "ana", "failure_reason": "boom"},
    )
    await consume(service, recorded_event(item), failed)
    entry = (await service.entry_page(await own(service)))[0][0]
    assert (entry.anchor.status.value, entry.anchor.failure_reason) == ("failed", "boom")
    service.chain_reader = reader_factory(InMemoryChainReader())
    [result] = await service.verify_entries([entry])
    assert result.status.value == "failed" and "boom" in result.reason


async def test_private_passport_is_invisible_to_others(
    service: PassportService, ana_key: SigningKey
) -> None:
    await record(service, ana_key, 1)
    ana = await own(service)
    with pytest.raises(NotFound):
        await service.access(BEN, ana.passport.id)
    with pytest.raises(NotFound):
        await service.access(None, ana.passport.id)
    with pytest.raises(Unauthenticated):
        await service.access(None, "")
    # Ben's own passport does not contain Ana's entries.
    ben = await service.access(BEN)
    assert ben.passport.id != ana.passport.id
    assert await service.entry_page(ben) == ([], "")
    # The owner reading by id sees everything.
    assert (await service.access(ANA, ana.passport.id)).disclosure == FULL


async def test_public_disclosure_filters_entries_and_scores(
    service: PassportService, ana_key: SigningKey
) -> None:
    await record(service, ana_key, 2, kind="answer")
    await record(service, ana_key, 1, kind="question", course_id="course-2")
    public = Disclosure.build("d", ["answer"], [], False, False, False)
    await service.update_privacy(ANA, PrivacySettings(True, public, public))
    passport_id = (await own(service)).passport.id
    access = await service.access(BEN, passport_id)
    found, _ = await service.entry_page(access)
    assert [e.interaction_type for e in found] == ["answer", "answer"]
    assert await service.entry_count(access) == 2
    assert "(0.8)" not in found[0].summary(access.disclosure.show_scores)
    with pytest.raises(FailedPrecondition, match="withholds statement content"):
        await service.export(access)
    # With content: the export holds only the disclosed entries, identity withheld.
    courses = Disclosure.build("d", [], ["course-2"], True, False, True)
    await service.update_privacy(ANA, PrivacySettings(True, courses, courses))
    export = await service.export(await service.access(None, passport_id))
    assert [e.entry_id for e in export.entries] == [
        found_q.statement_id
        for found_q in (
            await service.entry_page(await own(service), TimelineFilter(course_id="course-2"))
        )[0]
    ]
    assert export.learner_id is None
    with pytest.raises(ValidationError) as caught:
        Disclosure.build("settings.public_disclosure", [], [], False, False, True)
    assert caught.value.field == "settings.public_disclosure.show_content"


async def test_share_links_expire_revoke_and_stay_scoped(
    service: PassportService, ana_key: SigningKey, clock: FixedClock
) -> None:
    await record(service, ana_key, 2, kind="answer")
    await record(service, ana_key, 1, kind="feedback")
    scope = Disclosure.build("scope", ["answer"], [], True, False, True)
    created = await service.create_link(ANA, "ACME", scope, clock.now() + timedelta(days=1), "r1")
    assert (
        len(created.token) >= 43
        and created.url == f"https://keiko.test/verify/share/{created.token}"
    )
    # Idempotent on request id; the token is never stored, so a replay has none.
    replay = await service.create_link(ANA, "ACME", scope, clock.now() + timedelta(days=1), "r1")
    assert replay.link.id == created.link.id and replay.token == ""

    access = await service.share_access(created.token, count_view=True)
    found, _ = await service.entry_page(access)
    assert [e.interaction_type for e in found] == ["answer", "answer"]
    assert not access.disclosure.show_identity
    export = await service.export(access)
    assert len(export.entries) == 2 and export.passport_id == access.passport.id

    # Narrowing the owner's share-link disclosure narrows existing links.
    bound = Disclosure.build("d", ["answer"], ["course-1"], True, False, False)
    await service.update_privacy(ANA, PrivacySettings(False, bound, bound))
    access = await service.share_access(created.token, count_view=False)
    assert not access.disclosure.show_content and access.disclosure.course_ids == {"course-1"}
    # A link may not be wider than the bound.
    with pytest.raises(ValidationError) as caught:
        await service.create_link(ANA, "", FULL, None)
    assert caught.value.field == "scope"
    with pytest.raises(ValidationError) as caught:
        await service.create_link(ANA, "", None, clock.now() - timedelta(seconds=1))
    assert caught.value.field == "expires_at"

    # Another learner can neither see nor revoke it.
    with pytest.raises(NotFound):
        await service.revoke_link(BEN, created.link.id)
    links, _ = await service.list_links(BEN, True, 10, "")
    assert links == []

    clock.advance(timedelta(days=1))
    with pytest.raises(NotFound):
        await service.share_access(created.token, count_view=True)
    clock.set(clock.now() - timedelta(hours=1))
    assert (await service.share_access(created.token, count_view=True)).link is not None
    revoked = await service.revoke_link(ANA, created.link.id)
    assert revoked.revoked_at == clock.now()
    assert (await service.revoke_link(ANA, created.link.id)).revoked_at == revoked.revoked_at
    with pytest.raises(NotFound):
        await service.share_access(created.token, count_view=False)
    with pytest.raises(NotFound):
        await service.share_access("not-a-token", count_view=False)
    active, _ = await service.list_links(ANA, False, 10, "")
    every, _ = await service.list_links(ANA, True, 10, "")
    assert active == [] and [link.view_count for link in every] == [2]


async def test_pagination_and_bad_cursor(service: PassportService, ana_key: SigningKey) -> None:
    items = await record(service, ana_key, 5)
    access = await own(service)
    seen: list[str] = []
    token = ""
    while True:
        page, token = await service.entry_page(access, size=2, page_token=token)
        seen.extend(e.statement_id for e in page)
        if not token:
            break
    assert seen == [i.statement_id for i in items]
    with pytest.raises(ValidationError) as caught:
        await service.entry_page(access, page_token="garbage!")
    assert caught.value.field == "page_token"


async def test_verify_entries_reads_roots_from_the_chain(
    service: PassportService, ana_key: SigningKey
) -> None:
    items = await record(service, ana_key, 3)
    anchored = batch(items[:2])
    await consume(service, *anchored.events())
    found, _ = await service.entry_page(await own(service))

    chain = reader_for(anchored)
    # ana's key is bound on chain (a result is remembered only once its key is).
    chain.bind_key(bytes(ana_key.verify_key), KeyInfo(subject_of("ana"), "custodial", 1))
    service.chain_reader = reader_factory(chain)
    results = await service.verify_entries(found)
    assert [r.status.value for r in results] == ["verified", "verified", "unanchored"]
    assert results[0].signature_valid and results[0].inclusion_valid and results[0].root_on_chain
    assert results[0].tx_hash == hex(anchored.tx_hash) and results[0].block == 7

    # A verified entry stays verified: asked again, the process answers from memory
    # without reading the chain (an anchored entry's verification never changes).
    assert service.verified.hits == 0 and len(service.verified) == 2
    service.chain_reader = reader_factory(InMemoryChainReader())
    again = await service.verify_entries(found[:2])
    assert [r.status.value for r in again] == ["verified", "verified"]
    assert service.verified.hits == 2

    # A process that never verified them, against a chain that never saw the batch:
    # Keiko's stored root does not help.
    service.verified = VerifiedEntries()
    results = await service.verify_entries(found[:1])
    assert results[0].status.value == "failed" and not results[0].root_on_chain
    assert "not on the chain" in results[0].reason


async def test_anchor_kept_when_the_proof_cannot_be_fetched(
    service: PassportService, ana_key: SigningKey
) -> None:
    item = interaction(ana_key, "ana", service.clock.now())
    anchored = batch([item, interaction(ana_key, "ana", service.clock.now())])

    class Down:
        async def siblings(self, domain: str, record_id: str) -> list[str]:
            raise ConnectionError("translator unavailable")

    service.proof_source = Down()
    await consume(service, recorded_event(item), anchored.events(with_proof=False)[0])
    entry = (await service.entry_page(await own(service)))[0][0]
    assert entry.anchor.status.value == "anchored" and entry.anchor.proof is None
    export = await service.export(await own(service))
    [exported] = export.entries
    assert not isinstance(exported, str) and getattr(exported, "anchor", 1) is None
    service.chain_reader = reader_factory(reader_for(anchored))
    [result] = await service.verify_entries([entry])
    assert result.status.value == "unanchored" and result.signature_valid


async def test_a_retry_racing_its_first_share_link_answers_the_first_link(
    service: PassportService,
) -> None:
    """Same request id, both calls at once (`services.kit.races`): the retry answers the
    first call's link (without its token, as any replay), one link is stored, no INTERNAL."""
    await service.own_passport(ANA)  # not created by the racing calls themselves
    twins = await twin_calls(service.db, lambda: service.create_link(ANA, "ACME", None, None, "r1"))
    if service.db.dialect == "postgresql":
        assert twins.second_waited or twins.second_finished_first
    first, second = twins.results()
    assert first.link.id == second.link.id
    assert (await service.create_link(ANA, "ACME", None, None, "r1")).link.id == first.link.id
    async with service.db.session() as s:
        assert (await s.execute(select(func.count()).select_from(share_links))).scalar_one() == 1
