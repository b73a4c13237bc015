"""The identity servicer over real gRPC (the kit's host: interceptors, error mapping, auth),
with exactly the status code and message a client gets for each bad input."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import grpc
import pytest

from keiko.authenticator import SoftwareAuthenticator
from services.api.keiko.identity import v1 as pb
from services.identity.service import ClientInfo, IdentityService
from services.identity.servicer import IdentityServicer
from services.identity.settings import IdentitySettings
from services.identity.tests.conftest import ORIGIN, RP_ID
from services.identity.wiring import build_identity_servicer
from services.kit.auth import TokenVerifier
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.grpc.client import stub
from services.kit.grpc.errors import field_violations
from services.kit.grpc.testing import running_server

Stub = pb.IdentityServiceStub


def role(name: str) -> pb.Role:
    return pb.Role.from_string(name)


def new_authenticator() -> SoftwareAuthenticator:
    return SoftwareAuthenticator(origin=ORIGIN, rp_id=RP_ID)


@dataclass
class Harness:
    channel: grpc.aio.Channel
    service: IdentityService
    clock: FixedClock

    def client(self, access_token: str | None = None) -> Stub:
        return stub(Stub, self.channel, access_token=access_token)


@pytest.fixture
async def harness(
    service: IdentityService, verifier: TokenVerifier, clock: FixedClock
) -> AsyncIterator[Harness]:
    servicer = IdentityServicer(
        service, client_info=lambda: ClientInfo(address="127.0.0.1", user_agent="grpc-test")
    )
    async with running_server([servicer], token_verifier=verifier) as channel:
        yield Harness(channel, service, clock)


async def rpc_error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def sign_up(
    client: Stub,
    authenticator: SoftwareAuthenticator,
    email: str = "ana@example.org",
    name: str = "Ana",
) -> pb.FinishRegistrationResponse:
    begun = await client.begin_registration(
        pb.BeginRegistrationRequest(email=email, display_name=name)
    )
    return await client.finish_registration(
        pb.FinishRegistrationRequest(
            registration_id=begun.registration_id,
            credential_json=authenticator.create(begun.options_json, fmt="packed"),
            credential_name="Ana's phone",
            user_agent="Firefox/140",
        )
    )


async def sign_in(
    client: Stub,
    authenticator: SoftwareAuthenticator,
    email: str = "ana@example.org",
    **knobs: object,
) -> pb.FinishLoginResponse:
    begun = await client.begin_login(pb.BeginLoginRequest(email=email))
    return await client.finish_login(
        pb.FinishLoginRequest(
            login_id=begun.login_id,
            credential_json=authenticator.get(begun.options_json, **knobs),  # type: ignore[arg-type]
            user_agent="Safari/18",
        )
    )


# -- the whole journey -----------------------------------------------------------------------


async def test_register_login_me_refresh_sessions_logout(
    harness: Harness, authenticator: SoftwareAuthenticator
) -> None:
    anonymous = harness.client()
    registered = await sign_up(anonymous, authenticator)
    assert registered.user.email == "ana@example.org"
    assert registered.user.roles == [role("LEARNER")]
    assert registered.tokens.access_expires_at == harness.clock.now() + timedelta(minutes=15)

    logged_in = await sign_in(anonymous, authenticator)
    assert logged_in.user.id == registered.user.id
    me_client = harness.client(logged_in.tokens.access_token)
    me = (await me_client.get_me(pb.GetMeRequest())).user
    assert (me.id, me.display_name, me.email) == (registered.user.id, "Ana", "ana@example.org")

    harness.clock.advance(timedelta(minutes=1))
    refreshed = (
        await anonymous.refresh_tokens(
            pb.RefreshTokensRequest(refresh_token=logged_in.tokens.refresh_token)
        )
    ).tokens
    assert refreshed.session_id == logged_in.tokens.session_id
    assert refreshed.refresh_token != logged_in.tokens.refresh_token

    me_client = harness.client(refreshed.access_token)
    sessions = (await me_client.list_sessions(pb.ListSessionsRequest())).sessions
    assert len(sessions) == 2
    current = next(s for s in sessions if s.current)
    assert current.id == refreshed.session_id
    assert current.user_agent == "Safari/18"
    assert current.ip_address == "127.0.0.1"
    assert current.last_used_at == harness.clock.now()

    credentials = (await me_client.list_credentials(pb.ListCredentialsRequest())).credentials
    assert [(c.name, c.aaguid) for c in credentials] == [("Ana's phone", str(authenticator.aaguid))]

    await me_client.logout(pb.LogoutRequest(refresh_token=refreshed.refresh_token))
    error = await rpc_error(me_client.get_me(pb.GetMeRequest()))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "session has been revoked",
    )
    error = await rpc_error(
        anonymous.refresh_tokens(pb.RefreshTokensRequest(refresh_token=refreshed.refresh_token))
    )
    assert (error.code(), error.details()) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "session has been revoked",
    )
    # The registration session is still alive.
    other = harness.client(registered.tokens.access_token)
    assert (await other.get_me(pb.GetMeRequest())).user.id == registered.user.id


async def test_profile_update_and_email_visibility(
    harness: Harness, authenticator: SoftwareAuthenticator
) -> None:
    ana = await sign_up(harness.client(), authenticator)
    bob = await sign_up(
        harness.client(),
        SoftwareAuthenticator(origin=ORIGIN, rp_id=RP_ID),
        "bob@example.org",
        "Bob",
    )
    as_ana = harness.client(ana.tokens.access_token)
    updated = await as_ana.update_profile(
        pb.UpdateProfileRequest(bio="Hola", locale="es-MX", time_zone="America/Lima")
    )
    assert (updated.user.profile.bio, updated.user.display_name) == ("Hola", "Ana")
    seen_by_bob = (
        await harness.client(bob.tokens.access_token).get_user(
            pb.GetUserRequest(user_id=ana.user.id)
        )
    ).user
    # Issue 9: others see the public profile only: the name, and what Ana made public
    # (nothing by default): never her email, roles, bio, locale or time zone.
    assert seen_by_bob.email == ""
    assert (seen_by_bob.id, seen_by_bob.display_name) == (ana.user.id, "Ana")
    assert seen_by_bob.roles == []
    assert seen_by_bob.profile == pb.UserProfile()
    assert not seen_by_bob.human_verified
    chose = await as_ana.update_profile(
        pb.UpdateProfileRequest(
            update_public_fields=True,
            public_fields=[pb.ProfileField(pb.ProfileField.TIME_ZONE)],
        )
    )
    assert chose.user.profile.public_fields == [pb.ProfileField.TIME_ZONE]
    seen_by_bob = (
        await harness.client(bob.tokens.access_token).get_user(
            pb.GetUserRequest(user_id=ana.user.id)
        )
    ).user
    assert seen_by_bob.profile == pb.UserProfile(time_zone="America/Lima")
    assert seen_by_bob.roles == [] and seen_by_bob.email == ""
    mine = (await as_ana.get_me(pb.GetMeRequest())).user
    assert (mine.email, mine.profile.bio, mine.roles) == (
        ana.user.email,
        "Hola",
        [role("LEARNER")],
    )

    error = await rpc_error(as_ana.update_profile(pb.UpdateProfileRequest(avatar_url="ftp://x")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == [("avatar_url", "must be an absolute https:// URL")]

    error = await rpc_error(
        as_ana.set_roles(pb.SetRolesRequest(user_id=ana.user.id, roles=[role("ADMIN")]))
    )
    assert (error.code(), error.details()) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "requires role admin",
    )


async def test_admin_sets_roles(harness: Harness, authenticator: SoftwareAuthenticator) -> None:
    ana = await sign_up(harness.client(), authenticator)
    bob = await sign_up(
        harness.client(),
        SoftwareAuthenticator(origin=ORIGIN, rp_id=RP_ID),
        "bob@example.org",
        "Bob",
    )
    await harness.service.grant_admin("ana@example.org")
    tokens = (
        await harness.client().refresh_tokens(
            pb.RefreshTokensRequest(refresh_token=ana.tokens.refresh_token)
        )
    ).tokens
    as_admin = harness.client(tokens.access_token)
    user = (
        await as_admin.set_roles(
            pb.SetRolesRequest(user_id=bob.user.id, roles=[role("TUTOR"), role("SPACE_OWNER")])
        )
    ).user
    assert user.roles == [role("LEARNER"), role("TUTOR"), role("SPACE_OWNER")]
    assert user.email == "bob@example.org"  # admins see emails
    listed = await as_admin.list_users(pb.ListUsersRequest(role=role("TUTOR")))
    assert [u.id for u in listed.users] == [bob.user.id]
    error = await rpc_error(
        as_admin.set_roles(pb.SetRolesRequest(user_id=bob.user.id, roles=[role("UNSPECIFIED")]))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == [
        ("roles[0]", "must be a known role other than ROLE_UNSPECIFIED")
    ]


async def test_cached_replies_follow_the_viewer_and_every_write(
    harness: Harness, authenticator: SoftwareAuthenticator
) -> None:
    """GetUser and GetMe answer from the identity read caches once warm: a view rendered
    for one caller is never another's, and a role change or a logout shows at once."""
    ana = await sign_up(harness.client(), authenticator)
    bob = await sign_up(
        harness.client(), SoftwareAuthenticator(origin=ORIGIN, rp_id=RP_ID), "bob@example.org"
    )
    as_ana, as_bob = (
        harness.client(ana.tokens.access_token),
        harness.client(bob.tokens.access_token),
    )
    ana_id = pb.GetUserRequest(user_id=ana.user.id)
    for _ in range(2):
        assert (await as_ana.get_user(ana_id)).user.email == "ana@example.org"
        seen_by_bob = (await as_bob.get_user(ana_id)).user
        assert (seen_by_bob.email, seen_by_bob.roles) == ("", [])
    assert (await as_ana.get_user(ana_id)).user.roles == [role("LEARNER")]

    await harness.service.grant_admin("ana@example.org")
    assert (await as_ana.get_user(ana_id)).user.roles == [role("LEARNER"), role("ADMIN")]
    assert (await as_ana.get_me(pb.GetMeRequest())).user.roles == [role("LEARNER"), role("ADMIN")]
    assert (await as_bob.get_user(ana_id)).user.roles == []

    await as_ana.logout(pb.LogoutRequest(session_id=ana.tokens.session_id))
    for call in (as_ana.get_user(ana_id), as_ana.get_me(pb.GetMeRequest())):
        error = await rpc_error(call)
        assert (error.code(), error.details()) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "session has been revoked",
        )


