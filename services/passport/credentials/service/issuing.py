"""Issuing (the learner, for their own anchored entries): the entries are selected (by id,
by course, or all), checked, planned into credentials and issuers, each given a slot in
its issuer's status list, built with the Keikochain anchors as evidence and signed by
the translator. Idempotent on ``request_id``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from chain.credentials.learning_credentials import (
    Achievement,
    Issuer,
    learning_record_credential,
    open_badge_credential,
)
from chain.credentials.records import AnchoredRecord, AnchorEvidence, RecordAuthor
from chain.credentials.status_list import StatusEntry
from chain.translator.authors import display_name_of_service
from chain.translator.batching import Domain
from chain.translator.credentials import CredentialPurpose
from chain.translator.felts import parse_felt
from services.kit.auth import Principal
from services.kit.db import is_unique_violation
from services.kit.errors import FailedPrecondition, NotFound, Unavailable
from services.passport.credentials.domain import (
    MAX_SELECTION,
    CredentialFormat,
    IssuedCredential,
    IssueRequest,
    Planned,
    check_issuable,
    entry_author,
    plan,
)
from services.passport.credentials.service.core import PLACEHOLDER_DID, credential_of
from services.passport.credentials.service.status import StatusLists
from services.passport.credentials.signing import AnchorRef
from services.passport.credentials.storage import (
    credential_requests,
    credential_statements,
    credentials,
)
from services.passport.domain import FULL, Entry
from services.passport.service import Access, PassportRow, TimelineFilter


class Issuing(StatusLists):
    async def issue(self, caller: Principal, request: IssueRequest) -> list[IssuedCredential]:
        request = request.checked()
        passport = await self.passports.own_passport(caller)
        if request.request_id:
            replay = await self._replay(caller.user_id, request.request_id)
            if replay is not None:
                return replay
        if request.share_link_id:
            link = await self.passports.share_link(caller, request.share_link_id)
            if not link.active(self.clock.now()):
                raise FailedPrecondition(f"share link {link.id} is revoked or expired")
        selected = await self._select(passport, request)
        check_issuable(selected, passport.public_key_hex)
        signer = self._signer()
        anchor_ref = await signer.anchor_ref()
        issued = []
        for planned in plan(request, selected, caller.user_id):
            issued.append(await self._issue_one(passport, planned, request, anchor_ref))
        return await self._store(caller.user_id, request.request_id, issued)

    async def _select(self, passport: PassportRow, request: IssueRequest) -> list[Entry]:
        access = Access(passport, FULL, True)
        if request.statement_ids:
            found = {
                e.statement_id: e
                for e in await self.passports.entries_by_id(access, request.statement_ids)
            }
            missing = [s for s in request.statement_ids if s not in found]
            if missing:
                raise NotFound(f"no entry {missing[0]} in your passport")
            return [found[s] for s in request.statement_ids]
        out: list[Entry] = []
        token = ""
        while True:
            page, token = await self.passports.entry_page(
                access, TimelineFilter(course_id=request.course_id), 200, token
            )
            out.extend(page)
            if len(out) > MAX_SELECTION:
                raise FailedPrecondition(
                    f"more than {MAX_SELECTION} entries: name them, or a course"
                )
            if not token:
                return out

    async def _issue_one(
        self,
        passport: PassportRow,
        planned: Planned,
        request: IssueRequest,
        anchor_ref: AnchorRef,
    ) -> IssuedCredential:
        signer = self._signer()
        list_id, index = await self._allocate(planned.holder_id)
        credential_id = uuid.uuid4().urn
        now = self.clock.now()
        learner_name = await self.passports.owner_display_name(passport.owner_id)
        records = [_record(e, anchor_ref, learner_name) for e in planned.entries]
        issuer_name = _author_name(planned.entries[0], planned.holder_id, learner_name) or (
            "Keiko learner" if planned.holder_id == passport.owner_id else "Keiko user"
        )
        issuer = Issuer(PLACEHOLDER_DID, issuer_name)
        status = StatusEntry(self.status_url(list_id), index)
        if request.format is CredentialFormat.OPEN_BADGE:
            assert request.achievement is not None
            a = request.achievement
            document = open_badge_credential(
                credential_id,
                issuer,
                PLACEHOLDER_DID,
                Achievement(a.id, a.name, a.description, a.criteria, a.achievement_type),
                records,
                now,
                status=status,
            )
        else:
            document = learning_record_credential(
                credential_id,
                issuer,
                PLACEHOLDER_DID,
                records,
                now,
                name=_name(planned, request),
                description=_description(planned),
                status=status,
            )
        signed = await signer.sign(
            CredentialPurpose.ISSUE, planned.holder_id, passport.owner_id, document
        )
        issuer_field = signed.get("issuer")
        return IssuedCredential(
            id=credential_id,
            owner_id=passport.owner_id,
            passport_id=passport.id,
            format=request.format,
            holder_id=planned.holder_id,
            issuer_did=str(issuer_field.get("id") if isinstance(issuer_field, dict) else ""),
            subject_did=str(signed["credentialSubject"]["id"]),
            statement_ids=tuple(e.statement_id for e in planned.entries),
            status_list_id=list_id,
            status_index=index,
            document_json=json.dumps(signed, ensure_ascii=False),
            issued_at=now,
            share_link_id=request.share_link_id,
        )

    async def _store(
        self, owner_id: str, request_id: str, issued: Sequence[IssuedCredential]
    ) -> list[IssuedCredential]:
        try:
            async with self.db.transaction() as s:
                if request_id:
                    await s.execute(
                        credential_requests.insert().values(
                            owner_id=owner_id,
                            request_id=request_id,
                            credential_ids=[c.id for c in issued],
                            created_at=self.clock.now(),
                        )
                    )
                for c in issued:
                    await s.execute(
                        credentials.insert().values(
                            id=c.id,
                            owner_id=c.owner_id,
                            passport_id=c.passport_id,
                            format=c.format.value,
                            holder_id=c.holder_id,
                            issuer_did=c.issuer_did,
                            subject_did=c.subject_did,
                            statement_ids=list(c.statement_ids),
                            status_list_id=c.status_list_id,
                            status_index=c.status_index,
                            share_link_id=c.share_link_id,
                            document=c.document_json,
                            issued_at=c.issued_at,
                        )
                    )
                    for statement_id in c.statement_ids:
                        await s.execute(
                            credential_statements.insert().values(
                                credential_id=c.id, statement_id=statement_id
                            )
                        )
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
            if request_id:  # a concurrent replay won: its credentials are the answer
                replay = await self._replay(owner_id, request_id)
                if replay is not None:
                    return replay
            raise Unavailable("a status list slot was taken concurrently: retry") from None
        return list(issued)

    async def _replay(self, owner_id: str, request_id: str) -> list[IssuedCredential] | None:
        async with self.db.session() as s:
            row = (
                await s.execute(
                    select(credential_requests.c.credential_ids).where(
                        credential_requests.c.owner_id == owner_id,
                        credential_requests.c.request_id == request_id,
                    )
                )
            ).first()
            if row is None:
                return None
            ids = list(row.credential_ids)
            rows = (await s.execute(select(credentials).where(credentials.c.id.in_(ids)))).all()
        by_id = {r._mapping["id"]: credential_of(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]


def _author_name(entry: Entry, author_id: str, learner_name: str) -> str:
    if author_id == entry.learner_id:
        return learner_name
    return entry.author_name or display_name_of_service(author_id)


def _record(entry: Entry, anchor_ref: AnchorRef, learner_name: str) -> AnchoredRecord:
    a = entry.anchor
    author = entry_author(entry)
    assert a.proof is not None
    return AnchoredRecord(
        statement_id=entry.statement_id,
        statement=entry.statement,
        signature=bytes.fromhex(entry.signature_hex),
        author=RecordAuthor(
            author.kind,
            author.author_id,
            bytes.fromhex(entry.public_key_hex),
            _author_name(entry, author.author_id, learner_name),
        ),
        anchor=AnchorEvidence(
            chain_id=anchor_ref.chain_id,
            contract=anchor_ref.contract,
            batch_id=parse_felt(a.batch_id, "batch_id"),
            domain=Domain.parse(a.domain),
            tx_hash=parse_felt(a.tx_hash or "0x0", "tx_hash"),
            block=a.block,
            root=parse_felt(a.root, "root"),
            leaf=parse_felt(a.leaf, "leaf"),
            leaf_index=a.leaf_index,
            proof=tuple(parse_felt(x, "proof") for x in a.proof),
            leaf_encoding=a.leaf_encoding,
        ),
    )


def _name(planned: Planned, request: IssueRequest) -> str:
    if request.format is CredentialFormat.PER_ENTRY:
        return f"Learning record: {planned.entries[0].summary(show_scores=True)}"[:200]
    if request.course_id:
        return f"Learning record of course {request.course_id}"[:200]
    return "Learning record"


def _description(planned: Planned) -> str:
    n = len(planned.entries)
    what = "a learning interaction" if n == 1 else f"{n} learning interactions"
    return (
        f"{what[0].upper()}{what[1:]} from a Keiko Life-Learning Passport, each signed by "
        "its author and anchored on Keikochain (the anchors are the evidence)."
    )
