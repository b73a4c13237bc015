"""Storing validated statements: the rules of `Statements.store` for a whole batch with a
bounded number of round trips, whatever its size.

One SELECT finds what the batch depends on (statements with its ids, the statements it
voids, voiding statements that arrived before their targets); the rules then run in
order, in memory, as if each statement were stored after the previous one (a statement
sees the batch's earlier statements as stored); then one executemany per table writes
the new rows, one UPDATE voids stored targets and one multi-row INSERT enqueues the
events. Same outcome as storing them one by one in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.db import violated_constraint
from services.kit.errors import AlreadyExists, PermissionDenied, ValidationError
from services.kit.events import Event
from services.kit.events.outbox import enqueue_many, outbox_rows
from services.learning.activities.usecases import Activities, definition_hashes
from services.learning.common.storage import outbox
from services.learning.common.usecases import LearningContext
from services.learning.links.usecases import Links
from services.learning.statements.combined import lookup_with_definitions, write_one
from services.learning.statements.domain import (
    TOPIC_INTERACTION_RECORDED,
    StatementRecord,
    StoreExtras,
    agent_index,
    interaction_event_payload,
    json_text,
    keiko_learner_of,
)
from services.learning.statements.storage import NewStatement, StatementRepository
from services.learning.statements.tables import statement_activities, statement_agents, statements
from services.learning.xapi import ValidatedStatement, statement_hash_hex, statements_equivalent

T = TypeVar("T")

# The rows keyed by a statement's id: a unique violation of one of them means a concurrent
# writer stored a statement of the same id after this write's lookup missed it.
_STATEMENT_KEYED = (statements, statement_agents, statement_activities)
_RACE_ATTEMPTS = 3


def lost_statement_race(exc: IntegrityError) -> bool:
    name = violated_constraint(exc) or ""
    return any(  # the constraint's name (PostgreSQL) or its columns (SQLite)
        name == t.primary_key.name or name.startswith(f"{t.name}.") for t in _STATEMENT_KEYED
    )


async def stored_once(write: Callable[[], Awaitable[T]]) -> T:
    """Run `write` (a whole write: its transaction, or its autocommit statement) and again
    when it lost a statement id to a concurrent writer, such as a client's retry of the
    same statements while the first attempt ran: on PostgreSQL that violation is raised
    once the other writer committed, so the rerun's lookup finds its statement and accepts
    it when identical (ALREADY_EXISTS when not), as a later retry would."""
    for _ in range(_RACE_ATTEMPTS - 1):
        try:
            return await write()
        except IntegrityError as exc:
            if not lost_statement_race(exc):
                raise
    return await write()


class TransactionNeeded(Exception):
    """Storing the batch takes more than one writing statement (`StatementWriter.store_many`
    with `one_write`): store it again in a transaction."""


async def stored_in_one_write(
    ctx: LearningContext, store: Callable[[AsyncSession], Awaitable[T]]
) -> T | None:
    """`store` (a `one_write` store) outside a transaction: its reads need no common
    snapshot (READ COMMITTED statements each see the latest commit anyway) and its write is
    one statement, atomic on its own, so no BEGIN and COMMIT round trips. None when it
    needed more than one write (a new or changed activity definition): nothing was
    written, and the caller stores it in a transaction."""
    try:
        async with ctx.db.autocommit_session() as s:
            stored = await store(s)
    except TransactionNeeded:
        return None
    ctx.notify()
    return stored


@dataclass(frozen=True)
class Incoming:
    """One validated statement to store. `sent`: the statement as the client sent it
    (compared with a stored one of the same id: the normalized form carries this
    request's `stored`/`timestamp`; None for statements Keiko builds itself)."""

    statement: ValidatedStatement
    path: str
    extras: StoreExtras = field(default_factory=StoreExtras)
    sent: Mapping[str, Any] | None = None
    # The id was just generated here (uuid4): no statement can be stored under it yet,
    # nor voided before it arrived, so it is not looked up.
    fresh_id: bool = False


class StatementWriter:
    def __init__(self, ctx: LearningContext, activities: Activities, links: Links) -> None:
        self.ctx = ctx
        self.activities = activities
        self.links = links

    async def store_many(
        self,
        s: AsyncSession,
        caller: Principal,
        batch: Sequence[Incoming],
        *,
        lrs_client_id: str | None = None,
        one_write: bool = False,
    ) -> list[StatementRecord]:
        """Store each statement (or accept an identical one already stored) with its
        event, in the caller's transaction `s`; the stored rows in the batch's order.
        `one_write`: `s` is not a transaction (`Database.autocommit_session`), so the
        batch may only be stored with one writing statement (`combined.write_one`); when
        it needs more, nothing is written and `TransactionNeeded` is raised."""
        learners = await self._learners(s, caller, batch)
        repo = StatementRepository(s)
        postgresql = s.get_bind().dialect.name == "postgresql"
        lookup = (
            [item.statement.id for item in batch if not item.fresh_id],
            [t for item in batch if (t := item.statement.voided_statement_id) is not None],
            [
                item.statement.id
                for item in batch
                if not item.fresh_id and item.sent is not None and "id" in item.sent
            ],
        )
        definitions: dict[str, str] | None = None
        if postgresql:  # one round trip for both reads
            hashes = definition_hashes([item.statement.statement for item in batch])
            stored, voiders, definitions = await lookup_with_definitions(
                s, *lookup, caller.user_id, hashes
            )
        else:
            stored, voiders = await repo.lookup(*lookup)
        # The batch's earlier statements count as stored for the later ones.
        known: dict[str, StatementRecord] = dict(stored)
        new: dict[str, NewStatement] = {}
        void_stored: list[str] = []
        out: list[StatementRecord] = []
        for item, learner_id in zip(batch, learners, strict=True):
            v = item.statement
            existing = known.get(v.id)
            if existing is not None:
                if existing.statement_json == item.extras.statement_json or statements_equivalent(
                    existing.statement, item.sent or v.statement, version=v.version
                ):
                    out.append(existing)
                    continue
                raise AlreadyExists(
                    f"{item.path}.id: statement {v.id} is already stored with different content"
                )
            target_id = v.voided_statement_id
            if target_id is not None and _voidable(caller, known.get(target_id), target_id, item):
                if target_id in new:
                    new[target_id] = _voided(new[target_id])
                else:
                    void_stored.append(target_id)
            row = new_record(caller, item, learner_id, lrs_client_id)
            # Only a client-chosen id can have been voided before it arrived: ids the LRS or
            # Keiko generate are fresh UUIDs no earlier statement could name.
            if (
                item.sent is not None
                and "id" in item.sent
                and row.voids_statement_id is None
                and any(_may_void(False, x.recorded_by, row) for x in voiders.get(row.id, ()))
            ):
                row = replace(row, voided=True)
            activities = (
                [(v.object_id, False)] if v.object_type == "Activity" and v.object_id else []
            )
            activities.extend((a, True) for a in v.activity_ids if a != v.object_id)
            new[row.id] = NewStatement(row, activities, agent_index(v.statement))
            known[row.id] = row
            if target_id is not None:
                voiders.setdefault(target_id, []).append(row)
            out.append(row)
        if not new:
            return out
        # PostgreSQL stores one statement in one round trip (its rows, voids and event).
        combined = len(new) == 1 and postgresql
        if one_write and not combined:
            raise TransactionNeeded
        if not await self.activities.remember(
            s,
            caller.user_id,
            [item.statement.statement for item in batch if item.statement.id in new],
            may_write=not one_write,
            stored=definitions,
        ):
            raise TransactionNeeded
        now = self.ctx.clock.now()
        events = [
            Event(
                TOPIC_INTERACTION_RECORDED,
                key=n.record.learner_id,
                payload=interaction_event_payload(n.record),
                occurred_at=now,
            )
            for n in new.values()
            if n.record.learner_id is not None
        ]
        if combined:
            [one] = new.values()
            await write_one(s, one, void_stored, outbox_rows(events))
        else:
            await repo.insert_statements(list(new.values()))
            await repo.mark_voided(void_stored)
            await enqueue_many(s, outbox, events)
        # A statement voided within the batch is returned as stored.
        return [new[r.id].record if r.id in new else r for r in out]

    async def _learners(
        self, s: AsyncSession, caller: Principal, batch: Sequence[Incoming]
    ) -> list[str | None]:
        """The Keiko learner each statement is about (None: an external actor): the actor's
        Keiko account, or the learner an external identity is linked to by the writer
        (with the learner's code, see services.learning.links). Statements about another
        Keiko user need the admin role (interactions are authorized by their use case)."""
        learners: list[str | None] = []
        external: list[str] = []
        for item in batch:
            v = item.statement
            learner_id = keiko_learner_of(v.statement["actor"])
            if (
                item.extras.interaction_type is None
                and learner_id is not None
                and learner_id != caller.user_id
                and not caller.is_admin
            ):
                raise PermissionDenied(
                    f"{item.path}.actor: statements about another Keiko user need the admin role"
                )
            if learner_id is None and v.actor_key is not None and _is_agent(v.statement["actor"]):
                external.append(v.actor_key)
            learners.append(learner_id)
        if not external:
            return learners
        linked = await self.links.learners_of(s, caller.user_id, external)
        return [
            learner_id
            if learner_id is not None
            or item.statement.actor_key is None
            or not _is_agent(item.statement.statement["actor"])
            else linked.get(item.statement.actor_key)
            for item, learner_id in zip(batch, learners, strict=True)
        ]


def new_record(
    caller: Principal, item: Incoming, learner_id: str | None, lrs_client_id: str | None = None
) -> StatementRecord:
    """The row `store_many` writes for `item` (before the batch's voiding rules)."""
    v, extras = item.statement, item.extras
    statement_json = extras.statement_json or json_text(v.statement)
    assert v.stored is not None
    return StatementRecord(
        id=v.id,
        actor_key=v.actor_key,
        learner_id=learner_id,
        recorded_by=caller.user_id,
        lrs_client_id=lrs_client_id,
        webhook_source_id=extras.webhook_source_id,
        verb_id=v.verb_id,
        object_type=v.object_type,
        object_id=v.object_id,
        registration=v.registration,
        timestamp=v.timestamp or v.stored,
        stored=v.stored,
        version=str(v.statement.get("version", v.version.value)),
        voided=False,
        voids_statement_id=v.voided_statement_id,
        statement_json=statement_json,
        canonical_hash=statement_hash_hex(json.loads(statement_json)),
        interaction_type=extras.interaction_type,
        interaction=extras.interaction,
        course_id=extras.course_id,
        class_id=extras.class_id,
        tutorial_session_id=extras.tutorial_session_id,
        study_session_id=extras.study_session_id,
        device_signature_hex=extras.device.signature_hex if extras.device else None,
        device_public_key_hex=extras.device.public_key_hex if extras.device else None,
    )


def _voidable(
    caller: Principal, target: StatementRecord | None, target_id: str, item: Incoming
) -> bool:
    """True when the target is stored (and may be voided by the caller); False when it is
    not stored yet, which is accepted (Data 2.3.2: an LRS SHOULD NOT reject a voiding
    statement because its target is missing): it is voided when it arrives."""
    where = f"{item.path}.object.id"
    if target is None:
        return False
    if target.voids_statement_id is not None:
        raise ValidationError(
            where, f"statement {target_id} is a voiding statement and cannot be voided"
        )
    if not _may_void(caller.is_admin, caller.user_id, target):
        raise PermissionDenied(f"{where}: not allowed to void statement {target_id}")
    return True


def _voided(n: NewStatement) -> NewStatement:
    return replace(n, record=replace(n.record, voided=True))


def _is_agent(actor: Mapping[str, Any]) -> bool:
    return actor.get("objectType", "Agent") == "Agent"


def _may_void(is_admin: bool, user_id: str, target: StatementRecord) -> bool:
    return is_admin or user_id in (target.recorded_by, target.learner_id)
