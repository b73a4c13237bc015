"""Document use cases: put (replace or merge), get, list, delete, under the concurrency
rules of `domain` and the owner's limits.

Authorization: a caller reads and writes the documents of their own namespace (their
user id; an LRS client's owner's), and nothing else.

A write runs as one transaction: read the stored version with its row locked, check the
preconditions, write compare-and-set on the ETag read, and account the owner's usage.
Concurrent writers of one document therefore take turns: with If-Match the first wins
and the others find another ETag (412); without preconditions (a merge, a State PUT
under 1.0.3) each applies on top of the last, so nothing is lost. Two writers creating
the same new document collide on its key; the loser starts over on the stored version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from services.kit.auth import Principal
from services.kit.db import is_unique_violation
from services.kit.errors import FailedPrecondition, NotFound, RateLimited, ValidationError
from services.learning.common.usecases import LearningContext
from services.learning.documents import domain as d
from services.learning.documents.storage import DocumentRepository
from services.learning.xapi import (
    XAPIVersion,
    agent_key,
    parse_version_header,
    validate_agent,
    validate_iri,
)
from services.learning.xapi.formats import is_uuid

MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class DocumentAddress:
    """A document's address as the request gives it (the agent as xAPI JSON)."""

    kind: d.DocumentKind
    activity_id: str = ""
    agent_json: str = ""
    registration: str = ""
    document_id: str = ""


class _Changed(Exception):
    """The row changed between our read and our compare-and-set."""


