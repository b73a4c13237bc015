"""Server-side verification over GraphQL: entries checked against Keikochain, a page at a
time, and the per-request DataLoader behind `PassportEntry.verification` (one
VerifyPassport call per passport and page, not one VerifyEntry per entry)."""

from __future__ import annotations

import strawberry
from strawberry.dataloader import DataLoader

from gateway.context import Info
from gateway.errors import rpc
from gateway.schema.passport.common import (
    MAX_VERIFICATION_FIRST,
    PageInfo,
    _first,
    _Scope,
    passport_client,
)
from services.api.keiko.passport import v1 as pb


@strawberry.type(description="The result of checking one entry against Keikochain.")
class EntryVerification:
    statement_id: strawberry.ID
    signature_valid: bool
    inclusion_valid: bool
    root_on_chain: bool = strawberry.field(description="The root was read from the chain.")
    verified: bool
    reason: str = strawberry.field(description="Why it failed (first failing check).")
    block_number: int
    tx_hash: str
    status: str = strawberry.field(description="verified, failed or pending.")
    key_holder: str = strawberry.field(
        description="Whose key signed it: the author, or the learner for a legacy entry; "
        "empty when the learner's identity is not disclosed."
    )
    key_registration: str = strawberry.field(
        description="What the chain's key directory says about the signing key: registered "
        "on chain, revoked on chain, not registered on chain, or not readable."
    )
    key_custody: str = strawberry.field(description="custodial, device or service, if bound.")
    key_registered_block: int = strawberry.field(description="Block that bound the key.")

    @staticmethod
    def from_pb(v: pb.EntryVerification) -> EntryVerification:
        status = "verified" if v.verified else ("failed" if v.reason else "pending")
        return EntryVerification(
            key_holder=v.key_holder,
            key_registration=v.key_registration,
            key_custody=v.key_custody,
            key_registered_block=v.key_registered_block,
            statement_id=strawberry.ID(v.statement_id),
            signature_valid=v.signature_valid,
            inclusion_valid=v.inclusion_valid,
            root_on_chain=v.root_on_chain,
            verified=v.verified,
            reason=v.reason,
            block_number=v.block_number,
            tx_hash=v.tx_hash,
            status=status,
        )


@strawberry.type
class PassportVerification:
    entries: list[EntryVerification]
    verified_count: int
    failed_count: int
    pending_count: int
    chain_id: str
    page_info: PageInfo


def verification_loader(info: Info) -> DataLoader[tuple[_Scope, str], EntryVerification | None]:
    found: DataLoader[tuple[_Scope, str], EntryVerification | None] | None = getattr(
        info.context, "_passport_verifications", None
    )
    if found is not None:
        return found
    client = passport_client(info)

    async def load(keys: list[tuple[_Scope, str]]) -> list[EntryVerification | None]:
        results: dict[tuple[_Scope, str], EntryVerification] = {}
        for scope in dict.fromkeys(k[0] for k in keys):
            wanted = {k[1] for k in keys if k[0] == scope}
            token = ""
            while wanted:
                reply = await rpc(
                    client.verify_passport(
                        pb.VerifyPassportRequest(
                            passport_id=scope.passport_id,
                            share_token=scope.share_token,
                            page_size=MAX_VERIFICATION_FIRST,
                            page_token=token,
                        )
                    )
                )
                for v in reply.entries:
                    results[(scope, v.statement_id)] = EntryVerification.from_pb(v)
                    wanted.discard(v.statement_id)
                token = reply.next_page_token
                if not token:
                    break
        return [results.get(k) for k in keys]

    loader: DataLoader[tuple[_Scope, str], EntryVerification | None] = DataLoader(load_fn=load)
    info.context._passport_verifications = loader  # type: ignore[attr-defined]
    return loader


@strawberry.type
class VerificationQuery:
    @strawberry.field(description="Verify a page of a passport against Keikochain.")
    async def passport_verification(
        self,
        info: Info,
        passport_id: strawberry.ID | None = None,
        share_token: str | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> PassportVerification:
        reply = await rpc(
            passport_client(info).verify_passport(
                pb.VerifyPassportRequest(
                    passport_id=str(passport_id or ""),
                    share_token=share_token or "",
                    page_size=_first(first, MAX_VERIFICATION_FIRST),
                    page_token=after or "",
                )
            )
        )
        token = reply.next_page_token
        return PassportVerification(
            entries=[EntryVerification.from_pb(v) for v in reply.entries],
            verified_count=reply.verified_count,
            failed_count=reply.failed_count,
            pending_count=reply.pending_count,
            chain_id=reply.chain_id,
            page_info=PageInfo(has_next_page=bool(token), end_cursor=token or None),
        )
