"""Pure identity rules: validation, secrets, lockout, token bucket, paging. No database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.identity.domain import (
    LockoutPolicy,
    ProfileUpdate,
    Role,
    TokenBucket,
    hash_secret,
    new_secret,
    normalize_email,
    normalize_roles,
    secret_matches,
    validate_credential_name,
    validate_display_name,
)
from services.kit.errors import ValidationError

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("ana@example.org", "ana@example.org"),
        ("  Ana.Perez@Example.ORG ", "ana.perez@example.org"),
        ("josé@ejemplo.mx", "josé@ejemplo.mx"),
        ("user+tag@sub.example.co", "user+tag@sub.example.co"),
    ],
)
def test_emails_are_normalized(raw: str, normalized: str) -> None:
    assert normalize_email(raw) == normalized


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "ana",
        "ana@",
        "@example.org",
        "ana@@example.org",
        "ana@example",
        "a b@example.org",
    ],
)
def test_malformed_emails_are_validation_errors_on_email(raw: str) -> None:
    with pytest.raises(ValidationError) as caught:
        normalize_email(raw)
    assert caught.value.field == "email"


def test_email_validation_does_no_dns_lookup() -> None:
    # A syntactically valid address on a domain that does not exist is accepted.
    assert normalize_email("ana@no-such-domain.invalid-tld-keiko") == (
        "ana@no-such-domain.invalid-tld-keiko"
    )


def test_email_field_path_is_configurable() -> None:
    with pytest.raises(ValidationError) as caught:
        normalize_email("nope", "invite.email")
    assert caught.value.field == "invite.email"


def test_display_name_is_trimmed_and_bounded() -> None:
    assert validate_display_name("  Ana \n Pérez ") == "Ana Pérez"
    with pytest.raises(ValidationError, match="at most 100"):
        validate_display_name("x" * 101)
    with pytest.raises(ValidationError, match="control characters"):
        validate_display_name("Ana\x00")


def test_profile_update_validation_names_each_field() -> None:
    ok = ProfileUpdate(
        bio=" hi ", avatar_url="https://x.test/a.png", locale="zh-Hant-TW", time_zone="UTC"
    ).validated()
    assert (ok.bio, ok.locale) == ("hi", "zh-Hant-TW")
    assert ProfileUpdate(avatar_url="", locale="", time_zone="").validated().avatar_url == ""
    for update, field in [
        (ProfileUpdate(avatar_url="http://x.test/a.png"), "avatar_url"),
        (ProfileUpdate(locale="english please"), "locale"),
        (ProfileUpdate(time_zone="Europe/Atlantis"), "time_zone"),
    ]:
        with pytest.raises(ValidationError) as caught:
            update.validated()
        assert caught.value.field == field
    assert ProfileUpdate().empty and not ProfileUpdate(bio="").empty


def test_roles_always_include_learner_and_reject_unknown() -> None:
    assert normalize_roles([]) == frozenset({Role.LEARNER})
    assert normalize_roles(["admin", "tutor"]) == frozenset({Role.LEARNER, Role.ADMIN, Role.TUTOR})
    with pytest.raises(ValidationError) as caught:
        normalize_roles(["tutor", "root"])
    assert caught.value.field == "roles[1]"


def test_credential_name_defaults_and_bounds() -> None:
    assert validate_credential_name("") == "Passkey"
    assert validate_credential_name(" Ana's  phone ") == "Ana's phone"
    with pytest.raises(ValidationError) as caught:
        validate_credential_name("x" * 101)
    assert caught.value.field == "credential_name"


def test_secrets_are_random_and_hashed_with_sha256() -> None:
    first, second = new_secret(), new_secret()
    assert first != second and len(first) >= 43
    assert hash_secret(first) != first and len(hash_secret(first)) == 64
    assert secret_matches(first, hash_secret(first))
    assert not secret_matches(second, hash_secret(first))


def test_lockout_policy_locks_at_the_threshold() -> None:
    policy = LockoutPolicy(threshold=3, window=timedelta(minutes=15), duration=timedelta(hours=1))
    assert policy.lock_until(2, T0) is None
    assert policy.lock_until(3, T0) == T0 + timedelta(hours=1)
    assert policy.window_start(T0) == T0 - timedelta(minutes=15)


def test_token_bucket_spends_and_refills() -> None:
    bucket = TokenBucket.full(2, T0)
    bucket, wait = bucket.take(T0, capacity=2, refill_per_second=1)
    assert wait == 0
    bucket, wait = bucket.take(T0, capacity=2, refill_per_second=1)
    assert wait == 0
    refused, wait = bucket.take(T0, capacity=2, refill_per_second=1)
    assert wait == pytest.approx(1.0)
    assert refused.tokens == pytest.approx(0.0)
    bucket, wait = refused.take(T0 + timedelta(seconds=1), capacity=2, refill_per_second=1)
    assert wait == 0


@given(
    steps=st.lists(st.floats(min_value=0, max_value=10, allow_nan=False), max_size=50),
    capacity=st.integers(min_value=1, max_value=20),
    rate=st.floats(min_value=0.01, max_value=5, allow_nan=False),
)
def test_token_bucket_never_admits_more_than_capacity_plus_refill(
    steps: list[float], capacity: int, rate: float
) -> None:
    bucket = TokenBucket.full(capacity, T0)
    now = T0
    admitted = 0
    for gap in steps:
        now += timedelta(seconds=gap)
        bucket, wait = bucket.take(now, capacity=capacity, refill_per_second=rate)
        admitted += wait == 0
        assert 0 <= bucket.tokens <= capacity
    elapsed = (now - T0).total_seconds()
    assert admitted <= capacity + elapsed * rate + 1e-6
