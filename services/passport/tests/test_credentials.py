"""Passport credentials: issuing, listing, visibility, revocation (learner, issuer, voided
statement, withdrawn share), status lists and presentations.

The entries are real signed interactions in a real Merkle batch; the issued credentials
are checked by the independent verifier (``chain.verify.credentials``) against an
in-memory chain and the status lists the service publishes. Signing goes through
:class:`KeyHolder`, a stand-in for the chain translator's custody (real Ed25519 keys,
one per holder; the translator's own authorization checks are tested in
``chain/tests/translator_service/test_credentials.py``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from nacl.signing import SigningKey
from sqlalchemy import func, select

from chain.credentials.badge_schema import open_badge_errors
from chain.credentials.integrity import ProofPurpose, add_proof_set
from chain.credentials.multikey import did_key, verification_method_id
from chain.translator.authors import KEIKO_HOME_PAGE
from chain.translator.credentials import CredentialPurpose
from chain.translator.signing import public_key_of, sign
from chain.verify.credentials import (
    ChainExpectation,
    CredentialFailure,
    verify_credential,
    verify_presentation,
)
from services.kit.clock import FixedClock
from services.kit.errors import FailedPrecondition, NotFound, Unavailable, ValidationError
from services.kit.events import Event
from services.kit.races import twin_calls
from services.passport.credentials.domain import (
    AchievementInput,
    CredentialFormat,
    IssueRequest,
    RevocationReason,
)
from services.passport.credentials.service import STATUS_PATH, CredentialService
from services.passport.credentials.signing import AnchorRef
from services.passport.credentials.storage import credentials as credentials_table
from services.passport.domain import Disclosure
from services.passport.service import PassportService
from services.passport.tests.conftest import ANA, BEN, consume, user
from services.passport.tests.factories import (
    Interaction,
    batch,
    interaction,
    minutes,
    reader_for,
    recorded_event,
)
from services.passport.tests.test_service import AsyncReader

CHAIN = AnchorRef(chain_id=0x4B45494B4F, contract=0xA11CE)
TOM = user("tom")


class KeyHolder:
    """The translator's part, for these tests: a key per holder, the DIDs written from
    those keys, a proof set added."""

    def __init__(self) -> None:
        self.keys: dict[str, SigningKey] = {}
        self.signed: list[tuple[CredentialPurpose, str, str]] = []

    def key(self, holder: str) -> SigningKey:
        return self.keys.setdefault(holder, SigningKey.generate())

    def did(self, holder: str) -> str:
        return did_key(bytes(self.key(holder).verify_key))

    async def sign(
        self,
        purpose: CredentialPurpose,
        holder_id: str,
        learner_id: str,
        document: Mapping[str, Any],
        *,
        challenge: str = "",
        domain: str = "",
    ) -> dict[str, Any]:
        self.signed.append((purpose, holder_id, learner_id))
        doc = json.loads(json.dumps(document))
        if purpose is CredentialPurpose.ISSUE:
            doc["issuer"]["id"] = self.did(holder_id)
            doc["credentialSubject"]["id"] = self.did(learner_id)
        elif purpose is CredentialPurpose.STATUS_LIST:
            doc["issuer"] = self.did(holder_id)
        else:
            doc["holder"] = self.did(holder_id)
        key = self.key(holder_id)
        method = verification_method_id(bytes(key.verify_key))
        options: dict[str, Any] = {}
        if purpose is CredentialPurpose.PRESENT:
            options = {
                "purpose": ProofPurpose.AUTHENTICATION,
                "challenge": challenge,
                "domain": domain,
            }
        return add_proof_set(
            doc, method, FixedClock().now(), lambda b: key.sign(b).signature, **options
        )

    async def anchor_ref(self) -> AnchorRef:
        return CHAIN


class PublishedLists:
    """The status lists as the gateway serves them: from the service."""

    def __init__(self, credentials: CredentialService) -> None:
        self.credentials = credentials

    async def fetch(self, url: str) -> Mapping[str, Any]:
        list_id = url.rsplit(STATUS_PATH, 1)[-1]
        document: dict[str, Any] = json.loads(await self.credentials.status_list(list_id))
        return document


@pytest.fixture
def keys() -> KeyHolder:
    return KeyHolder()


@pytest.fixture
def credentials(service: PassportService, keys: KeyHolder) -> CredentialService:
    return CredentialService(service, keys, public_base_url="https://keiko.test")


def authored_by(author: str, key: SigningKey, item: Interaction) -> Interaction:
    """``item`` written by ``author`` (its authority), signed with the author's key."""
    statement = dict(item.statement)
    statement["authority"] = {
        "objectType": "Agent",
        "account": {"homePage": KEIKO_HOME_PAGE, "name": author},
    }
    item.statement = statement
    item.signature = sign(statement, key)
    item.public_key = public_key_of(key)
    return item


