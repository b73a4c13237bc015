"""Custodial key vault: wrap/unwrap/sign, AAD binding, KEK rotation, no secret leaks."""

from __future__ import annotations

import base64

import pytest
from nacl.signing import SigningKey, VerifyKey

from chain.translator.keys import (
    HEADER_BYTES,
    RECORD_BYTES,
    KeyVault,
    inspect_record,
    kek_id,
    wipe,
)
from chain.translator.signing import canonical_bytes, verify
from services.kit.errors import FailedPrecondition, ValidationError

KEK_A = bytes(range(32))
KEK_B = bytes(range(100, 132))
SEED = bytes(range(200, 232))


@pytest.fixture
def vault() -> KeyVault:
    return KeyVault(KEK_A)


def test_generate_and_sign_verifies(vault: KeyVault) -> None:
    generated = vault.generate("ana")
    assert len(generated.record) == RECORD_BYTES
    message = canonical_bytes({"verb": "answered"})
    signature = vault.sign(generated.record, "ana", message)
    VerifyKey(generated.public_key).verify(message, signature)
    assert verify(message, signature, generated.public_key).ok
    assert vault.public_key(generated.record) == generated.public_key


def test_two_generated_keys_differ(vault: KeyVault) -> None:
    assert vault.generate("ana").public_key != vault.generate("ana").public_key


def test_wrap_known_seed_matches_pynacl(vault: KeyVault) -> None:
    record = vault.wrap("ana", SEED)
    reference = SigningKey(SEED)
    assert inspect_record(record).public_key == bytes(reference.verify_key)
    message = b"canonical statement bytes"
    assert vault.sign(record, "ana", message) == reference.sign(message).signature
    # fresh nonce each time
    assert vault.wrap("ana", SEED) != record


def test_record_header_is_public_and_versioned(vault: KeyVault) -> None:
    record = vault.wrap("ana", SEED)
    info = inspect_record(record)
    assert record[:4] == b"KKEY" and info.version == 1 and info.algorithm == 1
    assert info.kek_id == kek_id(KEK_A) == vault.current_kek_id
    assert SEED not in record


def test_wrong_learner_cannot_unwrap(vault: KeyVault) -> None:
    record = vault.wrap("ana", SEED)
    with pytest.raises(ValidationError) as err:
        vault.sign(record, "bob", b"m")
    assert err.value.field == "key_record"


def test_wrong_kek_cannot_unwrap() -> None:
    record = KeyVault(KEK_A).wrap("ana", SEED)
    with pytest.raises(FailedPrecondition):
        KeyVault(KEK_B).sign(record, "ana", b"m")
    # a record relabelled with the other KEK's id still fails authentication
    relabelled = record[:6] + kek_id(KEK_B) + record[14:]
    with pytest.raises(ValidationError):
        KeyVault(KEK_B).sign(relabelled, "ana", b"m")


@pytest.mark.parametrize("offset", [14, 40, HEADER_BYTES, HEADER_BYTES + 30, RECORD_BYTES - 1])
def test_any_tampered_byte_fails(vault: KeyVault, offset: int) -> None:
    record = bytearray(vault.wrap("ana", SEED))
    record[offset] ^= 0x01
    with pytest.raises(ValidationError):
        vault.sign(bytes(record), "ana", b"m")


@pytest.mark.parametrize("bad", [b"", b"KKEY" + bytes(114), b"x" * 118, "text", None])
def test_malformed_records_rejected(vault: KeyVault, bad: object) -> None:
    with pytest.raises(ValidationError):
        vault.sign(bad, "ana", b"m")  # type: ignore[arg-type]


def test_unsupported_version_rejected(vault: KeyVault) -> None:
    record = bytearray(vault.wrap("ana", SEED))
    record[4] = 2
    with pytest.raises(ValidationError, match="version"):
        inspect_record(bytes(record))