# -- bad input, each with the exact error a client gets --------------------------------------


async def test_malformed_email_is_invalid_argument_with_field_path(harness: Harness) -> None:
    error = await rpc_error(
        harness.client().begin_registration(
            pb.BeginRegistrationRequest(email="ana@@example", display_name="Ana")
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("email: not a valid email address: ")
    ((field, _reason),) = field_violations(error)
    assert field == "email"


async def test_replayed_registration_challenge_is_failed_precondition(
    harness: Harness, authenticator: SoftwareAuthenticator
) -> None:
    client = harness.client()
    begun = await client.begin_registration(
        pb.BeginRegistrationRequest(email="ana@example.org", display_name="Ana")
    )
    request = pb.FinishRegistrationRequest(
        registration_id=begun.registration_id,
        credential_json=authenticator.create(begun.options_json),
    )
    await client.finish_registration(request)
    error = await rpc_error(client.finish_registration(request))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "registration challenge was already used",
    )


async def test_replayed_login_challenge_is_failed_precondition(
    harness: Harness, authenticator: SoftwareAuthenticator
) -> None:
    client = harness.client()
    await sign_up(client, authenticator)
    begun = await client.begin_login(pb.BeginLoginRequest(email="ana@example.org"))
    request = pb.FinishLoginRequest(
        login_id=begun.login_id, credential_json=authenticator.get(begun.options_json)
    )
    await client.finish_login(request)
    error = await rpc_error(client.finish_login(request))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "login challenge was already used",
    )


