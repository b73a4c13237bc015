"""A consumer's page of events written together (`handle_events`: runs of new entries and
of anchors with a few statements each) ends exactly as the same events handled one by
one: the same entries and anchors, passport versions and `passport.updated` events."""

from __future__ import annotations

from datetime import datetime

from nacl.signing import SigningKey
from sqlalchemy import select

from services.kit.events import Event
from services.kit.events.dedupe import Deduplicator, handle_batch_once
from services.passport.service import PassportService
from services.passport.storage import outbox, processed_events
from services.passport.tests.conftest import consume, user
from services.passport.tests.factories import batch, interaction, minutes, recorded_event


def scenario(key: SigningKey, learner: str, now: datetime) -> list[Event]:
    """An anchor before its record, a redelivered record and anchor (new event ids), an
    entry voided later, an anchor failing then arriving, another learner's entry and
    anchor in between, an entry another user wrote without a device signature."""
    first = interaction(key, learner, now)
    second = interaction(key, learner, now + minutes(1))
    third = interaction(key, learner, now + minutes(2), author="tutor-" + learner)
    other = interaction(SigningKey.generate(), "other-" + learner, now)
    anchors = batch([first, second, third, other]).events()
    failed = Event(
        "chain.anchor_failed",
        key=learner,
        payload={"record_id": second.statement_id, "learner_id": learner, "failure_reason": "x"},
    )
    voiding = recorded_event(interaction(key, learner, now + minutes(3)))
    voiding.payload["voided_statement_id"] = first.statement_id
    return [
        anchors[0],
        recorded_event(first),
        recorded_event(second),
        recorded_event(first),
        recorded_event(other),
        recorded_event(third, device=False),
        failed,
        anchors[1],
        # The same anchor again (a translator retry: a new event id) within the run.
        Event(anchors[1].topic, anchors[1].key, dict(anchors[1].payload)),
        anchors[3],
        anchors[2],
        voiding,
    ]


Outcome = tuple[list[tuple[str, bool, bool]], int, bool, list[tuple[str, int]]]


async def outcome(service: PassportService, learner: str) -> Outcome:
    """Entries (anchor status, written by another user, signed), the passport's version,
    whether it has a key, and its announcements (kind, entry position)."""
    access = await service.access(user(learner))
    found, _ = await service.entry_page(access)
    passport = access.passport
    async with service.db.session() as s:
        rows = (await s.execute(select(outbox.c.payload).order_by(outbox.c.seq))).scalars().all()
    ids = {e.statement_id: i for i, e in enumerate(found)}
    return (
        [
            (e.anchor.status.value, e.author_id.startswith("tutor-"), bool(e.signature_hex))
            for e in found
        ],
        passport.version,
        passport.public_key_hex != "",
        [(p["kind"], ids.get(p["statement_id"], -1)) for p in rows if p["owner_id"] == learner],
    )


async def test_a_page_ends_as_its_events_one_by_one(service: PassportService) -> None:
    now = service.clock.now()
    one_by_one = scenario(SigningKey.generate(), "cara", now)
    assert all(await consume(service, *one_by_one))
    page = scenario(SigningKey.generate(), "ana", now)
    dedupe = Deduplicator(processed_events, group="passport", clock=service.clock)
    handled = await handle_batch_once(service.db, dedupe, page, service.handle_events)
    assert len(handled) == len(page)
    expected = await outcome(service, "cara")
    assert await outcome(service, "ana") == expected
    assert await outcome(service, "other-ana") == await outcome(service, "other-cara")
    entries, version, _, announced = expected
    assert entries == [
        ("anchored", False, True),
        ("anchored", False, True),
        # Signed by the anchor event's custodial signature.
        ("anchored", True, True),
    ]
    assert version == len(announced) > 0
