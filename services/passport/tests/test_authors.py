"""Each entry shows its author: self, attested by a named user or Keiko service, or the
legacy wording for what someone else wrote before per-author signing. The export carries
the author and its key; only the learner's own entries set the passport's key."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from nacl.signing import SigningKey
from sqlalchemy import insert, select

from chain.translator.authors import AuthorKind, subject_of
from chain.translator.signing import public_key_of
from chain.verify import KeyInfo, Registration, verify_passport
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.events import Event
from services.kit.migrations import downgrade, service_migration_dirs, upgrade
from services.passport.domain import Disclosure, PrivacySettings
from services.passport.service import PassportService
from services.passport.storage import anchors, entries, passports
from services.passport.tests.conftest import ANA, consume
from services.passport.tests.factories import batch, interaction, reader_for, recorded_event
from services.passport.tests.test_service import reader_factory

TOM = SigningKey.generate()
LEARNING_SERVICE = SigningKey.generate()


def renamed(user_id: str, name: str) -> Event:
    return Event(
        "identity.profile_changed", key=user_id, payload={"user_id": user_id, "display_name": name}
    )


async def test_entries_show_their_authors_and_export_them(
    service: PassportService, ana_key: SigningKey
) -> None:
    now = service.clock.now()
    own = interaction(ana_key, "ana", now, signer="ana")
    feedback = interaction(TOM, "ana", now, kind="feedback", author="tutor-tom", signer="tutor-tom")
    attended = interaction(
        LEARNING_SERVICE, "ana", now, author="keiko-learning", signer="keiko-learning"
    )
    items = [own, feedback, attended]
    anchored = batch(items)
    await consume(
        service,
        renamed("tutor-tom", "Tom Tutor"),
        *(recorded_event(i, device=False) for i in items),
        *anchored.events(),
    )
    access = await service.access(ANA)
    found = {e.statement_id: e for e in (await service.entry_page(access))[0]}
    assert found[own.statement_id].author_label(True) == "self"
    assert found[feedback.statement_id].author_label(True) == "attested by Tom Tutor (tutor-tom)"
    assert found[attended.statement_id].author_label(True) == (
        "attested by Keiko learning service (Keiko service)"
    )
    assert not any(e.legacy for e in found.values())
    # The passport's key is the learner's, never an attesting author's.
    assert access.passport.public_key_hex in ("", public_key_of(ana_key).hex())
    assert (await service.access(ANA)).passport.public_key_hex == public_key_of(ana_key).hex()

    document = json.loads((await service.export(access)).dumps())
    authors = {e["entry_id"]: e["author"] for e in document["entries"]}
    assert document["version"] == 3
    assert {e["leaf_encoding"] for e in document["entries"]} == {"keiko.leaf.v2"}
    assert authors[feedback.statement_id] == {
        "kind": "user",
        "id": "tutor-tom",
        "name": "Tom Tutor",
        "public_key": public_key_of(TOM).hex(),
    }
    assert authors[own.statement_id]["kind"] == "self"
    reader = reader_for(anchored)
    reader.bind_key(public_key_of(TOM), KeyInfo(subject_of("tutor-tom"), "custodial", 1))
    report = verify_passport(document, reader)
    assert report.ok and len(report.verified) == 3
    by_id = {e.entry_id: e.author for e in report.entries}
    tom = by_id[feedback.statement_id]
    assert tom is not None and tom.registration is Registration.REGISTERED
    own_author = by_id[own.statement_id]
    assert own_author is not None and own_author.registration is Registration.NOT_REGISTERED

    # Server-side verification remembers a verified entry only once its key is bound on
    # chain: ana's key is not yet, so asking again reads the chain again and sees it bound.
    service.chain_reader = reader_factory(reader)
    found_list = list(found.values())
    first = {v.statement_id: v for v in await service.verify_entries(found_list)}
    assert first[own.statement_id].key_registration == "not registered on chain"
    assert first[feedback.statement_id].key_holder == "tutor-tom"
    assert len(service.verified) == 1  # the tutor's entry only
    reader.bind_key(public_key_of(ana_key), KeyInfo(subject_of("ana"), "custodial", 9))
    again = {v.statement_id: v for v in await service.verify_entries(found_list)}
    assert again[own.statement_id].key_registration == "registered on chain"
    assert again[own.statement_id].key_registered_block == 9


async def test_the_learners_identity_stays_withheld_in_public_exports(
    service: PassportService, ana_key: SigningKey
) -> None:
    own = interaction(ana_key, "ana", service.clock.now(), signer="ana")
    feedback = interaction(TOM, "ana", service.clock.now(), author="tutor-tom", signer="tutor-tom")
    anchored = batch([own, feedback])
    await consume(
        service,
        *(recorded_event(i, device=False) for i in (own, feedback)),
        *anchored.events(),
    )
    public = Disclosure(show_content=True, show_scores=True, show_identity=False)
    await service.update_privacy(ANA, PrivacySettings(public=True, public_disclosure=public))
    passport = (await service.access(ANA)).passport
    document = json.loads((await service.export(await service.access(None, passport.id))).dumps())
    authors = {e["entry_id"]: e["author"] for e in document["entries"]}
    assert authors[own.statement_id]["id"] == ""  # the learner is not named
    assert authors[feedback.statement_id]["id"] == "tutor-tom"  # the attesting tutor is
    assert verify_passport(document, reader_for(anchored)).ok


async def test_an_entry_someone_else_wrote_but_the_learners_key_signed_is_legacy(
    service: PassportService, ana_key: SigningKey
) -> None:
    # Before per-author signing: the tutor's feedback, signed with ana's key, announced
    # by a translator whose events did not say who signed.
    old = interaction(ana_key, "ana", service.clock.now(), kind="feedback", author="tutor-tom")
    anchored = batch([old])
    await consume(service, recorded_event(old, device=False), *anchored.events())
    access = await service.access(ANA)
    (entry,) = (await service.entry_page(access))[0]
    assert entry.legacy and entry.kind is AuthorKind.USER
    assert entry.author_label(True) == (
        "recorded by tutor-tom, signed with the learner's key (legacy)"
    )
    document = json.loads((await service.export(access)).dumps())
    (exported,) = document["entries"]
    assert exported["legacy"] is True and exported["author"]["id"] == "tutor-tom"
    reader = reader_for(anchored)
    reader.bind_key(public_key_of(ana_key), KeyInfo(subject_of("ana"), "custodial", 1))
    report = verify_passport(document, reader)
    assert report.ok  # it keeps verifying, as what it is
    assert report.entries[0].author is not None and report.entries[0].author.holder == "ana"


NOW = datetime(2026, 11, 30, tzinfo=UTC)


def _entry_row(seq: int, statement: dict[str, Any], learner: str) -> dict[str, Any]:
    return {
        "seq": seq,
        "statement_id": statement["id"],
        "learner_id": learner,
        "interaction_type": "feedback",
        "verb_id": "v",
        "object_id": "o",
        "course_id": "",
        "class_id": "",
        "tutorial_session_id": "",
        "study_session_id": "",
        "timestamp": NOW,
        "statement_json": json.dumps(statement),
        "signature_hex": "",
        "public_key_hex": "",
        "recorded_at": NOW,
    }


async def test_the_migration_names_authors_and_marks_legacy_entries(
    migrated_database: Database, clock: FixedClock, ana_key: SigningKey
) -> None:
    directory = service_migration_dirs()["passport"]
    await downgrade(migrated_database, "passport", directory, "4a7c2e91d0b3")
    statements = {
        "own": interaction(ana_key, "ana", NOW, author="ana"),
        "feedback": interaction(ana_key, "ana", NOW, author="tutor-tom"),
        "attended": interaction(ana_key, "ana", NOW, author="keiko-learning"),
        "pending": interaction(ana_key, "ana", NOW, author="tutor-tom"),  # not anchored yet
    }
    old_entry_columns = set(entries.c.keys()) - {"author_id", "author_kind"}
    async with migrated_database.transaction() as s:
        await s.execute(
            insert(passports).values(
                id="p-ana",
                owner_id="ana",
                public_key_hex=None,
                privacy=PrivacySettings().to_json(),
                profile=None,
                created_at=NOW,
                updated_at=NOW,
            )
        )
        for seq, item in enumerate(statements.values(), start=1):
            row = _entry_row(seq, item.statement, "ana")
            await s.execute(
                insert(entries).values({k: v for k, v in row.items() if k in old_entry_columns})
            )
        for name in ("own", "feedback", "attended"):
            await s.execute(
                insert(anchors).values(
                    record_id=statements[name].statement_id,
                    learner_id="ana",
                    status="anchored",
                    domain="learning",
                    batch_id="0x1",
                    root="0x2",
                    leaf="0x3",
                    leaf_index=0,
                    proof=[],
                    block=5,
                    tx_hash="0x4",
                    signature_hex=statements[name].signature.hex(),
                    public_key_hex=public_key_of(ana_key).hex(),
                    failure_reason="",
                    updated_at=NOW,
                )
            )
    await upgrade(migrated_database, "passport", directory)
    service = PassportService(migrated_database, clock)
    found = {e.statement_id: e for e in (await service.entry_page(await service.access(ANA)))[0]}
    label = {name: found[i.statement_id].author_label(True) for name, i in statements.items()}
    assert label == {
        "own": "self",
        "feedback": "recorded by tutor-tom, signed with the learner's key (legacy)",
        "attended": "recorded by Keiko learning service, signed with the learner's key (legacy)",
        # Not signed yet: the new translator will sign it with the tutor's key.
        "pending": "attested by tutor-tom",
    }
    async with migrated_database.session() as s:
        kinds = dict((await s.execute(select(entries.c.statement_id, entries.c.author_kind))).all())
    assert kinds[statements["attended"].statement_id] == "service"
