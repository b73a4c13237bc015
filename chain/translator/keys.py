"""Custodial key vault: learners' Ed25519 seeds encrypted at rest under a KEK.

The vault is storage-agnostic: it turns a learner's 32-byte Ed25519 seed into an opaque
*key record* (bytes) that the caller stores wherever it likes, and turns the record back
into signatures. Plaintext seeds and secret keys live only in libsodium buffers that the
vault allocates itself (``nacl._sodium.ffi``) and wipes with ``sodium_memzero`` as soon as
the operation ends; they never become Python ``bytes`` objects, which could not be wiped.

**Key-encryption keys (KEKs).** 32 random bytes, base64 in the environment:
``KEIKO_KEK`` is the current KEK (new records are wrapped under it);
``KEIKO_KEK_PREVIOUS`` is an optional comma-separated list of older KEKs still accepted
for unwrapping. A KEK is identified in records by its *KEK id*: the first 8 bytes of
``BLAKE2b(key=KEK, data=b"keiko.kek-id.v1")``, which reveals nothing about the KEK and
needs no separate configuration. Rotation: put the new KEK in ``KEIKO_KEK``, move the
old one to ``KEIKO_KEK_PREVIOUS``, re-wrap every record with :meth:`KeyVault.rewrap`
(or lazily where :meth:`KeyVault.needs_rewrap` is true), then drop the old KEK.

**Record format, version 1** (118 bytes)::

    offset size  field
    0      4     magic b"KKEY"
    4      1     format version = 1
    5      1     algorithm = 1 (XChaCha20-Poly1305-IETF, libsodium)
    6      8     KEK id
    14     32    Ed25519 public key (in clear: it is public)
    46     24    random nonce
    70     48    ciphertext of the 32-byte seed + 16-byte Poly1305 tag

The associated data is ``record[0:46] || UTF-8(learner id)``: a record moved to another
learner, or with its header (KEK id, public key) altered, fails authentication. After
decryption the public key is re-derived from the seed and compared with the header.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from nacl._sodium import ffi, lib

from chain.translator.signing import StatementInput, canonical_bytes
from services.kit.errors import FailedPrecondition, ValidationError

KEK_BYTES = 32
SEED_BYTES = 32
PUBLIC_KEY_BYTES = 32
SECRET_KEY_BYTES = 64
SIGNATURE_BYTES = 64
NONCE_BYTES = 24
TAG_BYTES = 16
KEK_ID_BYTES = 8

MAGIC = b"KKEY"
RECORD_VERSION = 1
ALG_XCHACHA20POLY1305 = 1
HEADER_BYTES = len(MAGIC) + 1 + 1 + KEK_ID_BYTES + PUBLIC_KEY_BYTES  # 46
RECORD_BYTES = HEADER_BYTES + NONCE_BYTES + SEED_BYTES + TAG_BYTES  # 118
MAX_LEARNER_ID_BYTES = 512

ENV_KEK = "KEIKO_KEK"
ENV_KEK_PREVIOUS = "KEIKO_KEK_PREVIOUS"

_KEK_ID_LABEL = b"keiko.kek-id.v1"


def _secret_buffer(size: int) -> Any:
    return ffi.new(f"unsigned char[{size}]")


def _wipe(buffer: Any, size: int) -> None:
    lib.sodium_memzero(buffer, size)


def wipe(buffer: bytearray) -> None:
    """Zero a caller-owned ``bytearray`` (e.g. a seed derived elsewhere, after ``wrap``)."""
    if not isinstance(buffer, bytearray):
        raise ValidationError("buffer", "only a bytearray can be wiped")
    if buffer:
        lib.sodium_memzero(ffi.from_buffer(buffer), len(buffer))


def kek_id(kek: bytes) -> bytes:
    """The 8-byte identifier of a KEK, as written in records."""
    return hashlib.blake2b(_KEK_ID_LABEL, key=bytes(kek), digest_size=KEK_ID_BYTES).digest()


@dataclass(frozen=True, slots=True)
class KeyRecordInfo:
    """The public header of a key record, readable without any KEK."""

    version: int
    algorithm: int
    kek_id: bytes
    public_key: bytes


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    """A freshly generated learner key: the record to store and its public key."""

    record: bytes
    public_key: bytes


def _learner_ad(learner_id: object) -> bytes:
    if not isinstance(learner_id, str) or not learner_id.strip():
        raise ValidationError("learner_id", "must be a non-empty string")
    encoded = learner_id.encode("utf-8")
    if len(encoded) > MAX_LEARNER_ID_BYTES:
        raise ValidationError("learner_id", f"must be at most {MAX_LEARNER_ID_BYTES} bytes")
    return encoded


def inspect_record(record: bytes) -> KeyRecordInfo:
    """Parse and check a record's header (no decryption)."""
    if not isinstance(record, bytes | bytearray):
        raise ValidationError("key_record", "must be bytes")
    raw = bytes(record)
    if len(raw) != RECORD_BYTES or raw[:4] != MAGIC:
        raise ValidationError("key_record", "is not a Keiko key record")
    if raw[4] != RECORD_VERSION:
        raise ValidationError("key_record", f"unsupported record version {raw[4]}")
    if raw[5] != ALG_XCHACHA20POLY1305:
        raise ValidationError("key_record", f"unsupported algorithm {raw[5]}")
    return KeyRecordInfo(
        version=raw[4],
        algorithm=raw[5],
        kek_id=raw[6 : 6 + KEK_ID_BYTES],
        public_key=raw[14:HEADER_BYTES],
    )


