"""``keiko passport verify``: check a passport without trusting Keiko's servers.

    keiko passport verify <passport id | share link URL | export file>
        [--rpc http://127.0.0.1:5050/rpc] [--gateway http://127.0.0.1:8000]
        [--deployment deployment.json | --anchor-address 0x...] [--json] [--allow-pending]
    keiko passport verify <credential or presentation: file or URL> --rpc <url>
        [--challenge ... --domain ...] [--no-status] [--json]

The public export (``keiko.passport.export`` v1) is fetched from the gateway
(``/passports/<id>/export.json`` or ``/share/<token>/export.json``) or read from a local
file. Every Ed25519 signature and Merkle inclusion proof is checked, and every batch root
is READ FROM THE CHAIN through starknet-py at ``--rpc`` (the export's own roots are only
compared, never trusted), and each anchor's transaction receipt must show that very
batch anchored, in the batch's block. Exit codes: 0 all entries verified, 1 an entry
failed (named in the report), 2 usage or fetch errors.

A share link is all it needs: the export names the chain id, the anchoring contract and
a default RPC URL (its ``chain`` member). ``--rpc`` reads another node (your own, say),
``--anchor-address`` or ``--deployment`` name the contract otherwise. Whatever the
source, the node must answer with the chain id the export names (or the deployment file
names) and the contract at that address must run the interaction_anchor class whose hash
is in this repository's ``contracts/build/classes.json``; otherwise verification fails.
Reads need no Starknet account.

A W3C Verifiable Credential or Presentation (``LearningRecordCredential``,
``OpenBadgeCredential``) is checked by :mod:`chain.verify.credentials_cli`: its Data
Integrity proofs, status list and every record's anchor, read from the chain.
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
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from chain.client import Deployment, KeikoChain, KeikoChainError
from chain.client.core import BUILD_DIR
from chain.client.deployment import ANCHOR, ContractRef
from chain.translator.felts import felt_to_hex, parse_felt
from chain.verify.credentials_cli import is_credential_document, run_credential
from chain.verify.export import MAX_EXPORT_BYTES, ChainRef, PassportExport, parse_export
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


class WrongChain(Exception):
    """The node or contract is not the one the passport was anchored on (exit code 1)."""


def published_anchor_class_hash(build_dir: Path = BUILD_DIR) -> int:
    """The class hash of the interaction_anchor contract as built from this repository."""
    classes = json.loads((build_dir / "classes.json").read_text())
    return int(classes[ANCHOR]["class_hash"], 16)


@dataclass(frozen=True)
class ChainTarget:
    """Where to read the anchors: resolved from the options, then the export."""

    rpc_url: str
    deployment: Deployment


def resolve_target(
    document: PassportExport,
    *,
    rpc: str | None,
    deployment: Path | None,
    anchor_address: int | None,
) -> ChainTarget:
    """Options win over the export's ``chain`` member; the chain id to expect comes from
    the deployment file when given, else from the export."""
    named: ChainRef | None = document.chain
    rpc_url = rpc or (named.rpc_url if named else "")
    if not rpc_url:
        raise CliError("the export names no RPC URL: pass --rpc <Starknet JSON-RPC URL>")
    expected_class = published_anchor_class_hash()
    if deployment is not None:
        try:
            loaded = Deployment.from_file(deployment)
        except (OSError, ValueError) as err:
            raise CliError(f"{deployment}: {err}") from None
        address = anchor_address if anchor_address is not None else loaded.address_of(ANCHOR)
        chain_id = loaded.chain_id
        if chain_id is None and named is not None:
            chain_id = named.chain_id
    elif anchor_address is not None:
        address = anchor_address
        chain_id = named.chain_id if named is not None else None
    elif named is not None:
        address, chain_id = named.anchor_contract, named.chain_id
    else:
        raise CliError(
            "the export names no anchor contract: pass --anchor-address <0x...> "
            "or --deployment <file>"
        )
    return ChainTarget(
        rpc_url,
        Deployment(contracts={ANCHOR: ContractRef(address, expected_class)}, chain_id=chain_id),
    )


@asynccontextmanager
async def anchor_reader(
    rpc_url: str,
    *,
    deployment: Deployment | Path | str | None = None,
    anchor_address: int | None = None,
) -> AsyncIterator[AnchorContractReader]:
    """A chain reader over the ``interaction_anchor`` contract at ``rpc_url``. A
    deployment's chain id and class hashes are checked against the node."""
    if anchor_address is not None:
        source: Deployment | Path | str = Deployment.from_addresses(**{ANCHOR: anchor_address})
    elif deployment is not None:
        source = deployment
    else:
        raise CliError("pass --deployment <file> or --anchor-address <0x...>")
    try:
        chain = await KeikoChain.connect(rpc_url, _READ_ONLY_ACCOUNT, _READ_ONLY_KEY, source)
    except KeikoChainError as err:
        raise WrongChain(str(err)) from None
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
        if parts and (parts[-1] == "export.json" or parts[0] == "credentials"):
            return target  # an export, or a credential / presentation the gateway serves
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


