"""Bitstring Status List v1.0 (W3C Recommendation): revocation of credentials.

A status list is a bitstring; bit ``i`` (counting from the most significant bit of the
first byte, as the specification orders them) is 1 when the credential holding index
``i`` is revoked. It travels GZIP-compressed and base64url-encoded without padding, as a
multibase string (prefix ``u``), in the ``encodedList`` of a
``BitstringStatusListCredential`` that the list's issuer signs. A credential names its
slot with a ``BitstringStatusListEntry``.

Keiko keeps one revocation list of :data:`LIST_BITS` slots per issuer and hands slots out
at random (so neighbouring slots say nothing about each other: the specification's herd
privacy).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chain.credentials.documents import CREDENTIALS_V2
from chain.credentials.integrity import format_datetime
from services.kit.errors import ValidationError

LIST_BITS = 131_072  # the specification's minimum: 16 KiB uncompressed
MAX_LIST_BITS = 8 * 1024 * 1024 * 8  # 8 MiB uncompressed: a decoder's ceiling
MAX_ENCODED_CHARS = 4 * 1024 * 1024
STATUS_PURPOSE_REVOCATION = "revocation"
ENTRY_TYPE = "BitstringStatusListEntry"
LIST_TYPE = "BitstringStatusList"
CREDENTIAL_TYPE = "BitstringStatusListCredential"
MULTIBASE_BASE64URL = "u"


class Bitstring:
    """A mutable bitstring, bit 0 the most significant bit of byte 0."""

    def __init__(self, length: int = LIST_BITS, data: bytes | None = None) -> None:
        if length <= 0 or length % 8:
            raise ValidationError("length", "must be a positive multiple of 8")
        if data is not None and len(data) * 8 != length:
            raise ValidationError("data", "does not have the declared length")
        self._bytes = bytearray(data if data is not None else length // 8)

    @property
    def length(self) -> int:
        return len(self._bytes) * 8

    def _check(self, index: int) -> None:
        if type(index) is not int or not 0 <= index < self.length:
            raise ValidationError("statusListIndex", f"must be between 0 and {self.length - 1}")

    def get(self, index: int) -> bool:
        self._check(index)
        return bool(self._bytes[index // 8] & (0x80 >> (index % 8)))

    def set(self, index: int, value: bool = True) -> None:
        self._check(index)
        mask = 0x80 >> (index % 8)
        if value:
            self._bytes[index // 8] |= mask
        else:
            self._bytes[index // 8] &= ~mask & 0xFF

    def set_indices(self) -> list[int]:
        return [
            byte_index * 8 + bit
            for byte_index, byte in enumerate(self._bytes)
            if byte
            for bit in range(8)
            if byte & (0x80 >> bit)
        ]

    def encode(self) -> str:
        """``u`` + base64url (no padding) of the GZIP-compressed bits."""
        compressed = gzip.compress(bytes(self._bytes), compresslevel=9, mtime=0)
        return MULTIBASE_BASE64URL + base64.urlsafe_b64encode(compressed).decode().rstrip("=")

    @classmethod
    def decode(cls, encoded: object, field: str = "encodedList") -> Bitstring:
        if not isinstance(encoded, str) or not encoded.startswith(MULTIBASE_BASE64URL):
            raise ValidationError(field, "must be a base64url multibase string (u...)")
        if len(encoded) > MAX_ENCODED_CHARS:
            raise ValidationError(field, "is too large")
        body = encoded[1:]
        try:
            compressed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            raw = decompressor.decompress(compressed, MAX_LIST_BITS // 8 + 1)
        except (binascii.Error, ValueError, zlib.error):
            raise ValidationError(field, "is not GZIP data in base64url") from None
        if len(raw) > MAX_LIST_BITS // 8 or decompressor.unconsumed_tail:
            raise ValidationError(field, "decompresses beyond the size a verifier accepts")
        if not raw:
            raise ValidationError(field, "is empty")
        return cls(len(raw) * 8, raw)

    @classmethod
    def with_bits(cls, indices: Iterable[int], length: int = LIST_BITS) -> Bitstring:
        bits = cls(length)
        for index in indices:
            bits.set(index)
        return bits


@dataclass(frozen=True, slots=True)
class StatusEntry:
    """A credential's ``credentialStatus`` (``BitstringStatusListEntry``)."""

    list_credential: str
    index: int
    purpose: str = STATUS_PURPOSE_REVOCATION

    def to_json(self) -> dict[str, Any]:
        return {
            "id": f"{self.list_credential}#{self.index}",
            "type": ENTRY_TYPE,
            "statusPurpose": self.purpose,
            "statusListIndex": str(self.index),
            "statusListCredential": self.list_credential,
        }

    @classmethod
    def parse(cls, raw: object, field: str = "credentialStatus") -> StatusEntry:
        if not isinstance(raw, Mapping):
            raise ValidationError(field, "must be an object")
        if raw.get("type") != ENTRY_TYPE:
            raise ValidationError(f"{field}.type", f"must be {ENTRY_TYPE}")
        list_credential = raw.get("statusListCredential")
        if not isinstance(list_credential, str) or not list_credential.startswith(
            ("https://", "http://")
        ):
            raise ValidationError(f"{field}.statusListCredential", "must be an http(s) URL")
        index_text = raw.get("statusListIndex")
        if not isinstance(index_text, str) or not index_text.isdigit() or len(index_text) > 12:
            raise ValidationError(f"{field}.statusListIndex", "must be a decimal string")
        purpose = raw.get("statusPurpose")
        if not isinstance(purpose, str) or not purpose:
            raise ValidationError(f"{field}.statusPurpose", "is required")
        return cls(list_credential, int(index_text), purpose)


def status_list_credential(
    list_url: str,
    issuer: str,
    bits: Bitstring,
    valid_from: datetime,
    purpose: str = STATUS_PURPOSE_REVOCATION,
) -> dict[str, Any]:
    """The unsigned ``BitstringStatusListCredential`` published at ``list_url``."""
    return {
        "@context": [CREDENTIALS_V2],
        "id": list_url,
        "type": ["VerifiableCredential", CREDENTIAL_TYPE],
        "issuer": issuer,
        "validFrom": format_datetime(valid_from),
        "credentialSubject": {
            "id": f"{list_url}#list",
            "type": LIST_TYPE,
            "statusPurpose": purpose,
            "encodedList": bits.encode(),
        },
    }


@dataclass(frozen=True, slots=True)
class StatusListSubject:
    purpose: str
    bits: Bitstring


def parse_status_list_credential(document: Mapping[str, Any]) -> StatusListSubject:
    """The purpose and bits of a status list credential (its proof is checked apart)."""
    types = document.get("type")
    if not isinstance(types, list) or CREDENTIAL_TYPE not in types:
        raise ValidationError("type", f"must include {CREDENTIAL_TYPE}")
    subject = document.get("credentialSubject")
    if not isinstance(subject, Mapping) or subject.get("type") != LIST_TYPE:
        raise ValidationError("credentialSubject.type", f"must be {LIST_TYPE}")
    purpose = subject.get("statusPurpose")
    if not isinstance(purpose, str) or not purpose:
        raise ValidationError("credentialSubject.statusPurpose", "is required")
    return StatusListSubject(purpose, Bitstring.decode(subject.get("encodedList")))


__all__ = [
    "CREDENTIAL_TYPE",
    "ENTRY_TYPE",
    "LIST_BITS",
    "LIST_TYPE",
    "STATUS_PURPOSE_REVOCATION",
    "Bitstring",
    "StatusEntry",
    "StatusListSubject",
    "parse_status_list_credential",
    "status_list_credential",
]
