"""From the fuzzy extractor's secret to the humanity key, its commitment and Ed25519.

* ``humanity_proof_key = HKDF-SHA256(secret, salt, info="keiko/humanity-proof/v1")``,
  32 bytes; ``salt`` is the random per-enrollment salt kept in the helper data.
* ``commitment = Poseidon(short_string("keiko/humanity/v1"), key[:16], key[16:])`` over
  the Stark field (starknet-py's ``HashMethod.POSEIDON``): a felt (< 2**251 + ...),
  ready to be stored by the ``humanity_registry`` Cairo contract and recomputable in
  Cairo with ``poseidon_hash_span`` should a future proof need it. The key is split
  into two 128-bit limbs because a 256-bit value does not fit one felt.
* Ed25519 seed ``= HKDF-SHA256(humanity_proof_key, salt=None, info="keiko/ed25519/v1")``
  -> ``nacl.signing.SigningKey``. Every capture that reproduces the secret therefore
  reproduces the same signing key.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nacl.signing import SigningKey

HUMANITY_INFO = b"keiko/humanity-proof/v1"
ED25519_INFO = b"keiko/ed25519/v1"
COMMITMENT_DOMAIN = "keiko/humanity/v1"


def _hkdf(material: bytes, salt: bytes | None, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(material)


def humanity_proof_key(secret: bytes, salt: bytes) -> bytes:
    return _hkdf(secret, salt, HUMANITY_INFO)


def commitment(proof_key: bytes) -> int:
    """The felt registered on-chain for ``proof_key`` (Poseidon over the Stark field)."""
    from starknet_py.cairo.felt import encode_shortstring
    from starknet_py.hash.hash_method import HashMethod

    if len(proof_key) != 32:
        raise ValueError("the humanity proof key is 32 bytes")
    hi = int.from_bytes(proof_key[:16], "big")
    lo = int.from_bytes(proof_key[16:], "big")
    return int(HashMethod.POSEIDON.hash_many([encode_shortstring(COMMITMENT_DOMAIN), hi, lo]))


def signing_key(proof_key: bytes) -> SigningKey:
    return SigningKey(_hkdf(proof_key, None, ED25519_INFO))
