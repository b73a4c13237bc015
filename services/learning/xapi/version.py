"""xAPI versions and the `X-Experience-API-Version` header."""

from __future__ import annotations

import re
from enum import StrEnum

from services.kit.errors import ValidationError

VERSION_HEADER = "X-Experience-API-Version"


class XAPIVersion(StrEnum):
    """The two xAPI versions Keiko speaks: 1.0.3 and IEEE 9274.1.1 (xAPI 2.0)."""

    V1_0_3 = "1.0.3"
    V2_0_0 = "2.0.0"


_V1 = re.compile(r"1\.0(?:\.([0-9]+))?")
_V2 = re.compile(r"2\.0(?:\.([0-9]+))?")


def parse_version_header(value: str | None) -> XAPIVersion:
    """Check an `X-Experience-API-Version` header value and return the version served.

    xAPI 1.0.3 requires an LRS to accept `1.0` and any `1.0.x` patch version and to treat
    them as 1.0.3; xAPI 2.0 uses `2.0.0` (any `2.0.x` and `2.0` are taken as 2.0.0).
    A missing or other value is rejected, naming the header as the field.
    """
    if value is None:
        raise ValidationError(VERSION_HEADER, "header is required")
    text = value.strip()
    if not text:
        raise ValidationError(VERSION_HEADER, "header must not be empty")
    if _V1.fullmatch(text):
        return XAPIVersion.V1_0_3
    if _V2.fullmatch(text):
        return XAPIVersion.V2_0_0
    raise ValidationError(
        VERSION_HEADER, f'unsupported version "{text}": expected 1.0.x (1.0.3) or 2.0.x (2.0.0)'
    )


def coerce_version(value: XAPIVersion | str) -> XAPIVersion:
    """Accept an `XAPIVersion` or any string `parse_version_header` accepts."""
    if isinstance(value, XAPIVersion):
        return value
    return parse_version_header(value)
