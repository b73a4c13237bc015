"""Identity domain: users, profiles, roles, secrets, lockout and rate-limit rules. No I/O.

Everything here is plain data and pure functions; time always comes in as an argument
(taken from a Clock by the caller) so every rule is testable with a FixedClock.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TypeVar
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from services.kit.auth import Role
from services.kit.errors import ValidationError
from services.kit.paging import OffsetPageTokens

__all__ = [
    "Credential",
    "LockoutPolicy",
    "Profile",
    "ProfileUpdate",
    "Role",
    "Session",
    "TokenBucket",
    "User",
    "hash_secret",
    "new_secret",
    "normalize_email",
    "normalize_roles",
    "validate_display_name",
]

T = TypeVar("T")

MAX_EMAIL_LENGTH = 254
MAX_DISPLAY_NAME_LENGTH = 100
MAX_BIO_LENGTH = 2000
MAX_URL_LENGTH = 2048
# BCP 47 (simplified): language, optional script, region and variants, e.g. "es-MX",
# "zh-Hant-TW", "sr-Latn-RS".
_LOCALE = re.compile(
    r"^[A-Za-z]{2,3}(?:-[A-Za-z]{4})?(?:-(?:[A-Za-z]{2}|[0-9]{3}))?(?:-[A-Za-z0-9]{5,8})*$"
)


# -- secrets ------------------------------------------------------------------------------


def new_secret(nbytes: int = 32) -> str:
    """An opaque, URL-safe random secret (refresh tokens)."""
    return secrets.token_urlsafe(nbytes)


def hash_secret(value: str | bytes) -> str:
    """SHA-256 hex of a secret. Secrets are high-entropy random values, so a plain hash is
    enough to make a stolen table useless (no password-style stretching needed)."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    return hashlib.sha256(data).hexdigest()


def secret_matches(value: str | bytes, expected_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(value), expected_hash)


# -- validation ---------------------------------------------------------------------------


def normalize_email(raw: str, field_path: str = "email") -> str:
    """Validate an email address (syntax only, no DNS) and return its canonical form.

    The domain is IDNA-normalized by email-validator; the whole address is then lowercased
    so that "Ana@Example.org" and "ana@example.org" are one account.
    """
    candidate = (raw or "").strip()
    if not candidate:
        raise ValidationError(field_path, "is required")
    if len(candidate) > MAX_EMAIL_LENGTH:
        raise ValidationError(field_path, f"must be at most {MAX_EMAIL_LENGTH} characters")
    try:
        result = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationError(field_path, f"not a valid email address: {exc}") from exc
    return result.normalized.lower()


def validate_display_name(raw: str, field_path: str = "display_name") -> str:
    name = " ".join((raw or "").split())
    if not name:
        raise ValidationError(field_path, "is required")
    if len(name) > MAX_DISPLAY_NAME_LENGTH:
        raise ValidationError(field_path, f"must be at most {MAX_DISPLAY_NAME_LENGTH} characters")
    if any(not ch.isprintable() for ch in name):
        raise ValidationError(field_path, "must not contain control characters")
    return name


def validate_bio(raw: str, field_path: str = "bio") -> str:
    bio = raw.strip()
    if len(bio) > MAX_BIO_LENGTH:
        raise ValidationError(field_path, f"must be at most {MAX_BIO_LENGTH} characters")
    return bio


def validate_avatar_url(raw: str, field_path: str = "avatar_url") -> str:
    url = raw.strip()
    if not url:
        return ""
    if len(url) > MAX_URL_LENGTH:
        raise ValidationError(field_path, f"must be at most {MAX_URL_LENGTH} characters")
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc:
        raise ValidationError(field_path, "must be an absolute https:// URL")
    return url


def validate_locale(raw: str, field_path: str = "locale") -> str:
    locale = raw.strip()
    if locale and not _LOCALE.match(locale):
        raise ValidationError(field_path, "must be a BCP 47 language tag such as 'es-MX'")
    return locale


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(raw: str, field_path: str = "time_zone") -> str:
    tz = raw.strip()
    if tz and tz not in _time_zones():
        raise ValidationError(field_path, "must be an IANA time zone such as 'America/Lima'")
    return tz


def normalize_roles(roles: Iterable[str], field_path: str = "roles") -> frozenset[Role]:
    """The role set to store: validated, and always including LEARNER."""
    result = {Role.LEARNER}
    for index, role in enumerate(roles):
        try:
            result.add(Role(role))
        except ValueError as exc:
            raise ValidationError(f"{field_path}[{index}]", f"unknown role {role!r}") from exc
    return frozenset(result)


# -- users --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    bio: str = ""
    avatar_url: str = ""
    locale: str = ""
    time_zone: str = ""
    # What others may see besides the display name (issue 9): names from PUBLIC_FIELDS.
    # Nothing by default; the user, and admins, always see everything.
    public: frozenset[str] = frozenset()


# The profile facts a user may choose to show to others.
# (Whether a user is a verified human is always public: one human, one vote.)
PUBLIC_FIELDS = ("bio", "avatar_url", "locale", "time_zone")


def validate_public_fields(fields: frozenset[str]) -> frozenset[str]:
    unknown = sorted(fields - set(PUBLIC_FIELDS))
    if unknown:
        raise ValidationError("public_fields", f"unknown profile field {unknown[0]}")
    return fields


