"""Authentication shared by every service: JWT access tokens and the caller's Principal.

Access tokens are signed by the identity service with an Ed25519 key (EdDSA). Every
other service holds only the public key, so a compromised replica cannot mint tokens.
The gRPC auth interceptor verifies the token and puts the Principal in a contextvar;
servicers read it with `current_principal()` and authorize each object themselves.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import hashlib
import secrets
from collections.abc import Container, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.kit.clock import Clock
from services.kit.errors import PermissionDenied, Unauthenticated

ISSUER = "keiko-identity"
# What a stream (a gRPC Watch*, a GraphQL subscription) ends with when its token expires.
TOKEN_EXPIRED = "access token expired: reconnect with a fresh access token"
AUDIENCE = "keiko"
ALGORITHM = "EdDSA"
# Access tokens whose signature and claims were verified, remembered per verifier.
VERIFIED_TOKENS_MAX = 10_000


class Role(enum.StrEnum):
    LEARNER = "learner"
    TUTOR = "tutor"
    SPACE_OWNER = "space_owner"
    COMMUNITY_ADMIN = "community_admin"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """Who is calling: taken from a verified access token, never from request fields."""

    user_id: str
    roles: frozenset[str] = field(default_factory=frozenset)
    session_id: str = ""
    # When the access token it came from expires (None: not from a token, e.g. a test or
    # a service acting in-process). A stream opened with the token ends then (issue 9).
    expires_at: datetime | None = None

    def has_role(self, role: Role | str) -> bool:
        return str(role) in self.roles

    @property
    def is_admin(self) -> bool:
        return self.has_role(Role.ADMIN)

    def require_role(self, role: Role | str) -> None:
        if not self.has_role(role):
            raise PermissionDenied(f"requires role {role}")

    def require_self_or_admin(self, user_id: str) -> None:
        """The caller may act on `user_id`'s objects only if it is that user or an admin."""
        if self.user_id != user_id and not self.is_admin:
            raise PermissionDenied("not allowed to act for another user")


_current: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "keiko_principal", default=None
)


def current_principal() -> Principal:
    """The authenticated caller of the RPC being served; UNAUTHENTICATED when there is none."""
    principal = _current.get()
    if principal is None:
        raise Unauthenticated("authentication required")
    return principal


def optional_principal() -> Principal | None:
    return _current.get()


@contextmanager
def acting_as(principal: Principal | None) -> Iterator[None]:
    """Bind the caller for the duration of a request (used by interceptors and tests)."""
    token = _current.set(principal)
    try:
        yield
    finally:
        _current.reset(token)


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime


class TokenIssuer:
    """Mints access tokens. Only the identity service holds one."""

    def __init__(self, private_key_pem: bytes, clock: Clock, ttl: timedelta) -> None:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("JWT signing key must be an Ed25519 private key")
        self._key: Ed25519PrivateKey = key
        self._clock = clock
        self._ttl = ttl

    def issue(self, principal: Principal) -> IssuedToken:
        now = self._clock.now()
        expires_at = now + self._ttl
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": principal.user_id,
            "sid": principal.session_id,
            "roles": sorted(principal.roles),
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
            "jti": secrets.token_hex(8),
            "typ": "access",
        }
        return IssuedToken(jwt.encode(claims, self._key, algorithm=ALGORITHM), expires_at)


@dataclass(frozen=True)
class _TokenClaims:
    """What a verified access token says: the caller, its expiry and not-before (POSIX
    timestamps)."""

    principal: Principal
    expires: float
    not_before: float | None


