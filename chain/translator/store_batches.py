"""Batches: seal queued records, claim and send them, confirm or fail them, and the
watcher's cursor (part of ``ChainStore``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from chain.translator.batching import BatchPolicy, Domain, SealedBatch, make_batch_id
from chain.translator.felts import felt_to_hex
from chain.translator.store_schema import (
    ANCHORED,
    FAILED,
    PENDING,
    SEALED,
    SUBMITTED,
    TOPIC_ANCHOR_FAILED,
    TOPIC_BATCH_ANCHORED,
    TOPIC_INTERACTION_ANCHORED,
    AnchorConfirmation,
    BatchRow,
    Cursor,
    StoreBase,
    _hex,
    _unbatched,
    _utc,
    _utc_required,
    batches,
    cursors,
    log,
    outbox,
    records,
)
from services.kit.events import Event
from services.kit.events.outbox import enqueue_many


class BatchStore(StoreBase):
    """Batches: seal queued records, claim and send them, confirm or fail them, and the"""

    # -- sealing --------------------------------------------------------------------------

    async def seal_batch(
        self, domain: Domain, policy: BatchPolicy, *, force: bool = False
    ) -> BatchRow | None:
        """Close the next batch of ``domain`` if the policy says so (or ``force``).

        In ONE transaction: take up to ``max_leaves`` oldest unbatched records, allocate
        the batch's sequence number (the batch row's autoincrement key), build the Merkle
        tree, and write the batch and every record's batch id, index and proof. A crash
        before commit leaves the records unbatched; after commit the batch is durable.
        """
        now = self.clock.now()
        query = (
            select(records.c.seq, records.c.leaf, records.c.submitted_at)
            .where(
                records.c.domain == domain.value,
                _unbatched,
                records.c.status == PENDING,
            )
            .order_by(records.c.seq)
            .limit(policy.max_leaves)
        )
        if self.db.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        async with self.db.transaction() as s:
            rows = (await s.execute(query)).all()
            if not rows:
                return None
            oldest = _utc_required(rows[0].submitted_at)
            full = len(rows) >= policy.max_leaves
            expired = now >= oldest + policy.max_wait
            if not (full or expired or force):
                return None
            result = await s.execute(
                insert(batches).values(
                    domain=domain.value,
                    leaf_count=len(rows),
                    state=SEALED,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
            seq = int(result.inserted_primary_key[0])  # type: ignore[attr-defined]
            batch_id = make_batch_id(domain, seq)
            # The tree (one Poseidon per leaf, ctypes: the GIL is released) in a worker
            # thread, so the event loop serves requests while a large batch is sealed.
            sealed = await asyncio.to_thread(
                SealedBatch.build, batch_id, domain, [int(r.leaf, 16) for r in rows]
            )
            batch_hex = felt_to_hex(batch_id)
            root_hex = felt_to_hex(sealed.root)
            await s.execute(
                update(batches)
                .where(batches.c.seq == seq)
                .values(batch_id=batch_hex, root=root_hex)
            )
            await s.execute(
                update(records)
                .where(records.c.seq == bindparam("b_seq"))
                .values(
                    batch_id=batch_hex,
                    root=root_hex,
                    leaf_index=bindparam("b_index"),
                    proof=bindparam("b_proof"),
                    batched_at=now,
                ),
                [
                    {
                        "b_seq": row.seq,
                        "b_index": proof.index,
                        "b_proof": [felt_to_hex(x) for x in proof.siblings],
                    }
                    for row, proof in zip(rows, sealed.proofs, strict=True)
                ],
            )
            batch_row = (await s.execute(select(batches).where(batches.c.seq == seq))).one()
        return BatchRow.of(batch_row)

    # -- batches --------------------------------------------------------------------------

    async def get_batch(self, batch_id: int) -> BatchRow | None:
        async with self.db.session() as s:
            row = (
                await s.execute(select(batches).where(batches.c.batch_id == felt_to_hex(batch_id)))
            ).first()
        return None if row is None else BatchRow.of(row)

    async def list_batches(self, *, state: str | None = None) -> list[BatchRow]:
        query = select(batches).where(batches.c.batch_id.is_not(None)).order_by(batches.c.seq)
        if state is not None:
            query = query.where(batches.c.state == state)
        async with self.db.session() as s:
            return [BatchRow.of(r) for r in (await s.execute(query)).all()]

    def _locked(self, condition: Any) -> Any:
        """``SELECT batches ... FOR UPDATE`` on PostgreSQL (SQLite's write lock already
        serializes): two confirmers (watcher, engine, replicas) cannot both transition."""
        query = select(batches).where(condition)
        return query.with_for_update() if self.db.dialect == "postgresql" else query

    async def claim_due_batches(self, limit: int, lease: timedelta) -> list[BatchRow]:
        """Take up to ``limit`` due batches for this engine: their ``next_attempt_at``
        moves ``lease`` ahead in the same transaction (``SKIP LOCKED`` on PostgreSQL), so
        replicas do not send the same batch at once; a crashed engine's claim expires.
        The rows come back with ``next_attempt_at`` = the claim's expiry, which is also
        the token :meth:`renew_claims` extends it by, and ``first_claim`` set for a batch
        nobody claimed before (see :func:`_never_claimed`)."""
        now = self.clock.now()
        query = (
            select(batches)
            .where(
                batches.c.state.in_((SEALED, SUBMITTED)),
                batches.c.batch_id.is_not(None),
                batches.c.next_attempt_at <= now,
            )
            .order_by(batches.c.seq)
            .limit(limit)
        )
        if self.db.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        async with self.db.transaction() as s:
            rows = [BatchRow.of(r) for r in (await s.execute(query)).all()]
            if rows:
                await s.execute(
                    update(batches)
                    .where(batches.c.seq.in_([r.seq for r in rows]))
                    .values(next_attempt_at=now + lease)
                )
        return [
            replace(r, next_attempt_at=now + lease, first_claim=_never_claimed(r)) for r in rows
        ]

    async def renew_claims(self, claims: Sequence[BatchRow], lease: timedelta) -> list[BatchRow]:
        """Extend claims this engine still holds to ``lease`` from now; returns them with
        their new expiry. A claim is held while the batch's ``next_attempt_at`` is still
        the expiry we set (compare-and-set): once the engine recorded an outcome (sent,
        failed, confirmed) or another engine took the batch after expiry, it is not."""
        until = self.clock.now() + lease
        renewed: list[BatchRow] = []
        async with self.db.transaction() as s:
            for claim in claims:
                result = await s.execute(
                    update(batches)
                    .where(
                        batches.c.seq == claim.seq,
                        batches.c.state.in_((SEALED, SUBMITTED)),
                        batches.c.next_attempt_at == claim.next_attempt_at,
                    )
                    .values(next_attempt_at=until)
                )
                if getattr(result, "rowcount", 0):
                    renewed.append(replace(claim, next_attempt_at=until))
        return renewed

    async def release(self, batch_ids: Sequence[int]) -> None:
        """Give claimed batches back (due now)."""
        if not batch_ids:
            return
        async with self.db.transaction() as s:
            await s.execute(
                update(batches)
                .where(
                    batches.c.batch_id.in_([felt_to_hex(b) for b in batch_ids]),
                    batches.c.state.in_((SEALED, SUBMITTED)),
                )
                .values(next_attempt_at=self.clock.now())
            )

    async def ready_batches(self) -> int:
        """Sealed batches due now that no engine holds: ready for the next free send slot."""
        query = (
            select(func.count())
            .select_from(batches)
            .where(
                batches.c.state == SEALED,
                batches.c.batch_id.is_not(None),
                batches.c.next_attempt_at <= self.clock.now(),
            )
        )
        async with self.db.session() as s:
            return int((await s.execute(query)).scalar_one())

    async def next_due_at(self) -> datetime | None:
        query = select(func.min(batches.c.next_attempt_at)).where(
            batches.c.state.in_((SEALED, SUBMITTED))
        )
        async with self.db.session() as s:
            return _utc((await s.execute(query)).scalar_one_or_none())

    async def oldest_unbatched_at(self) -> datetime | None:
        query = select(func.min(records.c.submitted_at)).where(_unbatched)
        async with self.db.session() as s:
            return _utc((await s.execute(query)).scalar_one_or_none())

    async def record_failure(
        self, batch_id: int, *, error: str, next_attempt_at: datetime | None
    ) -> int:
        """Count one failed attempt (the batch goes back to ``sealed``: it is re-checked on
        chain and re-sent at ``next_attempt_at``); returns the attempt count."""
        async with self.db.transaction() as s:
            row = (
                await s.execute(
                    select(batches.c.attempts, batches.c.state).where(
                        batches.c.batch_id == felt_to_hex(batch_id)
                    )
                )
            ).one()
            if row.state not in (SEALED, SUBMITTED):
                return int(row.attempts)
            attempts = int(row.attempts) + 1
            await s.execute(
                update(batches)
                .where(batches.c.batch_id == felt_to_hex(batch_id))
                .values(
                    attempts=attempts,
                    last_error=error,
                    next_attempt_at=next_attempt_at,
                    state=SEALED,
                )
            )
            await s.execute(
                update(records)
                .where(records.c.batch_id == felt_to_hex(batch_id))
                .values(attempts=attempts)
            )
        return attempts

    async def mark_submitted(
        self, batch_id: int, tx_hash: int, block: int | None, check_at: datetime
    ) -> None:
        """Our transaction succeeded; the watcher confirms it (or the engine re-checks at
        ``check_at``). Records get the transaction hash already (still PENDING)."""
        now = self.clock.now()
        async with self.db.transaction() as s:
            # The watcher may have confirmed it already: still record when we sent it.
            await s.execute(
                update(batches)
                .where(
                    batches.c.batch_id == felt_to_hex(batch_id), batches.c.submitted_at.is_(None)
                )
                .values(submitted_at=now)
            )
            await s.execute(
                update(batches)
                .where(batches.c.batch_id == felt_to_hex(batch_id), batches.c.state == SEALED)
                .values(
                    state=SUBMITTED,
                    attempts=batches.c.attempts + 1,
                    tx_hash=felt_to_hex(tx_hash),
                    block=block,
                    submitted_at=now,
                    next_attempt_at=check_at,
                    last_error=None,
                )
            )
            await s.execute(
                update(records)
                .where(records.c.batch_id == felt_to_hex(batch_id), records.c.status == PENDING)
                .values(tx_hash=felt_to_hex(tx_hash))
            )

    async def confirm(self, confirmations: Iterable[AnchorConfirmation], source: str) -> list[int]:
        """Mark batches anchored from chain evidence, once; returns the batch ids that
        changed. See :meth:`_confirm_in`."""
        async with self.db.transaction() as s:
            return await self._confirm_in(s, confirmations, source)

    async def _confirm_in(
        self, s: AsyncSession, confirmations: Iterable[AnchorConfirmation], source: str
    ) -> list[int]:
        """Inside ``s``: for each confirmation of a batch we know, not yet anchored and with
        the same root, set batch and records ANCHORED and enqueue ``chain.batch_anchored``
        plus one ``chain.interaction_anchored`` per record. Already anchored: nothing
        (so events are published once). Unknown batch ids (other deployments) are
        ignored; a root mismatch is left alone and reported by the caller's logs."""
        now = self.clock.now()
        changed: list[int] = []
        for c in confirmations:
            batch_hex = felt_to_hex(c.batch_id)
            row = (await s.execute(self._locked(batches.c.batch_id == batch_hex))).first()
            if row is None:
                continue
            batch = BatchRow.of(row)
            if batch.root != c.root:
                log.error(
                    "chain evidence with another root",
                    batch_id=batch_hex,
                    ours=felt_to_hex(batch.root),
                    on_chain=felt_to_hex(c.root),
                    source=source,
                )
                continue
            if batch.state == ANCHORED:
                continue
            tx_hash = c.tx_hash if c.tx_hash is not None else batch.tx_hash
            await s.execute(
                update(batches)
                .where(batches.c.batch_id == batch_hex)
                .values(
                    state=ANCHORED,
                    block=c.block,
                    tx_hash=_hex(tx_hash),
                    anchored_at=now,
                    confirmed_by=source,
                    last_error=None,
                    next_attempt_at=None,
                )
            )
            await s.execute(
                update(records)
                .where(records.c.batch_id == batch_hex)
                .values(
                    status=ANCHORED,
                    block=c.block,
                    tx_hash=_hex(tx_hash),
                    anchored_at=now,
                    failure_reason=None,
                )
            )
            rows = (
                await s.execute(
                    select(records)
                    .where(records.c.batch_id == batch_hex)
                    .order_by(records.c.leaf_index)
                )
            ).all()
            common = {
                "batch_id": batch_hex,
                "root": felt_to_hex(batch.root),
                "block": c.block,
                "tx_hash": _hex(tx_hash),
                "domain": batch.domain.value,
            }
            announced = [
                Event(
                    TOPIC_BATCH_ANCHORED,
                    key=batch_hex,
                    payload={**common, "leaf_count": batch.leaf_count},
                    occurred_at=now,
                )
            ]
            for r in rows:
                m = r._mapping
                announced.append(
                    Event(
                        TOPIC_INTERACTION_ANCHORED,
                        key=m["learner_id"] or m["record_id"],
                        payload={
                            **common,
                            "record_id": m["record_id"],
                            "learner_id": m["learner_id"],
                            "author_id": m["author_id"],
                            "leaf": m["leaf"],
                            "leaf_encoding": m["leaf_encoding"],
                            "leaf_index": m["leaf_index"],
                            "proof": m["proof"],
                            "leaf_count": batch.leaf_count,
                            "statement_sha256": m["statement_sha256"],
                            "signature": m["signature"],
                            "public_key": m["public_key"],
                            "status": ANCHORED,
                        },
                        occurred_at=now,
                    )
                )
            await enqueue_many(s, outbox, announced)  # one statement for the whole batch
            changed.append(c.batch_id)
        return changed

    async def mark_failed(self, batch_id: int, reason: str) -> bool:
        """Give up on a batch (``FAILED`` with ``reason``); announces ``chain.anchor_failed``
        for each record. Returns False if the batch was already final."""
        now = self.clock.now()
        batch_hex = felt_to_hex(batch_id)
        async with self.db.transaction() as s:
            row = (await s.execute(self._locked(batches.c.batch_id == batch_hex))).first()
            if row is None or row._mapping["state"] in (ANCHORED, FAILED):
                return False
            await s.execute(
                update(batches)
                .where(batches.c.batch_id == batch_hex)
                .values(state=FAILED, last_error=reason, next_attempt_at=None)
            )
            await s.execute(
                update(records)
                .where(records.c.batch_id == batch_hex)
                .values(status=FAILED, failure_reason=reason)
            )
            rows = (await s.execute(select(records).where(records.c.batch_id == batch_hex))).all()
            failed = []
            for r in rows:
                m = r._mapping
                failed.append(
                    Event(
                        TOPIC_ANCHOR_FAILED,
                        key=m["learner_id"] or m["record_id"],
                        payload={
                            "record_id": m["record_id"],
                            "learner_id": m["learner_id"],
                            "author_id": m["author_id"],
                            "domain": m["domain"],
                            "batch_id": batch_hex,
                            "root": m["root"],
                            "leaf": m["leaf"],
                            "leaf_encoding": m["leaf_encoding"],
                            "leaf_index": m["leaf_index"],
                            "status": FAILED,
                            "failure_reason": reason,
                        },
                        occurred_at=now,
                    )
                )
            await enqueue_many(s, outbox, failed)
        return True

    async def retry_failed(self, batch_id: int) -> bool:
        """FAILED -> PENDING (``AnchorStatus.retry``): the same batch id and root are sent
        again (after the usual on-chain check). Returns False unless the batch was FAILED."""
        now = self.clock.now()
        batch_hex = felt_to_hex(batch_id)
        async with self.db.transaction() as s:
            result = await s.execute(
                update(batches)
                .where(batches.c.batch_id == batch_hex, batches.c.state == FAILED)
                .values(state=SEALED, next_attempt_at=now, attempts=0)
            )
            if not getattr(result, "rowcount", 0):
                return False
            await s.execute(
                update(records)
                .where(records.c.batch_id == batch_hex)
                .values(status=PENDING, failure_reason=None)
            )
        return True

    # -- watcher ----------------------------------------------------------------------------

    async def get_cursor(self, name: str, start_block: int = 0) -> Cursor:
        async with self.db.session() as s:
            row = (await s.execute(select(cursors).where(cursors.c.name == name))).first()
        if row is None:
            return Cursor(start_block, None, None)
        m = row._mapping
        return Cursor(m["from_block"], m["to_block"], m["continuation_token"])

    async def apply_events(
        self, name: str, confirmations: Sequence[AnchorConfirmation], cursor: Cursor
    ) -> list[int]:
        """Confirm batches from one page of events and move the cursor, atomically: a
        crash replays the page, and confirming is idempotent."""
        now = self.clock.now()
        async with self.db.transaction() as s:
            changed = await self._confirm_in(s, confirmations, "event")
            values = {
                "from_block": cursor.from_block,
                "to_block": cursor.to_block,
                "continuation_token": cursor.continuation_token,
                "updated_at": now,
            }
            result = await s.execute(update(cursors).where(cursors.c.name == name).values(values))
            if not getattr(result, "rowcount", 0):
                await s.execute(insert(cursors).values(name=name, **values))
        return changed


def _never_claimed(batch: BatchRow) -> bool:
    """Is ``batch`` (as read under a claim's lock) still as sealed, never claimed?

    Sealing sets ``next_attempt_at`` to ``created_at``; every claim moves it past that (to
    the claim's expiry), and so do a failure's retry time and a retry after FAILED (which
    also leaves ``last_error``). So only a batch no engine has held can be sent without
    asking the chain first whether an earlier send landed."""
    return (
        batch.state == SEALED
        and batch.attempts == 0
        and batch.tx_hash is None
        and batch.submitted_at is None
        and batch.last_error is None
        and batch.next_attempt_at == batch.created_at
    )
