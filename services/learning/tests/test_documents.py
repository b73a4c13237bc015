"""The owner's document limits on both engines (Communication 3.2.s3.b11: 413 for a
document the LRS will not store; docs/limits.md: 256 MiB and 100,000 documents per
owner, here scaled down): a write past either limit is refused and changes nothing,
replacing counts the difference, deleting gives the space back, and owners are counted
apart. The attachment part limit (Communication 1.5.2, 16 MiB per part)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import pytest

from services.kit.auth import Principal
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.errors import NotFound, RateLimited, ValidationError
from services.learning.documents.domain import DocumentKind
from services.learning.documents.usecases import DocumentAddress, Documents
from services.learning.service import LearningService
from services.learning.statements.attachments import (
    MAX_ATTACHMENT_BYTES,
    AttachmentPart,
    check_parts,
)

ANA = Principal("ana", frozenset({"learner"}))
UNI = Principal("uni", frozenset({"tutor"}))
AGENT = json.dumps({"mbox": "mailto:ana@uni.example"})


@pytest.fixture
def database_schemas() -> Sequence[str]:
    return ("learning",)


@pytest.fixture
def documents(migrated_database: Database, clock: FixedClock) -> Documents:
    service = LearningService(migrated_database, clock)
    return Documents(service.ctx, quota_bytes=100, max_documents=3)


def state(state_id: str) -> DocumentAddress:
    return DocumentAddress(
        DocumentKind.STATE,
        activity_id="https://uni.example/course/1",
        agent_json=AGENT,
        document_id=state_id,
    )


async def test_owner_quota_in_bytes_and_documents(documents: Documents) -> None:
    for name in ("a", "b"):
        await documents.put(ANA, state(name), b"x" * 40, "text/plain")
    with pytest.raises(RateLimited):  # 80 + 30 bytes > 100
        await documents.put(ANA, state("c"), b"x" * 30, "text/plain")
    with pytest.raises(NotFound):  # refused whole: not stored
        await documents.get(ANA, state("c"))
    await documents.put(ANA, state("c"), b"x" * 20, "text/plain")  # exactly 100
    with pytest.raises(RateLimited):  # replacing grows by the difference: 100 - 40 + 41
        await documents.put(ANA, state("a"), b"y" * 41, "text/plain")
    assert (await documents.get(ANA, state("a"))).content == b"x" * 40
    await documents.put(ANA, state("a"), b"y" * 10, "text/plain")  # shrinking is fine
    with pytest.raises(RateLimited):  # a 4th document, though 70 bytes are used
        await documents.put(ANA, state("d"), b"z", "text/plain")
    # Another owner has their own count.
    await documents.put(UNI, state("d"), b"z" * 100, "text/plain")
    # Deleting gives the space and the document back.
    assert await documents.delete(ANA, state("b")) == 1
    await documents.put(ANA, state("d"), b"z" * 60, "text/plain")
    with pytest.raises(RateLimited):  # 10 + 20 + 60 + 11 > 100
        await documents.put(ANA, state("a"), b"y" * 21, "text/plain")


def test_attachment_part_limit() -> None:
    big = b"\0" * (MAX_ATTACHMENT_BYTES + 1)
    part = AttachmentPart(hashlib.sha256(big).hexdigest(), "application/pdf", big)
    with pytest.raises(ValidationError) as refused:
        check_parts([part])
    assert refused.value.field == "attachments[0].content"
    fits = big[:-1]
    ok = AttachmentPart(hashlib.sha256(fits).hexdigest(), "application/pdf", fits)
    assert list(check_parts([ok])) == [ok.sha2]