class TokenVerifier:
    """Verifies access tokens with the identity service's public key; with
    `revoked_sessions` (see `services.kit.revocation`), also refuses the tokens of sessions
    identity has revoked.

    A token that passed is remembered (keyed by its SHA-256, at most `cache_size`, the
    oldest dropped first) with the Principal it gave, so the same token again costs a
    hash and a look-up instead of an EdDSA verification (most of the CPU of an
    authenticated call answered from memory). What is remembered is only what the token
    itself says, which cannot change: its expiry and not-before are checked against the
    clock on every use, exactly as on first sight, and the revoked sessions are checked on
    every use too, so a remembered token is never accepted past its expiry or its
    session's revocation."""

    def __init__(
        self,
        public_key_pem: bytes,
        clock: Clock,
        leeway: timedelta | None = None,
        *,
        revoked_sessions: Container[str] | None = None,
        cache_size: int = VERIFIED_TOKENS_MAX,
    ):
        self._key = serialization.load_pem_public_key(public_key_pem)
        self._clock = clock
        self._leeway = leeway or timedelta(seconds=5)
        self.revoked_sessions = revoked_sessions
        self._cache_size = cache_size
        # sha256(token) -> what the token says, once its signature and claims passed.
        self._verified: dict[bytes, _TokenClaims] = {}

    def verify(self, token: str) -> Principal:
        key = hashlib.sha256(token.encode()).digest()
        claims = self._verified.get(key)
        if claims is None:
            claims = self._decode(token)
            self._remember(key, claims)
        now = self._clock.now().timestamp()
        leeway = self._leeway.total_seconds()
        if now > claims.expires + leeway:
            raise Unauthenticated("token expired")
        if claims.not_before is not None and now + leeway < claims.not_before:
            raise Unauthenticated("token not yet valid")
        self.refuse_revoked(claims.principal)
        return claims.principal

    def _remember(self, key: bytes, claims: _TokenClaims) -> None:
        verified = self._verified
        if len(verified) >= self._cache_size:
            # The oldest remembered (suppress: another thread emptied it meanwhile).
            with contextlib.suppress(StopIteration, KeyError, RuntimeError):
                del verified[next(iter(verified))]
        verified[key] = claims

    def _decode(self, token: str) -> _TokenClaims:
        """The token's signature and claims checked (not its times: `verify` checks them
        on every use)."""
        try:
            # PyJWT checks exp/nbf against its own clock; we check them against ours so
            # expiry is testable and consistent with the issuer.
            claims = jwt.decode(
                token,
                self._key,  # type: ignore[arg-type]
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={
                    "require": ["exp", "iat", "sub", "iss", "aud"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidSignatureError as exc:
            raise Unauthenticated("invalid token signature") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from exc
        if claims.get("typ") != "access":
            raise Unauthenticated("invalid token: not an access token")
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise Unauthenticated("invalid token: malformed roles")
        try:
            expires = float(claims["exp"])
            not_before = float(claims["nbf"]) if "nbf" in claims else None
        except (TypeError, ValueError) as exc:
            raise Unauthenticated("invalid token: malformed exp or nbf") from exc
        principal = Principal(
            user_id=str(claims["sub"]),
            roles=frozenset(roles),
            session_id=str(claims.get("sid", "")),
            expires_at=datetime.fromtimestamp(expires, UTC),
        )
        return _TokenClaims(principal, expires, not_before)

    def refuse_expired(self, principal: Principal) -> None:
        """UNAUTHENTICATED once the token the principal came from has expired: what a
        stream opened with it checks before each message."""
        expires = principal.expires_at
        if expires is not None and self._clock.now() > expires + self._leeway:
            raise Unauthenticated(TOKEN_EXPIRED)

    def refuse_revoked(self, principal: Principal) -> None:
        """UNAUTHENTICATED if the principal's session is known to be revoked."""
        revoked = self.revoked_sessions
        if principal.session_id and revoked is not None and principal.session_id in revoked:
            raise Unauthenticated("session has been revoked")


def bearer_token(authorization: str | None) -> str:
    """Extract the token of an `authorization: Bearer <token>` value."""
    if not authorization:
        raise Unauthenticated("missing authorization metadata")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("authorization must be 'Bearer <token>'")
    return token.strip()


def generate_signing_key_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(private_key_pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_or_create_signing_key(path: Path) -> bytes:
    """The embedded default keeps its JWT key in the data dir (mode 0600), made on first run."""
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = generate_signing_key_pem()
    path.touch(mode=0o600)
    path.write_bytes(pem)
    return pem
