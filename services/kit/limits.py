"""Input limits of every Keiko API, in one table (docs/limits.md is its public form).

The limits apply to protobuf request messages, field by field, at both ends of every gRPC
call: the typed client checks a request before sending it (services.kit.grpc.client) and
the server adapter checks it when it decodes it (services.kit.grpc.adapter), so GraphQL,
xAPI REST, webhooks and direct gRPC callers all meet the same limits, and a violation is
always INVALID_ARGUMENT naming the field path (`interaction.title`,
`statement_jsons[3]`, `headers["x-a"]`).

What is checked:

- strings: at most N characters (Python `len`, code points), valid Unicode (no lone
  surrogates, which protobuf cannot encode) and no NUL character (PostgreSQL text cannot
  hold it, so both engines refuse it alike);
- bytes: at most N bytes;
- repeated fields and maps: at most N items;
- timestamps: within [TIMESTAMP_MIN, TIMESTAMP_MAX); durations: within +/- MAX_DURATION;
- floating point numbers: finite (no NaN or infinity).

A field's limit is looked up by its full name (`keiko.learning.v1.InteractionInput.title`),
then by its bare name (`title`), then the default of its kind. Values are chosen so that
no real client meets them (see docs/limits.md for the reason of each) and so that a page
of the largest records still fits in one gRPC message (MAX_MESSAGE_BYTES).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import betterproto

from services.kit.errors import ValidationError

KIB = 1024
MIB = 1024 * KIB

# Defaults by kind.
DEFAULT_MAX_CHARS = 2_048  # ids, names, IRIs, URLs, tokens, hashes
DEFAULT_MAX_BYTES = 64 * KIB
DEFAULT_MAX_ITEMS = 500  # the largest page size any list RPC accepts

# The accepted instants: no learning record predates the Unix epoch, and two centuries
# ahead is far past any schedule, while staying clear of datetime's year-9999 edge
# (converting 9999-12-31T23:59:59-23:59 to UTC overflows).
TIMESTAMP_MIN = datetime(1970, 1, 1, tzinfo=UTC)
TIMESTAMP_MAX = datetime(2200, 1, 1, tzinfo=UTC)
MAX_DURATION = timedelta(days=3660)  # ten years: longer than any course or booking

# Characters by bare field name (any message).
NAME_MAX_CHARS: Mapping[str, int] = {
    # Short human text: one line.
    "title": 200,
    "name": 500,
    "display_name": 200,
    "label": 200,
    "subject": 500,
    "topic": 500,
    "query": 500,
    "owner_display_name": 200,
    "credential_name": 200,
    "account_name": 500,
    # Long human text: an essay answer, a rich description.
    "content": 10_000,
    "response": 10_000,
    "description": 10_000,
    "summary": 10_000,
    "details": 10_000,
    "bio": 5_000,
    "comment": 5_000,
    "note": 5_000,
    "review_note": 5_000,
    "reason": 2_000,
    "cancel_reason": 2_000,
    # Documents: xAPI statements (the LRS's own 64 KiB cap), WebAuthn ceremonies,
    # community standards.
    "statement_json": 64 * KIB,
    "statement_jsons": 64 * KIB,
    "canonical_statement_json": 64 * KIB,
    "options_json": 16 * KIB,
    "credential_json": 16 * KIB,
    "initial_standards": 64 * KIB,
    "initial_validation_rules": 64 * KIB,
    # Verifiable Credentials (chain.credentials): a signed credential of up to 500 records,
    # or a presentation of up to 100 credentials; an achievement's criteria (Markdown);
    # a verifier's challenge (a nonce).
    "document_json": 4 * MIB,
    "criteria": 10_000,
    "challenge": 256,
}

# Bytes by bare field name.
NAME_MAX_BYTES: Mapping[str, int] = {
    "body": 5 * MIB,  # webhook deliveries: the gateway's body limit
    "iris_image": 8 * MIB,  # proof of humanity samples (services.identity)
    "genome": 8 * MIB,
    "leaf_data": 128 * KIB,  # canonical bytes of one anchored record
}

# Items by bare field name (repeated fields and maps).
NAME_MAX_ITEMS: Mapping[str, int] = {
    "statement_jsons": 1_000,  # an xAPI POST batch (services.learning MAX_BATCH)
    "headers": 100,  # webhook delivery headers
    "siblings": 64,  # Merkle proof of a tree of up to 2^64 leaves
    "proof": 64,
}

# Exceptions by full field name, when a bare name means different things.
FIELD_MAX_CHARS: Mapping[str, int] = {
    # A presentation's domain is the verifier's host name (a skill's `domain` is a topic).
    "keiko.chain.v1.SignCredentialRequest.domain": 253,
    "keiko.passport.v1.GetSharedPresentationRequest.domain": 253,
}

# Bytes by full field name, when a bare name means different things.
FIELD_MAX_BYTES: Mapping[str, int] = {
    # An xAPI document (State, Activity/Agent Profile): services.learning.documents.
    "keiko.learning.v1.PutDocumentRequest.content": 1 * MIB,
    # An xAPI attachment part (services.learning.statements.attachments).
    "keiko.learning.v1.Attachment.content": 16 * MIB,
}

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _key(message: betterproto.Message, field: str) -> str:
    module = type(message).__module__.removeprefix("services.api.")
    return f"{module}.{type(message).__name__}.{field}"


def _max_chars(message: betterproto.Message, field: str) -> int:
    full = FIELD_MAX_CHARS.get(_key(message, field))
    return full if full is not None else NAME_MAX_CHARS.get(field, DEFAULT_MAX_CHARS)


def _check_string(value: str, limit: int, path: str) -> None:
    if len(value) > limit:
        raise ValidationError(path, f"must be at most {limit} characters")
    if not value.isascii() and _LONE_SURROGATE.search(value):
        raise ValidationError(path, "must be valid Unicode text (it has a lone surrogate)")
    if "\x00" in value:
        raise ValidationError(path, "must not contain the NUL character (U+0000)")


def check_instant(value: datetime, path: str) -> None:
    """Refuse an instant outside the accepted range (naive values count as UTC)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not (TIMESTAMP_MIN <= aware < TIMESTAMP_MAX):
        raise ValidationError(
            path,
            f"must be between {TIMESTAMP_MIN:%Y-%m-%dT%H:%M:%SZ} and "
            f"{TIMESTAMP_MAX:%Y-%m-%dT%H:%M:%SZ} (exclusive)",
        )


