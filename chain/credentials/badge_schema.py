"""Open Badges 3.0 JSON Schema validation of ``OpenBadgeCredential`` documents.

The schema is 1EdTech's ``ob_v3p0_achievementcredential_schema.json`` (the Open Badges 3.0
AchievementCredential, VC Data Model 2.0 edition), bundled verbatim in
``chain/credentials/schemas/``; it is JSON Schema draft 2019-09.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft201909Validator

SCHEMA_PATH = Path(__file__).parent / "schemas" / "ob_v3p0_achievementcredential_schema.json"


@cache
def _validator() -> Draft201909Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft201909Validator.check_schema(schema)
    return Draft201909Validator(schema, format_checker=Draft201909Validator.FORMAT_CHECKER)


def open_badge_errors(document: Mapping[str, Any]) -> list[str]:
    """Every violation of the OB 3.0 schema, as ``path: message`` (empty if valid)."""
    errors = sorted(_validator().iter_errors(document), key=lambda e: list(e.absolute_path))
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(document)'}: {error.message}"
        for error in errors
    ]


__all__ = ["SCHEMA_PATH", "open_badge_errors"]
