"""Scores: a user's reputation, recomputing every score, and revealing the ratings whose
window has closed."""

from __future__ import annotations

from services.kit.events.outbox import enqueue
from services.reputation.domain import Score, compute_all_scores, compute_score, validate_id
from services.reputation.service.core import REVEAL_BATCH, ReputationCore, updated_event
from services.reputation.storage import Repository, outbox


class Scores(ReputationCore):
    async def reputation(self, user_id: str) -> Score:
        """Public: anybody's current reputation, computed at the clock's now."""
        user_id = validate_id(user_id, "user_id")
        now = self.clock.now()
        async with self.db.session() as read:
            received = await Repository(read).received(user_id, now)
        return compute_score(user_id, received, now)

    async def recompute_all(self) -> int:
        """Recompute every score at once (numpy) and announce those that moved since the
        last announcement (decay moves them daily). Returns how many were announced."""
        now = self.clock.now()
        # Scan and compute outside the write transaction: writers are not held up by it.
        # Two replicas racing may both announce a change: harmless, watchers keep the newest.
        async with self.db.session() as read:
            repo = Repository(read)
            scores = compute_all_scores(await repo.rating_columns(now), now)
            snapshots = await repo.snapshots()
        changed = [s for u, s in scores.items() if not s.same_values(snapshots.get(u))]
        if changed:
            async with self.db.transaction() as session:
                repo = Repository(session)
                await repo.save_snapshots(changed)
                await repo.enqueue_many([updated_event(score, now) for score in changed])
        return len(changed)

    async def reveal_due(self) -> int:
        """Reveal ratings whose window closed unanswered; announce them. Returns count."""
        total = 0
        while True:
            now = self.clock.now()
            async with self.db.transaction() as session:
                repo = Repository(session)
                due = await repo.due_for_reveal(now, REVEAL_BATCH)
                await repo.mark_revealed([r.id for r in due], now)
                for rating in due:
                    await enqueue(session, outbox, self._revealed_event(rating, now))
                await self._announce(session, {r.rated_id for r in due}, now)
            total += len(due)
            if len(due) < REVEAL_BATCH:
                return total
