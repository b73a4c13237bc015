"""Which services exist, how each is built, and where its migrations live.

An RPC a servicer does not implement answers UNIMPLEMENTED naming the method (see
services.kit.grpc.adapter), so clients always see the whole contract.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from betterproto.grpc.grpclib_server import ServiceBase

from keiko.runtime import ServiceRuntime
from services.kit.migrations import service_migration_dirs


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    build: Callable[[ServiceRuntime], ServiceBase]

    @property
    def migrations_dir(self) -> Path | None:
        return service_migration_dirs().get(self.name)


def _identity(runtime: ServiceRuntime) -> ServiceBase:
    from services.identity.service import ClientInfo
    from services.identity.wiring import build_identity_servicer
    from services.kit.grpc.interceptors import client_address

    return build_identity_servicer(
        runtime, client_info=lambda: ClientInfo(address=client_address())
    )


def _learning(runtime: ServiceRuntime) -> ServiceBase:
    from services.learning.servicer import build_learning_servicer

    return build_learning_servicer(runtime)


def _reputation(runtime: ServiceRuntime) -> ServiceBase:
    from services.reputation.servicer import build_reputation_servicer

    return build_reputation_servicer(runtime)


def _governance(runtime: ServiceRuntime) -> ServiceBase:
    from services.governance.onchain import platform_voting
    from services.governance.servicer import build_governance_servicer

    return build_governance_servicer(runtime, onchain=platform_voting(runtime))


def _marketplace(runtime: ServiceRuntime) -> ServiceBase:
    from services.marketplace.servicer import build_marketplace_servicer

    return build_marketplace_servicer(runtime)


def _passport(runtime: ServiceRuntime) -> ServiceBase:
    from services.passport.wiring import build_passport_servicer

    return build_passport_servicer(runtime)


def _chain(runtime: ServiceRuntime) -> ServiceBase:
    from chain.translator.servicer import build_chain_servicer

    return build_chain_servicer(runtime)


SERVICES: dict[str, ServiceDefinition] = {
    "identity": ServiceDefinition("identity", _identity),
    "learning": ServiceDefinition("learning", _learning),
    "passport": ServiceDefinition("passport", _passport),
    "reputation": ServiceDefinition("reputation", _reputation),
    "governance": ServiceDefinition("governance", _governance),
    "marketplace": ServiceDefinition("marketplace", _marketplace),
    "chain": ServiceDefinition("chain", _chain),
}


def resolve(names: list[str] | None) -> list[ServiceDefinition]:
    if not names:
        return list(SERVICES.values())
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        raise SystemExit(
            f"unknown service(s) {', '.join(unknown)}; choose from {', '.join(SERVICES)}"
        )
    return [SERVICES[n] for n in names]