def test_kek_rotation_rewraps_same_key() -> None:
    old_vault = KeyVault(KEK_A)
    record = old_vault.wrap("ana", SEED)

    rotated = KeyVault(KEK_B, previous_keks=[KEK_A])
    assert rotated.needs_rewrap(record)
    assert rotated.sign(record, "ana", b"m") == SigningKey(SEED).sign(b"m").signature

    new_record = rotated.rotate(record, "ana")
    assert not rotated.needs_rewrap(new_record)
    assert inspect_record(new_record).kek_id == kek_id(KEK_B)
    assert inspect_record(new_record).public_key == inspect_record(record).public_key
    assert rotated.sign(new_record, "ana", b"m") == SigningKey(SEED).sign(b"m").signature
    # once the old KEK is dropped, only the re-wrapped record is usable
    final = KeyVault(KEK_B)
    final.sign(new_record, "ana", b"m")
    with pytest.raises(FailedPrecondition):
        final.sign(record, "ana", b"m")
    with pytest.raises(FailedPrecondition):
        old_vault.sign(new_record, "ana", b"m")
    with pytest.raises(ValidationError):
        rotated.rewrap(record, "bob")


def test_from_env() -> None:
    env = {
        "KEIKO_KEK": base64.b64encode(KEK_B).decode(),
        "KEIKO_KEK_PREVIOUS": base64.b64encode(KEK_A).decode(),
    }
    vault = KeyVault.from_env(env)
    assert vault.current_kek_id == kek_id(KEK_B)
    assert vault.kek_ids == {kek_id(KEK_A), kek_id(KEK_B)}
    assert len(base64.b64decode(KeyVault.new_kek())) == 32


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"KEIKO_KEK": "  "},
        {"KEIKO_KEK": "not base64!"},
        {"KEIKO_KEK": base64.b64encode(b"short").decode()},
        {"KEIKO_KEK": base64.b64encode(KEK_A).decode(), "KEIKO_KEK_PREVIOUS": "@@"},
    ],
)
def test_from_env_rejects_bad_configuration(env: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        KeyVault.from_env(env)


def test_bad_inputs(vault: KeyVault) -> None:
    with pytest.raises(ValidationError):
        KeyVault(b"short")
    with pytest.raises(ValidationError):
        vault.wrap("ana", b"short")
    with pytest.raises(ValidationError):
        vault.wrap("", SEED)
    with pytest.raises(ValidationError):
        vault.generate("x" * 600)


def test_reprs_show_no_secrets(vault: KeyVault) -> None:
    record = vault.wrap("ana", SEED)
    with vault.unwrap(record, "ana") as key:
        text = repr(key) + repr(vault) + str(vault)
    for secret in (KEK_A, SEED, bytes(SigningKey(SEED))):
        assert secret.hex() not in text
        assert base64.b64encode(secret).decode() not in text
    assert "closed" in repr(key)


def test_unwrapped_key_is_wiped_on_close(vault: KeyVault) -> None:
    record = vault.wrap("ana", SEED)
    key = vault.unwrap(record, "ana")
    assert key.sign(b"m") == SigningKey(SEED).sign(b"m").signature
    buffer = key._sk
    assert any(buffer[i] for i in range(64))
    key.close()
    assert all(buffer[i] == 0 for i in range(64))
    with pytest.raises(FailedPrecondition):
        key.sign(b"m")


def test_vault_close_wipes_keks() -> None:
    vault = KeyVault(KEK_A)
    record = vault.wrap("ana", SEED)
    buffer = vault._keks[vault.current_kek_id]
    vault.close()
    assert all(buffer[i] == 0 for i in range(32))
    with pytest.raises(FailedPrecondition):
        vault.sign(record, "ana", b"m")


def test_wipe_caller_buffer() -> None:
    seed = bytearray(SEED)
    KeyVault(KEK_A).wrap("ana", seed)
    wipe(seed)
    assert seed == bytearray(32)
    with pytest.raises(ValidationError):
        wipe(b"immutable")  # type: ignore[arg-type]


def test_sign_statement_signs_canonical_bytes(vault: KeyVault) -> None:
    generated = vault.generate("ana")
    statement = {"verb": {"id": "http://adlnet.gov/expapi/verbs/answered"}, "b": 1}
    signature = vault.sign_statement(generated.record, "ana", statement)
    assert verify(statement, signature, generated.public_key).ok
    assert verify(canonical_bytes(statement), signature, generated.public_key).ok
