"""The keiko.identity.v1.IdentityService gRPC servicer: decode, authorize, call, encode.

Public RPCs (no access token): the four WebAuthn ceremony steps and RefreshTokens. Every
other RPC is authenticated by the host's interceptor; on top of that the identity service
refuses an access token whose session was revoked or expired (logout is immediate in the
process that made it and within 1 s in identity's other processes: services.kit.fresh);
other services learn of it from `identity.session_revoked`.

The proof-of-humanity RPCs (EnrollHumanity, VerifyHumanity, RecoverSigningKey,
GetHumanityStatus) are served by :class:`HumanityIdentityServicer` (what
`build_identity_servicer` returns) through `services.identity.humanity_service`; the plain
`IdentityServicer` does not override them, so the host answers UNIMPLEMENTED.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import betterproto
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.api.keiko.identity import v1 as pb
from services.identity import humanity as humanity_pipeline
from services.identity.domain import (
    PUBLIC_FIELDS,
    Credential,
    ProfileUpdate,
    Role,
    Session,
    TokenPair,
    User,
)
from services.identity.humanity import IndexKey
from services.identity.humanity_service import (
    BiometricSample,
    HumanityService,
    HumanityStatus,
    TranslatorRegistrar,
)
from services.identity.humanity_storage import outbox as identity_outbox
from services.identity.relying_party import credential_id_text
from services.identity.service import ClientInfo, IdentityService
from services.identity.settings import IdentitySettings
from services.kit.auth import Principal, TokenIssuer, current_principal
from services.kit.clock import Clock
from services.kit.db import Database
from services.kit.errors import ValidationError
from services.kit.events import EventBus
from services.kit.events.outbox import OutboxRelay
from services.kit.fresh import RenderedFrom
from services.kit.logging import get_logger

log = get_logger(__name__)

# The kit's Role and the proto enum share member names (LEARNER, TUTOR, ...).
_TO_PB_ROLE: dict[Role, pb.Role] = {role: pb.Role.from_string(role.name) for role in Role}
_FROM_PB_ROLE: dict[int, Role] = {int(v): k for k, v in _TO_PB_ROLE.items()}

ClientInfoProvider = Callable[[], ClientInfo]


def _no_client_info() -> ClientInfo:
    return ClientInfo()


class IdentityServicer(pb.IdentityServiceBase):
    public_methods = frozenset(
        {"BeginRegistration", "FinishRegistration", "BeginLogin", "FinishLogin", "RefreshTokens"}
    )

    def __init__(
        self, service: IdentityService, *, client_info: ClientInfoProvider | None = None
    ) -> None:
        """`client_info` returns what the transport knows about the current caller (its
        address, e.g. from the peer or a trusted x-forwarded-for, and user agent); it keys
        the per-caller rate limit. Without it only the per-email limit applies."""
        self.service = service
        self._client_info = client_info or _no_client_info
        # GetUser's and GetMe's replies, per user and view (everything, or the public
        # profile), while the users cache hands out the same user: building the
        # betterproto messages cost more than the rest of a cached read.
        self._user_replies: RenderedFrom[tuple[str, bool], User, pb.GetUserResponse] = (
            RenderedFrom()
        )
        self._me_replies: RenderedFrom[str, User, pb.GetMeResponse] = RenderedFrom()

    async def _caller(self) -> Principal:
        principal = current_principal()
        await self.service.require_active_session(principal)
        return principal

    def _client(self, user_agent: str = "") -> ClientInfo:
        info = self._client_info()
        return ClientInfo(address=info.address, user_agent=user_agent or info.user_agent)

    # -- users ----------------------------------------------------------------------------

    async def get_user(self, get_user_request: pb.GetUserRequest) -> pb.GetUserResponse:
        # The session check and the read share one connection (the hot path).
        caller = current_principal()
        user = await self.service.get_user(caller, get_user_request.user_id, check_session=True)
        return self._user_replies.get(
            (user.id, sees_everything(user, caller)),
            user,
            lambda: pb.GetUserResponse(user=user_to_pb(user, caller)),
        )

    async def get_me(self, get_me_request: pb.GetMeRequest) -> pb.GetMeResponse:
        caller = current_principal()
        user = await self.service.get_user(caller, caller.user_id, check_session=True)
        return self._me_replies.get(
            user.id, user, lambda: pb.GetMeResponse(user=user_to_pb(user, caller))
        )

    async def list_users(self, list_users_request: pb.ListUsersRequest) -> pb.ListUsersResponse:
        caller = await self._caller()
        request = list_users_request
        role = None if request.role == pb.Role.UNSPECIFIED else _role_from_pb(request.role, "role")
        page = await self.service.list_users(
            caller,
            query=request.query,
            role=role,
            requested_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListUsersResponse(
            users=[user_to_pb(u, caller) for u in page.items],
            next_page_token=page.next_page_token,
        )

    async def update_profile(
        self, update_profile_request: pb.UpdateProfileRequest
    ) -> pb.UpdateProfileResponse:
        caller = await self._caller()
        request = update_profile_request
        user = await self.service.update_profile(
            caller,
            request.user_id,
            ProfileUpdate(
                display_name=request.display_name,
                bio=request.bio,
                avatar_url=request.avatar_url,
                locale=request.locale,
                time_zone=request.time_zone,
                public=_public_fields_from_pb(request.public_fields)
                if request.update_public_fields
                else None,
            ),
        )
        return pb.UpdateProfileResponse(user=user_to_pb(user, caller))

    async def set_roles(self, set_roles_request: pb.SetRolesRequest) -> pb.SetRolesResponse:
        caller = await self._caller()
        roles = [
            str(_role_from_pb(role, f"roles[{index}]"))
            for index, role in enumerate(set_roles_request.roles)
        ]
        user = await self.service.set_roles(caller, set_roles_request.user_id, roles)
        return pb.SetRolesResponse(user=user_to_pb(user, caller))

    # -- registration and login (public) --------------------------------------------------

    async def begin_registration(
        self, begin_registration_request: pb.BeginRegistrationRequest
    ) -> pb.BeginRegistrationResponse:
        request = begin_registration_request
        started = await self.service.begin_registration(
            request.email, request.display_name, self._client()
        )
        return pb.BeginRegistrationResponse(
            registration_id=started.ceremony_id, options_json=started.options_json
        )

    async def finish_registration(
        self, finish_registration_request: pb.FinishRegistrationRequest
    ) -> pb.FinishRegistrationResponse:
        request = finish_registration_request
        signed_in = await self.service.finish_registration(
            request.registration_id,
            request.credential_json,
            request.credential_name,
            self._client(request.user_agent),
        )
        principal = _self_principal(signed_in.user, signed_in.tokens)
        return pb.FinishRegistrationResponse(
            user=user_to_pb(signed_in.user, principal), tokens=tokens_to_pb(signed_in.tokens)
        )

    async def begin_login(self, begin_login_request: pb.BeginLoginRequest) -> pb.BeginLoginResponse:
        started = await self.service.begin_login(begin_login_request.email, self._client())
        return pb.BeginLoginResponse(
            login_id=started.ceremony_id, options_json=started.options_json
        )

    async def finish_login(
        self, finish_login_request: pb.FinishLoginRequest
    ) -> pb.FinishLoginResponse:
        request = finish_login_request
        signed_in = await self.service.finish_login(
            request.login_id, request.credential_json, self._client(request.user_agent)
        )
        principal = _self_principal(signed_in.user, signed_in.tokens)
        return pb.FinishLoginResponse(
            user=user_to_pb(signed_in.user, principal), tokens=tokens_to_pb(signed_in.tokens)
        )

    async def refresh_tokens(
        self, refresh_tokens_request: pb.RefreshTokensRequest
    ) -> pb.RefreshTokensResponse:
        tokens = await self.service.refresh(refresh_tokens_request.refresh_token)
        return pb.RefreshTokensResponse(tokens=tokens_to_pb(tokens))

    # -- sessions -------------------------------------------------------------------------

    async def logout(self, logout_request: pb.LogoutRequest) -> pb.LogoutResponse:
        caller = await self._caller()
        which, value = betterproto.which_one_of(logout_request, "target")
        if which == "refresh_token" and value:
            await self.service.logout(caller, refresh_token=str(value))
        elif which == "session_id" and value:
            await self.service.logout(caller, session_id=str(value))
        else:
            raise ValidationError("target", "refresh_token or session_id is required")
        return pb.LogoutResponse()

    async def list_sessions(
        self, list_sessions_request: pb.ListSessionsRequest
    ) -> pb.ListSessionsResponse:
        caller = await self._caller()
        page = await self.service.list_sessions(
            caller, list_sessions_request.page_size, list_sessions_request.page_token
        )
        return pb.ListSessionsResponse(
            sessions=[session_to_pb(s, current=s.id == caller.session_id) for s in page.items],
            next_page_token=page.next_page_token,
        )

    async def revoke_session(
        self, revoke_session_request: pb.RevokeSessionRequest
    ) -> pb.RevokeSessionResponse:
        caller = await self._caller()
        await self.service.revoke_session(caller, revoke_session_request.session_id)
        return pb.RevokeSessionResponse()

    # -- passkeys -------------------------------------------------------------------------

    async def begin_add_credential(
        self, begin_add_credential_request: pb.BeginAddCredentialRequest
    ) -> pb.BeginAddCredentialResponse:
        caller = await self._caller()
        started = await self.service.begin_add_credential(caller, self._client())
        return pb.BeginAddCredentialResponse(
            registration_id=started.ceremony_id, options_json=started.options_json
        )

    async def finish_add_credential(
        self, finish_add_credential_request: pb.FinishAddCredentialRequest
    ) -> pb.FinishAddCredentialResponse:
        caller = await self._caller()
        request = finish_add_credential_request
        credential = await self.service.finish_add_credential(
            caller,
            request.registration_id,
            request.credential_json,
            request.credential_name,
            self._client(),
        )
        return pb.FinishAddCredentialResponse(credential=credential_to_pb(credential))

    async def list_credentials(
        self, list_credentials_request: pb.ListCredentialsRequest
    ) -> pb.ListCredentialsResponse:
        caller = await self._caller()
        page = await self.service.list_credentials(
            caller, list_credentials_request.page_size, list_credentials_request.page_token
        )
        return pb.ListCredentialsResponse(
            credentials=[credential_to_pb(c) for c in page.items],
            next_page_token=page.next_page_token,
        )

    async def remove_credential(
        self, remove_credential_request: pb.RemoveCredentialRequest
    ) -> pb.RemoveCredentialResponse:
        caller = await self._caller()
        await self.service.remove_credential(caller, remove_credential_request.credential_id)
        return pb.RemoveCredentialResponse()


class HumanityIdentityServicer(IdentityServicer):
    """The identity servicer with the proof-of-humanity RPCs (EnrollHumanity,
    VerifyHumanity, RecoverSigningKey, GetHumanityStatus) served by `humanity`."""

    def __init__(
        self,
        service: IdentityService,
        humanity: HumanityService,
        *,
        client_info: ClientInfoProvider | None = None,
    ) -> None:
        super().__init__(service, client_info=client_info)
        self.humanity = humanity
        # The users proof of humanity verifies leave the identity read caches at once.
        humanity.on_users_written(service.forget_written)

    # -- proof of humanity ----------------------------------------------------------------

    async def enroll_humanity(
        self, enroll_humanity_request: pb.EnrollHumanityRequest
    ) -> pb.EnrollHumanityResponse:
        caller = await self._caller()
        request = enroll_humanity_request
        enrolled = await self.humanity.enroll(
            caller, sample_from_pb(request.sample), request.request_id
        )
        return pb.EnrollHumanityResponse(
            humanity_commitment=enrolled.humanity_commitment,
            ed25519_public_key=enrolled.ed25519_public_key,
            helper_data_id=enrolled.helper_data_id,
            registry_tx_hash=enrolled.registry_tx_hash,
        )

    async def verify_humanity(
        self, verify_humanity_request: pb.VerifyHumanityRequest
    ) -> pb.VerifyHumanityResponse:
        caller = await self._caller()
        verified = await self.humanity.verify(
            caller, sample_from_pb(verify_humanity_request.sample)
        )
        return pb.VerifyHumanityResponse(
            matched=verified.matched,
            ed25519_public_key=verified.ed25519_public_key,
            iris_distance=verified.iris_distance,
        )

    async def recover_signing_key(
        self, recover_signing_key_request: pb.RecoverSigningKeyRequest
    ) -> pb.RecoverSigningKeyResponse:
        caller = await self._caller()
        public_key = await self.humanity.recover(
            caller, sample_from_pb(recover_signing_key_request.sample)
        )
        return pb.RecoverSigningKeyResponse(ed25519_public_key=public_key)

    async def get_humanity_status(
        self, get_humanity_status_request: pb.GetHumanityStatusRequest
    ) -> pb.GetHumanityStatusResponse:
        caller = await self._caller()
        status = await self.humanity.status(caller, get_humanity_status_request.user_id)
        return pb.GetHumanityStatusResponse(status=humanity_status_to_pb(status))


class PlatformSettings(Protocol):
    """The `KEIKO_*` settings the identity service reads (keiko.settings.Settings)."""

    @property
    def webauthn_rp_id(self) -> str: ...
    @property
    def webauthn_rp_name(self) -> str: ...
    @property
    def webauthn_origins(self) -> Sequence[str]: ...
    @property
    def access_token_ttl_seconds(self) -> int: ...
    @property
    def refresh_token_ttl_days(self) -> int: ...
    @property
    def gateway_target(self) -> str: ...
    @property
    def chain_rpc_url(self) -> str: ...
    @property
    def chain_translator_target(self) -> str: ...
    @property
    def humanity_warm_up(self) -> bool: ...
    @property
    def humanity_index_key_file(self) -> Path | None: ...


class IdentityRuntime(Protocol):
    """What the identity service takes from the process (keiko.runtime.ServiceRuntime)."""

    @property
    def settings(self) -> PlatformSettings: ...
    @property
    def database(self) -> Database: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def jwt_private_key_pem(self) -> bytes | None: ...
    def run_in_background(
        self, name: str, job: Callable[[asyncio.Event], Coroutine[Any, Any, None]]
    ) -> None: ...


PURGE_INTERVAL_S = 3600.0


def identity_settings_from(runtime: IdentityRuntime) -> IdentitySettings:
    """The identity settings out of the platform's `KEIKO_*` configuration."""
    settings = runtime.settings
    return IdentitySettings(
        rp_id=settings.webauthn_rp_id,
        rp_name=settings.webauthn_rp_name,
        allowed_origins=tuple(settings.webauthn_origins),
        access_token_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
        refresh_token_ttl=timedelta(days=settings.refresh_token_ttl_days),
    )


