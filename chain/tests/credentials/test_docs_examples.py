"""The examples in docs/credentials.md are real documents: their proofs verify, and the
Open Badge validates against the OB 3.0 schema."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from chain.credentials.badge_schema import open_badge_errors
from chain.credentials.integrity import verify_proofs
from chain.credentials.learning_credentials import parse_credential

DOC = Path(__file__).resolve().parents[3] / "docs" / "credentials.md"


def documents() -> list[dict[str, Any]]:
    blocks = re.findall(r"```json\n(.*?)\n```", DOC.read_text(), re.S)
    return [json.loads(b) for b in blocks if b.lstrip().startswith("{")]


def test_documented_examples_verify() -> None:
    by_type = {tuple(d["type"]): d for d in documents() if "type" in d}
    record = by_type[("VerifiableCredential", "LearningRecordCredential")]
    badge = by_type[("VerifiableCredential", "OpenBadgeCredential")]
    status = by_type[("VerifiableCredential", "BitstringStatusListCredential")]
    for document in (record, badge, status):
        assert [c.ok for c in verify_proofs(document)] == [True, True]
    assert parse_credential(record).records[0].anchor is not None
    assert open_badge_errors(badge) == []
