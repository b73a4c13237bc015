"""A software FIDO2 authenticator: real ES256 keys, real attestations and assertions.

It plays the browser (clientDataJSON) and the authenticator (authenticatorData, signature)
of the WebAuthn ceremonies, producing exactly the JSON a browser's `credential.toJSON()`
returns, so the identity service verifies it with the real `webauthn` package, as it does
a browser's. The command line uses it as the operator's and the demo's passkey (saved to a
file, like an SSH key: `save` / `load`); tests use its knobs for the bad cases: another
origin in clientDataJSON, another RP id hash, a stale sign count, a tampered signature, a
replayed challenge. It is a client, not a bypass: the server checks it like any other.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import struct
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

FLAG_UP = 0x01  # user present
FLAG_UV = 0x04  # user verified
FLAG_BE = 0x08  # backup eligible
FLAG_BS = 0x10  # backed up
FLAG_AT = 0x40  # attested credential data included

COSE_ES256 = -7
# An arbitrary but fixed model id for this software authenticator.
SOFTWARE_AAGUID = uuid.UUID("6b6579b0-0000-4000-8000-736f66747761")

AttestationFormat = Literal["none", "packed"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def cose_es256_public_key(key: ec.EllipticCurvePublicKey) -> bytes:
    numbers = key.public_numbers()
    return cbor2.dumps(
        {
            1: 2,  # kty: EC2
            3: COSE_ES256,  # alg: ES256
            -1: 1,  # crv: P-256
            -2: numbers.x.to_bytes(32, "big"),
            -3: numbers.y.to_bytes(32, "big"),
        }
    )


@dataclass
class StoredCredential:
    credential_id: bytes
    private_key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0


@dataclass
class SoftwareAuthenticator:
    """A passkey holder for one origin. Keeps its credentials (discoverable by default)."""

    origin: str
    rp_id: str
    aaguid: uuid.UUID = SOFTWARE_AAGUID
    user_verified: bool = True
    backed_up: bool = False
    transports: tuple[str, ...] = ("internal", "hybrid")
    credentials: dict[bytes, StoredCredential] = field(default_factory=dict)

    # -- registration (navigator.credentials.create) -------------------------------------

    def create(
        self,
        options_json: str,
        *,
        fmt: AttestationFormat = "none",
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: bytes | None = None,
        client_data_type: str = "webauthn.create",
    ) -> str:
        """Make a new credential for the creation options; returns RegistrationResponseJSON.

        `origin`, `rp_id` and `challenge` override what an honest client would use.
        """
        options = json.loads(options_json)
        claimed_rp_id = rp_id or options["rp"]["id"]
        user_handle = b64url_decode(options["user"]["id"])
        challenge_bytes = (
            challenge if challenge is not None else b64url_decode(options["challenge"])
        )
        if not any(p["alg"] == COSE_ES256 for p in options["pubKeyCredParams"]):
            raise ValueError("relying party does not accept ES256")

        key = ec.generate_private_key(ec.SECP256R1())
        credential_id = secrets.token_bytes(32)
        stored = StoredCredential(credential_id, key, claimed_rp_id, user_handle)
        self.credentials[credential_id] = stored

        client_data = self._client_data(client_data_type, challenge_bytes, origin or self.origin)
        attested = (
            self.aaguid.bytes
            + struct.pack(">H", len(credential_id))
            + credential_id
            + cose_es256_public_key(key.public_key())
        )
        auth_data = self._authenticator_data(claimed_rp_id, stored.sign_count, FLAG_AT) + attested
        att_stmt: dict[str, Any] = {}
        if fmt == "packed":  # self attestation: signed with the credential key itself
            signature = key.sign(
                auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
            )
            att_stmt = {"alg": COSE_ES256, "sig": signature}
        attestation_object = cbor2.dumps({"fmt": fmt, "attStmt": att_stmt, "authData": auth_data})
        return json.dumps(
            {
                "id": b64url(credential_id),
                "rawId": b64url(credential_id),
                "type": "public-key",
                "authenticatorAttachment": "platform",
                "clientExtensionResults": {},
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "attestationObject": b64url(attestation_object),
                    "transports": list(self.transports),
                },
            }
        )

    # -- authentication (navigator.credentials.get) --------------------------------------

    def get(
        self,
        options_json: str,
        *,
        credential_id: bytes | None = None,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: bytes | None = None,
        sign_count: int | None = None,
        tamper_signature: bool = False,
        user_handle: bytes | None = None,
        client_data_type: str = "webauthn.get",
    ) -> str:
        """Sign an assertion for the request options; returns AuthenticationResponseJSON.

        The credential is the one named, else the first allowed one this authenticator
        holds, else (discoverable login) any credential for the RP. The sign count goes up
        by one per assertion unless `sign_count` forces a value (e.g. a stale one).
        """
        options = json.loads(options_json)
        stored = self._pick(options, credential_id)
        claimed_rp_id = rp_id or options.get("rpId") or stored.rp_id
        challenge_bytes = (
            challenge if challenge is not None else b64url_decode(options["challenge"])
        )
        if sign_count is None:
            stored.sign_count += 1
            count = stored.sign_count
        else:
            count = sign_count
        client_data = self._client_data(client_data_type, challenge_bytes, origin or self.origin)
        auth_data = self._authenticator_data(claimed_rp_id, count, 0)
        signature = stored.private_key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        if tamper_signature:
            signature = _tamper_der_signature(signature)
        return json.dumps(
            {
                "id": b64url(stored.credential_id),
                "rawId": b64url(stored.credential_id),
                "type": "public-key",
                "authenticatorAttachment": "platform",
                "clientExtensionResults": {},
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "authenticatorData": b64url(auth_data),
                    "signature": b64url(signature),
                    "userHandle": b64url(user_handle or stored.user_handle),
                },
            }
        )

    # -- persistence (a passkey file, mode 0600) --------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "rp_id": self.rp_id,
            "credentials": [
                {
                    "credential_id": b64url(c.credential_id),
                    "rp_id": c.rp_id,
                    "user_handle": b64url(c.user_handle),
                    "sign_count": c.sign_count,
                    "private_key_pem": c.private_key.private_bytes(
                        serialization.Encoding.PEM,
                        serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption(),
                    ).decode(),
                }
                for c in self.credentials.values()
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SoftwareAuthenticator:
        authenticator = cls(origin=str(data["origin"]), rp_id=str(data["rp_id"]))
        for item in data.get("credentials", []):
            key = serialization.load_pem_private_key(item["private_key_pem"].encode(), None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError("a passkey file holds a key that is not ES256")
            stored = StoredCredential(
                b64url_decode(item["credential_id"]),
                key,
                str(item["rp_id"]),
                b64url_decode(item["user_handle"]),
                int(item.get("sign_count", 0)),
            )
            authenticator.credentials[stored.credential_id] = stored
        return authenticator

    def save(self, path: Path, **extra: Any) -> None:
        """Write the passkeys (private keys included) readable by the owner only."""
        path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({**extra, **self.to_json()}, indent=2).encode()
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(body)
        path.chmod(0o600)

    @classmethod
    def load(cls, path: Path) -> tuple[SoftwareAuthenticator, dict[str, Any]]:
        """The authenticator and the file's other members (e.g. the account's email)."""
        data = json.loads(path.read_text())
        return cls.from_json(data), data

    # -- helpers --------------------------------------------------------------------------

    def credential_ids(self) -> list[bytes]:
        return list(self.credentials)

    def _pick(self, options: dict[str, Any], credential_id: bytes | None) -> StoredCredential:
        if credential_id is not None:
            return self.credentials[credential_id]
        allowed = [b64url_decode(c["id"]) for c in options.get("allowCredentials") or []]
        for cid in allowed:
            if cid in self.credentials:
                return self.credentials[cid]
        if allowed:
            raise LookupError("none of the allowed credentials is held by this authenticator")
        rp_id = options.get("rpId")
        for stored in self.credentials.values():
            if stored.rp_id == rp_id:
                return stored
        raise LookupError("no credential for this relying party")

    @staticmethod
    def _client_data(kind: str, challenge: bytes, origin: str) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": b64url(challenge), "origin": origin, "crossOrigin": False},
            separators=(",", ":"),
        ).encode()

    def _authenticator_data(self, rp_id: str, sign_count: int, extra_flags: int) -> bytes:
        flags = FLAG_UP | extra_flags
        if self.user_verified:
            flags |= FLAG_UV
        if self.backed_up:
            flags |= FLAG_BE | FLAG_BS
        return (
            hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", sign_count)
        )


def _tamper_der_signature(signature: bytes) -> bytes:
    """Flip a bit of the DER signature's last byte (inside `s`): still well-formed DER,
    but no longer a valid signature."""
    return signature[:-1] + bytes([signature[-1] ^ 0x01])
