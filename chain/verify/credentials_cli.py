"""``keiko passport verify`` for a W3C credential or presentation (JSON file or URL).

The credential's evidence names the chain and the ``interaction_anchor`` contract; the
node at ``--rpc`` must answer with that chain id and the contract there must run the class
this repository publishes (as for an export). Its status list is fetched from the URL the
credential names (``--no-status`` skips it: the report then says "unchecked"); a
presentation's holder proof is checked against ``--challenge`` and ``--domain``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, TextIO

from chain.client import Deployment
from chain.client.deployment import ANCHOR, ContractRef
from chain.credentials.learning_credentials import parse_credential
from chain.credentials.presentations import is_presentation, parse_presentation
from chain.translator.felts import felt_to_hex
from chain.verify.credentials import (
    ChainExpectation,
    CredentialReport,
    PresentationReport,
    load_document,
    verify_document,
)
from chain.verify.render import render_entry
from services.kit.errors import ValidationError

MAX_STATUS_LIST_BYTES = 8 * 1024 * 1024
_TYPES = ("VerifiableCredential", "VerifiablePresentation")


def is_credential_document(raw: bytes) -> bool:
    """Is ``raw`` a JSON-LD credential or presentation (rather than a passport export)?"""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return False
    if not isinstance(data, Mapping) or "@context" not in data:
        return False
    types = data.get("type")
    return any(t in _TYPES for t in (types if isinstance(types, list) else [types]))


class HttpStatusLists:
    """Fetches status list credentials over HTTP(S) (what any verifier does)."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout

    def _get(self, url: str) -> Mapping[str, Any]:
        if not url.startswith(("https://", "http://")):
            raise ValueError("not an http(s) URL")
        request = urllib.request.Request(
            url, headers={"Accept": "application/vc+ld+json, application/json"}
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            body = response.read(MAX_STATUS_LIST_BYTES + 1)
        if len(body) > MAX_STATUS_LIST_BYTES:
            raise ValueError("the status list is too large")
        data = json.loads(body)
        if not isinstance(data, Mapping):
            raise ValueError("not a JSON object")
        return data

    async def fetch(self, url: str) -> Mapping[str, Any]:
        try:
            return await asyncio.to_thread(self._get, url)
        except urllib.error.HTTPError as err:
            raise LookupError(f"HTTP {err.code}") from None


def chain_of(document: Mapping[str, Any]) -> ChainExpectation:
    """The chain and contract the (first) credential's evidence names."""
    credentials = (
        parse_presentation(document).credentials if is_presentation(document) else (document,)
    )
    for credential in credentials:
        try:
            records = parse_credential(credential).records
        except ValidationError:
            continue
        for record in records:
            if record.anchor is not None:
                return ChainExpectation(record.anchor.chain_id, record.anchor.contract)
    raise ValidationError("evidence", "names no Keikochain anchor to read")


def _render_credential(report: CredentialReport, indent: str = "") -> list[str]:
    verdict = "VERIFIED" if report.ok else "FAILED"
    lines = [
        f"{indent}credential {report.id or '(no id)'} [{report.kind or 'unknown'}]: {verdict}",
        f"{indent}  issuer : {report.issuer}",
        f"{indent}  subject: {report.subject}",
        f"{indent}  status : {report.status.value}",
    ]
    lines += [f"{indent}  proof  : {p}" for p in report.proofs]
    lines += [f"{indent}  - {p}" for p in report.problems]
    for entry in report.records:
        lines += [f"{indent}{line}" for line in render_entry(entry)]
    return lines


def render_report(report: CredentialReport | PresentationReport) -> str:
    lines = ["Keiko credential verification", "  roots are read from the chain", ""]
    if isinstance(report, PresentationReport):
        lines.append(f"presentation by {report.holder}")
        lines += [f"  proof  : {p}" for p in report.proofs]
        if not report.challenge_checked:
            lines.append("  challenge and domain not checked (pass --challenge and --domain)")
        lines += [f"  - {p}" for p in report.problems]
        for credential in report.credentials:
            lines += _render_credential(credential, "  ")
    else:
        lines += _render_credential(report)
    lines.append("")
    lines.append("RESULT: VERIFIED" if report.ok else "RESULT: FAILED")
    return "\n".join(lines) + "\n"


async def run_credential(args: argparse.Namespace, raw: bytes, out: TextIO) -> int:
    """Verify a credential or presentation; returns the exit code (0 ok, 1 failed)."""
    from chain.verify.cli import (
        EXIT_FAILED,
        EXIT_OK,
        CliError,
        WrongChain,
        anchor_reader,
        published_anchor_class_hash,
    )

    document = load_document(raw)
    chain = chain_of(document)
    if not args.rpc:
        raise CliError("a credential names no RPC URL: pass --rpc <Starknet JSON-RPC URL>")
    assert chain.contract is not None
    deployment = Deployment(
        contracts={ANCHOR: ContractRef(chain.contract, published_anchor_class_hash())},
        chain_id=chain.chain_id,
    )
    status = None if args.no_status else HttpStatusLists()
    try:
        async with anchor_reader(args.rpc, deployment=deployment) as reader:
            report = await verify_document(
                document,
                reader,
                status_source=status,
                chain=chain,
                challenge=args.challenge,
                domain=args.domain,
            )
    except WrongChain as err:
        out.write(f"RESULT: FAILED: not the chain the credential was anchored on: {err}\n")
        return EXIT_FAILED
    if args.json:
        out.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        assert chain.chain_id is not None
        out.write(
            f"chain    : {felt_to_hex(chain.chain_id)} at {args.rpc}\n"
            f"contract : interaction_anchor {felt_to_hex(chain.contract)}\n"
        )
        out.write(render_report(report))
    return EXIT_OK if report.ok else EXIT_FAILED


__all__ = [
    "HttpStatusLists",
    "chain_of",
    "is_credential_document",
    "render_report",
    "run_credential",
]
