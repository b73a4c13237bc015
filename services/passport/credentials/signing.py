"""Where passport credentials get their proofs: the chain translator, which holds the keys.

:class:`CredentialSigning` is the port; :class:`TranslatorSigning` calls the translator's
``SignCredential`` (and ``GetChainInfo`` for the chain id and anchor contract the evidence
names) with the passport's own service token: the translator then checks that each key
signs only what its holder stands behind. The passport mints that token with the platform's
JWT key when it runs beside identity; without it, issuing answers UNAVAILABLE.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from chain.client.deployment import ANCHOR
from chain.translator.credentials import CredentialPurpose
from chain.translator.felts import encode_short_string, parse_felt
from services.api.keiko.chain import v1 as chain_pb
from services.kit.auth import Principal
from services.kit.errors import (
    DomainError,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    Unavailable,
    ValidationError,
)
from services.kit.grpc.client import ChannelOpener, LazyChannel, open_channel

SERVICE_PRINCIPAL = Principal("keiko-passport", frozenset({"service"}))
SIGN_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class AnchorRef:
    """The chain and the interaction_anchor contract anchors are on."""

    chain_id: int
    contract: int


class CredentialSigning(Protocol):
    async def sign(
        self,
        purpose: CredentialPurpose,
        holder_id: str,
        learner_id: str,
        document: Mapping[str, Any],
        *,
        challenge: str = "",
        domain: str = "",
    ) -> dict[str, Any]:
        """The document with its proof set (the translator writes the DIDs)."""
        ...

    async def anchor_ref(self) -> AnchorRef: ...


_PURPOSES = {p: chain_pb.CredentialPurpose.from_string(p.name) for p in CredentialPurpose}


def domain_error(error: grpc.aio.AioRpcError) -> DomainError:
    """The translator's refusal as the passport's own error (same code, same message)."""
    details = error.details() or ""
    code = error.code()
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return PermissionDenied(details)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return FailedPrecondition(details)
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(details)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        field, _, reason = details.partition(": ")
        return ValidationError(field if reason else "document", reason or details)
    return Unavailable(f"the chain translator could not sign: {code.name}: {details}")


class TranslatorSigning:
    def __init__(
        self,
        target: str,
        token: Callable[[], str],
        channel: grpc.aio.Channel | None = None,
        *,
        connect: ChannelOpener = open_channel,
    ) -> None:
        self.translator = LazyChannel(target, connect, channel)
        self._token = token
        self._anchor: AnchorRef | None = None

    def _client(self, timeout: float) -> Any:
        return self.translator.stub(
            chain_pb.ChainServiceStub, access_token=self._token(), timeout=timeout
        )

    async def sign(
        self,
        purpose: CredentialPurpose,
        holder_id: str,
        learner_id: str,
        document: Mapping[str, Any],
        *,
        challenge: str = "",
        domain: str = "",
    ) -> dict[str, Any]:
        request = chain_pb.SignCredentialRequest(
            purpose=_PURPOSES[purpose],
            holder_id=holder_id,
            learner_id=learner_id,
            document_json=json.dumps(document, ensure_ascii=False),
            challenge=challenge,
            domain=domain,
        )
        try:
            reply = await self._client(SIGN_TIMEOUT_S).sign_credential(request)
        except grpc.aio.AioRpcError as error:
            raise domain_error(error) from None
        signed: dict[str, Any] = json.loads(reply.document_json)
        return signed

    async def anchor_ref(self) -> AnchorRef:
        if self._anchor is None:
            try:
                info = await self._client(10.0).get_chain_info(chain_pb.GetChainInfoRequest())
            except grpc.aio.AioRpcError as error:
                raise domain_error(error) from None
            contract = next((c.address for c in info.contracts if c.name in ("anchor", ANCHOR)), "")
            if not info.chain_id or not contract:
                raise Unavailable("the chain translator names no chain id or anchor contract")
            self._anchor = AnchorRef(_chain_id(info.chain_id), parse_felt(contract, ANCHOR))
        return self._anchor

    async def close(self) -> None:
        await self.translator.close()


def _chain_id(text: str) -> int:
    """GetChainInfo names the chain id as a short string ("KEIKOCHAIN_DEV") or a felt."""
    if text.startswith("0x"):
        return parse_felt(text, "chain_id")
    return encode_short_string(text)


__all__ = [
    "SERVICE_PRINCIPAL",
    "AnchorRef",
    "CredentialSigning",
    "TranslatorSigning",
    "domain_error",
]
