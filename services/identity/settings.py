"""Configuration of the identity service (relying party, token lifetimes, abuse limits)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: `capacity` requests at once, refilled at `refill_per_second`."""

    capacity: float = 20.0
    refill_per_second: float = 0.5  # 30 requests/minute sustained

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.refill_per_second <= 0:
            raise ValueError("rate limit needs capacity >= 1 and a positive refill rate")


@dataclass(frozen=True)
class IdentitySettings:
    """Everything the identity service needs besides its database and JWT signing key.

    `rp_id` is the WebAuthn relying party id (a registrable domain, e.g. "keiko.example");
    `allowed_origins` are the exact web origins (scheme://host[:port]) that may run the
    ceremonies, e.g. the web app and the GraphQL gateway's GraphiQL page.
    """

    rp_id: str = "localhost"
    rp_name: str = "Keiko"
    allowed_origins: tuple[str, ...] = ("http://localhost:8000",)
    access_token_ttl: timedelta = timedelta(minutes=15)
    refresh_token_ttl: timedelta = timedelta(days=30)
    challenge_ttl: timedelta = timedelta(minutes=5)
    # Browser hint (milliseconds) put into the WebAuthn options.
    ceremony_timeout_ms: int = 300_000
    # Require the authenticator to verify the user (PIN/biometric), not only presence.
    require_user_verification: bool = False
    # Failed FinishLogin attempts per account: `lockout_threshold` within `lockout_window`
    # lock the account for `lockout_duration`.
    lockout_threshold: int = 5
    lockout_window: timedelta = timedelta(minutes=15)
    lockout_duration: timedelta = timedelta(minutes=15)
    # Per caller (address) and per email, on every Begin*/Finish* ceremony RPC.
    ceremony_rate_limit: RateLimit = field(default_factory=RateLimit)
    # Page sizes of the list RPCs.
    default_page_size: int = 50
    max_page_size: int = 500

    def __post_init__(self) -> None:
        if not self.rp_id or not self.rp_name:
            raise ValueError("rp_id and rp_name are required")
        if not self.allowed_origins:
            raise ValueError("at least one allowed origin is required")
        if self.lockout_threshold < 1:
            raise ValueError("lockout_threshold must be >= 1")
