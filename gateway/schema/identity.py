"""Identity over GraphQL: passwordless (WebAuthn) sign-up and login, tokens, the caller.

Every resolver calls the identity service over gRPC; none imports its Python code.
WebAuthn options and credentials travel as JSON strings exactly as the browser APIs
produce and consume them (PublicKeyCredential.parse*OptionsFromJSON / toJSON()).
"""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry

from gateway.context import Info
from gateway.errors import ClientError, rpc
from services.api.keiko.identity import v1 as pb


@strawberry.enum(description="What a user may do on Keiko.")
class Role(enum.Enum):
    LEARNER = "LEARNER"
    TUTOR = "TUTOR"
    SPACE_OWNER = "SPACE_OWNER"
    COMMUNITY_ADMIN = "COMMUNITY_ADMIN"
    ADMIN = "ADMIN"


def role_from_pb(role: pb.Role) -> Role:
    return Role[str(pb.Role(role).name).removeprefix("ROLE_")]


@strawberry.enum(
    description=(
        "A profile fact you may show others (issue 9): others see your id, display name "
        "and these only."
    )
)
class ProfileField(enum.Enum):
    BIO = "BIO"
    AVATAR_URL = "AVATAR_URL"
    LOCALE = "LOCALE"
    TIME_ZONE = "TIME_ZONE"


@strawberry.type
class UserProfile:
    bio: str
    avatar_url: str
    locale: str
    time_zone: str
    public_fields: list[ProfileField] = strawberry.field(
        description=(
            "What you show others besides your display name (yours only; empty for others)."
        )
    )


@strawberry.type
class User:
    id: strawberry.ID
    email: str | None = strawberry.field(
        description="Visible to the user themself and to admins only."
    )
    display_name: str
    roles: list[Role]
    profile: UserProfile
    human_verified: bool
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def from_pb(user: pb.User) -> User:
        profile = user.profile
        return User(
            id=strawberry.ID(user.id),
            email=user.email or None,
            display_name=user.display_name,
            roles=[role_from_pb(r) for r in user.roles],
            profile=UserProfile(
                bio=profile.bio,
                avatar_url=profile.avatar_url,
                locale=profile.locale,
                time_zone=profile.time_zone,
                public_fields=[
                    ProfileField[str(pb.ProfileField(f).name)] for f in profile.public_fields
                ],
            ),
            human_verified=user.human_verified,
            created_at=user.created_at,
            updated_at=user.updated_at,
        )


@strawberry.type
class TokenPair:
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    session_id: strawberry.ID

    @staticmethod
    def from_pb(tokens: pb.TokenPair) -> TokenPair:
        return TokenPair(
            access_token=tokens.access_token,
            access_expires_at=tokens.access_expires_at,
            refresh_token=tokens.refresh_token,
            refresh_expires_at=tokens.refresh_expires_at,
            session_id=strawberry.ID(tokens.session_id),
        )


@strawberry.type
class AuthPayload:
    user: User
    tokens: TokenPair


@strawberry.type
class WebAuthnCeremony:
    """A pending registration or login: pass `id` back with the authenticator's answer."""

    id: strawberry.ID
    options_json: str = strawberry.field(
        description="PublicKeyCredentialCreationOptions / RequestOptions as WebAuthn JSON."
    )


@strawberry.type
class Session:
    id: strawberry.ID
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime
    user_agent: str
    current: bool

    @staticmethod
    def from_pb(session: pb.Session) -> Session:
        return Session(
            id=strawberry.ID(session.id),
            created_at=session.created_at,
            last_used_at=session.last_used_at,
            expires_at=session.expires_at,
            user_agent=session.user_agent,
            current=session.current,
        )


@strawberry.input
class UpdateProfileInput:
    display_name: str | None = None
    bio: str | None = None
    avatar_url: str | None = None
    locale: str | None = None
    time_zone: str | None = None
    public_fields: list[ProfileField] | None = strawberry.field(
        default=None,
        description="Replaces what others see besides your display name; null keeps it.",
    )


def identity(info: Info) -> pb.IdentityServiceStub:
    return info.context.client(pb.IdentityServiceStub)  # type: ignore[no-any-return]