async def test_expired_login_challenge_is_failed_precondition(
    harness: Harness, authenticator: SoftwareAuthenticator
) -> None:
    client = harness.client()
    await sign_up(client, authenticator)
    begun = await client.begin_login(pb.BeginLoginRequest(email="ana@example.org"))
    harness.clock.advance(timedelta(minutes=6))
    error = await rpc_error(
        client.finish_login(
            pb.FinishLoginRequest(
                login_id=begun.login_id, credential_json=authenticator.get(begun.options_json)
            )
        )
    )
    assert (error.code(), error.details()) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "login challenge expired",
    )


async def test_registration_wrong_origin_is_invalid_argument(
    harness: Harness, authenticator: SoftwareAuthenticator
) -> None:
    client = harness.client()
    begun = await client.begin_registration(
        pb.BeginRegistrationRequest(email="ana@example.org", display_name="Ana")
    )
    error = await rpc_error(
        client.finish_registration(
            pb.FinishRegistrationRequest(
                registration_id=begun.registration_id,
                credential_json=authenticator.create(
                    begun.options_json, origin="https://evil.example"
                ),
            )
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == [
        ("credential_json", "origin 'https://evil.example' is not an allowed origin")
    ]


async def test_login_wrong_origin_is_unauthenticated(
    harness: Harness, authenticator: SoftwareAuthenticator
) -> None:
    await sign_up(harness.client(), authenticator)
    error = await rpc_error(sign_in(harness.client(), authenticator, origin="https://evil.example"))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "login rejected: origin 'https://evil.example' is not an allowed origin",
    )


async def test_login_wrong_rp_id_is_unauthenticated(
    harness: Harness, authenticator: SoftwareAuthenticator
) -> None:
    await sign_up(harness.client(), authenticator)
    error = await rpc_error(sign_in(harness.client(), authenticator, rp_id="evil.example"))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "login rejected: RP ID hash does not match RP ID 'keiko.test'",
    )


