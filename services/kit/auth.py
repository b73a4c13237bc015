"""Authentication shared by every service: JWT access tokens and the caller's Principal.

Access tokens are signed by the identity service with an Ed25519 key (EdDSA). Every
other service holds only the public key, so a compromised replica cannot mint tokens.
The gRPC auth interceptor verifies the token and puts the Principal in a contextvar;
servicers read it with `current_principal()` and authorize each object themselves.
"""

from __future__ import annotations

import contextvars
import enum
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


class TokenVerifier:
    """Verifies access tokens with the identity service's public key; with
    `revoked_sessions` (see `services.kit.revocation`), also refuses the tokens of sessions
    identity has revoked."""

    def __init__(
        self,
        public_key_pem: bytes,
        clock: Clock,
        leeway: timedelta | None = None,
        *,
        revoked_sessions: Container[str] | None = None,
    ):
        self._key = serialization.load_pem_public_key(public_key_pem)
        self._clock = clock
        self._leeway = leeway or timedelta(seconds=5)
        self.revoked_sessions = revoked_sessions

    def verify(self, token: str) -> Principal:
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
        now = self._clock.now().timestamp()
        leeway = self._leeway.total_seconds()
        if now > float(claims["exp"]) + leeway:
            raise Unauthenticated("token expired")
        if "nbf" in claims and now + leeway < float(claims["nbf"]):
            raise Unauthenticated("token not yet valid")
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise Unauthenticated("invalid token: malformed roles")
        principal = Principal(
            user_id=str(claims["sub"]),
            roles=frozenset(roles),
            session_id=str(claims.get("sid", "")),
            expires_at=datetime.fromtimestamp(float(claims["exp"]), UTC),
        )
        self.refuse_revoked(principal)
        return principal

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
