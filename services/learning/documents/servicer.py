"""gRPC: the document RPCs (PutDocument, GetDocument, ListDocuments, DeleteDocuments)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.api.keiko.learning import v1 as pb
from services.kit.auth import current_principal
from services.kit.errors import ValidationError
from services.learning.documents.domain import DocumentKind, DocumentRecord
from services.learning.documents.usecases import DocumentAddress
from services.learning.statements.servicer import unset_as_none

if TYPE_CHECKING:
    from services.learning.service import LearningService

_KIND_FROM_PB = {
    int(pb.DocumentKind.STATE): DocumentKind.STATE,
    int(pb.DocumentKind.ACTIVITY_PROFILE): DocumentKind.ACTIVITY_PROFILE,
    int(pb.DocumentKind.AGENT_PROFILE): DocumentKind.AGENT_PROFILE,
}


def document_address(key: pb.DocumentKey) -> DocumentAddress:
    kind = _KIND_FROM_PB.get(int(key.kind))
    if kind is None:
        raise ValidationError("key.kind", "must be STATE, ACTIVITY_PROFILE or AGENT_PROFILE")
    return DocumentAddress(
        kind=kind,
        activity_id=key.activity_id,
        agent_json=key.agent_json,
        registration=key.registration,
        document_id=key.document_id,
    )


def document_to_pb(key: pb.DocumentKey, record: DocumentRecord, *, content: bool) -> pb.Document:
    return pb.Document(
        key=key,
        content=record.content if content else b"",
        content_type=record.content_type,
        etag=record.etag,
        updated=record.updated,
    )


class DocumentsServicer:
    service: LearningService

    async def put_document(
        self, put_document_request: pb.PutDocumentRequest
    ) -> pb.PutDocumentResponse:
        r = put_document_request
        record = await self.service.documents.put(
            current_principal(),
            document_address(r.key),
            bytes(r.content),
            r.content_type,
            merge=r.merge,
            if_match=r.if_match,
            if_none_match=r.if_none_match,
            xapi_version=r.xapi_version,
        )
        return pb.PutDocumentResponse(document=document_to_pb(r.key, record, content=False))

    async def get_document(
        self, get_document_request: pb.GetDocumentRequest
    ) -> pb.GetDocumentResponse:
        key = get_document_request.key
        record = await self.service.documents.get(current_principal(), document_address(key))
        return pb.GetDocumentResponse(document=document_to_pb(key, record, content=True))

    async def list_documents(
        self, list_documents_request: pb.ListDocumentsRequest
    ) -> pb.ListDocumentsResponse:
        r = list_documents_request
        ids, latest = await self.service.documents.list_ids(
            current_principal(), document_address(r.key), unset_as_none(r.since)
        )
        response = pb.ListDocumentsResponse(document_ids=ids)
        if latest is not None:
            response.last_modified = latest
        return response

    async def delete_documents(
        self, delete_documents_request: pb.DeleteDocumentsRequest
    ) -> pb.DeleteDocumentsResponse:
        r = delete_documents_request
        deleted = await self.service.documents.delete(
            current_principal(), document_address(r.key), if_match=r.if_match
        )
        return pb.DeleteDocumentsResponse(deleted=deleted)