@dataclass(frozen=True)
class ProfileUpdate:
    """Fields to change; None leaves a field as it is, "" clears it (not the name)."""

    display_name: str | None = None
    bio: str | None = None
    avatar_url: str | None = None
    locale: str | None = None
    time_zone: str | None = None
    public: frozenset[str] | None = None

    def validated(self) -> ProfileUpdate:
        return ProfileUpdate(
            display_name=None
            if self.display_name is None
            else validate_display_name(self.display_name),
            bio=None if self.bio is None else validate_bio(self.bio),
            avatar_url=None if self.avatar_url is None else validate_avatar_url(self.avatar_url),
            locale=None if self.locale is None else validate_locale(self.locale),
            time_zone=None if self.time_zone is None else validate_time_zone(self.time_zone),
            public=None if self.public is None else validate_public_fields(self.public),
        )

    @property
    def empty(self) -> bool:
        return all(
            v is None
            for v in (
                self.display_name,
                self.bio,
                self.avatar_url,
                self.locale,
                self.time_zone,
                self.public,
            )
        )


@dataclass(frozen=True)
class User:
    id: str
    email: str
    display_name: str
    roles: frozenset[Role]
    profile: Profile
    human_verified: bool
    # WebAuthn user handle (random, not personal data): links passkeys to the account.
    user_handle: bytes
    created_at: datetime
    updated_at: datetime
    locked_until: datetime | None = None

    def apply(self, update: ProfileUpdate, now: datetime) -> User:
        profile = self.profile
        profile = replace(
            profile,
            bio=profile.bio if update.bio is None else update.bio,
            avatar_url=profile.avatar_url if update.avatar_url is None else update.avatar_url,
            locale=profile.locale if update.locale is None else update.locale,
            time_zone=profile.time_zone if update.time_zone is None else update.time_zone,
            public=profile.public if update.public is None else update.public,
        )
        return replace(
            self,
            display_name=self.display_name if update.display_name is None else update.display_name,
            profile=profile,
            updated_at=now,
        )

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


@dataclass(frozen=True)
class Credential:
    """A registered WebAuthn credential (passkey). Only its public key is stored."""

    id: str
    user_id: str
    credential_id: bytes
    public_key: bytes
    sign_count: int
    transports: tuple[str, ...]
    aaguid: str
    backed_up: bool
    name: str
    attestation_format: str
    created_at: datetime
    last_used_at: datetime | None = None


@dataclass(frozen=True)
class Session:
    """One login: the family of refresh tokens started by one registration or login."""

    id: str
    user_id: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    user_agent: str = ""
    ip_address: str = ""
    revoked_at: datetime | None = None
    revoked_reason: str = ""

    def is_active(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


# -- lockout ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockoutPolicy:
    """`threshold` failures within `window` lock the account for `duration`."""

    threshold: int
    window: timedelta
    duration: timedelta

    def window_start(self, now: datetime) -> datetime:
        return now - self.window

    def lock_until(self, recent_failures: int, now: datetime) -> datetime | None:
        """When the account must be locked until, given the failures counted within the
        window (including the one just recorded); None when below the threshold."""
        if recent_failures >= self.threshold:
            return now + self.duration
        return None


# -- rate limiting ------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenBucket:
    """A token bucket's state. `take` is pure: it returns the new state and the verdict."""

    tokens: float
    updated_at: datetime

    @staticmethod
    def full(capacity: float, now: datetime) -> TokenBucket:
        return TokenBucket(tokens=capacity, updated_at=now)

    def take(
        self, now: datetime, *, capacity: float, refill_per_second: float, cost: float = 1.0
    ) -> tuple[TokenBucket, float]:
        """Spend `cost` tokens. Returns (new state, seconds to wait); 0 seconds = allowed.

        A refused request spends nothing, so a client that keeps hammering is not locked
        out forever: it gets through again as soon as the bucket refills.
        """
        elapsed = max(0.0, (now - self.updated_at).total_seconds())
        tokens = min(capacity, self.tokens + elapsed * refill_per_second)
        if tokens >= cost:
            return TokenBucket(tokens=tokens - cost, updated_at=now), 0.0
        return TokenBucket(tokens=tokens, updated_at=now), (cost - tokens) / refill_per_second


# -- pagination ---------------------------------------------------------------------------


# Offset page tokens of identity's lists.
PAGE_TOKENS = OffsetPageTokens("o")


# -- ceremonies ---------------------------------------------------------------------------


class CeremonyKind(enum.StrEnum):
    REGISTRATION = "registration"
    ADD_CREDENTIAL = "add_credential"
    LOGIN = "login"


@dataclass(frozen=True)
class Ceremony:
    """A pending WebAuthn ceremony. Holds only the SHA-256 of its challenge; single use."""

    id: str
    kind: CeremonyKind
    challenge_hash: str
    created_at: datetime
    expires_at: datetime
    consumed_at: datetime | None = None
    # Registration: the account to create. Add-credential and email login: the user.
    user_id: str | None = None
    email: str | None = None
    display_name: str | None = None
    user_handle: bytes | None = None


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    session_id: str


MAX_CREDENTIAL_NAME_LENGTH = 100
DEFAULT_CREDENTIAL_NAME = "Passkey"


def validate_credential_name(raw: str, field_path: str = "credential_name") -> str:
    name = " ".join((raw or "").split())
    if not name:
        return DEFAULT_CREDENTIAL_NAME
    if len(name) > MAX_CREDENTIAL_NAME_LENGTH:
        raise ValidationError(
            field_path, f"must be at most {MAX_CREDENTIAL_NAME_LENGTH} characters"
        )
    return name