@pytest.fixture
async def ledger(service: PassportService, ana_key: SigningKey, keys: KeyHolder) -> Any:
    """Ana's passport: two answers in course-1, one in course-2, Tom's feedback in
    course-1 (signed by Tom), all anchored in one batch; one answer in course-3 not
    anchored."""
    start = FixedClock().now()
    own = [
        interaction(ana_key, "ana", start + minutes(1)),
        interaction(ana_key, "ana", start + minutes(2)),
        interaction(ana_key, "ana", start + minutes(3), course_id="course-2"),
    ]
    feedback = authored_by(
        "tom",
        keys.key("tom"),
        interaction(ana_key, "ana", start + minutes(4), kind="feedback", score=None),
    )
    pending = interaction(ana_key, "ana", start + minutes(5), course_id="course-3")
    keys.keys["ana"] = ana_key  # the learner's key the translator holds
    # Written by Tom, signed with Ana's key (before per-author signing): legacy.
    legacy = authored_by(
        "tom", ana_key, interaction(ana_key, "ana", start + minutes(6), course_id="course-4")
    )
    anchored = batch([*own, feedback, legacy])
    events = [recorded_event(i) for i in [*own, pending, legacy]]
    tom_event = recorded_event(feedback)
    tom_event.payload["recorded_by"] = "tom"
    anchored_events = anchored.events()
    for event in anchored_events:  # as the translator says it: who wrote each record
        mine = event.payload["record_id"] != feedback.statement_id
        event.payload["author_id"] = "ana" if mine else "tom"  # whose key signed
    names = [
        Event("identity.profile_changed", key=who, payload={"user_id": who, "display_name": name})
        for who, name in (("ana", "Ana"), ("tom", "Tomás"))
    ]
    await consume(service, *names, *events, tom_event, *anchored_events)
    return {
        "own": own,
        "feedback": feedback,
        "pending": pending,
        "legacy": legacy,
        "reader": AsyncReader(reader_for(anchored)),
    }


async def verify(doc: str, ledger: Any, credentials: CredentialService) -> Any:
    return await verify_credential(
        doc,
        ledger["reader"],
        status_source=PublishedLists(credentials),
        now=FixedClock().now(),
        chain=ChainExpectation(CHAIN.chain_id, CHAIN.contract),
    )


async def test_compact_record_of_a_course_verifies_and_replays(
    credentials: CredentialService, ledger: Any, keys: KeyHolder
) -> None:
    request = IssueRequest(CredentialFormat.LEARNING_RECORD, course_id="course-1", request_id="r1")
    [issued] = await credentials.issue(ANA, request)
    course_1 = {ledger["own"][0].statement_id, ledger["own"][1].statement_id}
    assert set(issued.statement_ids) == course_1 | {ledger["feedback"].statement_id}
    assert issued.holder_id == "ana" and issued.subject_did == keys.did("ana")
    report = await verify(issued.document_json, ledger, credentials)
    assert report.ok, [str(p) for p in report.problems]
    assert report.status.value == "active" and len(report.records) == 3
    again = await credentials.issue(ANA, request)
    assert [c.id for c in again] == [issued.id]
    listed, _ = await credentials.list_own(ANA)
    assert [c.id for c in listed] == [issued.id]


