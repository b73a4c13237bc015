"""The WebAuthn relying party: ceremony options and response verification. No I/O.

All cryptographic verification is done by the `webauthn` package
(`verify_registration_response`, `verify_authentication_response`); this module only
prepares its inputs and turns its failures into exact, distinct domain errors.

Challenges are never stored in clear: the service keeps `hash_secret(challenge)` with the
pending ceremony. At finish time the challenge the client echoes in clientDataJSON is
hashed and compared with the stored hash; only if it matches is it handed to `webauthn`
as the expected challenge.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    bytes_to_base64url,
    generate_challenge,
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    ClientDataType,
    CollectedClientData,
    PublicKeyCredentialDescriptor,
    RegistrationCredential,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from services.identity.domain import secret_matches
from services.identity.settings import IdentitySettings
from services.kit.errors import Unauthenticated, ValidationError

SUPPORTED_ALGORITHMS = [
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
]
CREDENTIAL_FIELD = "credential_json"


class LoginRejected(Unauthenticated):
    """A login assertion failed verification. Counts towards the account lockout."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"login rejected: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class Challenge:
    """A fresh ceremony: the options to send to the client and the challenge to remember."""

    challenge: bytes
    options_json: str


@dataclass(frozen=True)
class VerifiedCredential:
    credential_id: bytes
    public_key: bytes
    sign_count: int
    aaguid: str
    transports: tuple[str, ...]
    backed_up: bool
    attestation_format: str
    user_verified: bool


@dataclass(frozen=True)
class ParsedAssertion:
    """An assertion decoded enough to find its credential (nothing verified yet)."""

    credential: AuthenticationCredential
    client_data: CollectedClientData

    @property
    def credential_id(self) -> bytes:
        return self.credential.raw_id

    @property
    def user_handle(self) -> bytes | None:
        return self.credential.response.user_handle


@dataclass(frozen=True)
class VerifiedAssertion:
    new_sign_count: int
    backed_up: bool
    user_verified: bool