def build_parser(default_gateway: str = DEFAULT_GATEWAY) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keiko passport verify",
        description="Verify a Keiko passport's signatures and on-chain anchors. A share "
        "link is enough: the export names the chain, the anchor contract and an RPC URL.",
    )
    parser.add_argument(
        "target",
        help="passport id, share link URL, export file, or a W3C credential or presentation "
        "(file or URL)",
    )
    parser.add_argument(
        "--rpc", help="Starknet JSON-RPC URL of Keikochain (default: the one the export names)"
    )
    parser.add_argument(
        "--gateway",
        default=default_gateway,
        help=f"Keiko gateway base URL, for a bare passport id (default: {default_gateway})",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--deployment", type=Path, help="deployment.json of the contracts (default: the export)"
    )
    where.add_argument(
        "--anchor-address",
        help="address of the interaction_anchor contract (default: the export's)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--allow-pending",
        action="store_true",
        help="entries not yet anchored do not fail the verification",
    )
    parser.add_argument("--challenge", help="a presentation: the challenge you asked it to sign")
    parser.add_argument("--domain", help="a presentation: the domain you asked it to sign")
    parser.add_argument(
        "--no-status",
        action="store_true",
        help="a credential: do not fetch its status list (the report says 'unchecked')",
    )
    return parser


async def run(args: argparse.Namespace, out: TextIO) -> int:
    anchor_address = (
        parse_felt(args.anchor_address, "--anchor-address") if args.anchor_address else None
    )
    raw = await asyncio.to_thread(load_document, args.target, args.gateway)
    if is_credential_document(raw):
        return await run_credential(args, raw, out)
    document = parse_export(raw)  # a document unusable as a whole fails before any chain read
    target = resolve_target(
        document, rpc=args.rpc, deployment=args.deployment, anchor_address=anchor_address
    )
    try:
        async with anchor_reader(target.rpc_url, deployment=target.deployment) as reader:
            report = await averify_passport(
                document, reader, require_anchored=not args.allow_pending
            )
    except WrongChain as err:
        message = f"not the chain this passport was anchored on: {err}"
        if args.json:
            out.write(json.dumps({"ok": False, "error": message}, indent=2) + "\n")
        else:
            out.write(f"RESULT: FAILED: {message}\n")
        return EXIT_FAILED
    if args.json:
        out.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        chain_id = target.deployment.chain_id
        out.write(
            f"chain    : {felt_to_hex(chain_id) if chain_id is not None else 'not named'}"
            f" at {target.rpc_url}\n"
            f"contract : interaction_anchor {felt_to_hex(target.deployment.address_of(ANCHOR))}"
            "\n"
        )
        out.write(render_text(report) + "\n")
    return EXIT_OK if report.ok else EXIT_FAILED


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    default_gateway: str = DEFAULT_GATEWAY,
) -> int:
    """``keiko passport verify ...`` (argv without the ``passport verify`` words)."""
    stdout = out or sys.stdout
    args = build_parser(default_gateway).parse_args(list(argv) if argv is not None else None)
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
            f"error: reading the chain at {args.rpc or 'the RPC URL of the export'}: "
            f"{type(err).__name__}: {err}",
            file=sys.stderr,
        )
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
