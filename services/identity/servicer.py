"""The keiko.identity.v1.IdentityService gRPC servicer: decode, authorize, call, encode.

Public RPCs (no access token): the four WebAuthn ceremony steps and RefreshTokens. Every
other RPC is authenticated by the host's interceptor; on top of that the identity service
refuses an access token whose session was revoked or expired (logout is immediate in the
process that made it and within 1 s in identity's other processes: services.kit.fresh);
other services learn of it from `identity.session_revoked`.

The proof-of-humanity RPCs (EnrollHumanity, VerifyHumanity, RecoverSigningKey,
GetHumanityStatus) are served by :class:`HumanityIdentityServicer` (what
`wiring.build_identity_servicer` returns) through `services.identity.humanity_service`; the plain
`IdentityServicer` does not override them, so the host answers UNIMPLEMENTED.
"""

from __future__ import annotations

from collections.abc import Callable

import betterproto

from services.api.keiko.identity import v1 as pb
from services.identity.domain import ProfileUpdate, User
from services.identity.humanity_service import HumanityService
from services.identity.messages import (
    credential_to_pb,
    humanity_status_to_pb,
    public_fields_from_pb,
    role_from_pb,
    sample_from_pb,
    sees_everything,
    self_principal,
    session_to_pb,
    tokens_to_pb,
    user_to_pb,
)
from services.identity.service import ClientInfo, IdentityService
from services.kit.auth import Principal, current_principal
from services.kit.errors import ValidationError
from services.kit.fresh import RenderedFrom

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
        role = None if request.role == pb.Role.UNSPECIFIED else role_from_pb(request.role, "role")
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
                public=public_fields_from_pb(request.public_fields)
                if request.update_public_fields
                else None,
            ),
        )
        return pb.UpdateProfileResponse(user=user_to_pb(user, caller))

    async def set_roles(self, set_roles_request: pb.SetRolesRequest) -> pb.SetRolesResponse:
        caller = await self._caller()
        roles = [
            str(role_from_pb(role, f"roles[{index}]"))
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
        principal = self_principal(signed_in.user, signed_in.tokens)
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
        principal = self_principal(signed_in.user, signed_in.tokens)
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
