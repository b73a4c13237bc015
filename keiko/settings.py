"""Configuration: every knob is an environment variable `KEIKO_<NAME>` (or a .env file).

Defaults give the embedded platform: SQLite under the data dir, the in-process event
bus, and the embedded Keikochain dev node. Set the URLs to switch to production engines.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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

    webauthn_rp_id: str = "localhost"
    webauthn_rp_name: str = "Keiko"
    webauthn_origins: list[str] = Field(default_factory=lambda: ["http://localhost:8000"])

    chain_translator_target: str = Field(
        "", description="host:port of the chain translator (keiko.chain.v1); empty = this process"
    )
    humanity_warm_up: bool = Field(
        True,
        description="Compile the proof-of-humanity decoder at start (~30 s of CPU once) "
        "so the first enrollment is not slow",
    )
    public_base_url: str = Field(
        "", description="Base URL of share links and verification pages; empty = the gateway"
    )
    explorer_tx_url: str = Field(
        "", description="Block explorer URL template for anchor links, with {tx_hash}"
    )

    log_level: str = "INFO"
    log_json: bool = True
    graphql_max_depth: int = 12
    graphql_max_aliases: int = 30
    shutdown_grace_seconds: float = 5.0

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

    @property
    def jwt_key_path(self) -> Path:
        return self.jwt_private_key_file or self.data_dir / "keys" / "jwt-ed25519.pem"
