"""Actor linking on both engines: the learner's code, the institution's vouching, the
statements that then enter the learner's passport (authored by the institution), and
everything that must not (services/learning/links/domain.py)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from services.kit.auth import Principal
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.errors import (
    AlreadyExists,
    NotFound,
    PermissionDenied,
    RateLimited,
    ValidationError,
)
from services.learning.clients.domain import client_principal
from services.learning.links.domain import CODE_TTL, MAX_OPEN_CODES
from services.learning.service import LearningService
from services.learning.tests.test_service import events

ANA = Principal("ana", frozenset({"learner"}))
BEN = Principal("ben", frozenset({"learner"}))
UNI = Principal("uni", frozenset({"tutor"}))  # an institution's Keiko account
OTHER = Principal("other-lms", frozenset({"tutor"}))
MAIL = {"objectType": "Agent", "mbox": "mailto:ana.garcia@uni.example"}
ACCOUNT = {"account": {"homePage": "https://moodle.uni.example", "name": "ana.g"}}


@pytest.fixture
def database_schemas() -> Sequence[str]:
    return ("learning",)


@pytest.fixture
def service(migrated_database: Database, clock: FixedClock) -> LearningService:
    return LearningService(migrated_database, clock)


def about(actor: dict[str, Any]) -> str:
    return json.dumps(
        {
            "id": str(uuid.uuid4()),
            "actor": actor,
            "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
            "object": {"objectType": "Activity", "id": "https://moodle.uni.example/course/7"},
        }
    )


async def link(service: LearningService, learner: Principal, agent: dict[str, Any]) -> str:
    code, _ = await service.links.create_link_code(learner)
    made = await service.links.confirm(UNI, json.dumps(agent), code)
    return made.id


async def test_linked_statements_enter_the_passport_authored_by_the_institution(
    service: LearningService, migrated_database: Database
) -> None:
    await link(service, ANA, MAIL)
    # Through the institution's LRS client (it acts for its owner).
    lms = client_principal(UNI.user_id, str(uuid.uuid4()))
    [mine] = await service.statements.record_statements(lms, [about(MAIL)])
    assert mine.learner_id == "ana" and mine.recorded_by == "uni"
    assert mine.statement["authority"]["account"]["name"] == "uni"
    [event] = [
        e for e in await events(migrated_database) if e["payload"]["statement_id"] == mine.id
    ]
    assert event["key"] == "ana" and event["payload"]["recorded_by"] == "uni"
    # The same address stored by another institution, or another address: LRS only.
    [elsewhere] = await service.statements.record_statements(OTHER, [about(MAIL)])
    [unlinked] = await service.statements.record_statements(lms, [about(ACCOUNT)])
    assert elsewhere.learner_id is None and unlinked.learner_id is None
    # The learner reads it as theirs.
    assert (await service.statements.get_statement(ANA, mine.id)).id == mine.id


async def test_codes_are_consent_single_use_and_expire(
    service: LearningService, clock: FixedClock
) -> None:
    code, expires = await service.links.create_link_code(ANA)
    assert expires == clock.now() + CODE_TTL
    # 4 groups of 5 characters of a 32-letter alphabet: 100 bits a person can type.
    assert re.fullmatch(r"[A-HJ-NP-Z2-9]{5}(-[A-HJ-NP-Z2-9]{5}){3}", code), code
    await service.links.confirm(UNI, json.dumps(ACCOUNT), code)
    with pytest.raises(NotFound):
        await service.links.confirm(UNI, json.dumps(MAIL), code)  # used
    with pytest.raises(NotFound):
        await service.links.confirm(UNI, json.dumps(MAIL), "NOSUC-HCODE-EXIST-SXXXX")
    late, _ = await service.links.create_link_code(ANA)
    clock.advance(CODE_TTL + timedelta(seconds=1))
    with pytest.raises(NotFound):
        await service.links.confirm(UNI, json.dumps(MAIL), late)
    # An LRS client cannot make codes: only the learner consents.
    with pytest.raises(PermissionDenied):
        await service.links.create_link_code(client_principal("ana", str(uuid.uuid4())))
    for _ in range(MAX_OPEN_CODES):
        await service.links.create_link_code(BEN)
    with pytest.raises(RateLimited):
        await service.links.create_link_code(BEN)


async def test_identity_rules_conflicts_and_revocation(service: LearningService) -> None:
    keiko = {"account": {"homePage": "https://keiko.network", "name": "ben"}}
    code, _ = await service.links.create_link_code(ANA)
    with pytest.raises(ValidationError) as caught:
        await service.links.confirm(UNI, json.dumps(keiko), code)
    assert caught.value.field == "agent.account"
    group = {"objectType": "Group", "member": [MAIL]}
    with pytest.raises(ValidationError):
        await service.links.confirm(UNI, json.dumps(group), code)
    link_id = await link(service, ANA, MAIL)
    again = await link(service, ANA, MAIL)  # the same learner again: the same link
    assert again == link_id
    code, _ = await service.links.create_link_code(BEN)
    with pytest.raises(AlreadyExists):
        await service.links.confirm(UNI, json.dumps(MAIL), code)
    assert [x.id for x in (await service.links.list_links(ANA)).items] == [link_id]
    assert [x.id for x in (await service.links.list_links(UNI)).items] == [link_id]
    with pytest.raises(PermissionDenied):
        await service.links.revoke(BEN, link_id)
    revoked = await service.links.revoke(ANA, link_id)
    assert revoked.revoked_at is not None
    [after] = await service.statements.record_statements(UNI, [about(MAIL)])
    assert after.learner_id is None  # statements after the revocation stay in the LRS
    # Once revoked, the institution may link the address to the other learner.
    code, _ = await service.links.create_link_code(BEN)
    assert (await service.links.confirm(UNI, json.dumps(MAIL), code)).learner_id == "ben"
