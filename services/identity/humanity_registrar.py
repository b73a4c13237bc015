"""Registering a proof of humanity on chain: the registrar port the humanity service calls
(`HumanityRegistrar`, answering a `Registration` or raising `RegistrationRefused`) and
its production adapter, the chain translator's RegisterHumanity RPC
(`TranslatorRegistrar`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import grpc

from services.api.keiko.chain import v1 as chain_pb
from services.api.keiko.common import v1 as common_pb
from services.kit.grpc.client import ChannelOpener, LazyChannel, open_channel


@dataclass(frozen=True)
class Registration:
    """The registrar's answer: ``accepted`` once the transaction is accepted on chain;
    ``tx_hash`` is the real transaction hash when one was sent ("" otherwise)."""

    accepted: bool
    tx_hash: str = ""


class RegistrationRefused(Exception):
    """The chain (or the translator) refused the registration for good."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class HumanityRegistrar(Protocol):
    """Registers ``(commitment, ed25519_public_key)`` in the humanity registry for a user.

    Must be idempotent per user and commitment (a retry resumes or returns the first
    outcome). Raises :class:`RegistrationRefused` for a permanent refusal; any other
    exception is transient (the registration stays pending and is retried)."""

    async def register(
        self, *, user_id: str, commitment: str, ed25519_public_key: str, request_id: str
    ) -> Registration: ...


# Refusals that a retry cannot fix; anything else (UNAVAILABLE, FAILED_PRECONDITION "no free
# registrant account", UNIMPLEMENTED while the translator is not deployed...) is retried.
_PERMANENT = frozenset({grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.INVALID_ARGUMENT})


class TranslatorRegistrar:
    """:class:`HumanityRegistrar` over the chain translator's RegisterHumanity RPC.

    The translator dedicates one registrant account to each user (the registry allows
    one registration per calling account) and is idempotent per user and commitment,
    also when a retry overlaps its first call (chain/translator/humanity.py).
    It accepts trusted callers only: ``token`` returns an access token with the
    ``service`` role (the identity service mints its own with its TokenIssuer)."""

    def __init__(
        self,
        target: str,
        token: Callable[[], str],
        *,
        timeout: float = 120.0,
        channel: grpc.aio.Channel | None = None,
        connect: ChannelOpener = open_channel,
    ) -> None:
        self.translator = LazyChannel(target, connect, channel)
        self._token = token
        self.timeout = timeout

    async def register(
        self, *, user_id: str, commitment: str, ed25519_public_key: str, request_id: str
    ) -> Registration:
        client = self.translator.stub(
            chain_pb.ChainServiceStub, access_token=self._token(), timeout=self.timeout
        )
        try:
            reply = await client.register_humanity(
                chain_pb.RegisterHumanityRequest(
                    user_id=user_id,
                    commitment=commitment,
                    ed25519_public_key=ed25519_public_key,
                    request_id=request_id,
                )
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in _PERMANENT:
                raise RegistrationRefused(f"{error.code().name}: {error.details()}") from None
            raise
        if reply.status == common_pb.AnchorStatus.ANCHORED:
            return Registration(accepted=True, tx_hash=reply.tx_hash)
        if reply.status == common_pb.AnchorStatus.FAILED:
            raise RegistrationRefused("the translator reports the registration failed")
        return Registration(accepted=False, tx_hash=reply.tx_hash)

    async def close(self) -> None:
        await self.translator.close()
