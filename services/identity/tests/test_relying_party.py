"""The relying party against the software authenticator: real attestations and assertions,
verified by the `webauthn` package, with each failure's exact reason. No database."""

from __future__ import annotations

import hashlib
import json

import cbor2
import pytest

from keiko.authenticator import (
    FLAG_AT,
    FLAG_UP,
    FLAG_UV,
    SoftwareAuthenticator,
    b64url,
    b64url_decode,
)
from services.identity.domain import hash_secret
from services.identity.relying_party import LoginRejected, RelyingParty, VerifiedCredential
from services.identity.settings import IdentitySettings
from services.kit.errors import ValidationError

RP_ID = "keiko.test"
ORIGIN = "https://app.keiko.test"


@pytest.fixture
def rp() -> RelyingParty:
    return RelyingParty(IdentitySettings(rp_id=RP_ID, allowed_origins=(ORIGIN,)))


@pytest.fixture
def device() -> SoftwareAuthenticator:
    return SoftwareAuthenticator(origin=ORIGIN, rp_id=RP_ID)


def enroll(
    rp: RelyingParty, device: SoftwareAuthenticator, fmt: str = "none"
) -> VerifiedCredential:
    started = rp.registration_options(
        user_handle=b"h" * 32, user_name="ana@example.org", display_name="Ana"
    )
    return rp.verify_registration(
        device.create(started.options_json, fmt=fmt),  # type: ignore[arg-type]
        hash_secret(started.challenge),
    )


def assert_login(
    rp: RelyingParty,
    device: SoftwareAuthenticator,
    credential: VerifiedCredential,
    stored_count: int = 0,
    **knobs: object,
) -> int:
    started = rp.authentication_options([(credential.credential_id, credential.transports)])
    assertion = rp.parse_assertion(device.get(started.options_json, **knobs))  # type: ignore[arg-type]
    verified = rp.verify_assertion(
        assertion,
        challenge_hash=hash_secret(started.challenge),
        public_key=credential.public_key,
        sign_count=stored_count,
    )
    return verified.new_sign_count


@pytest.mark.parametrize("fmt", ["none", "packed"])
def test_attestation_formats_verify(
    rp: RelyingParty, device: SoftwareAuthenticator, fmt: str
) -> None:
    credential = enroll(rp, device, fmt)
    assert credential.attestation_format == fmt
    assert credential.credential_id == device.credential_ids()[0]
    assert credential.aaguid == str(device.aaguid)
    assert credential.sign_count == 0
    assert credential.user_verified


def test_attestation_object_is_well_formed(rp: RelyingParty, device: SoftwareAuthenticator) -> None:
    started = rp.registration_options(
        user_handle=b"h" * 32, user_name="ana@example.org", display_name="Ana"
    )
    response = json.loads(device.create(started.options_json, fmt="packed"))
    attestation = cbor2.loads(b64url_decode(response["response"]["attestationObject"]))
    auth_data = attestation["authData"]
    assert auth_data[:32] == hashlib.sha256(RP_ID.encode()).digest()
    assert auth_data[32] & (FLAG_UP | FLAG_UV | FLAG_AT) == FLAG_UP | FLAG_UV | FLAG_AT
    assert auth_data[37:53] == device.aaguid.bytes
    cose = cbor2.loads(auth_data[55 + 32 :])
    assert (cose[1], cose[3], cose[-1]) == (2, -7, 1)  # EC2, ES256, P-256
    assert attestation["attStmt"]["alg"] == -7
    client_data = json.loads(b64url_decode(response["response"]["clientDataJSON"]))
    assert client_data["type"] == "webauthn.create"
    assert b64url_decode(client_data["challenge"]) == started.challenge


