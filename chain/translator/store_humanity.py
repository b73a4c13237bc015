"""Humanity registrations sent through the translator (part of ``ChainStore``)."""

from __future__ import annotations

from sqlalchemy import (
    delete,
    insert,
    select,
    update,
)

from chain.translator.felts import felt_to_hex
from chain.translator.store_schema import (
    FAILED,
    PENDING,
    HumanityRow,
    StoreBase,
    _hex,
    humanity,
)


class HumanityStore(StoreBase):
    """Humanity registrations sent through the translator (part of ``ChainStore``)."""

    # -- humanity ---------------------------------------------------------------------------

    async def humanity_by_commitment(self, commitment: int) -> HumanityRow | None:
        async with self.db.session() as s:
            row = (
                await s.execute(
                    select(humanity).where(humanity.c.commitment == felt_to_hex(commitment))
                )
            ).first()
        return None if row is None else HumanityRow.of(row)

    async def humanity_by_user(self, user_id: str) -> HumanityRow | None:
        async with self.db.session() as s:
            row = (await s.execute(select(humanity).where(humanity.c.user_id == user_id))).first()
        return None if row is None else HumanityRow.of(row)

    async def used_accounts(self) -> set[int]:
        async with self.db.session() as s:
            values = (await s.execute(select(humanity.c.account))).scalars().all()
        return {int(v, 16) for v in values}

    async def insert_humanity(
        self,
        commitment: int,
        user_id: str,
        public_key: bytes,
        account: int,
        request_id: str | None,
    ) -> HumanityRow:
        """Reserve ``account`` for ``user_id``'s registration (state ``pending``).
        Raises ``IntegrityError`` (unique violation) if commitment, user or account is
        taken."""
        async with self.db.transaction() as s:
            await s.execute(
                insert(humanity).values(
                    commitment=felt_to_hex(commitment),
                    user_id=user_id,
                    public_key=public_key.hex(),
                    account=felt_to_hex(account),
                    request_id=request_id,
                    state=PENDING,
                    created_at=self.clock.now(),
                )
            )
        row = await self.humanity_by_commitment(commitment)
        assert row is not None
        return row

    async def delete_humanity(self, commitment: int) -> None:
        """Forget a FAILED registration (its account is reused by the next attempt)."""
        async with self.db.transaction() as s:
            await s.execute(
                delete(humanity).where(
                    humanity.c.commitment == felt_to_hex(commitment), humanity.c.state == FAILED
                )
            )

    async def finish_humanity(
        self,
        commitment: int,
        *,
        state: str,
        tx_hash: int | None = None,
        block: int | None = None,
        reason: str | None = None,
    ) -> None:
        async with self.db.transaction() as s:
            await s.execute(
                update(humanity)
                .where(humanity.c.commitment == felt_to_hex(commitment))
                .values(state=state, tx_hash=_hex(tx_hash), block=block, failure_reason=reason)
            )
