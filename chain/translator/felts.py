"""Field elements (felts) of Starknet/Cairo and the byte encodings Keiko uses for them.

A felt is an integer in ``[0, P)`` with ``P = 2**251 + 17 * 2**192 + 1``.

Two encodings matter to anyone re-computing Keiko's hashes from public data:

* **Bytes to felts** (:func:`bytes_to_felts`): a byte string whose length is a multiple
  of 16 is cut into consecutive 16-byte chunks, first byte first; each chunk is read as
  an unsigned **big-endian** 128-bit integer. ``sha256`` digests (32 bytes) become two
  felts ``[high, low]``; Ed25519 signatures (64 bytes) four; Ed25519 public keys (32
  bytes) two. (This is *not* the ``low, high`` order of Cairo's ``u256`` serde.)
* **Cairo short strings** (:func:`encode_short_string`): at most 31 ASCII characters,
  read as one big-endian integer, exactly as Cairo evaluates ``'learning'``.

In JSON documents felts travel as lowercase hexadecimal strings with a ``0x`` prefix
(:func:`felt_to_hex`, :func:`parse_felt`), because JSON numbers lose precision above
2**53 in most clients.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.kit.errors import ValidationError

FELT_PRIME = 2**251 + 17 * 2**192 + 1
"""The Stark field prime P: every felt is in [0, P)."""

FELT_CHUNK_BYTES = 16
SHORT_STRING_MAX_LEN = 31


def is_felt(value: object) -> bool:
    """True for a Python ``int`` (not ``bool``) in ``[0, P)``."""
    return type(value) is int and 0 <= value < FELT_PRIME


def check_felt(value: object, field: str) -> int:
    """Return ``value`` if it is a felt, else raise ``ValidationError(field, ...)``."""
    if type(value) is not int:
        raise ValidationError(field, f"must be an integer felt, got {type(value).__name__}")
    if not 0 <= value < FELT_PRIME:
        raise ValidationError(field, "must be a felt in [0, 2**251 + 17 * 2**192 + 1)")
    return value


def bytes_to_felts(data: bytes, field: str = "data") -> list[int]:
    """Split ``data`` into big-endian 128-bit felts, 16 bytes each, in order."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValidationError(field, "must be bytes")
    raw = bytes(data)
    if len(raw) == 0 or len(raw) % FELT_CHUNK_BYTES:
        raise ValidationError(field, f"length must be a positive multiple of 16, got {len(raw)}")
    return [
        int.from_bytes(raw[i : i + FELT_CHUNK_BYTES], "big")
        for i in range(0, len(raw), FELT_CHUNK_BYTES)
    ]


def felts_to_bytes(felts: Sequence[int], field: str = "felts") -> bytes:
    """Inverse of :func:`bytes_to_felts` (each felt must fit in 128 bits)."""
    out = bytearray()
    for i, value in enumerate(felts):
        if type(value) is not int or not 0 <= value < 2**128:
            raise ValidationError(f"{field}[{i}]", "must be an integer in [0, 2**128)")
        out += value.to_bytes(FELT_CHUNK_BYTES, "big")
    return bytes(out)


def encode_short_string(text: str, field: str = "short_string") -> int:
    """Encode ``text`` as Cairo encodes the short string literal ``'text'``."""
    if not isinstance(text, str):
        raise ValidationError(field, "must be a string")
    if not text.isascii():
        raise ValidationError(field, "a Cairo short string holds ASCII characters only")
    if len(text) > SHORT_STRING_MAX_LEN:
        raise ValidationError(field, "a Cairo short string holds at most 31 characters")
    return int.from_bytes(text.encode("ascii"), "big")


def decode_short_string(value: int, field: str = "short_string") -> str:
    """Decode a felt holding a Cairo short string (leading zero bytes are dropped)."""
    check_felt(value, field)
    raw = value.to_bytes(32, "big").lstrip(b"\x00")
    if len(raw) > SHORT_STRING_MAX_LEN or not raw.isascii():
        raise ValidationError(field, "is not a Cairo short string")
    return raw.decode("ascii")


def felt_to_hex(value: int) -> str:
    """Lowercase ``0x``-prefixed hex, no padding (``0x0`` for zero)."""
    return hex(check_felt(value, "felt"))


def parse_felt(text: object, field: str) -> int:
    """Parse a ``0x``-prefixed hexadecimal felt from a JSON document."""
    if not isinstance(text, str):
        raise ValidationError(field, "must be a 0x-prefixed hexadecimal string")
    if not text.startswith(("0x", "0X")) or len(text) < 3 or len(text) > 66:
        raise ValidationError(field, "must be a 0x-prefixed hexadecimal string of a felt")
    digits = text[2:]
    if any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise ValidationError(field, "must be a 0x-prefixed hexadecimal string")
    return check_felt(int(digits, 16), field)