def test_tampered_packed_attestation_signature_is_rejected(
    rp: RelyingParty, device: SoftwareAuthenticator
) -> None:
    started = rp.registration_options(
        user_handle=b"h" * 32, user_name="ana@example.org", display_name="Ana"
    )
    response = json.loads(device.create(started.options_json, fmt="packed"))
    attestation = cbor2.loads(b64url_decode(response["response"]["attestationObject"]))
    sig = attestation["attStmt"]["sig"]
    attestation["attStmt"]["sig"] = sig[:-1] + bytes([sig[-1] ^ 1])
    response["response"]["attestationObject"] = b64url(cbor2.dumps(attestation))
    with pytest.raises(ValidationError) as caught:
        rp.verify_registration(json.dumps(response), hash_secret(started.challenge))
    assert caught.value.field == "credential_json"


def test_assertion_verifies_and_counts(rp: RelyingParty, device: SoftwareAuthenticator) -> None:
    credential = enroll(rp, device)
    assert assert_login(rp, device, credential, 0) == 1
    assert assert_login(rp, device, credential, 1) == 2


@pytest.mark.parametrize(
    ("knobs", "reason"),
    [
        (
            {"origin": "https://evil.example"},
            "origin 'https://evil.example' is not an allowed origin",
        ),
        ({"rp_id": "evil.example"}, "RP ID hash does not match RP ID 'keiko.test'"),
        ({"tamper_signature": True}, "invalid signature"),
        (
            {"sign_count": 5, "stored": 5},
            "sign count did not increase (possible cloned authenticator)",
        ),
        ({"challenge": b"\x00" * 64}, "challenge does not match the login ceremony"),
    ],
)
def test_bad_assertions_each_have_their_reason(
    rp: RelyingParty, device: SoftwareAuthenticator, knobs: dict[str, object], reason: str
) -> None:
    credential = enroll(rp, device)
    knobs = dict(knobs)
    stored = int(knobs.pop("stored", 0))  # type: ignore[call-overload]
    with pytest.raises(LoginRejected) as caught:
        assert_login(rp, device, credential, stored, **knobs)
    assert caught.value.reason == reason
    assert caught.value.message == f"login rejected: {reason}"


def test_registration_response_used_for_login_is_invalid(
    rp: RelyingParty, device: SoftwareAuthenticator
) -> None:
    started = rp.registration_options(
        user_handle=b"h" * 32, user_name="ana@example.org", display_name="Ana"
    )
    response = json.loads(device.create(started.options_json))
    response["response"]["authenticatorData"] = b64url(b"\x00" * 37)
    response["response"]["signature"] = b64url(b"\x00")
    with pytest.raises(ValidationError) as caught:
        rp.parse_assertion(json.dumps(response))
    assert caught.value.reason == "not an authentication (webauthn.get) response"


@pytest.mark.parametrize(
    ("raw", "reason_start"),
    [
        ("not json", "is not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"id": "x"}', "malformed registration response"),
    ],
)
def test_malformed_registration_json(rp: RelyingParty, raw: str, reason_start: str) -> None:
    with pytest.raises(ValidationError) as caught:
        rp.verify_registration(raw, "0" * 64)
    assert caught.value.field == "credential_json"
    assert caught.value.reason.startswith(reason_start)


def test_user_verification_can_be_required(device: SoftwareAuthenticator) -> None:
    strict = RelyingParty(
        IdentitySettings(rp_id=RP_ID, allowed_origins=(ORIGIN,), require_user_verification=True)
    )
    device.user_verified = False
    with pytest.raises(ValidationError) as caught:
        enroll(strict, device)
    assert caught.value.reason == "user verification required"


def test_options_carry_the_relying_party(rp: RelyingParty) -> None:
    started = rp.registration_options(
        user_handle=b"h" * 32, user_name="ana@example.org", display_name="Ana"
    )
    options = json.loads(started.options_json)
    assert options["rp"] == {"name": "Keiko", "id": RP_ID}
    assert options["user"]["name"] == "ana@example.org"
    assert {p["alg"] for p in options["pubKeyCredParams"]} == {-8, -7, -257}
    assert b64url_decode(options["challenge"]) == started.challenge
    assert len(started.challenge) >= 32
