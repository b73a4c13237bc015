"""What a running Keiko process shares with the services it hosts."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc

from keiko.settings import Settings
from services.kit.auth import TokenVerifier
from services.kit.clock import Clock
from services.kit.db import Database
from services.kit.events import EventBus
from services.kit.events.fanout import EventFanout
from services.kit.grpc.client import open_channel
from services.kit.grpc.server import GrpcHost
from services.kit.runtime import BackgroundJob


@dataclass
class ServiceRuntime:
    """The platform's implementation of services.kit.runtime.ServiceRuntime."""

    settings: Settings
    database: Database
    event_bus: EventBus
    clock: Clock
    token_verifier: TokenVerifier
    # Only a process hosting identity holds the signing key (see services.kit.auth).
    jwt_private_key_pem: bytes | None
    # Shared by every Watch* RPC of the process: one bus subscription per topic.
    fanout: EventFanout
    jobs: dict[str, BackgroundJob] = field(default_factory=dict)
    # The host of this process's services, set by keiko.platform once built, when calls
    # to this process's own gRPC address may run in process (services.kit.grpc.local).
    co_host: GrpcHost | None = None

    def open_channel(self, target: str) -> grpc.aio.Channel:
        """A channel to `target` (services.kit.grpc.client.open_channel): in process for
        this process's own services when `target` is this process's own gRPC address,
        unless KEIKO_LOCAL_CALLS=0."""
        channel = open_channel(target)
        if self.co_host is None or not self.settings.local_calls:
            return channel
        if target != self.settings.gateway_target:
            return channel
        return self.co_host.local_channel(channel, remote=self.settings.remote_services)

    def run_in_background(self, name: str, job: BackgroundJob) -> None:
        """Start `job(stop)` with the platform; it must return soon after `stop` is set."""
        if name in self.jobs:
            raise ValueError(f"background job {name!r} registered twice")
        self.jobs[name] = job
