"""Every author's signing key: custodial keys in the vault, registered device keys, and
signing a statement as its author.

Each user (learners, tutors, admins alike) and each Keiko service that authors records
(:data:`chain.translator.authors.SERVICE_AUTHORS`) has an Ed25519 key of their own:

* a *custodial* key, generated on first use and kept in ``chain.key_records`` as a
  :class:`~chain.translator.keys.KeyVault` record (encrypted under the KEK, bound to its
  holder's id); services only ever have custodial keys;
* and, for users who proved their humanity, a *registered device* key (derived on their
  device from the humanity proof key, registered in the humanity registry), in
  ``chain.registered_keys``. When a statement comes with a device signature, the
  translator checks it against the author's registered key and never re-signs.

Every key is queued for the on-chain key directory when it is stored
(:mod:`chain.translator.key_directory`); ``on_key_queued`` wakes the registrar.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from chain.translator.authors import check_holder_id, custody_of, is_service
from chain.translator.keys import KeyVault, inspect_record
from chain.translator.signing import (
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    check_device_signature,
    decode_hex,
)
from chain.translator.storage import ChainStore
from services.kit.errors import FailedPrecondition, ValidationError

log = structlog.get_logger("keiko.chain.signers")

RECORD_CACHE_SIZE = 10_000

KeyLookup = Callable[[str], Awaitable[bytes | None]]


@dataclass(frozen=True, slots=True)
class AuthorSignature:
    """A statement signed as its author, or a device signature that was refused
    (``failure`` says why; such a record is stored FAILED, never anchored)."""

    signature: bytes
    public_key: bytes
    device_signed: bool
    failure: str | None = None


class AuthorKeys:
    def __init__(
        self,
        store: ChainStore,
        vault: KeyVault | Callable[[], KeyVault],
        *,
        key_lookup: KeyLookup | None = None,
        on_key_queued: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self._vault = vault
        self._key_lookup = key_lookup
        self.on_key_queued = on_key_queued
        self._records: dict[str, bytes] = {}

    @property
    def vault(self) -> KeyVault:
        """The custodial key vault, loaded on first use (a provider may raise
        FailedPrecondition when no KEK is configured: only custodial signing needs it)."""
        if not isinstance(self._vault, KeyVault):
            self._vault = self._vault()
        return self._vault

    async def custodial_record(self, holder_id: str, *, create: bool) -> bytes | None:
        """The holder's wrapped key record (still encrypted: caching it is harmless)."""
        record = self._records.get(holder_id)
        if record is None:
            record = await self.store.get_key_record(holder_id)
        if record is None and create:
            generated = self.vault.generate(holder_id)
            record = await self.store.put_key_record(
                holder_id, generated.record, generated.public_key, custody_of(holder_id).value
            )
            if self.on_key_queued is not None:
                self.on_key_queued()
        if record is not None:
            if len(self._records) >= RECORD_CACHE_SIZE:
                self._records.pop(next(iter(self._records)))
            self._records[holder_id] = record
        return record

    async def custodial_key(self, holder_id: str, *, create: bool = True) -> bytes | None:
        """The public key of the holder's custodial key (created on first use)."""
        record = await self.custodial_record(holder_id, create=create)
        return None if record is None else inspect_record(record).public_key

    async def rewrap_custodial_keys(self, *, page_size: int = 200) -> tuple[int, int]:
        """Move every custodial key record to the current KEK, after a KEK rotation; the
        key pairs do not change. Returns ``(records checked, records re-wrapped)``. Safe to
        run again or from several replicas at once (each swap is compare-and-set). Without a
        previous KEK configured there is nothing to move and nothing is read."""
        vault = self.vault
        if vault.kek_ids == {vault.current_kek_id}:
            return 0, 0
        checked = rewrapped = 0
        after = ""
        while page := await self.store.key_records_after(after, page_size):
            for holder_id, record in page:
                checked += 1
                if not vault.needs_rewrap(record):
                    continue
                try:
                    new = vault.rewrap(record, holder_id)
                except FailedPrecondition:  # under a KEK no longer configured: cannot move
                    log.warning("chain.key_record_unreadable", holder_id=holder_id)
                    continue
                if await self.store.replace_key_record(holder_id, record, new):
                    rewrapped += 1
                self._records.pop(holder_id, None)
            after = page[-1][0]
        return checked, rewrapped

    async def registered_key(self, holder_id: str) -> bytes | None:
        """The user's registered device key, if any."""
        key = await self.store.registered_key(holder_id)
        if key is None and self._key_lookup is not None:
            key = await self._key_lookup(holder_id)
        return key

    async def is_holder_key(self, holder_id: str, public_key: bytes) -> bool:
        """Is ``public_key`` the holder's custodial key or their registered key?"""
        record = await self.custodial_record(holder_id, create=False)
        if record is not None and inspect_record(record).public_key == public_key:
            return True
        return await self.registered_key(holder_id) == public_key

    async def sign(
        self, author_id: str, canonical: bytes, device: tuple[str, str] | None = None
    ) -> AuthorSignature:
        """Sign ``canonical`` as ``author_id``: with their custodial key, or, with a
        ``device`` signature ``(signature hex, public key hex)``, check it against the
        author's registered key (a malformed one raises ``ValidationError``; one by
        another key comes back with ``failure``)."""
        author_id = check_holder_id(author_id, "author_id")
        if device is None:
            record = await self.custodial_record(author_id, create=True)
            assert record is not None
            signature = self.vault.sign(record, author_id, canonical)
            return AuthorSignature(signature, inspect_record(record).public_key, False)
        if is_service(author_id):
            raise ValidationError("device_signature", "a Keiko service signs with its own key")
        signature = decode_hex(device[0], "device_signature.signature_hex", SIGNATURE_BYTES)
        public_key = decode_hex(device[1], "device_signature.public_key_hex", PUBLIC_KEY_BYTES)
        registered = await self.registered_key(author_id)
        check = check_device_signature(canonical, signature, public_key, registered)
        failure = None
        if not check.ok:
            assert check.reason is not None
            failure = f"device signature rejected: {check.reason.value}"
        return AuthorSignature(signature, public_key, True, failure)


__all__ = ["AuthorKeys", "AuthorSignature", "KeyLookup"]
