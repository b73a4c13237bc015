"""The identity use cases on a real database (SQLite, or PostgreSQL with KEIKO_TEST_BACKEND=real),
driven by the software authenticator through real WebAuthn verification."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from keiko.authenticator import SoftwareAuthenticator, b64url, b64url_decode
from services.identity.domain import ProfileUpdate, Role, hash_secret
from services.identity.relying_party import LoginRejected
from services.identity.service import ClientInfo, IdentityService
from services.identity.settings import IdentitySettings, RateLimit
from services.identity.tests.conftest import CLIENT, ORIGIN, RP_ID, login, register
from services.kit.auth import Principal, TokenIssuer, TokenVerifier
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
    ValidationError,
)


def principal_of(signed_in_tokens_session: str, user_id: str, *roles: str) -> Principal:
    return Principal(
        user_id=user_id,
        roles=frozenset(roles or ("learner",)),
        session_id=signed_in_tokens_session,
    )


# -- the happy path --------------------------------------------------------------------------


async def test_register_login_refresh_logout_round_trip(
    service: IdentityService,
    authenticator: SoftwareAuthenticator,
    verifier: TokenVerifier,
    clock: FixedClock,
) -> None:
    registered = await register(service, authenticator, " Ana@Example.ORG ", "  Ana   Pérez ")
    user = registered.user
    assert user.email == "ana@example.org"
    assert user.display_name == "Ana Pérez"
    assert user.roles == frozenset({Role.LEARNER})
    assert not user.human_verified

    # The access token is a real EdDSA JWT naming the user, its roles and the session.
    principal = verifier.verify(registered.tokens.access_token)
    assert principal.user_id == user.id
    assert principal.roles == frozenset({"learner"})
    assert principal.session_id == registered.tokens.session_id
    assert registered.tokens.access_expires_at == clock.now() + timedelta(minutes=15)
    assert registered.tokens.refresh_expires_at == clock.now() + timedelta(days=30)

    clock.advance(timedelta(minutes=1))
    logged_in = await login(service, authenticator)
    assert logged_in.user.id == user.id
    assert logged_in.tokens.session_id != registered.tokens.session_id

    clock.advance(timedelta(minutes=1))
    rotated = await service.refresh(logged_in.tokens.refresh_token)
    assert rotated.session_id == logged_in.tokens.session_id
    assert rotated.refresh_token != logged_in.tokens.refresh_token
    assert verifier.verify(rotated.access_token).user_id == user.id

    me = principal_of(rotated.session_id, user.id)
    page = await service.list_sessions(me, 0, "")
    assert {s.id for s in page.items} == {
        registered.tokens.session_id,
        logged_in.tokens.session_id,
    }
    current = next(s for s in page.items if s.id == rotated.session_id)
    assert current.user_agent == CLIENT.user_agent
    assert current.ip_address == CLIENT.address
    assert current.last_used_at == clock.now()

    await service.logout(me, refresh_token=rotated.refresh_token)
    with pytest.raises(Unauthenticated, match=r"^session has been revoked$"):
        await service.refresh(rotated.refresh_token)
    with pytest.raises(Unauthenticated, match=r"^session has been revoked$"):
        await service.require_active_session(me)
    remaining = await service.list_sessions(me, 0, "")
    assert [s.id for s in remaining.items] == [registered.tokens.session_id]


async def test_packed_self_attestation_is_verified_and_stored(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    registered = await register(service, authenticator, fmt="packed")
    me = principal_of(registered.tokens.session_id, registered.user.id)
    (credential,) = (await service.list_credentials(me, 0, "")).items
    assert credential.attestation_format == "packed"
    assert credential.aaguid == str(authenticator.aaguid)
    assert credential.transports == ("internal", "hybrid")
    assert credential.name == "Passkey"
    assert credential.credential_id == authenticator.credential_ids()[0]


async def test_discoverable_login_without_email(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    registered = await register(service, authenticator)
    started = await service.begin_login("", CLIENT)
    assert '"allowCredentials": []' in started.options_json
    signed_in = await service.finish_login(
        started.ceremony_id, authenticator.get(started.options_json), CLIENT
    )
    assert signed_in.user.id == registered.user.id


async def test_sign_count_is_stored_and_must_increase(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    await register(service, authenticator)
    await login(service, authenticator)  # count 1
    await login(service, authenticator)  # count 2
    with pytest.raises(
        LoginRejected,
        match=r"^login rejected: sign count did not increase \(possible cloned authenticator\)$",
    ):
        await login(service, authenticator, sign_count=2)


# -- registration bad input ------------------------------------------------------------------


async def test_malformed_email_is_invalid_argument_on_email(service: IdentityService) -> None:
    with pytest.raises(ValidationError) as caught:
        await service.begin_registration("ana@@example", "Ana", CLIENT)
    assert caught.value.field == "email"
    assert caught.value.message.startswith("email: not a valid email address: ")


async def test_blank_display_name_is_invalid_argument(service: IdentityService) -> None:
    with pytest.raises(ValidationError) as caught:
        await service.begin_registration("ana@example.org", "   ", CLIENT)
    assert (caught.value.field, caught.value.reason) == ("display_name", "is required")


async def test_email_already_registered_is_already_exists(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    await register(service, authenticator)
    with pytest.raises(AlreadyExists, match=r"^an account with this email already exists$"):
        await service.begin_registration("ANA@example.org", "Ana 2", CLIENT)


async def test_two_pending_registrations_for_one_email_only_one_wins(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    first = await service.begin_registration("ana@example.org", "Ana", CLIENT)
    second = await service.begin_registration("ana@example.org", "Ana", CLIENT)
    await service.finish_registration(
        first.ceremony_id, authenticator.create(first.options_json), "", CLIENT
    )
    with pytest.raises(AlreadyExists, match=r"^an account with this email already exists$"):
        await service.finish_registration(
            second.ceremony_id, authenticator.create(second.options_json), "", CLIENT
        )


async def test_replayed_registration_challenge_is_failed_precondition(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    started = await service.begin_registration("ana@example.org", "Ana", CLIENT)
    response = authenticator.create(started.options_json)
    await service.finish_registration(started.ceremony_id, response, "", CLIENT)
    with pytest.raises(FailedPrecondition, match=r"^registration challenge was already used$"):
        await service.finish_registration(started.ceremony_id, response, "", CLIENT)


async def test_expired_registration_challenge_is_failed_precondition(
    service: IdentityService, authenticator: SoftwareAuthenticator, clock: FixedClock
) -> None:
    started = await service.begin_registration("ana@example.org", "Ana", CLIENT)
    clock.advance(timedelta(minutes=5))
    with pytest.raises(FailedPrecondition, match=r"^registration challenge expired$"):
        await service.finish_registration(
            started.ceremony_id, authenticator.create(started.options_json), "", CLIENT
        )


async def test_response_to_another_challenge_is_rejected(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    """An attestation captured for one ceremony, replayed into a fresh one."""
    old = await service.begin_registration("ana@example.org", "Ana", CLIENT)
    captured = authenticator.create(old.options_json)
    fresh = await service.begin_registration("ana@example.org", "Ana", CLIENT)
    with pytest.raises(ValidationError) as caught:
        await service.finish_registration(fresh.ceremony_id, captured, "", CLIENT)
    assert caught.value.field == "credential_json"
    assert caught.value.reason == "challenge does not match the registration ceremony"


async def test_registration_from_wrong_origin_is_invalid_argument(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    started = await service.begin_registration("ana@example.org", "Ana", CLIENT)
    response = authenticator.create(started.options_json, origin="https://evil.example")
    with pytest.raises(ValidationError) as caught:
        await service.finish_registration(started.ceremony_id, response, "", CLIENT)
    assert caught.value.field == "credential_json"
    assert caught.value.reason == "origin 'https://evil.example' is not an allowed origin"


async def test_registration_for_wrong_rp_id_is_invalid_argument(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    started = await service.begin_registration("ana@example.org", "Ana", CLIENT)
    response = authenticator.create(started.options_json, rp_id="evil.example")
    with pytest.raises(ValidationError) as caught:
        await service.finish_registration(started.ceremony_id, response, "", CLIENT)
    assert caught.value.field == "credential_json"
    assert caught.value.reason == f"RP ID hash does not match RP ID {RP_ID!r}"


async def test_unknown_registration_id_is_invalid_argument(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    with pytest.raises(ValidationError) as caught:
        await service.finish_registration("3f1c0a52-1111-4222-8333-944444444444", "{}", "", CLIENT)
    assert (caught.value.field, caught.value.reason) == (
        "registration_id",
        "unknown registration ceremony",
    )


async def test_malformed_credential_json_is_invalid_argument(service: IdentityService) -> None:
    started = await service.begin_registration("ana@example.org", "Ana", CLIENT)
    with pytest.raises(ValidationError) as caught:
        await service.finish_registration(started.ceremony_id, "not json", "", CLIENT)
    assert (caught.value.field, caught.value.reason) == ("credential_json", "is not valid JSON")


# -- login bad input -------------------------------------------------------------------------


async def test_login_unknown_user_is_not_found(service: IdentityService) -> None:
    with pytest.raises(NotFound, match=r"^unknown user: no account with this email$"):
        await service.begin_login("nobody@example.org", CLIENT)


async def test_login_malformed_email_is_invalid_argument(service: IdentityService) -> None:
    with pytest.raises(ValidationError) as caught:
        await service.begin_login("not-an-email", CLIENT)
    assert caught.value.field == "email"


async def test_login_replayed_challenge_is_failed_precondition(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    await register(service, authenticator)
    started = await service.begin_login("ana@example.org", CLIENT)
    response = authenticator.get(started.options_json)
    await service.finish_login(started.ceremony_id, response, CLIENT)
    with pytest.raises(FailedPrecondition, match=r"^login challenge was already used$"):
        await service.finish_login(started.ceremony_id, response, CLIENT)


async def test_login_expired_challenge_is_failed_precondition(
    service: IdentityService, authenticator: SoftwareAuthenticator, clock: FixedClock
) -> None:
    await register(service, authenticator)
    started = await service.begin_login("ana@example.org", CLIENT)
    clock.advance(timedelta(minutes=5, seconds=1))
    with pytest.raises(FailedPrecondition, match=r"^login challenge expired$"):
        await service.finish_login(
            started.ceremony_id, authenticator.get(started.options_json), CLIENT
        )


async def test_login_wrong_origin_is_unauthenticated(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    await register(service, authenticator)
    with pytest.raises(
        LoginRejected,
        match=r"^login rejected: origin 'https://evil.example' is not an allowed origin$",
    ):
        await login(service, authenticator, origin="https://evil.example")


async def test_login_wrong_rp_id_is_unauthenticated(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    await register(service, authenticator)
    with pytest.raises(
        LoginRejected, match=r"^login rejected: RP ID hash does not match RP ID 'keiko.test'$"
    ):
        await login(service, authenticator, rp_id="evil.example")


async def test_login_tampered_signature_is_unauthenticated(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    await register(service, authenticator)
    with pytest.raises(LoginRejected, match=r"^login rejected: invalid signature$"):
        await login(service, authenticator, tamper_signature=True)


async def test_login_with_unknown_credential_is_unauthenticated(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    await register(service, authenticator)
    stranger = SoftwareAuthenticator(origin=ORIGIN, rp_id=RP_ID)
    started = await service.begin_registration("eve@example.org", "Eve", CLIENT)
    stranger.create(started.options_json)  # a key the server never saw
    login_started = await service.begin_login("", CLIENT)
    with pytest.raises(LoginRejected, match=r"^login rejected: unknown credential$"):
        await service.finish_login(
            login_started.ceremony_id, stranger.get(login_started.options_json), CLIENT
        )


async def test_login_with_another_users_credential_is_unauthenticated(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    await register(service, authenticator, "ana@example.org")
    other = SoftwareAuthenticator(origin=ORIGIN, rp_id=RP_ID)
    await register(service, other, "bob@example.org", "Bob")
    started = await service.begin_login("ana@example.org", CLIENT)
    response = other.get(started.options_json, credential_id=other.credential_ids()[0])
    with pytest.raises(
        LoginRejected, match=r"^login rejected: credential is not allowed for this login$"
    ):
        await service.finish_login(started.ceremony_id, response, CLIENT)


# -- lockout and rate limit ------------------------------------------------------------------


async def test_lockout_after_threshold_failures_then_unlock(
    service: IdentityService,
    authenticator: SoftwareAuthenticator,
    clock: FixedClock,
    settings: IdentitySettings,
) -> None:
    await register(service, authenticator)
    for _ in range(settings.lockout_threshold):
        with pytest.raises(LoginRejected, match=r"^login rejected: invalid signature$"):
            await login(service, authenticator, tamper_signature=True)
    locked_until = clock.now() + settings.lockout_duration
    expected = (
        f"account locked until {locked_until.isoformat().replace('+00:00', 'Z')} "
        f"after {settings.lockout_threshold} failed logins"
    )
    # Even a valid assertion is refused while locked, at begin and at finish.
    with pytest.raises(FailedPrecondition) as caught:
        await service.begin_login("ana@example.org", CLIENT)
    assert caught.value.message == expected
    started = await service.begin_login("", CLIENT)
    with pytest.raises(FailedPrecondition) as caught:
        await service.finish_login(
            started.ceremony_id, authenticator.get(started.options_json), CLIENT
        )
    assert caught.value.message == expected

    clock.advance(settings.lockout_duration)
    signed_in = await login(service, authenticator)
    assert signed_in.user.locked_until is None
    # Success cleared the failure count: one new failure does not lock again.
    with pytest.raises(LoginRejected):
        await login(service, authenticator, tamper_signature=True)
    await login(service, authenticator)


async def test_failures_outside_the_window_do_not_lock(
    service: IdentityService,
    authenticator: SoftwareAuthenticator,
    clock: FixedClock,
    settings: IdentitySettings,
) -> None:
    await register(service, authenticator)
    for _ in range(settings.lockout_threshold - 1):
        with pytest.raises(LoginRejected):
            await login(service, authenticator, tamper_signature=True)
    clock.advance(settings.lockout_window + timedelta(seconds=1))
    with pytest.raises(LoginRejected):
        await login(service, authenticator, tamper_signature=True)
    await login(service, authenticator)


async def test_ceremony_rate_limit_per_caller_is_resource_exhausted(
    migrated_database: Database,
    settings: IdentitySettings,
    clock: FixedClock,
    issuer: TokenIssuer,
) -> None:
    tight = IdentitySettings(
        rp_id=settings.rp_id,
        allowed_origins=settings.allowed_origins,
        ceremony_rate_limit=RateLimit(capacity=3, refill_per_second=0.5),
    )
    service = IdentityService(migrated_database, tight, clock, issuer)
    caller = ClientInfo(address="198.51.100.9")
    for _ in range(3):
        await service.begin_login("", caller)
    with pytest.raises(RateLimited, match=r"^too many attempts; retry in 2 s$"):
        await service.begin_login("", caller)
    # Another caller has its own bucket; a second replica (same database) shares them.
    await service.begin_login("", ClientInfo(address="198.51.100.10"))
    replica = IdentityService(migrated_database, tight, clock, issuer)
    with pytest.raises(RateLimited):
        await replica.begin_login("", caller)
    clock.advance(timedelta(seconds=2))
    await replica.begin_login("", caller)


async def test_rate_limit_per_email_across_callers(
    migrated_database: Database,
    settings: IdentitySettings,
    clock: FixedClock,
    issuer: TokenIssuer,
) -> None:
    tight = IdentitySettings(
        rp_id=settings.rp_id,
        allowed_origins=settings.allowed_origins,
        ceremony_rate_limit=RateLimit(capacity=2, refill_per_second=0.1),
    )
    service = IdentityService(migrated_database, tight, clock, issuer)
    for n in range(2):
        await service.begin_registration(
            "ana@example.org", "Ana", ClientInfo(address=f"10.0.0.{n}")
        )
    with pytest.raises(RateLimited):
        await service.begin_registration("ana@example.org", "Ana", ClientInfo(address="10.0.0.9"))


# -- refresh tokens --------------------------------------------------------------------------


async def test_refresh_token_reuse_revokes_the_whole_family(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    registered = await register(service, authenticator)
    first = registered.tokens.refresh_token
    second = (await service.refresh(first)).refresh_token
    third = (await service.refresh(second)).refresh_token

    # The stolen first token comes back: the whole session is revoked...
    with pytest.raises(
        Unauthenticated, match=r"^refresh token reuse detected: the session has been revoked$"
    ):
        await service.refresh(first)
    # ...so the legitimate latest token is dead too, and so is the session's access.
    with pytest.raises(Unauthenticated, match=r"^session has been revoked$"):
        await service.refresh(third)
    me = principal_of(registered.tokens.session_id, registered.user.id)
    with pytest.raises(Unauthenticated, match=r"^session has been revoked$"):
        await service.require_active_session(me)
    # Other sessions of the user are unaffected.
    other = await login(service, authenticator)
    await service.refresh(other.tokens.refresh_token)


async def test_unknown_refresh_token_is_unauthenticated(service: IdentityService) -> None:
    with pytest.raises(Unauthenticated, match=r"^unknown refresh token$"):
        await service.refresh("not-a-token-we-issued")


async def test_expired_refresh_token_is_unauthenticated(
    service: IdentityService,
    authenticator: SoftwareAuthenticator,
    clock: FixedClock,
    settings: IdentitySettings,
) -> None:
    registered = await register(service, authenticator)
    clock.advance(settings.refresh_token_ttl)
    with pytest.raises(Unauthenticated, match=r"^refresh token expired$"):
        await service.refresh(registered.tokens.refresh_token)
    # Presenting it again is still "expired", not reuse: an expired token is never retired.
    with pytest.raises(Unauthenticated, match=r"^refresh token expired$"):
        await service.refresh(registered.tokens.refresh_token)


async def test_reuse_of_an_expired_retired_token_still_revokes(
    service: IdentityService,
    authenticator: SoftwareAuthenticator,
    clock: FixedClock,
    settings: IdentitySettings,
) -> None:
    registered = await register(service, authenticator)
    clock.advance(settings.refresh_token_ttl - timedelta(days=1))
    newest = await service.refresh(registered.tokens.refresh_token)
    clock.advance(timedelta(days=2))  # the first token has expired, the session has not
    with pytest.raises(Unauthenticated, match=r"^refresh token reuse detected"):
        await service.refresh(registered.tokens.refresh_token)
    with pytest.raises(Unauthenticated, match=r"^session has been revoked$"):
        await service.refresh(newest.refresh_token)


async def test_refresh_tokens_and_challenges_are_stored_hashed(
    service: IdentityService, authenticator: SoftwareAuthenticator, migrated_database: Database
) -> None:
    from sqlalchemy import select

    from services.identity.storage import ceremonies, refresh_tokens

    registered = await register(service, authenticator)
    started = await service.begin_login("ana@example.org", CLIENT)
    async with migrated_database.session() as s:
        hashes = set((await s.execute(select(refresh_tokens.c.token_hash))).scalars())
        stored = (await s.execute(select(ceremonies.c.challenge_hash))).scalars().all()
    assert registered.tokens.refresh_token not in hashes
    assert hash_secret(registered.tokens.refresh_token) in hashes
    challenge = b64url_decode(json.loads(started.options_json)["challenge"])
    assert hash_secret(challenge) in stored
    assert all(len(value) == 64 for value in stored)


async def test_login_with_a_forged_user_handle_is_unauthenticated(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    await register(service, authenticator)
    started = await service.begin_login("", CLIENT)
    response = authenticator.get(started.options_json, user_handle=b"someone else" * 2)
    with pytest.raises(
        LoginRejected, match=r"^login rejected: user handle does not match the credential$"
    ):
        await service.finish_login(started.ceremony_id, response, CLIENT)


# -- sessions --------------------------------------------------------------------------------


async def test_revoke_one_session_keeps_the_others(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    registered = await register(service, authenticator)
    phone = await login(service, authenticator)
    me = principal_of(registered.tokens.session_id, registered.user.id)
    await service.revoke_session(me, phone.tokens.session_id)
    with pytest.raises(Unauthenticated, match=r"^session has been revoked$"):
        await service.refresh(phone.tokens.refresh_token)
    await service.refresh(registered.tokens.refresh_token)


async def test_cannot_revoke_someone_elses_session(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    ana = await register(service, authenticator, "ana@example.org")
    bob = await register(
        service, SoftwareAuthenticator(origin=ORIGIN, rp_id=RP_ID), "bob@example.org", "Bob"
    )
    as_bob = principal_of(bob.tokens.session_id, bob.user.id)
    with pytest.raises(NotFound, match=r"^session not found$"):
        await service.revoke_session(as_bob, ana.tokens.session_id)
    with pytest.raises(NotFound, match=r"^session not found$"):
        await service.logout(as_bob, refresh_token=ana.tokens.refresh_token)


async def test_session_listing_pages(
    service: IdentityService, authenticator: SoftwareAuthenticator, clock: FixedClock
) -> None:
    registered = await register(service, authenticator)
    for _ in range(4):
        clock.advance(timedelta(seconds=1))
        await login(service, authenticator)
    me = principal_of(registered.tokens.session_id, registered.user.id)
    first = await service.list_sessions(me, 3, "")
    assert len(first.items) == 3 and first.next_page_token
    second = await service.list_sessions(me, 3, first.next_page_token)
    assert len(second.items) == 2 and not second.next_page_token
    assert {s.id for s in first.items}.isdisjoint({s.id for s in second.items})
    with pytest.raises(ValidationError) as caught:
        await service.list_sessions(me, 3, "garbage!")
    assert caught.value.field == "page_token"


# -- users, profiles, roles ------------------------------------------------------------------


async def test_update_profile_validates_each_field(
    service: IdentityService, authenticator: SoftwareAuthenticator, clock: FixedClock
) -> None:
    registered = await register(service, authenticator)
    me = principal_of(registered.tokens.session_id, registered.user.id)
    clock.advance(timedelta(hours=1))
    user = await service.update_profile(
        me,
        "",
        ProfileUpdate(
            bio="Linear algebra fan",
            avatar_url="https://cdn.keiko.test/a.png",
            locale="es-MX",
            time_zone="America/Mexico_City",
        ),
    )
    assert user.profile.locale == "es-MX"
    assert user.display_name == "Ana"
    assert user.updated_at == clock.now()
    assert (await service.get_user(me, user.id)).profile.bio == "Linear algebra fan"

    for update, field in [
        (ProfileUpdate(avatar_url="javascript:alert(1)"), "avatar_url"),
        (ProfileUpdate(locale="not a locale"), "locale"),
        (ProfileUpdate(time_zone="Mars/Olympus"), "time_zone"),
        (ProfileUpdate(display_name=""), "display_name"),
        (ProfileUpdate(bio="x" * 2001), "bio"),
    ]:
        with pytest.raises(ValidationError) as caught:
            await service.update_profile(me, "", update)
        assert caught.value.field == field


async def test_only_admins_edit_others_list_users_and_set_roles(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    ana = await register(service, authenticator, "ana@example.org")
    bob = await register(
        service, SoftwareAuthenticator(origin=ORIGIN, rp_id=RP_ID), "bob@example.org", "Bob"
    )
    as_bob = principal_of(bob.tokens.session_id, bob.user.id)
    with pytest.raises(PermissionDenied):
        await service.update_profile(as_bob, ana.user.id, ProfileUpdate(bio="hacked"))
    with pytest.raises(PermissionDenied, match=r"^requires role admin$"):
        await service.set_roles(as_bob, bob.user.id, ["admin"])
    with pytest.raises(PermissionDenied):
        await service.list_users(as_bob, query="", role=None, requested_size=0, page_token="")

    admin = principal_of(ana.tokens.session_id, ana.user.id, "learner", "admin")
    updated = await service.set_roles(admin, bob.user.id, ["tutor"])
    assert updated.roles == frozenset({Role.LEARNER, Role.TUTOR})
    with pytest.raises(ValidationError) as caught:
        await service.set_roles(admin, bob.user.id, ["tutor", "wizard"])
    assert caught.value.field == "roles[1]"
    with pytest.raises(NotFound, match=r"^user not found$"):
        await service.set_roles(admin, "3f1c0a52-1111-4222-8333-944444444444", ["tutor"])

    tutors = await service.list_users(
        admin, query="", role=Role.TUTOR, requested_size=0, page_token=""
    )
    assert [u.id for u in tutors.items] == [bob.user.id]
    found = await service.list_users(
        admin, query="ANA@", role=None, requested_size=0, page_token=""
    )
    assert [u.id for u in found.items] == [ana.user.id]
    # New roles reach the next access token.
    rotated = await service.refresh(bob.tokens.refresh_token)
    assert rotated.access_token


async def test_get_unknown_user_is_not_found(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    ana = await register(service, authenticator)
    me = principal_of(ana.tokens.session_id, ana.user.id)
    with pytest.raises(NotFound, match=r"^user not found$"):
        await service.get_user(me, "3f1c0a52-1111-4222-8333-944444444444")
    with pytest.raises(NotFound, match=r"^user not found$"):
        await service.get_user(me, "not-a-uuid")


async def test_human_verified_flag(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    ana = await register(service, authenticator)
    me = principal_of(ana.tokens.session_id, ana.user.id)
    await service.set_human_verified(ana.user.id)
    assert (await service.get_user(me, ana.user.id)).human_verified


# -- credentials -----------------------------------------------------------------------------


async def test_add_list_and_remove_passkeys(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    ana = await register(service, authenticator)
    me = principal_of(ana.tokens.session_id, ana.user.id)
    (only,) = (await service.list_credentials(me, 0, "")).items
    with pytest.raises(
        FailedPrecondition,
        match=r"^cannot remove the last passkey: the account would become unreachable$",
    ):
        await service.remove_credential(me, only.id)

    laptop = SoftwareAuthenticator(origin=ORIGIN, rp_id=RP_ID)
    started = await service.begin_add_credential(me, CLIENT)
    assert only.credential_id.hex() not in started.options_json  # sanity: base64url, not hex
    added = await service.finish_add_credential(
        me, started.ceremony_id, laptop.create(started.options_json, fmt="packed"), "Laptop", CLIENT
    )
    assert added.name == "Laptop"
    # The new passkey logs in.
    signed_in = await login(service, laptop)
    assert signed_in.user.id == ana.user.id

    await service.remove_credential(me, only.id)
    with pytest.raises(LoginRejected, match=r"^login rejected: unknown credential$"):
        started_login = await service.begin_login("", CLIENT)
        await service.finish_login(
            started_login.ceremony_id,
            authenticator.get(started_login.options_json),
            CLIENT,
        )


async def test_add_credential_ceremony_belongs_to_its_user(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    ana = await register(service, authenticator, "ana@example.org")
    bob = await register(
        service, SoftwareAuthenticator(origin=ORIGIN, rp_id=RP_ID), "bob@example.org", "Bob"
    )
    as_ana = principal_of(ana.tokens.session_id, ana.user.id)
    as_bob = principal_of(bob.tokens.session_id, bob.user.id)
    started = await service.begin_add_credential(as_ana, CLIENT)
    response = SoftwareAuthenticator(origin=ORIGIN, rp_id=RP_ID).create(started.options_json)
    with pytest.raises(ValidationError) as caught:
        await service.finish_add_credential(as_bob, started.ceremony_id, response, "", CLIENT)
    assert caught.value.field == "registration_id"


async def test_add_credential_options_exclude_existing_passkeys(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    ana = await register(service, authenticator)
    me = principal_of(ana.tokens.session_id, ana.user.id)
    # A buggy client replays the same credential id into an add-credential ceremony.
    started = await service.begin_add_credential(me, CLIENT)
    options = json.loads(started.options_json)
    assert [c["id"] for c in options["excludeCredentials"]] == [
        b64url(authenticator.credential_ids()[0])
    ]