async def test_registration_wrong_rp_id_is_invalid_argument(
    harness: Harness, authenticator: SoftwareAuthenticator
) -> None:
    client = harness.client()
    begun = await client.begin_registration(
        pb.BeginRegistrationRequest(email="ana@example.org", display_name="Ana")
    )
    error = await rpc_error(
        client.finish_registration(
            pb.FinishRegistrationRequest(
                registration_id=begun.registration_id,
                credential_json=authenticator.create(begun.options_json, rp_id="evil.example"),
            )
        )
    )
    assert field_violations(error) == [
        ("credential_json", "RP ID hash does not match RP ID 'keiko.test'")
    ]


async def test_tampered_jwt_is_unauthenticated(
    harness: Harness, authenticator: SoftwareAuthenticator
) -> None:
    registered = await sign_up(harness.client(), authenticator)
    header, payload, signature = registered.tokens.access_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = ["admin", "learner"]  # privilege escalation attempt
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    forged = f"{header}.{forged_payload}.{signature}"
    error = await rpc_error(harness.client(forged).get_me(pb.GetMeRequest()))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "invalid token signature",
    )


async def test_expired_jwt_is_unauthenticated(
    harness: Harness, authenticator: SoftwareAuthenticator, settings: IdentitySettings
) -> None:
    registered = await sign_up(harness.client(), authenticator)
    client = harness.client(registered.tokens.access_token)
    await client.get_me(pb.GetMeRequest())
    harness.clock.advance(settings.access_token_ttl + timedelta(seconds=6))  # past the leeway
    error = await rpc_error(client.get_me(pb.GetMeRequest()))
    assert (error.code(), error.details()) == (grpc.StatusCode.UNAUTHENTICATED, "token expired")


async def test_refresh_token_reuse_revokes_the_whole_family(
    harness: Harness, authenticator: SoftwareAuthenticator
) -> None:
    anonymous = harness.client()
    registered = await sign_up(anonymous, authenticator)
    stolen = registered.tokens.refresh_token
    newest = (await anonymous.refresh_tokens(pb.RefreshTokensRequest(refresh_token=stolen))).tokens

    error = await rpc_error(anonymous.refresh_tokens(pb.RefreshTokensRequest(refresh_token=stolen)))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "refresh token reuse detected: the session has been revoked",
    )
    error = await rpc_error(
        anonymous.refresh_tokens(pb.RefreshTokensRequest(refresh_token=newest.refresh_token))
    )
    assert (error.code(), error.details()) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "session has been revoked",
    )
    error = await rpc_error(harness.client(newest.access_token).get_me(pb.GetMeRequest()))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "session has been revoked",
    )