def _decode_kek(text: str, field: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(field, "must be base64") from None
    if len(raw) != KEK_BYTES:
        raise ValidationError(field, f"must decode to {KEK_BYTES} bytes, got {len(raw)}")
    return raw


class UnwrappedKey:
    """A learner's secret key, decrypted into a wipeable buffer.

    Use as a context manager; the secret is zeroed on exit (or :meth:`close`).
    """

    __slots__ = ("_closed", "_sk", "public_key")

    def __init__(self, secret_key: Any, public_key: bytes) -> None:
        self._sk = secret_key
        self._closed = False
        self.public_key = public_key

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature (64 bytes) of ``message``."""
        if self._closed:
            raise FailedPrecondition("the unwrapped key has been closed")
        if not isinstance(message, bytes | bytearray):
            raise ValidationError("message", "must be bytes")
        msg = bytes(message)
        signed = ffi.new(f"unsigned char[{len(msg) + SIGNATURE_BYTES}]")
        signed_len = ffi.new("unsigned long long *")
        rc = lib.crypto_sign(signed, signed_len, msg, len(msg), self._sk)
        if rc != 0:  # pragma: no cover - libsodium never fails here
            raise FailedPrecondition("Ed25519 signing failed")
        return bytes(ffi.buffer(signed, SIGNATURE_BYTES))

    def close(self) -> None:
        if not self._closed:
            _wipe(self._sk, SECRET_KEY_BYTES)
            self._closed = True

    def __enter__(self) -> UnwrappedKey:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"UnwrappedKey(public_key={self.public_key.hex()}, {state})"


class KeyVault:
    """Wraps, unwraps, rotates and signs with learners' custodial Ed25519 keys."""

    def __init__(self, current_kek: bytes, previous_keks: Sequence[bytes] = ()) -> None:
        self._keks: dict[bytes, Any] = {}
        self._current_id = self._add_kek(current_kek, ENV_KEK)
        for i, kek in enumerate(previous_keks):
            self._add_kek(kek, f"{ENV_KEK_PREVIOUS}[{i}]")

    def _add_kek(self, kek: bytes, field: str) -> bytes:
        if not isinstance(kek, bytes | bytearray) or len(kek) != KEK_BYTES:
            raise ValidationError(field, f"a key-encryption key must be {KEK_BYTES} bytes")
        ident = kek_id(bytes(kek))
        if ident not in self._keks:
            buffer = _secret_buffer(KEK_BYTES)
            ffi.memmove(buffer, ffi.from_buffer(kek), KEK_BYTES)
            self._keks[ident] = buffer
        return ident

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KeyVault:
        """Build from ``KEIKO_KEK`` and the optional ``KEIKO_KEK_PREVIOUS``."""
        env = os.environ if environ is None else environ
        current = env.get(ENV_KEK, "")
        if not current.strip():
            raise ValidationError(ENV_KEK, "is not set (32 random bytes, base64)")
        previous = [
            _decode_kek(part, f"{ENV_KEK_PREVIOUS}[{i}]")
            for i, part in enumerate(p for p in env.get(ENV_KEK_PREVIOUS, "").split(",") if p)
        ]
        return cls(_decode_kek(current, ENV_KEK), previous)

    @staticmethod
    def new_kek() -> str:
        """A fresh random KEK, base64, suitable for ``KEIKO_KEK``."""
        return base64.b64encode(os.urandom(KEK_BYTES)).decode("ascii")

    @property
    def current_kek_id(self) -> bytes:
        return self._current_id

    @property
    def kek_ids(self) -> frozenset[bytes]:
        return frozenset(self._keks)

    def _kek(self, ident: bytes) -> Any:
        buffer = self._keks.get(ident)
        if buffer is None:
            raise FailedPrecondition(
                f"key record wrapped under unknown key-encryption key {ident.hex()}"
            )
        return buffer

    # -- wrapping ---------------------------------------------------------------------

    def _seal(self, learner_ad: bytes, seed: Any) -> tuple[bytes, bytes]:
        """Encrypt the seed held in ``seed`` (a secret buffer); returns (record, public key)."""
        pk = ffi.new(f"unsigned char[{PUBLIC_KEY_BYTES}]")
        sk = _secret_buffer(SECRET_KEY_BYTES)
        try:
            lib.crypto_sign_seed_keypair(pk, sk, seed)
        finally:
            _wipe(sk, SECRET_KEY_BYTES)
        public_key = bytes(ffi.buffer(pk, PUBLIC_KEY_BYTES))
        header = (
            MAGIC + bytes([RECORD_VERSION, ALG_XCHACHA20POLY1305]) + self._current_id + public_key
        )
        nonce = os.urandom(NONCE_BYTES)
        ad = header + learner_ad
        out = ffi.new(f"unsigned char[{SEED_BYTES + TAG_BYTES}]")
        out_len = ffi.new("unsigned long long *")
        rc = lib.crypto_aead_xchacha20poly1305_ietf_encrypt(
            out,
            out_len,
            seed,
            SEED_BYTES,
            ad,
            len(ad),
            ffi.NULL,
            nonce,
            self._kek(self._current_id),
        )
        if rc != 0:  # pragma: no cover - libsodium never fails here
            raise FailedPrecondition("key wrapping failed")
        return header + nonce + bytes(ffi.buffer(out, out_len[0])), public_key

    def _open(self, record: bytes, learner_id: str) -> tuple[Any, KeyRecordInfo]:
        """Decrypt a record's seed into a new secret buffer (caller wipes it)."""
        info = inspect_record(record)
        learner_ad = _learner_ad(learner_id)
        raw = bytes(record)
        kek = self._kek(info.kek_id)
        nonce = raw[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES]
        ciphertext = raw[HEADER_BYTES + NONCE_BYTES :]
        ad = raw[:HEADER_BYTES] + learner_ad
        seed = _secret_buffer(SEED_BYTES)
        seed_len = ffi.new("unsigned long long *")
        rc = lib.crypto_aead_xchacha20poly1305_ietf_decrypt(
            seed, seed_len, ffi.NULL, ciphertext, len(ciphertext), ad, len(ad), nonce, kek
        )
        if rc != 0:
            _wipe(seed, SEED_BYTES)
            raise ValidationError(
                "key_record", "cannot be decrypted: wrong learner, wrong KEK or tampered"
            )
        return seed, info

    def _keypair(self, seed: Any, expected_pk: bytes) -> Any:
        pk = ffi.new(f"unsigned char[{PUBLIC_KEY_BYTES}]")
        sk = _secret_buffer(SECRET_KEY_BYTES)
        lib.crypto_sign_seed_keypair(pk, sk, seed)
        if not hmac.compare_digest(bytes(ffi.buffer(pk, PUBLIC_KEY_BYTES)), expected_pk):
            _wipe(sk, SECRET_KEY_BYTES)
            raise ValidationError("key_record", "public key does not match the sealed seed")
        return sk

    def generate(self, learner_id: str) -> GeneratedKey:
        """Generate a random Ed25519 key for ``learner_id`` and wrap it."""
        learner_ad = _learner_ad(learner_id)
        seed = _secret_buffer(SEED_BYTES)
        try:
            lib.randombytes(seed, SEED_BYTES)
            record, public_key = self._seal(learner_ad, seed)
        finally:
            _wipe(seed, SEED_BYTES)
        return GeneratedKey(record=record, public_key=public_key)

    def wrap(self, learner_id: str, seed: bytes | bytearray) -> bytes:
        """Wrap an existing 32-byte seed (e.g. derived by HKDF in identity).

        The vault wipes its own copy; a caller passing a ``bytearray`` should
        :func:`wipe` it afterwards.
        """
        learner_ad = _learner_ad(learner_id)
        if not isinstance(seed, bytes | bytearray) or len(seed) != SEED_BYTES:
            raise ValidationError("seed", f"must be {SEED_BYTES} bytes")
        buffer = _secret_buffer(SEED_BYTES)
        try:
            ffi.memmove(buffer, ffi.from_buffer(seed), SEED_BYTES)
            record, _ = self._seal(learner_ad, buffer)
        finally:
            _wipe(buffer, SEED_BYTES)
        return record

    def unwrap(self, record: bytes, learner_id: str) -> UnwrappedKey:
        """Decrypt a record into an :class:`UnwrappedKey` (use it in a ``with`` block)."""
        seed, info = self._open(record, learner_id)
        try:
            sk = self._keypair(seed, info.public_key)
        finally:
            _wipe(seed, SEED_BYTES)
        return UnwrappedKey(sk, info.public_key)

    def sign(self, record: bytes, learner_id: str, message: bytes) -> bytes:
        """Unwrap, sign ``message`` (e.g. canonical statement bytes), wipe."""
        with self.unwrap(record, learner_id) as key:
            return key.sign(message)

    def sign_statement(self, record: bytes, learner_id: str, statement: StatementInput) -> bytes:
        """Custodial mode: Ed25519 over the statement's RFC 8785 canonical bytes."""
        return self.sign(record, learner_id, canonical_bytes(statement))

    def public_key(self, record: bytes) -> bytes:
        """The record's public key (no decryption)."""
        return inspect_record(record).public_key

    def needs_rewrap(self, record: bytes) -> bool:
        """True if the record is not wrapped under the current KEK."""
        return inspect_record(record).kek_id != self._current_id

    def rewrap(self, record: bytes, learner_id: str) -> bytes:
        """Re-encrypt a record under the current KEK (KEK rotation); same key pair."""
        seed, info = self._open(record, learner_id)
        try:
            new_record, public_key = self._seal(_learner_ad(learner_id), seed)
        finally:
            _wipe(seed, SEED_BYTES)
        if public_key != info.public_key:  # pragma: no cover - guarded by _open's AEAD
            raise ValidationError("key_record", "public key does not match the sealed seed")
        return new_record

    def rotate(self, record: bytes, learner_id: str) -> bytes:
        """Alias of :meth:`rewrap`: move a record to the current KEK."""
        return self.rewrap(record, learner_id)

    def close(self) -> None:
        """Wipe every KEK held by this vault; it is unusable afterwards."""
        keks: dict[bytes, Any] = getattr(self, "_keks", {})
        for buffer in keks.values():
            _wipe(buffer, KEK_BYTES)
        keks.clear()

    def __del__(self) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KeyVault(current_kek_id={self._current_id.hex()}, keks={len(self._keks)})"
