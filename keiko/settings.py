"""Configuration: every knob is an environment variable `KEIKO_<NAME>` (or a .env file).

Defaults give the embedded platform: SQLite under the data dir, the in-process event
bus, and the embedded Keikochain dev node. Set the URLs to switch to production engines.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "0.0.0.0", "::", "::1", ""})
ALL_SERVICES = ("identity", "learning", "passport", "reputation", "governance", "marketplace")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEIKO_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path(".data"), description="Embedded database, chain and keys.")
    database_url: str = Field(
        "",
        description="SQLAlchemy URL; empty = SQLite in the data dir. "
        "Production: postgresql+asyncpg://user@host/db",
    )
    event_bus_url: str = Field("memory://", description="memory:// or redis://host:port/db")
    chain_rpc_url: str = Field(
        "", description="Starknet JSON-RPC URL; empty = start the embedded dev node"
    )
    chain_node_host: str = "127.0.0.1"
    chain_node_port: int = 5050

    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    services_target: str = Field(
        "",
        description="host:port of the gRPC services the gateway calls; "
        "empty = this process's own gRPC port",
    )
    service_targets: dict[str, str] = Field(
        default_factory=dict,
        description="Where the gateway and the services find each service, by name: JSON "
        '{"learning": "10.0.0.1:50051,10.0.0.2:50051", "chain": ...}; a comma list is a '
        "set of replicas, balanced round robin and health-checked. A service not named "
        "here is at services_target",
    )

    jwt_private_key_file: Path | None = Field(
        None,
        description="Ed25519 PEM that signs access tokens (identity only); "
        "empty = made in the data dir on first run",
    )
    jwt_public_key_file: Path | None = Field(
        None, description="Ed25519 public PEM other services verify tokens with"
    )
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_days: int = 30

    # Empty: derived from the public gateway URL (see the properties below), so the
    # relying party always agrees with the URLs Keiko prints.
    webauthn_rp_id_setting: str = Field(
        "", validation_alias=AliasChoices("KEIKO_WEBAUTHN_RP_ID", "webauthn_rp_id")
    )
    webauthn_rp_name: str = "Keiko"
    webauthn_origins_setting: list[str] = Field(
        default_factory=list,
        validation_alias=AliasChoices("KEIKO_WEBAUTHN_ORIGINS", "webauthn_origins"),
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Web origins (scheme://host[:port]) whose scripts may call the gateway "
        "(CORS); the gateway's own origin needs no entry",
    )

    chain_translator_target: str = Field(
        "", description="host:port of the chain translator (keiko.chain.v1); empty = this process"
    )
    humanity_warm_up: bool = Field(
        True,
        description="Compile the proof-of-humanity decoder at start (~30 s of CPU once) "
        "so the first enrollment is not slow",
    )
    humanity_index_key_file: Path | None = Field(
        None,
        description="File of >= 32 random bytes keying the proof-of-humanity duplicate-check "
        "index (identity only); empty = derived from the JWT signing key",
    )
    public_base_url: str = Field(
        "", description="Base URL of share links and verification pages; empty = the gateway"
    )
    explorer_tx_url: str = Field(
        "", description="Block explorer URL template for anchor links, with {tx_hash}"
    )

    otlp_endpoint: str = Field(
        "",
        description="OTLP endpoint traces are exported to (docs/observability.md); empty = "
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT, else no traces",
    )
    log_level: str = "INFO"
    log_json: bool = True
    graphql_max_depth: int = 12
    graphql_max_aliases: int = 30
    graphql_max_tokens: int = 5_000
    graphql_max_cost: int = Field(25_000, description="GraphQL cost limit (docs/limits.md)")
    graphql_max_anonymous_cost: int = 10_000
    graphql_deadline_seconds: float = 30.0
    graphql_passport_cache_bytes: int = Field(
        32 * 1024 * 1024,
        description="Rendered passport queries kept per caller until the passport's "
        "version moves (0: none); gateway.schema.passport.response_cache",
    )
    # Each call the gateway makes to a service (GraphQL resolvers, xAPI, webhooks,
    # credentials, verification): DEADLINE_EXCEEDED past it, TIMEOUT / 504 to the client.
    gateway_rpc_deadline_seconds: float = Field(30.0, gt=0)
    local_calls: bool = Field(
        True,
        description="Calls between the gateway and the services this same process hosts "
        "run in process (the same interceptors and handlers, no loopback gRPC hop); off: "
        "over loopback gRPC (docs/operations.md#in-process-calls)",
    )
    shutdown_grace_seconds: float = 5.0
    workers: int = Field(
        1,
        ge=1,
        description="Worker processes of `keiko serve`, each hosting the gateway and the "
        "services on the same ports (SO_REUSEPORT); `auto` = one per CPU. More than 1 needs "
        "PostgreSQL and Redis (docs/operations.md#workers)",
    )

    event_loop: Literal["uvloop", "asyncio"] = Field(
        "uvloop",
        description="The event loop of `keiko serve`: uvloop (libuv; less CPU per request "
        "for HTTP and gRPC) or the standard library's; uvloop falls back to asyncio where "
        "it is not installed",
    )

    @field_validator("workers", mode="before")
    @classmethod
    def _auto_workers(cls, value: Any) -> Any:
        return worker_count(value) if isinstance(value, str) else value

    @field_validator("service_targets")
    @classmethod
    def _known_services(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - {*ALL_SERVICES, "chain"})
        if unknown:
            raise ValueError(
                f"unknown service(s) {', '.join(unknown)}; "
                f"choose from {', '.join([*ALL_SERVICES, 'chain'])}"
            )
        empty = sorted(name for name, target in value.items() if not target.strip())
        if empty:
            raise ValueError(f"empty target for {', '.join(empty)}")
        return value

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'db' / 'keiko.db').resolve()}"

    @property
    def embedded_database(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def grpc_address(self) -> str:
        return f"{self.grpc_host}:{self.grpc_port}"

    @property
    def gateway_target(self) -> str:
        return self.services_target or f"127.0.0.1:{self.grpc_port}"

    def target_of(self, service: str) -> str:
        """host:port (or a comma list of replicas) where ``service`` answers: its entry in
        ``service_targets``, for the chain translator ``chain_translator_target``, else
        the gateway's target."""
        if service in self.service_targets:
            return self.service_targets[service]
        if service == "chain" and self.chain_translator_target:
            return self.chain_translator_target
        return self.gateway_target

    @property
    def remote_services(self) -> frozenset[str]:
        """Services given a target of their own (service_targets, the chain translator's):
        they run elsewhere even when this process hosts them too."""
        chain = {"chain"} if self.chain_translator_target else set()
        return frozenset(self.service_targets) | chain

    @property
    def public_gateway_url(self) -> str:
        """Where people reach the gateway: KEIKO_PUBLIC_BASE_URL, else the listen address,
        named ``localhost`` when it is a loopback or wildcard address: browsers accept
        passkeys for ``localhost`` but never for an IP address."""
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        host = "localhost" if self.http_host in _LOCAL_HOSTS else self.http_host
        return f"http://{host}:{self.http_port}"

    @property
    def webauthn_rp_id(self) -> str:
        """KEIKO_WEBAUTHN_RP_ID, else the host of the public gateway URL."""
        return self.webauthn_rp_id_setting or (
            urlsplit(self.public_gateway_url).hostname or "localhost"
        )

    @property
    def webauthn_origins(self) -> list[str]:
        """KEIKO_WEBAUTHN_ORIGINS, else the public gateway URL's origin (the /app and
        GraphiQL pages run the ceremonies there)."""
        if self.webauthn_origins_setting:
            return list(self.webauthn_origins_setting)
        parts = urlsplit(self.public_gateway_url)
        return [f"{parts.scheme}://{parts.netloc}"]

    @property
    def jwt_key_path(self) -> Path:
        return self.jwt_private_key_file or self.data_dir / "keys" / "jwt-ed25519.pem"


def worker_count(text: str) -> int:
    """``auto`` (one worker per CPU) or a whole number >= 1."""
    if text.strip().lower() == "auto":
        return os.cpu_count() or 1
    try:
        count = int(text)
    except ValueError:
        raise ValueError(f"workers must be a whole number >= 1 or auto, not {text!r}") from None
    if count < 1:
        raise ValueError(f"workers must be >= 1 or auto, not {count}")
    return count