@strawberry.type
class IdentityQuery:
    @strawberry.field(description="The signed-in user.")
    async def me(self, info: Info) -> User:
        info.context.require_token()
        response = await rpc(identity(info).get_me(pb.GetMeRequest()))
        return User.from_pb(response.user)

    @strawberry.field(description="A user's public fields.")
    async def user(self, info: Info, id: strawberry.ID) -> User:
        info.context.require_token()
        response = await rpc(identity(info).get_user(pb.GetUserRequest(user_id=str(id))))
        return User.from_pb(response.user)

    @strawberry.field(description="The signed-in user's active sessions.")
    async def sessions(self, info: Info, first: int = 50, after: str = "") -> list[Session]:
        info.context.require_token()
        response = await rpc(
            identity(info).list_sessions(pb.ListSessionsRequest(page_size=first, page_token=after))
        )
        return [Session.from_pb(s) for s in response.sessions]


@strawberry.type
class IdentityMutation:
    @strawberry.mutation(description="Start a passwordless sign-up (WebAuthn registration).")
    async def begin_registration(
        self, info: Info, email: str, display_name: str
    ) -> WebAuthnCeremony:
        response = await rpc(
            identity(info).begin_registration(
                pb.BeginRegistrationRequest(email=email, display_name=display_name)
            )
        )
        return WebAuthnCeremony(
            id=strawberry.ID(response.registration_id), options_json=response.options_json
        )

    @strawberry.mutation(description="Finish sign-up with the authenticator's attestation.")
    async def finish_registration(
        self,
        info: Info,
        registration_id: strawberry.ID,
        credential_json: str,
        credential_name: str = "",
    ) -> AuthPayload:
        response = await rpc(
            identity(info).finish_registration(
                pb.FinishRegistrationRequest(
                    registration_id=str(registration_id),
                    credential_json=credential_json,
                    credential_name=credential_name,
                    user_agent=info.context.user_agent,
                )
            )
        )
        return AuthPayload(
            user=User.from_pb(response.user), tokens=TokenPair.from_pb(response.tokens)
        )

    @strawberry.mutation(description="Start a passwordless login; omit email for passkeys.")
    async def begin_login(self, info: Info, email: str = "") -> WebAuthnCeremony:
        response = await rpc(identity(info).begin_login(pb.BeginLoginRequest(email=email)))
        return WebAuthnCeremony(
            id=strawberry.ID(response.login_id), options_json=response.options_json
        )

    @strawberry.mutation(description="Finish login with the authenticator's assertion.")
    async def finish_login(
        self, info: Info, login_id: strawberry.ID, credential_json: str
    ) -> AuthPayload:
        response = await rpc(
            identity(info).finish_login(
                pb.FinishLoginRequest(
                    login_id=str(login_id),
                    credential_json=credential_json,
                    user_agent=info.context.user_agent,
                )
            )
        )
        return AuthPayload(
            user=User.from_pb(response.user), tokens=TokenPair.from_pb(response.tokens)
        )

    @strawberry.mutation(description="Exchange a refresh token for a new pair (rotation).")
    async def refresh_tokens(self, info: Info, refresh_token: str) -> TokenPair:
        response = await rpc(
            identity(info).refresh_tokens(pb.RefreshTokensRequest(refresh_token=refresh_token))
        )
        return TokenPair.from_pb(response.tokens)

    @strawberry.mutation(description="End a session, by its refresh token or its id.")
    async def logout(
        self, info: Info, refresh_token: str | None = None, session_id: strawberry.ID | None = None
    ) -> bool:
        if (refresh_token is None) == (session_id is None):
            raise ClientError(
                "give exactly one of refreshToken or sessionId",
                "BAD_USER_INPUT",
                field="refreshToken",
            )
        request = (
            pb.LogoutRequest(refresh_token=refresh_token)
            if refresh_token is not None
            else pb.LogoutRequest(session_id=str(session_id))
        )
        await rpc(identity(info).logout(request))
        return True

    @strawberry.mutation(description="Revoke one of the caller's sessions.")
    async def revoke_session(self, info: Info, session_id: strawberry.ID) -> bool:
        info.context.require_token()
        await rpc(
            identity(info).revoke_session(pb.RevokeSessionRequest(session_id=str(session_id)))
        )
        return True

    @strawberry.mutation(description="Update the caller's display name and profile.")
    async def update_profile(self, info: Info, input: UpdateProfileInput) -> User:
        info.context.require_token()
        response = await rpc(
            identity(info).update_profile(
                pb.UpdateProfileRequest(
                    display_name=input.display_name,
                    bio=input.bio,
                    avatar_url=input.avatar_url,
                    locale=input.locale,
                    time_zone=input.time_zone,
                    public_fields=[
                        pb.ProfileField.from_string(f.value) for f in input.public_fields or []
                    ],
                    update_public_fields=input.public_fields is not None,
                )
            )
        )
        return User.from_pb(response.user)