async def test_per_entry_credentials_are_issued_by_each_author(
    credentials: CredentialService, ledger: Any, keys: KeyHolder
) -> None:
    ids = [ledger["own"][0].statement_id, ledger["feedback"].statement_id]
    issued = await credentials.issue(
        ANA, IssueRequest(CredentialFormat.PER_ENTRY, statement_ids=tuple(ids))
    )
    assert [c.holder_id for c in issued] == ["ana", "tom"]
    documents = [json.loads(c.document_json) for c in issued]
    assert [d["issuer"]["name"] for d in documents] == ["Ana", "Tomás"]
    author = documents[1]["credentialSubject"]["learningRecord"][0]["author"]
    assert (author["authorKind"], author["authorId"], author["name"]) == ("user", "tom", "Tomás")
    assert issued[1].issuer_did == keys.did("tom") and issued[1].subject_did == keys.did("ana")
    for credential in issued:
        report = await verify(credential.document_json, ledger, credentials)
        assert report.ok, [str(p) for p in report.problems]
    mine, _ = await credentials.list_own(TOM, issued_by_me=True)
    assert [c.id for c in mine] == [issued[1].id]


async def test_open_badge_validates_against_the_schema(
    credentials: CredentialService, ledger: Any
) -> None:
    [badge] = await credentials.issue(
        ANA,
        IssueRequest(
            CredentialFormat.OPEN_BADGE,
            statement_ids=(ledger["own"][0].statement_id, ledger["own"][1].statement_id),
            achievement=AchievementInput(
                "https://keiko.network/xapi/activities/course/course-1",
                "Course 1",
                "The first course",
                "Answered every question of the course.",
            ),
        ),
    )
    document = json.loads(badge.document_json)
    assert open_badge_errors(document) == []
    report = await verify(badge.document_json, ledger, credentials)
    assert report.ok, [str(p) for p in report.problems]


async def test_what_cannot_be_issued(credentials: CredentialService, ledger: Any) -> None:
    pending = ledger["pending"].statement_id
    with pytest.raises(FailedPrecondition, match="not anchored yet"):
        await credentials.issue(
            ANA, IssueRequest(CredentialFormat.PER_ENTRY, statement_ids=(pending,))
        )
    with pytest.raises(FailedPrecondition, match="signed with your key"):
        await credentials.issue(
            ANA,
            IssueRequest(
                CredentialFormat.PER_ENTRY, statement_ids=(ledger["legacy"].statement_id,)
            ),
        )
    with pytest.raises(NotFound):
        await credentials.issue(
            BEN,
            IssueRequest(
                CredentialFormat.PER_ENTRY, statement_ids=(ledger["own"][0].statement_id,)
            ),
        )
    with pytest.raises(ValidationError) as err:
        await credentials.issue(ANA, IssueRequest(CredentialFormat.OPEN_BADGE))
    assert err.value.field == "achievement"
    unsigned = CredentialService(credentials.passports, None, public_base_url="https://x")
    with pytest.raises(Unavailable):
        await unsigned.issue(ANA, IssueRequest(CredentialFormat.LEARNING_RECORD, course_id="c"))


async def test_revocation_by_learner_and_by_issuer_reaches_the_status_list(
    credentials: CredentialService, ledger: Any
) -> None:
    ids = (ledger["own"][0].statement_id, ledger["feedback"].statement_id)
    own, toms = await credentials.issue(
        ANA, IssueRequest(CredentialFormat.PER_ENTRY, statement_ids=ids)
    )
    with pytest.raises(NotFound):
        await credentials.revoke(BEN, own.id)
    revoked = await credentials.revoke(ANA, own.id)
    assert revoked.revocation_reason is RevocationReason.REVOKED_BY_LEARNER
    report = await verify(own.document_json, ledger, credentials)
    assert report.reasons == [CredentialFailure.REVOKED]
    withdrawn = await credentials.revoke(TOM, toms.id)  # Tom withdraws his attestation
    assert withdrawn.revocation_reason is RevocationReason.REVOKED_BY_ISSUER
    assert (await verify(toms.document_json, ledger, credentials)).reasons == [
        CredentialFailure.REVOKED
    ]
    assert (await credentials.revoke(ANA, own.id)).revoked_at == revoked.revoked_at


