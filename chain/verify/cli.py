"""``keiko passport verify``: check a passport without trusting Keiko's servers.

    keiko passport verify <passport id | share link URL | export file>
        --rpc http://127.0.0.1:5050/rpc
        [--gateway http://127.0.0.1:8000] [--deployment deployment.json | --anchor-address 0x...]
        [--json] [--allow-pending]

The public export (``keiko.passport.export`` v1) is fetched from the gateway
(``/passports/<id>/export.json`` or ``/share/<token>/export.json``) or read from a local
file. Every Ed25519 signature and Merkle inclusion proof is checked, and every batch root
is READ FROM THE CHAIN through starknet-py at ``--rpc`` (the export's own roots are only
compared, never trusted), and each anchor's transaction receipt must show that very
batch anchored, in the batch's block. Exit codes: 0 all entries verified, 1 an entry
failed (named in the report), 2 usage or fetch errors.

The anchoring contract's address comes from ``--anchor-address`` or a deployment file
(``<node data dir>/deployment.json``, whose class hash is also checked against the chain).
Reads need no Starknet account.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import TextIO

from chain.client import Deployment, KeikoChain
from chain.client.deployment import ANCHOR
from chain.translator.felts import parse_felt
from chain.verify.export import MAX_EXPORT_BYTES, parse_export
from chain.verify.reader import AnchorContractReader
from chain.verify.render import render_text
from chain.verify.verifier import averify_passport
from services.kit.errors import ValidationError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
DEFAULT_GATEWAY = "http://127.0.0.1:8000"
# Reads (starknet_call) are not signed: any well-formed account will do.
_READ_ONLY_ACCOUNT = 0x1
_READ_ONLY_KEY = 0x1


class CliError(Exception):
    """A usage or fetch problem (exit code 2)."""


@asynccontextmanager
async def anchor_reader(
    rpc_url: str,
    *,
    deployment: Path | str | None = None,
    anchor_address: int | None = None,
) -> AsyncIterator[AnchorContractReader]:
    """A chain reader over the ``interaction_anchor`` contract at ``rpc_url``."""
    if anchor_address is not None:
        source: Deployment | Path | str = Deployment.from_addresses(**{ANCHOR: anchor_address})
    elif deployment is not None:
        source = deployment
    else:
        raise CliError("pass --deployment <file> or --anchor-address <0x...>")
    chain = await KeikoChain.connect(rpc_url, _READ_ONLY_ACCOUNT, _READ_ONLY_KEY, source)
    try:
        yield AnchorContractReader(chain.anchor)
    finally:
        await chain.close()


def export_url(target: str, gateway: str) -> str:
    """The export URL of a passport id, a share link URL (``.../verify/share/<token>``,
    ``.../share/<token>``) or a verification page URL (``.../verify/<id>``)."""
    gateway = gateway.rstrip("/")
    if target.startswith(("http://", "https://")):
        parsed = urllib.parse.urlsplit(target)
        parts = [p for p in parsed.path.split("/") if p]
        base = f"{parsed.scheme}://{parsed.netloc}"
        if parts and parts[-1] == "export.json":
            return target
        if len(parts) >= 2 and parts[-2] == "share":
            return f"{base}/share/{urllib.parse.quote(parts[-1], safe='')}/export.json"
        if len(parts) >= 2 and parts[-2] in ("verify", "passports"):
            return f"{base}/passports/{urllib.parse.quote(parts[-1], safe='')}/export.json"
        raise CliError(f"not a Keiko passport or share link URL: {target}")
    if not target or "/" in target:
        raise CliError(f"not a passport id: {target!r}")
    return f"{gateway}/passports/{urllib.parse.quote(target, safe='')}/export.json"


def _fetch(url: str, timeout: float = 30.0) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body: bytes = response.read(MAX_EXPORT_BYTES + 1)
    except urllib.error.HTTPError as err:
        detail = err.read(2000).decode("utf-8", "replace")
        with suppress(ValueError, AttributeError):
            detail = json.loads(detail).get("error", detail)
        raise CliError(f"{url}: HTTP {err.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as err:
        raise CliError(f"{url}: {getattr(err, 'reason', err)}") from None
    if len(body) > MAX_EXPORT_BYTES:
        raise CliError(f"{url}: the export is too large")
    return body


def load_document(target: str, gateway: str) -> bytes:
    path = Path(target)
    if not target.startswith(("http://", "https://")) and (path.suffix == ".json" or path.exists()):
        try:
            return path.read_bytes()
        except OSError as err:
            raise CliError(f"{target}: {err.strerror or err}") from None
    return _fetch(export_url(target, gateway))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keiko passport verify",
        description="Verify a Keiko passport's signatures and on-chain anchors.",
    )
    parser.add_argument("target", help="passport id, share link URL, or export file path")
    parser.add_argument("--rpc", required=True, help="Starknet JSON-RPC URL of Keikochain")
    parser.add_argument("--gateway", default=DEFAULT_GATEWAY, help="Keiko gateway base URL")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--deployment", type=Path, help="deployment.json of the contracts")
    where.add_argument("--anchor-address", help="address of the interaction_anchor contract")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--allow-pending",
        action="store_true",
        help="entries not yet anchored do not fail the verification",
    )
    return parser


async def run(args: argparse.Namespace, out: TextIO) -> int:
    anchor_address = (
        parse_felt(args.anchor_address, "--anchor-address") if args.anchor_address else None
    )
    if anchor_address is None and args.deployment is None:
        raise CliError("pass --deployment <file> or --anchor-address <0x...>")
    raw = await asyncio.to_thread(load_document, args.target, args.gateway)
    document = parse_export(raw)  # a document unusable as a whole fails before any chain read
    async with anchor_reader(
        args.rpc, deployment=args.deployment, anchor_address=anchor_address
    ) as reader:
        report = await averify_passport(document, reader, require_anchored=not args.allow_pending)
    if args.json:
        out.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        out.write(render_text(report) + "\n")
    return EXIT_OK if report.ok else EXIT_FAILED


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """``keiko passport verify ...`` (argv without the ``passport verify`` words)."""
    stdout = out or sys.stdout
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    try:
        return asyncio.run(run(args, stdout))
    except CliError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except ValidationError as err:
        print(f"error: {err.field}: {err.reason}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as err:  # chain unreachable, wrong deployment, ...
        print(
            f"error: reading the chain at {args.rpc}: {type(err).__name__}: {err}", file=sys.stderr
        )
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
