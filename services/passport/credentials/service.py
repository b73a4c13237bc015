"""Passport credential use cases: issue, list, read, revoke; status lists; presentations.

**Issuing** (the learner, for their own anchored entries): the entries are selected (by id,
by course, or all), checked (:func:`~services.passport.credentials.domain.check_issuable`),
planned into credentials and issuers (:func:`~services.passport.credentials.domain.plan`),
each given a random slot in its issuer's status list, built with the Keikochain anchors as
evidence (:mod:`chain.credentials`) and signed by the translator
(:class:`~services.passport.credentials.signing.CredentialSigning`), which refuses any key
that would sign what its holder does not stand behind. Idempotent on ``request_id``.

**Who sees a credential.** Its subject (the learner) and its issuer (the key holder) always;
anyone else only through a share link or the public passport whose disclosure shows
every entry in it and the statements' content (like the export), and only while it is not
revoked. A credential issued *for* a share link shows only through that link.

**Revocation** by the subject or the issuer, when a statement in it is voided, and when
the share link it was issued for is revoked (:mod:`services.passport.credentials.revocation`);
the issuer's status list is re-signed and republished by :meth:`CredentialService.publish`,
called right away and by the publisher job until it succeeds.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from chain.credentials.learning_credentials import (
    Achievement,
    Issuer,
    learning_record_credential,
    open_badge_credential,
)
from chain.credentials.presentations import check_challenge, check_domain, presentation
from chain.credentials.records import AnchoredRecord, AnchorEvidence, RecordAuthor
from chain.credentials.status_list import LIST_BITS, Bitstring, StatusEntry, status_list_credential
from chain.translator.authors import display_name_of_service
from chain.translator.batching import Domain
from chain.translator.credentials import CredentialPurpose
from chain.translator.felts import parse_felt
from services.kit.auth import Principal
from services.kit.db import is_unique_violation
from services.kit.errors import FailedPrecondition, NotFound, Unavailable
from services.kit.logging import get_logger
from services.passport.credentials.domain import (
    MAX_SELECTION,
    CredentialFormat,
    IssuedCredential,
    IssueRequest,
    Planned,
    RevocationReason,
    check_credential_id,
    check_issuable,
    entry_author,
    plan,
)
from services.passport.credentials.revocation import revoke_rows
from services.passport.credentials.signing import AnchorRef, CredentialSigning
from services.passport.credentials.storage import (
    credential_requests,
    credential_statements,
    credentials,
    status_lists,
)
from services.passport.domain import FULL, Entry, as_utc, decode_cursor, encode_cursor
from services.passport.service import Access, PassportRow, PassportService, TimelineFilter

log = get_logger(__name__)

STATUS_PATH = "/credentials/status/"
PUBLIC_LIST_LIMIT = 200
# A presentation carries the newest credentials a share link shows: each costs its RDF
# canonicalization when the learner's key signs it, on every fetch of the link.
MAX_PRESENTED = 20
PUBLISH_INTERVAL_S = 30.0

# The DIDs are written by the translator (the custodial keys of issuer and subject); the
# builders need well-formed ones to start from.
_PLACEHOLDER_DID = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"


def credential_of(row: Any) -> IssuedCredential:
    m = row._mapping
    reason = m["revocation_reason"]
    return IssuedCredential(
        id=m["id"],
        owner_id=m["owner_id"],
        passport_id=m["passport_id"],
        format=CredentialFormat(m["format"]),
        holder_id=m["holder_id"],
        issuer_did=m["issuer_did"],
        subject_did=m["subject_did"],
        statement_ids=tuple(m["statement_ids"]),
        status_list_id=m["status_list_id"],
        status_index=int(m["status_index"]),
        document_json=m["document"],
        issued_at=as_utc(m["issued_at"]),
        share_link_id=m["share_link_id"],
        revoked_at=None if m["revoked_at"] is None else as_utc(m["revoked_at"]),
        revocation_reason=None if reason is None else RevocationReason(reason),
    )


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
        ),
    )


class CredentialService:
    def __init__(
        self,
        passports: PassportService,
        signing: CredentialSigning | None,
        *,
        public_base_url: str,
    ) -> None:
        self.passports = passports
        self.db = passports.db
        self.clock = passports.clock
        self.signing = signing
        self.base_url = public_base_url.rstrip("/")
        self._wake = asyncio.Event()

    def _signer(self) -> CredentialSigning:
        if self.signing is None:
            raise Unavailable(
                "issuing credentials needs the chain translator and a service identity "
                "(run the passport beside identity, or give it the platform's JWT key)"
            )
        return self.signing

    def status_url(self, list_id: str) -> str:
        return f"{self.base_url}{STATUS_PATH}{list_id}"

    # == issuing ==========================================================================

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
        issuer = Issuer(_PLACEHOLDER_DID, issuer_name)
        status = StatusEntry(self.status_url(list_id), index)
        if request.format is CredentialFormat.OPEN_BADGE:
            assert request.achievement is not None
            a = request.achievement
            document = open_badge_credential(
                credential_id,
                issuer,
                _PLACEHOLDER_DID,
                Achievement(a.id, a.name, a.description, a.criteria, a.achievement_type),
                records,
                now,
                status=status,
            )
        else:
            document = learning_record_credential(
                credential_id,
                issuer,
                _PLACEHOLDER_DID,
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

    # == status lists =====================================================================

    async def _allocate(self, holder_id: str) -> tuple[str, int]:
        """A free random slot in the holder's status list (a new list when full)."""
        created = None
        async with self.db.transaction() as s:
            row = (
                await s.execute(
                    select(status_lists.c.id, status_lists.c.size)
                    .where(
                        status_lists.c.holder_id == holder_id,
                        status_lists.c.used < status_lists.c.size,
                    )
                    .order_by(status_lists.c.created_at)
                    .limit(1)
                )
            ).first()
            if row is None:
                created = str(uuid.uuid4())
                now = self.clock.now()
                await s.execute(
                    status_lists.insert().values(
                        id=created,
                        holder_id=holder_id,
                        size=LIST_BITS,
                        used=0,
                        revision=1,
                        published_revision=0,
                        document="",
                        created_at=now,
                        updated_at=now,
                    )
                )
                list_id, size = created, LIST_BITS
            else:
                list_id, size = row.id, int(row.size)
            while True:
                index = secrets.randbelow(size)
                taken = (
                    await s.execute(
                        select(credentials.c.id).where(
                            credentials.c.status_list_id == list_id,
                            credentials.c.status_index == index,
                        )
                    )
                ).first()
                if taken is None:
                    break
            await s.execute(
                update(status_lists)
                .where(status_lists.c.id == list_id)
                .values(used=status_lists.c.used + 1)
            )
        if created is not None:
            await self.publish(created)  # verifiers can fetch it before the credential exists
        return list_id, index

    async def publish(self, list_id: str) -> bool:
        """Re-sign and store the list if it changed; False if the translator failed."""
        async with self.db.session() as s:
            row = (await s.execute(select(status_lists).where(status_lists.c.id == list_id))).one()
            revoked = (
                await s.execute(
                    select(credentials.c.status_index).where(
                        credentials.c.status_list_id == list_id,
                        credentials.c.revoked_at.is_not(None),
                    )
                )
            ).scalars()
            indices = list(revoked)
        m = row._mapping
        revision = int(m["revision"])
        if revision <= int(m["published_revision"]):
            return True
        unsigned = status_list_credential(
            self.status_url(list_id),
            _PLACEHOLDER_DID,
            Bitstring.with_bits(indices, int(m["size"])),
            self.clock.now(),
        )
        try:
            signed = await self._signer().sign(
                CredentialPurpose.STATUS_LIST, m["holder_id"], "", unsigned
            )
        except Unavailable as exc:
            log.warning("passport.status_list_unpublished", list_id=list_id, error=exc.message)
            return False
        async with self.db.transaction() as s:
            await s.execute(
                update(status_lists)
                .where(
                    status_lists.c.id == list_id,
                    status_lists.c.published_revision < revision,
                )
                .values(
                    document=json.dumps(signed, ensure_ascii=False),
                    published_revision=revision,
                    updated_at=self.clock.now(),
                )
            )
        return True

    async def publish_pending(self) -> int:
        """Publish every list whose revocations are not published yet; returns how many
        are still behind."""
        async with self.db.session() as s:
            ids = (
                await s.execute(
                    select(status_lists.c.id).where(
                        status_lists.c.revision > status_lists.c.published_revision
                    )
                )
            ).scalars()
            pending = list(ids)
        behind = 0
        for list_id in pending:
            if not await self.publish(list_id):
                behind += 1
        return behind

    def notify(self) -> None:
        """Wake the publisher (a revocation was committed)."""
        self._wake.set()

    async def publisher(self, stop: asyncio.Event) -> None:
        """Background job: republish changed status lists, on notice and periodically."""
        while not stop.is_set():
            try:
                await self.publish_pending()
            except Exception:
                log.exception("passport.status_publisher_failed")
            self._wake.clear()
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            await asyncio.wait(waiters, timeout=PUBLISH_INTERVAL_S, return_when="FIRST_COMPLETED")
            for waiter in waiters:
                waiter.cancel()

    async def status_list(self, list_id: str) -> str:
        """The published status list credential (public)."""
        if not list_id or len(list_id) > 36:
            raise NotFound("no such status list")
        async with self.db.session() as s:
            row = (
                await s.execute(select(status_lists.c.document).where(status_lists.c.id == list_id))
            ).first()
        if row is None:
            raise NotFound("no such status list")
        if not row.document:
            raise Unavailable("the status list is not published yet: retry shortly")
        return str(row.document)

    # == reading ==========================================================================

    async def _load(self, credential_id: str) -> IssuedCredential | None:
        credential_id = check_credential_id(credential_id)
        async with self.db.session() as s:
            row = (
                await s.execute(select(credentials).where(credentials.c.id == credential_id))
            ).first()
        return None if row is None else credential_of(row)

    async def visible(
        self, access: Access, candidates: Sequence[IssuedCredential]
    ) -> list[IssuedCredential]:
        """Those of ``candidates`` the access shows (see the module docstring)."""
        if not access.disclosure.show_content:
            return []
        link_id = access.link.id if access.link is not None else ""
        wanted = [
            c
            for c in candidates
            if not c.revoked
            and c.owner_id == access.passport.owner_id
            and (not c.share_link_id or c.share_link_id == link_id)
        ]
        ids = sorted({s for c in wanted for s in c.statement_ids})
        shown = {e.statement_id for e in await self.passports.entries_by_id(access, ids)}
        return [c for c in wanted if set(c.statement_ids) <= shown]

    async def get(
        self, caller: Principal | None, credential_id: str, share_token: str = ""
    ) -> IssuedCredential:
        found = await self._load(credential_id)
        if found is None:
            raise NotFound(f"no credential {credential_id}")
        if caller is not None and caller.user_id in (found.owner_id, found.holder_id):
            return found
        if share_token:
            access = await self.passports.share_access(share_token, count_view=False)
        else:
            try:
                access = await self.passports.access(caller, found.passport_id)
            except NotFound:
                raise NotFound(f"no credential {credential_id}") from None
        if not await self.visible(access, [found]):
            raise NotFound(f"no credential {credential_id}")
        return found

    async def list_own(
        self,
        caller: Principal,
        *,
        issued_by_me: bool = False,
        include_revoked: bool = False,
        size: int = 50,
        page_token: str = "",
    ) -> tuple[list[IssuedCredential], str]:
        c = credentials.c
        column = c.holder_id if issued_by_me else c.owner_id
        scope = f"{'issued' if issued_by_me else 'own'}:{include_revoked}:{caller.user_id}"
        cursor = decode_cursor(page_token, scope)
        query = select(credentials).where(column == caller.user_id)
        if not include_revoked:
            query = query.where(c.revoked_at.is_(None))
        if cursor is not None:
            when, ident = cursor
            query = query.where(or_(c.issued_at < when, and_(c.issued_at == when, c.id < ident)))
        query = query.order_by(c.issued_at.desc(), c.id.desc()).limit(size + 1)
        async with self.db.session() as s:
            rows = (await s.execute(query)).all()
        found = [credential_of(r) for r in rows[:size]]
        token = ""
        if len(rows) > size:
            token = encode_cursor(found[-1].issued_at, found[-1].id, scope)
        return found, token

    async def list_visible(self, access: Access) -> list[IssuedCredential]:
        """What a share link or a public passport shows (at most 200, newest first)."""
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    select(credentials)
                    .where(
                        credentials.c.owner_id == access.passport.owner_id,
                        credentials.c.revoked_at.is_(None),
                    )
                    .order_by(credentials.c.issued_at.desc(), credentials.c.id.desc())
                    .limit(PUBLIC_LIST_LIMIT)
                )
            ).all()
        return await self.visible(access, [credential_of(r) for r in rows])

    # == revoking =========================================================================

    async def revoke(self, caller: Principal, credential_id: str) -> IssuedCredential:
        found = await self._load(credential_id)
        if found is None or caller.user_id not in (found.owner_id, found.holder_id):
            raise NotFound(f"no credential {credential_id}")  # others' do not exist
        if found.revoked:
            return found  # idempotent
        reason = (
            RevocationReason.REVOKED_BY_LEARNER
            if caller.user_id == found.owner_id
            else RevocationReason.REVOKED_BY_ISSUER
        )
        async with self.db.transaction() as s:
            lists = await revoke_rows(s, [found.id], reason, self.clock.now())
        for list_id in lists:
            if not await self.publish(list_id):
                self.notify()  # the publisher job retries
        revoked = await self._load(found.id)
        assert revoked is not None
        return revoked

    # == presentations ====================================================================

    async def shared_presentation(self, token: str, challenge: str, domain: str) -> str:
        """The share link's credentials as a presentation signed by the learner's key over
        the verifier's challenge and domain."""
        challenge, domain = check_challenge(challenge), check_domain(domain)
        access = await self.passports.share_access(token, count_view=True)
        shown = (await self.list_visible(access))[:MAX_PRESENTED]
        if not shown:
            raise FailedPrecondition("this share link shows no credential the learner issued")
        document = presentation(
            uuid.uuid4().urn,
            _PLACEHOLDER_DID,
            [json.loads(c.document_json) for c in shown],
        )
        signed = await self._signer().sign(
            CredentialPurpose.PRESENT,
            access.passport.owner_id,
            access.passport.owner_id,
            document,
            challenge=challenge,
            domain=domain,
        )
        return json.dumps(signed, ensure_ascii=False)


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


__all__ = ["STATUS_PATH", "CredentialService", "credential_of"]
