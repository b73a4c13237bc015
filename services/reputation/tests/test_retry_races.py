"""A rater's retry racing its first attempt (same request id, both running at once), made
deterministic by `services.kit.races`: the retry answers the first rating, one rating is
stored, no INTERNAL. Both engines (on PostgreSQL the retry is seen waiting for the first
call's commit)."""

from __future__ import annotations

from sqlalchemy import func, select

from services.kit.db import Database
from services.kit.races import twin_calls
from services.reputation.domain import Role
from services.reputation.service import ReputationService
from services.reputation.storage import ratings
from services.reputation.tests.conftest import complete_session, rate


async def test_a_retry_racing_its_first_rating_answers_the_first_rating(
    service: ReputationService, migrated_database: Database
) -> None:
    db = migrated_database
    sid = await complete_session(service, "tutor", "ana")
    twins = await twin_calls(
        db, lambda: rate(service, "ana", "tutor", Role.STUDENT, sid, 4, request_id="r1")
    )
    if db.dialect == "postgresql":
        assert twins.second_waited or twins.second_finished_first
    first, second = twins.results()
    assert first == second
    again = await rate(service, "ana", "tutor", Role.STUDENT, sid, 4, request_id="r1")
    assert again.id == first.id
    async with db.session() as s:
        assert (await s.execute(select(func.count()).select_from(ratings))).scalar_one() == 1