def _check_scalar(value: Any, message: betterproto.Message, field: str, path: str) -> None:
    if isinstance(value, str):
        _check_string(value, _max_chars(message, field), path)
    elif isinstance(value, bytes):
        full = FIELD_MAX_BYTES.get(_key(message, field))
        limit = full if full is not None else NAME_MAX_BYTES.get(field, DEFAULT_MAX_BYTES)
        if len(value) > limit:
            raise ValidationError(path, f"must be at most {limit} bytes")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(path, "must be a finite number")
    elif isinstance(value, datetime):
        check_instant(value, path)
    elif isinstance(value, timedelta):
        if abs(value) > MAX_DURATION:
            raise ValidationError(path, f"must be at most {MAX_DURATION.days} days")
    elif isinstance(value, betterproto.Message):
        check_message(value, path + ".")


def check_message(message: betterproto.Message, prefix: str = "") -> None:
    """Raise ValidationError(field path, reason) for the first field over its limit."""
    fields: dict[str, Any] = message._betterproto.meta_by_field_name  # type: ignore[arg-type]
    for field in fields:
        try:
            value = getattr(message, field)
        except AttributeError:  # a oneof member other than the one set
            continue
        path = prefix + field
        if isinstance(value, list | dict):
            limit = NAME_MAX_ITEMS.get(field, DEFAULT_MAX_ITEMS)
            if len(value) > limit:
                raise ValidationError(path, f"must have at most {limit} items")
            if isinstance(value, dict):
                for key, item in value.items():
                    item_path = f"{path}[{key!r}]" if len(str(key)) <= 64 else f"{path}[…]"
                    _check_scalar(key, message, field, item_path)
                    _check_scalar(item, message, field, item_path)
            else:
                for index, item in enumerate(value):
                    _check_scalar(item, message, field, f"{path}[{index}]")
        elif value is not None:
            _check_scalar(value, message, field, path)


def first_violation(message: betterproto.Message) -> ValidationError | None:
    try:
        check_message(message)
    except ValidationError as violation:
        return violation
    return None
