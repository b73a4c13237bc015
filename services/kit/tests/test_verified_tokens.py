"""The verifier remembers tokens it verified (by their SHA-256): a remembered token gives
its own caller only, and is refused past its expiry, before its not-before, and once its
session is revoked, exactly as on first sight."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.kit.auth import (
    Principal,
    TokenIssuer,
    TokenVerifier,
    generate_signing_key_pem,
    public_key_pem,
)
from services.kit.clock import FixedClock
from services.kit.errors import Unauthenticated
from services.kit.revocation import RevokedSessions

TTL = timedelta(minutes=15)
LEEWAY = timedelta(seconds=5)


@pytest.fixture
def keys() -> bytes:
    return generate_signing_key_pem()


def principal(user_id: str) -> Principal:
    return Principal(user_id=user_id, roles=frozenset({"learner"}), session_id=f"s-{user_id}")


def test_each_remembered_token_gives_its_own_caller(clock: FixedClock, keys: bytes) -> None:
    issuer = TokenIssuer(keys, clock, TTL)
    verifier = TokenVerifier(public_key_pem(keys), clock, cache_size=2)
    tokens = {name: issuer.issue(principal(name)).token for name in ("ana", "bob", "eve")}
    for _ in range(2):  # first sight, then (for the last two at least) from memory
        for name, token in tokens.items():
            assert verifier.verify(token).user_id == name


def test_a_remembered_token_is_refused_past_its_expiry(clock: FixedClock, keys: bytes) -> None:
    token = TokenIssuer(keys, clock, TTL).issue(principal("ana")).token
    verifier = TokenVerifier(public_key_pem(keys), clock, LEEWAY)
    verifier.verify(token)
    clock.advance(TTL + LEEWAY)
    assert verifier.verify(token).user_id == "ana"  # the leeway, as on first sight
    clock.advance(timedelta(seconds=1))
    with pytest.raises(Unauthenticated, match=r"^token expired$"):
        verifier.verify(token)
    with pytest.raises(Unauthenticated, match=r"^token expired$"):
        TokenVerifier(public_key_pem(keys), clock, LEEWAY).verify(token)  # same verdict


def test_a_remembered_token_is_refused_before_its_not_before(
    clock: FixedClock, keys: bytes
) -> None:
    token = TokenIssuer(keys, clock, TTL).issue(principal("ana")).token
    verifier = TokenVerifier(public_key_pem(keys), clock, LEEWAY)
    verifier.verify(token)
    clock.advance(-LEEWAY - timedelta(seconds=1))  # this clock is behind the issuer's
    with pytest.raises(Unauthenticated, match=r"^token not yet valid$"):
        verifier.verify(token)


def test_a_remembered_token_is_refused_once_its_session_is_revoked(
    clock: FixedClock, keys: bytes
) -> None:
    revoked = RevokedSessions(clock)
    verifier = TokenVerifier(public_key_pem(keys), clock, revoked_sessions=revoked)
    token = TokenIssuer(keys, clock, TTL).issue(principal("ana")).token
    verifier.verify(token)
    revoked.add("s-ana", clock.now() + TTL)
    with pytest.raises(Unauthenticated, match=r"^session has been revoked$"):
        verifier.verify(token)


def test_a_token_altered_after_it_was_remembered_is_refused(clock: FixedClock, keys: bytes) -> None:
    verifier = TokenVerifier(public_key_pem(keys), clock)
    token = TokenIssuer(keys, clock, TTL).issue(principal("ana")).token
    verifier.verify(token)
    header, payload, signature = token.split(".")
    other = TokenIssuer(keys, clock, TTL).issue(principal("eve")).token.split(".")[1]
    with pytest.raises(Unauthenticated, match="signature"):
        verifier.verify(f"{header}.{other}.{signature}")
    with pytest.raises(Unauthenticated):
        verifier.verify(f"{header}.{payload}.{signature[:-4]}AAAA")
