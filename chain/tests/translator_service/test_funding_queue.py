"""The operator's funding transfers are group-committed: those asked for while one
funding transaction is in flight travel together in the next, every caller waits for the
receipt of the transaction carrying its transfer, and a failure reaches each of them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from starknet_py.net.client_models import Call

from chain.client import TxResult
from chain.translator.learner_accounts import FundingQueue
from services.kit.errors import Unavailable


def transfer(to: int) -> Call:
    return Call(0x5, 0x6, [to, 1, 0])


class Operator:
    """Records each funding transaction; the first one stays in flight until released."""

    def __init__(self, *, revert: bool = False, fail: bool = False) -> None:
        self.sent: list[list[int]] = []
        self.release = asyncio.Event()
        self.in_flight = asyncio.Event()
        self.revert = revert
        self.fail = fail

    async def execute(self, calls: Sequence[Call]) -> TxResult:
        self.sent.append([call.calldata[0] for call in calls])
        if len(self.sent) == 1:
            self.in_flight.set()
            await self.release.wait()
        if self.fail:
            raise ConnectionError("node down")
        return TxResult(
            tx_hash=len(self.sent),
            block_number=len(self.sent),
            status="REVERTED" if self.revert else "SUCCEEDED",
            revert_reason="out of STRK" if self.revert else None,
            actual_fee=1,
        )


async def test_transfers_asked_during_a_transaction_go_in_the_next_one() -> None:
    operator = Operator()
    queue = FundingQueue(operator.execute, max_batch=3)
    first = asyncio.create_task(queue.transfer(transfer(1)))
    await operator.in_flight.wait()
    waiting = [asyncio.create_task(queue.transfer(transfer(to))) for to in range(2, 7)]
    await asyncio.sleep(0)
    assert not first.done() and not any(task.done() for task in waiting)
    operator.release.set()
    await asyncio.gather(first, *waiting)
    assert operator.sent == [[1], [2, 3, 4], [5, 6]]
    await queue.transfer(transfer(7))  # an idle queue sends at once
    assert operator.sent[-1] == [7]


@pytest.mark.parametrize("revert", [True, False])
async def test_a_failed_transaction_fails_every_transfer_it_carried(revert: bool) -> None:
    operator = Operator(revert=revert, fail=not revert)
    operator.release.set()
    queue = FundingQueue(operator.execute)
    results = await asyncio.gather(
        *(queue.transfer(transfer(to)) for to in (1, 2, 3)), return_exceptions=True
    )
    expected = Unavailable if revert else ConnectionError
    assert all(isinstance(result, expected) for result in results), results
