"""Learning Locker statement forwarding -> Keiko statements.

Learning Locker's statement forwarder POSTs each stored statement to our URL as JSON:
either the xAPI statement itself or, with "full document" forwarding, its stored document
`{"_id": ..., "lrs_id": ..., "statement": {<xAPI statement>}, ...}`. A JSON array of
either form is also accepted (bulk replays). Authentication: Basic auth as configured in
the forwarder (`authType: "basic auth"`, `basicUsername`/`basicPassword`).

Mapping: the statement is kept as sent except that
* its id becomes `import_statement_id("learning-locker", <original statement id>)` (the
  original id is required: it is what makes redelivery idempotent) and the original id
  is kept in the provenance extension;
* `stored` and `authority` are Learning Locker's, so they are dropped (our LRS sets its
  own); `version` is validated and kept.
Validation uses xAPI 2.0 rules for a statement whose version is 2.0.x, else 1.0.3.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.kit.clock import Clock
from services.kit.errors import ValidationError
from services.learning.imports import common
from services.learning.xapi import formats
from services.learning.xapi.validation import ValidatedStatement, validate_statement
from services.learning.xapi.version import XAPIVersion

SOURCE = "learning-locker"


def verify_request(headers: Mapping[str, str], *, username: str, password: str) -> None:
    """Basic auth configured on the Learning Locker statement forwarder."""
    common.verify_basic_auth(headers, username, password)


def _statement_of(item: Any, path: str) -> tuple[dict[str, Any], str]:
    doc = common.require_object(item, path)
    if "statement" in doc and "actor" not in doc:
        return common.require_object(doc["statement"], f"{path}.statement"), f"{path}.statement"
    return doc, path


def map_statement(
    item: Any, *, clock: Clock | None = None, path: str = "payload"
) -> ValidatedStatement:
    statement, spath = _statement_of(item, path)
    original_id = common.string_field(statement, "id", spath)
    if not formats.is_uuid(original_id):
        raise ValidationError(f"{spath}.id", f'must be a UUID, got "{original_id}"')
    original_id = original_id.lower()
    mapped = {k: v for k, v in statement.items() if k not in ("stored", "authority")}
    mapped["id"] = common.import_statement_id(SOURCE, original_id)
    version = statement.get("version")
    api = (
        XAPIVersion.V2_0_0
        if isinstance(version, str) and version.startswith("2.0.")
        else XAPIVersion.V1_0_3
    )
    # Validate the statement as sent first, so errors name the sender's paths...
    validate_statement(statement, version=api, path=spath)
    common.add_provenance(mapped, source=SOURCE, event_id=original_id)
    # ...then the mapped one (the provenance extension is ours and always valid).
    return validate_statement(mapped, version=api, clock=clock, path=spath)


def map_payload(payload: Any, *, clock: Clock | None = None) -> list[ValidatedStatement]:
    """Every statement of a forwarding request, validated and with idempotent ids.

    `payload` is the raw body (bytes/str) or its parsed JSON. With `clock`, `stored` is set.
    """
    data = common.load_payload(payload)
    if isinstance(data, list):
        if not data:
            raise ValidationError("payload", "must not be an empty array")
        return [
            map_statement(item, clock=clock, path=f"payload[{i}]") for i, item in enumerate(data)
        ]
    return [map_statement(data, clock=clock)]