def build_identity_servicer(
    runtime: IdentityRuntime, *, client_info: ClientInfoProvider | None = None
) -> IdentityServicer:
    """Composition-root factory (keiko.registry): the servicer on the runtime's database,
    clock and JWT signing key."""
    if runtime.jwt_private_key_pem is None:
        raise RuntimeError("the identity service needs the JWT signing key (Ed25519 PEM)")
    settings = identity_settings_from(runtime)
    issuer = TokenIssuer(runtime.jwt_private_key_pem, runtime.clock, settings.access_token_ttl)
    # The identity outbox (identity.session_revoked, identity.humanity_verified).
    event_bus: EventBus | None = getattr(runtime, "event_bus", None)
    relay = None
    if event_bus is not None:
        relay = OutboxRelay(runtime.database, identity_outbox, event_bus, clock=runtime.clock)
        runtime.run_in_background("identity.outbox", relay.run)
    else:
        log.warning("identity.events_disabled", reason="the runtime has no event bus")
    service = IdentityService(
        runtime.database,
        settings,
        runtime.clock,
        issuer,
        on_commit=relay.notify if relay is not None else None,
    )
    runtime.run_in_background("identity.purge_expired", purge_job(service))
    humanity = None if relay is None else build_humanity_service(runtime, issuer, relay)
    if humanity is None:
        return IdentityServicer(service, client_info=client_info)
    return HumanityIdentityServicer(service, humanity, client_info=client_info)


