"""LazyChannel: the one channel a service keeps to another (the chain translator)."""

from __future__ import annotations

import grpc

from services.api.keiko.chain import v1 as chain_pb
from services.kit.grpc.client import LazyChannel


class _Channel:
    def __init__(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True


async def test_opens_once_on_first_use_and_closes_what_it_opened() -> None:
    opened: list[tuple[str, _Channel]] = []

    def connect(target: str) -> grpc.aio.Channel:
        channel = _Channel()
        opened.append((target, channel))
        return channel  # type: ignore[return-value]

    lazy = LazyChannel("translator:50051", connect)
    assert opened == []  # nothing at start-up
    lazy.stub(chain_pb.ChainServiceStub, access_token="t")
    lazy.stub(chain_pb.ChainServiceStub)
    assert [target for target, _ in opened] == ["translator:50051"]
    await lazy.close()
    assert opened[0][1].closed
    lazy.stub(chain_pb.ChainServiceStub)  # used again after close: a new channel
    assert len(opened) == 2


async def test_a_given_channel_stays_the_givers() -> None:
    given = _Channel()

    def connect(target: str) -> grpc.aio.Channel:
        raise AssertionError("a given channel is used, not a new one")

    lazy = LazyChannel("translator:50051", connect, given)  # type: ignore[arg-type]
    lazy.stub(chain_pb.ChainServiceStub)
    await lazy.close()
    assert not given.closed