class RelyingParty:
    def __init__(self, settings: IdentitySettings) -> None:
        self.settings = settings

    # -- options --------------------------------------------------------------------------

    def registration_options(
        self,
        *,
        user_handle: bytes,
        user_name: str,
        display_name: str,
        exclude_credentials: list[tuple[bytes, tuple[str, ...]]] | None = None,
    ) -> Challenge:
        challenge = generate_challenge()
        uv = (
            UserVerificationRequirement.REQUIRED
            if self.settings.require_user_verification
            else UserVerificationRequirement.PREFERRED
        )
        options = generate_registration_options(
            rp_id=self.settings.rp_id,
            rp_name=self.settings.rp_name,
            user_id=user_handle,
            user_name=user_name,
            user_display_name=display_name,
            challenge=challenge,
            timeout=self.settings.ceremony_timeout_ms,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.PREFERRED, user_verification=uv
            ),
            exclude_credentials=[_descriptor(c, t) for c, t in exclude_credentials or []],
            supported_pub_key_algs=SUPPORTED_ALGORITHMS,
        )
        return Challenge(challenge=challenge, options_json=options_to_json(options))

    def authentication_options(
        self, allow_credentials: list[tuple[bytes, tuple[str, ...]]] | None = None
    ) -> Challenge:
        """Options for navigator.credentials.get(); an empty allow list means discoverable."""
        challenge = generate_challenge()
        options = generate_authentication_options(
            rp_id=self.settings.rp_id,
            challenge=challenge,
            timeout=self.settings.ceremony_timeout_ms,
            allow_credentials=[_descriptor(c, t) for c, t in allow_credentials or []],
            user_verification=UserVerificationRequirement.REQUIRED
            if self.settings.require_user_verification
            else UserVerificationRequirement.PREFERRED,
        )
        return Challenge(challenge=challenge, options_json=options_to_json(options))

    # -- registration ---------------------------------------------------------------------

    def verify_registration(self, credential_json: str, challenge_hash: str) -> VerifiedCredential:
        """Verify an attestation against the ceremony whose challenge hashes to
        `challenge_hash`. Every failure is a ValidationError on `credential_json`."""
        try:
            credential = parse_registration_credential_json(_json_object(credential_json))
            client_data = parse_client_data_json(credential.response.client_data_json)
        except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
            raise ValidationError(
                CREDENTIAL_FIELD, f"malformed registration response: {exc}"
            ) from exc
        if client_data.type != ClientDataType.WEBAUTHN_CREATE:
            raise ValidationError(CREDENTIAL_FIELD, "not a registration (webauthn.create) response")
        problem = self._client_data_problem(client_data, challenge_hash, "registration")
        if problem:
            raise ValidationError(CREDENTIAL_FIELD, problem)
        try:
            verified = verify_registration_response(
                credential=credential,
                expected_challenge=client_data.challenge,
                expected_rp_id=self.settings.rp_id,
                expected_origin=list(self.settings.allowed_origins),
                require_user_verification=self.settings.require_user_verification,
                supported_pub_key_algs=SUPPORTED_ALGORITHMS,
            )
        except WebAuthnException as exc:
            raise ValidationError(CREDENTIAL_FIELD, self._reason(str(exc))) from exc
        return VerifiedCredential(
            credential_id=verified.credential_id,
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            aaguid=verified.aaguid,
            transports=_transports(credential),
            backed_up=verified.credential_backed_up,
            attestation_format=str(getattr(verified.fmt, "value", verified.fmt)),
            user_verified=verified.user_verified,
        )

    # -- authentication -------------------------------------------------------------------

    @staticmethod
    def parse_assertion(credential_json: str) -> ParsedAssertion:
        try:
            credential = parse_authentication_credential_json(_json_object(credential_json))
            client_data = parse_client_data_json(credential.response.client_data_json)
        except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
            raise ValidationError(
                CREDENTIAL_FIELD, f"malformed authentication response: {exc}"
            ) from exc
        if client_data.type != ClientDataType.WEBAUTHN_GET:
            raise ValidationError(CREDENTIAL_FIELD, "not an authentication (webauthn.get) response")
        return ParsedAssertion(credential=credential, client_data=client_data)

    def verify_assertion(
        self,
        assertion: ParsedAssertion,
        *,
        challenge_hash: str,
        public_key: bytes,
        sign_count: int,
    ) -> VerifiedAssertion:
        """Verify the assertion's signature with the stored public key. Every failure is a
        LoginRejected (UNAUTHENTICATED) with a reason naming exactly what was wrong."""
        problem = self._client_data_problem(assertion.client_data, challenge_hash, "login")
        if problem:
            raise LoginRejected(problem)
        try:
            verified = verify_authentication_response(
                credential=assertion.credential,
                expected_challenge=assertion.client_data.challenge,
                expected_rp_id=self.settings.rp_id,
                expected_origin=list(self.settings.allowed_origins),
                credential_public_key=public_key,
                credential_current_sign_count=sign_count,
                require_user_verification=self.settings.require_user_verification,
            )
        except WebAuthnException as exc:
            raise LoginRejected(self._reason(str(exc))) from exc
        return VerifiedAssertion(
            new_sign_count=verified.new_sign_count,
            backed_up=verified.credential_backed_up,
            user_verified=verified.user_verified,
        )

    # -- helpers --------------------------------------------------------------------------

    def _client_data_problem(
        self, client_data: CollectedClientData, challenge_hash: str, ceremony: str
    ) -> str | None:
        """Checks done before handing over to `webauthn`, so that each failure gets its own
        exact reason (webauthn checks them again)."""
        if not secret_matches(client_data.challenge, challenge_hash):
            return f"challenge does not match the {ceremony} ceremony"
        if client_data.origin not in self.settings.allowed_origins:
            return f"origin {client_data.origin!r} is not an allowed origin"
        return None

    def _reason(self, message: str) -> str:
        """Exact reasons for the webauthn failures a client can cause."""
        if message.startswith("Unexpected RP ID hash"):
            return f"RP ID hash does not match RP ID {self.settings.rp_id!r}"
        if message.startswith("Could not verify authentication signature"):
            return "invalid signature"
        if "sign count" in message:
            return "sign count did not increase (possible cloned authenticator)"
        if message.startswith("User verification is required"):
            return "user verification required"
        if message.startswith("User presence was required") or message.startswith(
            "User was not present"
        ):
            return "user presence required"
        return message


def _json_object(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, TypeError) as exc:
        raise ValidationError(CREDENTIAL_FIELD, "is not valid JSON") from exc
    if not isinstance(value, dict):
        raise ValidationError(CREDENTIAL_FIELD, "must be a JSON object")
    return value


def _transports(credential: RegistrationCredential) -> tuple[str, ...]:
    return tuple(str(t.value) for t in credential.response.transports or [])


def _descriptor(credential_id: bytes, transports: tuple[str, ...]) -> PublicKeyCredentialDescriptor:
    known = []
    for transport in transports:
        try:
            known.append(AuthenticatorTransport(transport))
        except ValueError:
            continue
    return PublicKeyCredentialDescriptor(id=credential_id, transports=known or None)


def credential_id_text(credential_id: bytes) -> str:
    return bytes_to_base64url(credential_id)
