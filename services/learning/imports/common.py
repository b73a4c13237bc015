"""What every webhook import shares: request authentication, idempotent ids, payload access.

Authentication conventions (the header each source uses):

* Learning Locker (statement forwarding, `authType: "basic auth"`) and SCORM Cloud
  (registration postback, `authType: "httpbasic"`) send `Authorization: Basic ...` with
  the username/password configured on their side: `verify_basic_auth`.
* Moodle and Canvas (unsigned HTTPS delivery) must sign the raw request body:
  `X-Keiko-Signature: sha256=<hex HMAC-SHA256(shared secret, body)>` (`verify_hmac_signature`).
  Canvas's own "Sign Payload" JWT mode is verified by `canvas.decode_signed_payload`.

Every comparison is constant-time (`hmac.compare_digest`); failures raise
`Unauthenticated` without saying which part was wrong.

Idempotency: an imported statement's id is `import_statement_id(source, event_id)`, a
UUID v5 of the source and the source's own event id, so a redelivered webhook maps to the
same statement id and storage can drop the duplicate. Each imported statement also carries
its provenance in `context.extensions["https://keiko.network/xapi/extensions/import"]`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import rfc8785

from services.kit.errors import Unauthenticated, ValidationError
from services.learning.xapi import formats, vocab
from services.learning.xapi.json_intake import json_type, parse_json, to_json

SIGNATURE_HEADER = "X-Keiko-Signature"
AUTHORIZATION_HEADER = "Authorization"
SIGNATURE_PREFIX = "sha256="
IMPORT_NAMESPACE = uuid.UUID("0b9e5c1a-7d4f-5e2b-8a63-4b6569b0696d")


# --- authentication ---------------------------------------------------------------------


def get_header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup (HTTP header names are case-insensitive)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _secret_bytes(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def hmac_signature(body: bytes, secret: str | bytes) -> str:
    """The header value a sender puts in X-Keiko-Signature: `sha256=<hex>`."""
    digest = hmac.new(_secret_bytes(secret), body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def verify_hmac_signature(
    headers: Mapping[str, str], body: bytes, secret: str | bytes, *, header: str = SIGNATURE_HEADER
) -> None:
    """Check `X-Keiko-Signature: sha256=<hex>` against HMAC-SHA256(secret, body)."""
    if not secret:
        raise Unauthenticated("webhook secret is not configured")
    value = get_header(headers, header)
    if value is None:
        raise Unauthenticated(f"missing {header} header")
    expected = hmac_signature(body, secret)
    given = value.strip()
    if given[: len(SIGNATURE_PREFIX)].lower() == SIGNATURE_PREFIX:
        given = SIGNATURE_PREFIX + given[len(SIGNATURE_PREFIX) :].lower()
    if not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("ascii")):
        raise Unauthenticated("invalid webhook signature")


def verify_basic_auth(headers: Mapping[str, str], username: str, password: str) -> None:
    """Check `Authorization: Basic base64(username:password)` in constant time."""
    if not username or not password:
        raise Unauthenticated("webhook credentials are not configured")
    value = get_header(headers, AUTHORIZATION_HEADER)
    if value is None:
        raise Unauthenticated("missing Authorization header")
    scheme, _, encoded = value.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise Unauthenticated("Authorization must use the Basic scheme")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise Unauthenticated("malformed Basic credentials") from None
    expected = f"{username}:{password}".encode()
    if not hmac.compare_digest(decoded, expected):
        raise Unauthenticated("invalid webhook credentials")


# --- ids and provenance -----------------------------------------------------------------


def import_statement_id(source: str, event_id: str) -> str:
    """UUID v5 of `<source>|<event id>` in IMPORT_NAMESPACE (stable across redeliveries)."""
    return str(uuid.uuid5(IMPORT_NAMESPACE, f"{source}|{event_id}"))


def content_event_id(payload: Any) -> str:
    """An event id for sources that send none: SHA-256 of the canonical (RFC 8785) payload."""
    return "sha256:" + hashlib.sha256(rfc8785.dumps(payload)).hexdigest()


def add_provenance(
    statement: dict[str, Any], *, source: str, event_id: str, site: str | None = None
) -> None:
    """Record where an imported statement came from, in its context extensions."""
    context = statement.setdefault("context", {})
    extensions = context.setdefault("extensions", {})
    provenance: dict[str, Any] = {"source": source, "eventId": event_id}
    if site is not None:
        provenance["site"] = site
    extensions[vocab.EXT_IMPORT] = provenance


# --- payload access ---------------------------------------------------------------------


def load_payload(payload: Any, path: str = "payload") -> Any:
    """Parse JSON text (strictly) or copy a mapping into plain JSON values."""
    data = parse_json(payload, path) if isinstance(payload, str | bytes) else payload
    return to_json(data, path)


def require_object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError(path, f"must be an object, got {json_type(value)}")
    return value


def _absent(obj: Mapping[str, Any], key: str) -> bool:
    return key not in obj or obj[key] is None


def _missing(key: str, path: str) -> ValidationError:
    return ValidationError(f"{path}.{key}", "is required")


def optional_string(obj: Mapping[str, Any], key: str, path: str) -> str | None:
    if _absent(obj, key):
        return None
    value = obj[key]
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(
            f"{path}.{key}", f"must be a non-empty string, got {json_type(value)}"
        )
    return value


def string_field(obj: Mapping[str, Any], key: str, path: str) -> str:
    value = optional_string(obj, key, path)
    if value is None:
        raise _missing(key, path)
    return value


def optional_id(obj: Mapping[str, Any], key: str, path: str) -> str | None:
    """An identifier sent as a string or an integer (LMS ids are often numeric)."""
    if _absent(obj, key):
        return None
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValidationError(
            f"{path}.{key}", f"must be a string or an integer, got {json_type(value)}"
        )
    text = str(value).strip()
    if not text or any(c.isspace() or ord(c) < 32 for c in text):
        raise ValidationError(f"{path}.{key}", "must be a non-empty identifier without spaces")
    return text


def id_field(obj: Mapping[str, Any], key: str, path: str) -> str:
    value = optional_id(obj, key, path)
    if value is None:
        raise _missing(key, path)
    return value


def optional_number(obj: Mapping[str, Any], key: str, path: str) -> float | None:
    if _absent(obj, key):
        return None
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{path}.{key}", f"must be a number, got {json_type(value)}")
    return float(value)


def number_field(obj: Mapping[str, Any], key: str, path: str) -> float:
    value = optional_number(obj, key, path)
    if value is None:
        raise _missing(key, path)
    return value


def timestamp_field(obj: Mapping[str, Any], key: str, path: str) -> str | None:
    """An RFC 3339 timestamp field, re-formatted to UTC milliseconds; None when absent."""
    if key not in obj or obj[key] is None:
        return None
    value = obj[key]
    if not isinstance(value, str):
        raise ValidationError(
            f"{path}.{key}", f"must be an RFC 3339 timestamp string, got {json_type(value)}"
        )
    try:
        return formats.format_timestamp(formats.parse_timestamp(value))
    except formats.TimestampError as exc:
        raise ValidationError(f"{path}.{key}", f'{exc}, got "{value}"') from None


def unix_timestamp(value: Any, path: str) -> str:
    """Seconds since the epoch (an integer, as Moodle sends) as an RFC 3339 timestamp."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(path, "must be a non-negative integer (seconds since the epoch)")
    try:
        return formats.format_timestamp(datetime.fromtimestamp(value, UTC))
    except (OverflowError, OSError, ValueError):
        raise ValidationError(path, "is out of range") from None


def site_url(value: str, field_path: str) -> str:
    """A configured site base URL (`https://moodle.example.edu`), without trailing slash."""
    text = value.rstrip("/")
    if not formats.is_irl(text) or not text.lower().startswith(("https://", "http://")):
        raise ValidationError(field_path, f'must be an http(s) URL, got "{value}"')
    return text