async def test_unknown_user_is_not_found(
    harness: Harness, authenticator: SoftwareAuthenticator
) -> None:
    error = await rpc_error(
        harness.client().begin_login(pb.BeginLoginRequest(email="nobody@example.org"))
    )
    assert (error.code(), error.details()) == (
        grpc.StatusCode.NOT_FOUND,
        "unknown user: no account with this email",
    )
    registered = await sign_up(harness.client(), authenticator)
    error = await rpc_error(
        harness.client(registered.tokens.access_token).get_user(
            pb.GetUserRequest(user_id="3f1c0a52-1111-4222-8333-944444444444")
        )
    )
    assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, "user not found")


async def test_unknown_credential_is_unauthenticated(
    harness: Harness, authenticator: SoftwareAuthenticator
) -> None:
    await sign_up(harness.client(), authenticator)
    stranger = SoftwareAuthenticator(origin=ORIGIN, rp_id=RP_ID)
    begun = await harness.client().begin_registration(
        pb.BeginRegistrationRequest(email="eve@example.org", display_name="Eve")
    )
    stranger.create(begun.options_json)  # never finished: the server does not know the key
    error = await rpc_error(sign_in(harness.client(), stranger, email=""))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "login rejected: unknown credential",
    )


async def test_lockout_after_repeated_failures(
    harness: Harness, authenticator: SoftwareAuthenticator, settings: IdentitySettings
) -> None:
    await sign_up(harness.client(), authenticator)
    for _ in range(settings.lockout_threshold):
        error = await rpc_error(sign_in(harness.client(), authenticator, tamper_signature=True))
        assert (error.code(), error.details()) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "login rejected: invalid signature",
        )
    until = harness.clock.now() + settings.lockout_duration
    error = await rpc_error(sign_in(harness.client(), authenticator))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        f"account locked until {until.isoformat().replace('+00:00', 'Z')} "
        f"after {settings.lockout_threshold} failed logins",
    )


async def test_authenticated_rpcs_need_a_token(harness: Harness) -> None:
    error = await rpc_error(harness.client().get_me(pb.GetMeRequest()))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "missing authorization metadata",
    )


async def test_logout_needs_a_target(
    harness: Harness, authenticator: SoftwareAuthenticator
) -> None:
    registered = await sign_up(harness.client(), authenticator)
    error = await rpc_error(
        harness.client(registered.tokens.access_token).logout(pb.LogoutRequest())
    )
    assert field_violations(error) == [("target", "refresh_token or session_id is required")]


async def test_humanity_rpcs_are_unimplemented_here(
    harness: Harness, authenticator: SoftwareAuthenticator
) -> None:
    registered = await sign_up(harness.client(), authenticator)
    error = await rpc_error(
        harness.client(registered.tokens.access_token).get_humanity_status(
            pb.GetHumanityStatusRequest()
        )
    )
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_composition_root_factory_builds_a_working_servicer(
    migrated_database: Database, clock: FixedClock, signing_key_pem: bytes
) -> None:
    from keiko.settings import Settings
    from services.kit.auth import public_key_pem

    Job = Callable[[asyncio.Event], Awaitable[None]]

    @dataclass
    class Runtime:  # the part of keiko.runtime.ServiceRuntime the factory uses
        settings: Settings
        database: Database
        clock: FixedClock
        jwt_private_key_pem: bytes | None
        jobs: dict[str, Job] = field(default_factory=dict)

        def run_in_background(self, name: str, job: Job) -> None:
            self.jobs[name] = job

    settings = Settings(
        webauthn_rp_id=RP_ID, webauthn_origins=[ORIGIN], access_token_ttl_seconds=60
    )
    verifier = TokenVerifier(public_key_pem(signing_key_pem), clock)
    runtime = Runtime(settings, migrated_database, clock, signing_key_pem)
    servicer = build_identity_servicer(runtime)
    assert servicer.service.settings.access_token_ttl == timedelta(seconds=60)
    # The purge job runs once, then returns as soon as it is told to stop.
    stop = asyncio.Event()
    stop.set()
    await runtime.jobs["identity.purge_expired"](stop)
    async with running_server([servicer], token_verifier=verifier) as channel:
        registered = await sign_up(stub(Stub, channel), new_authenticator())
        me = await stub(Stub, channel, access_token=registered.tokens.access_token).get_me(
            pb.GetMeRequest()
        )
        assert me.user.email == "ana@example.org"