async def test_voiding_a_statement_revokes_its_credentials(
    credentials: CredentialService, service: PassportService, ledger: Any
) -> None:
    target = ledger["own"][1]
    [compact] = await credentials.issue(
        ANA, IssueRequest(CredentialFormat.LEARNING_RECORD, course_id="course-1")
    )
    voiding = recorded_event(interaction(SigningKey.generate(), "ana", FixedClock().now()))
    voiding.payload["voided_statement_id"] = target.statement_id
    await consume(service, voiding)
    [found] = (await credentials.list_own(ANA, include_revoked=True))[0]
    assert found.revocation_reason is RevocationReason.VOIDED_STATEMENT
    assert await credentials.publish_pending() == 0
    assert (await verify(compact.document_json, ledger, credentials)).reasons == [
        CredentialFailure.REVOKED
    ]


async def test_share_links_show_credentials_and_withdraw_their_own(
    credentials: CredentialService, service: PassportService, ledger: Any
) -> None:
    link = await service.create_link(ANA, "for HR", None, None, "")
    token = link.token
    course_2 = (ledger["own"][2].statement_id,)
    [general] = await credentials.issue(
        ANA, IssueRequest(CredentialFormat.PER_ENTRY, statement_ids=course_2)
    )
    [for_hr] = await credentials.issue(
        ANA,
        IssueRequest(
            CredentialFormat.PER_ENTRY,
            statement_ids=(ledger["own"][0].statement_id,),
            share_link_id=link.link.id,
        ),
    )
    access = await service.share_access(token, count_view=False)
    assert {c.id for c in await credentials.list_visible(access)} == {general.id, for_hr.id}
    assert (await credentials.get(None, for_hr.id, token)).id == for_hr.id
    with pytest.raises(NotFound):
        await credentials.get(None, for_hr.id)  # the passport is private
    vp = await credentials.shared_presentation(token, "nonce-1", "hr.example")
    report = await verify_presentation(
        vp,
        ledger["reader"],
        challenge="nonce-1",
        domain="hr.example",
        status_source=PublishedLists(credentials),
        now=FixedClock().now(),
    )
    assert report.ok and len(report.credentials) == 2, report.to_json()
    await service.revoke_link(ANA, link.link.id)
    hr = await credentials.get(ANA, for_hr.id)
    assert hr.revocation_reason is RevocationReason.WITHDRAWN_SHARE
    assert (await credentials.get(ANA, general.id)).revoked_at is None
    await credentials.publish_pending()
    assert (await verify(for_hr.document_json, ledger, credentials)).reasons == [
        CredentialFailure.REVOKED
    ]


async def test_a_narrow_share_shows_only_what_it_discloses(
    credentials: CredentialService, service: PassportService, ledger: Any
) -> None:
    await credentials.issue(
        ANA,
        IssueRequest(
            CredentialFormat.PER_ENTRY,
            statement_ids=(ledger["own"][0].statement_id, ledger["own"][2].statement_id),
        ),
    )
    scope = Disclosure(None, frozenset({"course-2"}), True, False, True)
    course_2_only = await service.create_link(ANA, "course 2", scope, None, "")
    access = await service.share_access(course_2_only.token, count_view=False)
    [shown] = await credentials.list_visible(access)
    assert shown.statement_ids == (ledger["own"][2].statement_id,)
    no_content = Disclosure(None, None, True, False, False)
    hidden = await service.create_link(ANA, "no content", no_content, None, "")
    access = await service.share_access(hidden.token, count_view=False)
    assert await credentials.list_visible(access) == []
    with pytest.raises(FailedPrecondition, match="no credential"):
        await credentials.shared_presentation(hidden.token, "n", "d")


async def test_a_retry_racing_its_first_issue_answers_the_first_credentials(
    service: PassportService, credentials: CredentialService, ledger: Any
) -> None:
    """Same request id, both calls at once (`services.kit.races`): the retry answers the
    first call's credentials, which are issued once, and no INTERNAL."""
    request = IssueRequest(CredentialFormat.LEARNING_RECORD, course_id="course-1", request_id="r1")
    twins = await twin_calls(service.db, lambda: credentials.issue(ANA, request))
    if service.db.dialect == "postgresql":
        assert twins.second_waited or twins.second_finished_first
    first, second = twins.results()
    assert [c.id for c in first] == [c.id for c in second]
    assert [c.id for c in await credentials.issue(ANA, request)] == [c.id for c in first]
    async with service.db.session() as s:
        assert (
            await s.execute(select(func.count()).select_from(credentials_table))
        ).scalar_one() == 1
