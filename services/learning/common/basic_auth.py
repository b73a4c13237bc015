"""HTTP Basic credentials, as LRS clients and Basic-auth webhook sources send them."""

from __future__ import annotations

import base64
import binascii

from services.kit.errors import Unauthenticated


def basic_credentials(value: str | None) -> tuple[str, str]:
    """`Basic base64(user:password)` -> (user, password); Unauthenticated when missing or
    malformed."""
    if value is None:
        raise Unauthenticated("missing Authorization header")
    scheme, _, encoded = value.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise Unauthenticated("Authorization must use the Basic scheme")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise Unauthenticated("malformed Basic credentials") from None
    user, sep, password = decoded.partition(":")
    if not sep:
        raise Unauthenticated("malformed Basic credentials")
    return user, password
