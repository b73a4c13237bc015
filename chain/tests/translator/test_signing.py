"""Canonical bytes, Ed25519 sign/verify, device-signed mode."""

from __future__ import annotations

import asyncio
import copy

import pytest
from nacl.signing import SigningKey

from chain.translator.signing import (
    SignatureFailure,
    averify_device_signature,
    canonical_bytes,
    decode_hex,
    public_key_of,
    sign,
    verify,
    verify_device_signature,
)
from services.kit.errors import ValidationError

STATEMENT = {
    "actor": {"objectType": "Agent", "mbox": "mailto:ana@example.org"},
    "verb": {"id": "http://adlnet.gov/expapi/verbs/answered", "display": {"en-US": "answered"}},
    "object": {"id": "https://keiko.example/courses/linear-algebra/class-2/q3"},
    "result": {"score": {"scaled": 0.8}, "success": True},
    "timestamp": "2026-01-01T00:00:00Z",
}


@pytest.fixture
def key() -> SigningKey:
    return SigningKey(bytes(range(32)))


def test_canonical_bytes_rfc8785() -> None:
    assert canonical_bytes({"b": 1, "a": [1.0, "é", None, True]}) == (
        '{"a":[1,"é",null,true],"b":1}'.encode()
    )
    # RFC 8785 section 3.2.2.3 number examples
    assert canonical_bytes({"n": [333333333.33333329, 1e30, 4.50, 2e-3, 1e-27]}) == (
        b'{"n":[333333333.3333333,1e+30,4.5,0.002,1e-27]}'
    )


def test_canonical_bytes_accepts_canonical_input_and_rejects_other_bytes() -> None:
    canonical = canonical_bytes(STATEMENT)
    assert canonical_bytes(canonical) == canonical
    assert canonical_bytes(bytearray(canonical)) == canonical
    for bad in [
        b'{"b":1, "a":2}',
        b'{"b":1,"a":2}',
        b'{"a":1.0}',
        b'{"a":1,"a":1}',
        b"[1]",
        b"\xff",
        b"not json",
    ]:
        with pytest.raises(ValidationError) as err:
            canonical_bytes(bad)
        assert err.value.field == "statement"


@pytest.mark.parametrize("bad", [{"a": 2**60}, {"a": float("nan")}, {"a": object()}, ["x"], "s"])
def test_canonical_bytes_rejects_values_without_canonical_form(bad: object) -> None:
    with pytest.raises(ValidationError):
        canonical_bytes(bad)  # type: ignore[arg-type]


def test_sign_verify_roundtrip(key: SigningKey) -> None:
    signature = sign(STATEMENT, key)
    assert len(signature) == 64
    pk = public_key_of(key)
    assert verify(STATEMENT, signature, pk).ok
    # the same over the canonical bytes, and with members in another order
    assert verify(canonical_bytes(STATEMENT), signature, pk).ok
    reordered = dict(reversed(list(STATEMENT.items())))
    assert verify(reordered, signature, pk).ok
    assert sign(canonical_bytes(STATEMENT), key) == signature  # deterministic Ed25519


def test_tampered_statement_fails(key: SigningKey) -> None:
    signature = sign(STATEMENT, key)
    tampered = copy.deepcopy(STATEMENT)
    tampered["result"]["score"]["scaled"] = 0.9  # type: ignore[index]
    check = verify(tampered, signature, public_key_of(key))
    assert not check.ok and check.reason is SignatureFailure.INVALID
    with pytest.raises(ValidationError) as err:
        check.raise_for_failure()
    assert err.value.field == "signature" and err.value.reason == "signature invalid"


def test_tampered_signature_and_wrong_key_fail(key: SigningKey) -> None:
    signature = bytearray(sign(STATEMENT, key))
    signature[10] ^= 1
    assert verify(STATEMENT, bytes(signature), public_key_of(key)).reason is (
        SignatureFailure.INVALID
    )
    other = public_key_of(SigningKey(b"\x01" * 32))
    assert verify(STATEMENT, sign(STATEMENT, key), other).reason is SignatureFailure.INVALID


def test_malformed_signature_and_key(key: SigningKey) -> None:
    signature = sign(STATEMENT, key)
    assert verify(STATEMENT, signature[:63], public_key_of(key)).reason is (
        SignatureFailure.MALFORMED_SIGNATURE
    )
    assert verify(STATEMENT, signature, b"\x00" * 31).reason is (
        SignatureFailure.MALFORMED_PUBLIC_KEY
    )
    # small-order point (all zeros) is rejected by libsodium
    assert not verify(STATEMENT, signature, b"\x00" * 32).ok


def test_sign_requires_a_signing_key() -> None:
    with pytest.raises(ValidationError):
        sign(STATEMENT, b"\x00" * 32)  # type: ignore[arg-type]


def test_device_signed_mode_checks_registered_key(key: SigningKey) -> None:
    pk = public_key_of(key)
    signature = sign(STATEMENT, key)
    registry = {"ana": pk, "bob": public_key_of(SigningKey(b"\x02" * 32))}
    lookup = registry.get

    assert verify_device_signature("ana", STATEMENT, signature, pk, lookup).ok
    # a valid signature by a key that is not the learner's registered key
    assert verify_device_signature("bob", STATEMENT, signature, pk, lookup).reason is (
        SignatureFailure.KEY_NOT_REGISTERED
    )
    assert verify_device_signature("carol", STATEMENT, signature, pk, lookup).reason is (
        SignatureFailure.NO_REGISTERED_KEY
    )
    assert verify_device_signature("ana", STATEMENT, bytes(64), pk, lookup).reason is (
        SignatureFailure.INVALID
    )
    with pytest.raises(ValidationError):
        verify_device_signature("", STATEMENT, signature, pk, lookup)


def test_device_signed_mode_async_lookup(key: SigningKey) -> None:
    pk = public_key_of(key)

    async def lookup(learner_id: str) -> bytes | None:
        return pk if learner_id == "ana" else None

    async def run() -> tuple[bool, bool]:
        good = await averify_device_signature("ana", STATEMENT, sign(STATEMENT, key), pk, lookup)
        bad = await averify_device_signature("bob", STATEMENT, sign(STATEMENT, key), pk, lookup)
        return good.ok, bad.ok

    assert asyncio.run(run()) == (True, False)


def test_decode_hex() -> None:
    assert decode_hex("0x" + "ab" * 4, "f", 4) == b"\xab" * 4
    for bad in ["ab" * 3, "zz" * 4, "ab ab ab", 5]:
        with pytest.raises(ValidationError):
            decode_hex(bad, "f", 4)