class Documents:
    def __init__(
        self,
        ctx: LearningContext,
        *,
        quota_bytes: int = d.OWNER_QUOTA_BYTES,
        max_documents: int = d.OWNER_MAX_DOCUMENTS,
    ) -> None:
        self.ctx = ctx
        self.quota_bytes = quota_bytes
        self.max_documents = max_documents

    def key(
        self, caller: Principal, address: DocumentAddress, *, id_required: bool
    ) -> d.DocumentKey:
        """The validated key in the caller's namespace (ValidationError names the xAPI
        parameter: activityId, agent, registration, stateId / profileId)."""
        kind = address.kind
        activity = ""
        agent = ""
        registration = ""
        if kind in (d.DocumentKind.STATE, d.DocumentKind.ACTIVITY_PROFILE):
            if not address.activity_id:
                raise ValidationError("activityId", "is required")
            activity = validate_iri(address.activity_id, "activityId")
        elif address.activity_id:
            raise ValidationError("activityId", "is not a parameter of the Agent Profile resource")
        if kind in (d.DocumentKind.STATE, d.DocumentKind.AGENT_PROFILE):
            if not address.agent_json:
                raise ValidationError("agent", "is required")
            agent = agent_key(validate_agent(address.agent_json, "agent")) or ""
        elif address.agent_json:
            raise ValidationError("agent", "is not a parameter of the Activity Profile resource")
        if address.registration:
            if kind is not d.DocumentKind.STATE:
                raise ValidationError("registration", "is a parameter of the State resource only")
            if not is_uuid(address.registration):
                raise ValidationError("registration", "must be a UUID")
            registration = address.registration.lower()
        return d.DocumentKey(
            owner_id=caller.user_id,
            kind=kind,
            activity_id=activity,
            agent_key=agent,
            registration=registration,
            document_id=d.check_document_id(address.document_id, kind, required=id_required),
        )

    async def put(
        self,
        caller: Principal,
        address: DocumentAddress,
        content: bytes,
        content_type: str,
        *,
        merge: bool = False,
        if_match: str = "",
        if_none_match: str = "",
        xapi_version: str = "",
    ) -> d.DocumentRecord:
        key = self.key(caller, address, id_required=True)
        version = parse_version_header(xapi_version) if xapi_version else XAPIVersion.V1_0_3
        pre = d.Preconditions.parse(if_match, if_none_match)
        if len(content) > d.MAX_DOCUMENT_BYTES:
            raise RateLimited(f"a document is at most {d.MAX_DOCUMENT_BYTES} bytes")
        content_type = d.check_content(content, content_type)
        needs = d.requires_precondition(key.kind, version)
        for _ in range(MAX_ATTEMPTS):
            try:
                return await self._put_once(key, content, content_type, pre, merge, needs)
            except _Changed:
                if pre.given:
                    raise FailedPrecondition(
                        "the document changed while this request was applied; fetch it again"
                    ) from None
            except IntegrityError as exc:
                if not is_unique_violation(exc):
                    raise
                if pre.if_none_match:
                    raise FailedPrecondition("If-None-Match: the document already exists") from None
        raise FailedPrecondition("the document is changing too often; try again")

    async def _put_once(
        self,
        key: d.DocumentKey,
        content: bytes,
        content_type: str,
        pre: d.Preconditions,
        merge: bool,
        needs: bool,
    ) -> d.DocumentRecord:
        now = self.ctx.clock.now()
        async with self.ctx.db.transaction() as s:
            repo = DocumentRepository(s)
            existing = await repo.get(key, for_update=True)
            d.check_preconditions(existing, pre, replacing=not merge, requires_precondition=needs)
            body, media = content, content_type
            if merge and existing is not None:
                body, media = d.merged_content(existing, content, content_type)
                if len(body) > d.MAX_DOCUMENT_BYTES:
                    raise RateLimited(f"a document is at most {d.MAX_DOCUMENT_BYTES} bytes")
            record = d.DocumentRecord(key, body, media, d.etag_of(body), now)
            if existing is None:
                await repo.insert(record)
                grew = await repo.add_usage(
                    key.owner_id, record.size, 1, self.quota_bytes, self.max_documents
                )
            else:
                if not await repo.replace(record, existing.etag):
                    raise _Changed
                grew = await repo.add_usage(
                    key.owner_id,
                    record.size - existing.size,
                    0,
                    self.quota_bytes,
                    self.max_documents,
                )
            if not grew:
                raise RateLimited(
                    f"document storage limit reached ({self.quota_bytes} bytes, "
                    f"{self.max_documents} documents per owner)"
                )
        return record

    async def get(self, caller: Principal, address: DocumentAddress) -> d.DocumentRecord:
        key = self.key(caller, address, id_required=True)
        async with self.ctx.db.session() as s:
            found = await DocumentRepository(s).get(key)
        if found is None:
            raise NotFound(f"no document {key.document_id!r} in this context")
        return found

    async def list_ids(
        self, caller: Principal, address: DocumentAddress, since: datetime | None
    ) -> tuple[list[str], datetime | None]:
        key = self.key(caller, address, id_required=False)
        async with self.ctx.db.session() as s:
            return await DocumentRepository(s).list_ids(key, since)

    async def delete(self, caller: Principal, address: DocumentAddress, if_match: str = "") -> int:
        """Delete one document (honouring If-Match), or every State document of the context
        when no stateId is given. Deleting what is not there is not an error (0)."""
        key = self.key(caller, address, id_required=address.kind is not d.DocumentKind.STATE)
        pre = d.Preconditions.parse(if_match, "")
        for _ in range(MAX_ATTEMPTS):
            try:
                return await self._delete_once(key, pre)
            except _Changed:
                if pre.given:
                    raise FailedPrecondition(
                        "the document changed while it was being deleted; fetch it again"
                    ) from None
        raise FailedPrecondition("the document is changing too often; try again")

    async def _delete_once(self, key: d.DocumentKey, pre: d.Preconditions) -> int:
        async with self.ctx.db.transaction() as s:
            repo = DocumentRepository(s)
            if not key.document_id:
                count, size = await repo.delete_context(key)
                if count:
                    await repo.add_usage(key.owner_id, -size, -count, 0, 0)
                return count
            existing = await repo.get(key, for_update=True)
            d.check_preconditions(existing, pre, replacing=False, requires_precondition=False)
            if existing is None:
                return 0
            if not await repo.delete(key, existing.etag):
                raise _Changed
            await repo.add_usage(key.owner_id, -existing.size, -1, 0, 0)
        return 1
