"""A proposal's lifecycle in storage: the proposals whose voting window opens or ends,
and the updates of its status, result and anchor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from services.governance import domain as d
from services.governance.storage.common import Store, anchor_to_json
from services.governance.storage.proposals import proposals


class LifecycleStore(Store):
    async def due_for_activation(self, now: datetime, limit: int) -> list[str]:
        rows = await self.session.execute(
            select(proposals.c.id)
            .where(
                proposals.c.status == d.ProposalStatus.PENDING.value,
                proposals.c.voting_starts_at <= now,
            )
            .order_by(proposals.c.voting_starts_at)
            .limit(limit)
        )
        return list(rows.scalars())

    async def due_for_finalization(self, now: datetime, limit: int) -> list[str]:
        rows = await self.session.execute(
            select(proposals.c.id)
            .where(
                proposals.c.status.in_(
                    [d.ProposalStatus.PENDING.value, d.ProposalStatus.ACTIVE.value]
                ),
                proposals.c.voting_ends_at <= now,
            )
            .order_by(proposals.c.voting_ends_at)
            .limit(limit)
        )
        return list(rows.scalars())

    async def update_proposal(self, proposal_id: str, **values: Any) -> None:
        if "anchor" in values and isinstance(values["anchor"], d.Anchor):
            values["anchor"] = anchor_to_json(values["anchor"])
        if "status" in values and isinstance(values["status"], d.ProposalStatus):
            values["status"] = values["status"].value
        await self.session.execute(
            update(proposals).where(proposals.c.id == proposal_id).values(**values)
        )
