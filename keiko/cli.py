"""The `keiko` command: serve, migrate, chain node."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import structlog

from keiko import registry
from keiko.settings import Settings, worker_count
from services.kit.logging import configure_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keiko", description="Keiko learning network backend")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve", help="run the services, the GraphQL gateway and (embedded) the chain node"
    )
    serve.add_argument(
        "--service",
        action="append",
        dest="services",
        metavar="NAME",
        help="host only this service (repeatable); the shape for running replicas. "
        f"One of: {', '.join(registry.SERVICES)}",
    )
    serve.add_argument("--no-gateway", action="store_true", help="do not start GraphQL")
    serve.add_argument(
        "--gateway-only",
        action="store_true",
        help="run the GraphQL gateway alone, calling the services at KEIKO_SERVICES_TARGET "
        "and KEIKO_SERVICE_TARGETS (the gateway's shape for replicas)",
    )
    serve.add_argument(
        "--no-chain", action="store_true", help="do not start the embedded Keikochain node"
    )
    serve.add_argument(
        "--workers",
        type=_workers,
        metavar="N",
        help="worker processes on the same ports (default KEIKO_WORKERS, 1); auto = one per "
        "CPU. More than 1 needs PostgreSQL and Redis",
    )

    migrate = commands.add_parser("migrate", help="apply every service's database migrations")
    migrate.add_argument("--service", action="append", dest="services", metavar="NAME")

    chain = commands.add_parser("chain", help="Keikochain tools")
    chain_commands = chain.add_subparsers(dest="chain_command", required=True)
    chain_commands.add_parser(
        "node", help="run the embedded Keikochain dev node alone", add_help=False
    )
    chain_commands.add_parser(
        "deploy", help="declare and deploy Keiko's contracts on a Starknet node", add_help=False
    )
    passport = commands.add_parser("passport", help="Life-Learning Passport tools")
    passport_commands = passport.add_subparsers(dest="passport_command", required=True)
    passport_commands.add_parser(
        "verify",
        help="verify a passport (id or share link) against the chain, without trusting Keiko",
        add_help=False,
    )
    # Each group parses its own arguments (keiko/operator_cli.py, keiko/demo.py).
    for name, text in OPERATOR_GROUPS.items():
        commands.add_parser(name, help=text, add_help=False)
    commands.add_parser(
        "demo", help="sign up a demo learner, record, anchor, share, verify", add_help=False
    )
    return parser


OPERATOR_GROUPS = {
    "admin": "admin bootstrap: make the first admin (on the server's machine)",
    "users": "list users, grant and revoke roles (admins)",
    "lrs-clients": "xAPI Basic auth credentials: create, list, revoke",
    "webhooks": "LRS/LMS webhook sources: create, list, revoke",
}


def _workers(text: str) -> int:
    try:
        return worker_count(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _worker_args(args: argparse.Namespace) -> list[str]:
    """The serve command line each worker runs (the same shape, one worker)."""
    out = [a for name in args.services or [] for a in ("--service", name)]
    for flag in ("no_gateway", "gateway_only", "no_chain"):
        if getattr(args, flag):
            out.append("--" + flag.replace("_", "-"))
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["passport", "verify"]:
        from chain.verify.cli import main as verify_main

        return verify_main(argv[2:], default_gateway=Settings().public_gateway_url)
    if argv[:1] and (argv[0] in OPERATOR_GROUPS or argv[0] == "demo"):
        # A client's output is its answer: only warnings are logged, on stderr.
        configure_logging("WARNING", json=False)
    if argv[:1] and argv[0] in OPERATOR_GROUPS:
        from keiko.operator_cli import main as operator_main

        return operator_main(argv[0], argv[1:])
    if argv[:1] == ["demo"]:
        from keiko.demo import main as demo_main

        return demo_main(argv[1:])
    if argv[:2] == ["chain", "deploy"]:
        from chain.deploy.cli import main as deploy_main

        return deploy_main(argv[2:])
    if argv[:2] == ["chain", "node"]:
        from chain.node.service import main as node_main

        return node_main(argv[2:])
    args = _parser().parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)

    if args.command == "serve":
        from keiko.platform import serve, serve_gateway
        from services.kit.errors import FailedPrecondition

        hosted = registry.resolve(args.services)
        alone = bool(args.services)
        from chain.node.process import NodeStartError
        from keiko.platform import PortInUse
        from services.kit import tracing

        if args.gateway_only and (args.services or args.no_gateway):
            print(
                "keiko: --gateway-only hosts no service (drop --service, --no-gateway)",
                file=sys.stderr,
            )
            return 2
        # Traces only when an OTLP endpoint is configured (docs/observability.md).
        if args.gateway_only:
            service_name = "keiko-gateway"
        else:
            service_name = "keiko-" + "-".join(args.services) if args.services else "keiko"
        from keiko.event_loop import run_loop
        from keiko.workers import WorkerSlot, supervise

        slot = WorkerSlot.from_env(os.environ)
        workers = args.workers or settings.workers
        with_gateway = args.gateway_only or (not args.no_gateway and not alone)
        with_chain = not args.no_chain and not alone and not args.gateway_only
        if slot is not None:
            from chain.node.process import exit_with_parent

            exit_with_parent()  # no worker outlives its supervisor
            structlog.contextvars.bind_contextvars(worker=slot.index)
        tracing.configure(service_name, settings.otlp_endpoint)
        try:
            if slot is None and workers > 1:
                # The supervisor only starts and watches workers: the standard loop
                # (uvloop's subprocess_exec has no process_group).
                return asyncio.run(
                    supervise(
                        settings,
                        workers,
                        _worker_args(args),
                        with_chain=with_chain,
                        hosts_identity="identity" in [d.name for d in hosted],
                        with_grpc=not args.gateway_only,
                        with_gateway=with_gateway,
                    )
                )
            if args.gateway_only:
                run_loop(settings, serve_gateway(settings, slot))
            else:
                run_loop(
                    settings,
                    serve(
                        settings,
                        hosted,
                        with_gateway=with_gateway,
                        with_chain=with_chain,
                        slot=slot,
                    ),
                )
        except (PortInUse, NodeStartError) as refused:
            print(f"keiko: cannot start: {refused}", file=sys.stderr)
            return 1
        except FailedPrecondition as err:  # a configuration Keiko cannot run with
            print(f"keiko: cannot start: {err}", file=sys.stderr)
            return 2
        finally:
            tracing.shutdown()
        return 0
    if args.command == "migrate":
        from keiko.platform import migrate
        from services.kit.db import Database

        definitions = registry.resolve(args.services)

        async def run() -> list[str]:
            database = Database(
                settings.resolved_database_url, schemas=[d.name for d in definitions]
            )
            try:
                return await migrate(database, definitions)
            finally:
                await database.dispose()

        done = asyncio.run(run())
        print(f"migrated: {', '.join(done) or 'nothing to migrate'}")
        return 0
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