# The identity service's own principal towards other services (the chain translator's
# RegisterHumanity accepts trusted callers only: role "service").
SERVICE_PRINCIPAL = Principal(user_id="keiko-identity", roles=frozenset({"service"}))
REGISTRATION_INTERVAL_S = 30.0


def build_humanity_service(
    runtime: IdentityRuntime,
    issuer: TokenIssuer,
    relay: OutboxRelay,
) -> HumanityService:
    """Proof of humanity on the runtime: the service (its events go out through the
    identity outbox `relay`), the pipeline warm-up (`settings.humanity_warm_up`) and, when
    the platform has a chain (`settings.chain_rpc_url`), the registrar (the chain
    translator's RegisterHumanity at `settings.chain_translator_target`, default the
    platform's gRPC target) and the registration retry job. Without a chain, enrollments
    stay pending until a process with one retries them. A runtime without an event bus gets
    no humanity service (the RPCs answer UNIMPLEMENTED)."""
    registrar: TranslatorRegistrar | None = None
    settings = runtime.settings
    if settings.chain_rpc_url:
        target = settings.chain_translator_target or settings.gateway_target
        registrar = TranslatorRegistrar(target, lambda: issuer.issue(SERVICE_PRINCIPAL).token)
    humanity = HumanityService(
        runtime.database,
        runtime.clock,
        registrar=registrar,
        on_commit=relay.notify,
        index_key=humanity_index_key(settings.humanity_index_key_file, runtime.jwt_private_key_pem),
    )
    if settings.humanity_warm_up:
        runtime.run_in_background("identity.humanity_warm_up", warm_up_job(humanity.index_key))
    if registrar is not None:
        runtime.run_in_background(
            "identity.humanity_registration", registration_job(humanity, registrar)
        )
    return humanity


