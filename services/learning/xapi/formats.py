"""Lexical checks for the value formats xAPI uses (IRIs, UUIDs, timestamps, durations...).

Every checker here is a pure predicate or parser; the statement validator turns a failed
check into a `ValidationError` carrying the JSON path. Patterns are applied with
`fullmatch`, never `match` + `$` (which would accept a trailing newline).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from services.kit.limits import TIMESTAMP_MAX, TIMESTAMP_MIN

# --- IRIs -----------------------------------------------------------------------------

# An absolute IRI (RFC 3987): a scheme, a colon, then characters that are not whitespace,
# control characters or the delimiters RFC 3987 excludes from IRIs.
_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`\x00-\x1f\x7f]+")
# An IRL is an IRI meant to be dereferenced: it needs an authority (scheme://host...).
_IRL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s/?#<>\"{}|\\^`\x00-\x1f\x7f]+[^\s<>\"{}|\\^`]*")
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def is_iri(value: str) -> bool:
    """True for an absolute IRI (scheme required, no spaces, percent-escapes well formed)."""
    return bool(_IRI.fullmatch(value)) and not _PERCENT.search(value)


def is_irl(value: str) -> bool:
    """True for an absolute IRI with an authority component (`https://host/...`)."""
    return is_iri(value) and bool(_IRL.fullmatch(value))


# --- mailto and hashes ------------------------------------------------------------------

_MAILTO = re.compile(
    r"mailto:[^@\s<>\"(),:;\[\]\\]+@[^@\s<>\"(),:;\[\]\\.]+(?:\.[^@\s<>\"(),:;\[\]\\.]+)*"
)
_SHA1 = re.compile(r"[0-9A-Fa-f]{40}")
_HEX = re.compile(r"[0-9A-Fa-f]+")
SHA2_HEX_LENGTHS = (56, 64, 96, 128)  # SHA-224, SHA-256, SHA-384, SHA-512


def is_mailto(value: str) -> bool:
    """True for `mailto:local@domain` (the form xAPI requires for `mbox`)."""
    return bool(_MAILTO.fullmatch(value))


def is_sha1_hex(value: str) -> bool:
    return bool(_SHA1.fullmatch(value))


def is_sha2_hex(value: str) -> bool:
    """True for the hex digest of one of the SHA-2 functions (224, 256, 384 or 512 bits)."""
    return len(value) in SHA2_HEX_LENGTHS and bool(_HEX.fullmatch(value))


# --- UUIDs ------------------------------------------------------------------------------

# The spec requires the standard string form (8-4-4-4-12 hex digits); it only recommends
# the RFC 4122 variant, so other versions/variants (and the nil UUID) are accepted.
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def is_uuid(value: str) -> bool:
    """True for a UUID in the standard hyphenated string form."""
    return bool(_UUID.fullmatch(value))


# --- Language tags (RFC 5646) -----------------------------------------------------------

_GRANDFATHERED = (
    "en-GB-oed|i-ami|i-bnn|i-default|i-enochian|i-hak|i-klingon|i-lux|i-mingo|i-navajo|"
    "i-pwn|i-tao|i-tay|i-tsu|sgn-BE-FR|sgn-BE-NL|sgn-CH-DE|art-lojban|cel-gaulish|no-bok|"
    "no-nyn|zh-guoyu|zh-hakka|zh-min|zh-min-nan|zh-xiang"
)
_LANGTAG = re.compile(
    r"(?:"
    rf"(?:{_GRANDFATHERED})"
    r"|(?:(?:[a-z]{2,3}(?:-[a-z]{3}){0,3}|[a-z]{4}|[a-z]{5,8})"  # language (+ extlang)
    r"(?:-[a-z]{4})?"  # script
    r"(?:-(?:[a-z]{2}|[0-9]{3}))?"  # region
    r"(?:-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*"  # variants
    r"(?:-[0-9a-wyz](?:-[a-z0-9]{2,8})+)*"  # extensions
    r"(?:-x(?:-[a-z0-9]{1,8})+)?)"  # private use
    r"|x(?:-[a-z0-9]{1,8})+"
    r")",
    re.IGNORECASE | re.ASCII,
)


def is_language_tag(value: str) -> bool:
    """True for a well-formed RFC 5646 language tag (`en`, `es-419`, `zh-Hant-TW`)."""
    return bool(_LANGTAG.fullmatch(value))


# --- Media types (RFC 6838) -------------------------------------------------------------

_TOKEN = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
_MEDIA_TYPE = re.compile(
    rf"{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|\"(?:[^\"\\\x00-\x1f]|\\.)*\"))*"
)


def is_media_type(value: str) -> bool:
    return bool(_MEDIA_TYPE.fullmatch(value))


# --- Timestamps (RFC 3339 with a mandatory offset) --------------------------------------

_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)


class TimestampError(ValueError):
    """Raised by `parse_timestamp` with a human reason."""


def parse_timestamp(value: str) -> datetime:
    """Parse an RFC 3339 date-time with a timezone; return an aware datetime in UTC.

    Rejects a missing offset, the "unknown local offset" `-00:00` (xAPI forbids it) and
    impossible dates. Sub-microsecond digits are accepted and truncated.
    """
    m = _TIMESTAMP.fullmatch(value)
    if m is None:
        raise TimestampError(
            "must be an RFC 3339 timestamp with a timezone, e.g. 2026-01-31T12:00:00.000Z"
        )
    year, month, day, hour, minute, second, frac, zulu, sign, oh, om = m.groups()
    if zulu:
        tz: timezone = UTC
    else:
        if sign == "-" and oh == "00" and om == "00":
            raise TimestampError('must not use the offset "-00:00"')
        if int(oh) > 23 or int(om) > 59:
            raise TimestampError("has an invalid timezone offset")
        delta = timedelta(hours=int(oh), minutes=int(om))
        tz = timezone(-delta if sign == "-" else delta)
    micro = int((frac or "0").ljust(6, "0")[:6])
    try:
        parsed = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz
        )
    except ValueError as exc:
        raise TimestampError(f"is not a valid date-time ({exc})") from None
    # Keiko's accepted range (services.kit.limits); also keeps astimezone from overflowing
    # at the edges of datetime (9999-12-31T23:59:59-23:59).
    if not (TIMESTAMP_MIN <= parsed < TIMESTAMP_MAX):
        raise TimestampError(
            f"must be between {TIMESTAMP_MIN:%Y-%m-%dT%H:%M:%SZ} and "
            f"{TIMESTAMP_MAX:%Y-%m-%dT%H:%M:%SZ} (exclusive)"
        )
    return parsed.astimezone(UTC)


def format_timestamp(when: datetime) -> str:
    """RFC 3339 in UTC with millisecond precision: `2026-01-31T12:00:00.000Z`."""
    if when.tzinfo is None:
        raise ValueError("naive datetime: a Clock returns timezone-aware values")
    utc = when.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


# --- Durations (ISO 8601) ---------------------------------------------------------------

_NUM = r"[0-9]+(?:[.,][0-9]+)?"
_DURATION = re.compile(
    rf"P(?:({_NUM})Y)?(?:({_NUM})M)?(?:({_NUM})W)?(?:({_NUM})D)?"
    rf"(?:(T)(?:({_NUM})H)?(?:({_NUM})M)?(?:({_NUM})S)?)?"
)


def is_duration(value: str) -> bool:
    """True for an ISO 8601 duration in the designator form (`PT1H30M`, `P2DT4.5S`, `P3W`).

    At least one component is required, `T` must be followed by a time component and
    only the last component present may carry a fraction.
    """
    m = _DURATION.fullmatch(value)
    if m is None:
        return False
    y, mo, w, d, t, h, mi, s = m.groups()
    parts = [p for p in (y, mo, w, d, h, mi, s) if p is not None]
    if not parts:
        return False
    if w is not None and len(parts) > 1:
        return False  # ISO 8601 4.4.3.2: weeks (PnW) are never combined with other units
    if t and h is None and mi is None and s is None:
        return False
    return all("." not in p and "," not in p for p in parts[:-1])


def format_duration(delta: timedelta) -> str:
    """ISO 8601 duration for a non-negative timedelta: `PT1H2M3.5S` (days folded into hours)."""
    if delta < timedelta(0):
        raise ValueError("negative duration")
    total = Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) / 10**6
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    out = "PT"
    if hours:
        out += f"{int(hours)}H"
    if minutes:
        out += f"{int(minutes)}M"
    if seconds or out == "PT":
        text = format(seconds.normalize(), "f") if seconds else "0"
        out += f"{text}S"
    return out