def humanity_index_key(key_file: Path | None, jwt_private_key_pem: bytes | None) -> IndexKey:
    """The duplicate-check index key: the file's bytes (at least 32 random bytes) when one
    is configured; otherwise derived from the identity signing key (HKDF with its own
    label), so the replicas of a deployment agree without more configuration. A new key
    leaves earlier enrollments without usable tags: they are then decoded by every
    duplicate check (correct, slower) until re-enrolled."""
    if key_file is not None:
        return IndexKey(key_file.read_bytes())
    if jwt_private_key_pem is None:
        raise RuntimeError("the humanity index needs a key file or the identity signing key")
    secret = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"keiko/humanity-index-key/v1"
    ).derive(jwt_private_key_pem)
    return IndexKey(secret)


def warm_up_job(index_key: IndexKey) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    """Build the BCH codes, compile the decoder and tabulate the index key's iris tags
    once, off the event loop (seconds)."""

    async def run(stop: asyncio.Event) -> None:
        try:
            await asyncio.to_thread(humanity_pipeline.warm_up, index_key)
        except Exception:
            log.exception("identity.humanity_warm_up_failed")
        await stop.wait()

    return run


def registration_job(
    humanity: HumanityService,
    registrar: TranslatorRegistrar,
    interval_s: float = REGISTRATION_INTERVAL_S,
) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    """Background job: retry pending on-chain registrations that are due, every
    `interval_s`, until `stop` is set."""

    async def run(stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    await humanity.register_due()
                except Exception:
                    log.exception("identity.humanity_registration_failed")
                try:
                    await asyncio.wait_for(stop.wait(), timeout=interval_s)
                except TimeoutError:
                    continue
        finally:
            await registrar.close()

    return run


def purge_job(
    service: IdentityService, interval_s: float = PURGE_INTERVAL_S
) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    """Background job: delete expired ceremonies, refresh tokens, old failures and idle
    rate-limit buckets every `interval_s`, until `stop` is set. Any replica may run it."""

    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                removed = await service.purge_expired()
                if removed:
                    log.info("identity.purged", rows=removed)
            except Exception:
                log.exception("identity.purge_failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
            except TimeoutError:
                continue

    return run


# -- encoding -------------------------------------------------------------------------------


def _role_from_pb(role: int, field_path: str) -> Role:
    found = _FROM_PB_ROLE.get(int(role))
    if found is None:
        raise ValidationError(field_path, "must be a known role other than ROLE_UNSPECIFIED")
    return found


def _self_principal(user: User, tokens: TokenPair) -> Principal:
    return Principal(
        user_id=user.id,
        roles=frozenset(str(r) for r in user.roles),
        session_id=tokens.session_id,
    )


_PROFILE_FIELDS = {name: pb.ProfileField.from_string(name.upper()) for name in PUBLIC_FIELDS}
_PROFILE_FIELD_NAMES = {int(v): k for k, v in _PROFILE_FIELDS.items()}


def _public_fields_from_pb(values: list[pb.ProfileField]) -> frozenset[str]:
    names = set()
    for i, value in enumerate(values):
        name = _PROFILE_FIELD_NAMES.get(int(value))
        if name is None:
            raise ValidationError(f"public_fields[{i}]", "must be a known profile field")
        names.add(name)
    return frozenset(names)


def sees_everything(user: User, viewer: Principal) -> bool:
    """The user themself and admins see the whole user; anyone else its public profile."""
    return viewer.user_id == user.id or viewer.is_admin


def user_to_pb(user: User, viewer: Principal) -> pb.User:
    """The user themself and admins see everything; anyone else the public profile only:
    the id, the display name, whether a verified human (public: one human, one vote) and
    what the user made public (issue 9)."""
    if sees_everything(user, viewer):
        return pb.User(
            id=user.id,
            email=user.email,
            display_name=user.display_name,
            roles=sorted((_TO_PB_ROLE[r] for r in user.roles), key=int),
            profile=pb.UserProfile(
                bio=user.profile.bio,
                avatar_url=user.profile.avatar_url,
                locale=user.profile.locale,
                time_zone=user.profile.time_zone,
                public_fields=sorted((_PROFILE_FIELDS[f] for f in user.profile.public), key=int),
            ),
            human_verified=user.human_verified,
            created_at=user.created_at,
            updated_at=user.updated_at,
        )
    public = user.profile.public
    return pb.User(
        id=user.id,
        display_name=user.display_name,
        profile=pb.UserProfile(
            bio=user.profile.bio if "bio" in public else "",
            avatar_url=user.profile.avatar_url if "avatar_url" in public else "",
            locale=user.profile.locale if "locale" in public else "",
            time_zone=user.profile.time_zone if "time_zone" in public else "",
        ),
        human_verified=user.human_verified,
    )


_GENOME_FORMATS: dict[int, str] = {
    int(pb.GenomeFormat.VCF): "vcf",
    int(pb.GenomeFormat.FASTA): "fasta",
}


def sample_from_pb(sample: pb.BiometricSample) -> BiometricSample:
    """Unknown or unspecified formats become "" (refused on `sample.genome_format`)."""
    return BiometricSample(
        iris_image=bytes(sample.iris_image),
        genome=bytes(sample.genome),
        genome_format=_GENOME_FORMATS.get(int(sample.genome_format), ""),
    )


def humanity_status_to_pb(status: HumanityStatus) -> pb.HumanityStatus:
    message = pb.HumanityStatus(
        user_id=status.user_id,
        enrolled=status.enrolled,
        humanity_commitment=status.humanity_commitment,
        ed25519_public_key=status.ed25519_public_key,
        registry_tx_hash=status.registry_tx_hash,
        registered_on_chain=status.registered_on_chain,
    )
    if status.enrolled_at is not None:
        message.enrolled_at = status.enrolled_at
    return message


def tokens_to_pb(tokens: TokenPair) -> pb.TokenPair:
    return pb.TokenPair(
        access_token=tokens.access_token,
        access_expires_at=tokens.access_expires_at,
        refresh_token=tokens.refresh_token,
        refresh_expires_at=tokens.refresh_expires_at,
        session_id=tokens.session_id,
    )


def session_to_pb(session: Session, *, current: bool) -> pb.Session:
    return pb.Session(
        id=session.id,
        user_id=session.user_id,
        created_at=session.created_at,
        last_used_at=session.last_used_at,
        expires_at=session.expires_at,
        user_agent=session.user_agent,
        ip_address=session.ip_address,
        current=current,
    )


def credential_to_pb(credential: Credential) -> pb.Credential:
    message = pb.Credential(
        id=credential.id,
        credential_id=credential_id_text(credential.credential_id),
        name=credential.name,
        aaguid=credential.aaguid,
        transports=list(credential.transports),
        backed_up=credential.backed_up,
        created_at=credential.created_at,
    )
    if credential.last_used_at is not None:
        message.last_used_at = credential.last_used_at
    return message
