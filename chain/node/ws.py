"""The WebSocket API of Starknet JSON-RPC 0.10 (``starknet_ws_api.json``) at ``/ws``.

Over one connection a client may call any JSON-RPC method and open subscriptions:

* ``starknet_subscribeNewHeads(block_id?)``: the header of every block from ``block_id``
  (default ``latest``, at most 1024 blocks back) to the latest, then of each new block;
* ``starknet_subscribeEvents(from_address?, keys?, block_id?, finality_status?)``: the
  matching events the same way;
* ``starknet_subscribeTransactionStatus(transaction_hash)``: the current status if the
  node knows the transaction, then each change (instant mining: ACCEPTED_ON_L2 once mined);
* ``starknet_subscribeNewTransactions(finality_status?, sender_address?, tags?)`` and
  ``starknet_subscribeNewTransactionReceipts(finality_status?, sender_address?)``: each
  new transaction (receipt) whose status is asked for (default ``[ACCEPTED_ON_L2]``;
  transactions are mined the moment they arrive, so nothing is ever PRE_CONFIRMED);
* ``starknet_unsubscribe(subscription_id)``.

Notifications are built on the node's thread when a block is mined (the node calls
:meth:`WsHub.on_block`) and queued to each connection; a subscription's own backlog and its
answer always precede its first live notification. A connection whose queue overflows
(a client that stopped reading) is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from chain.node import errors, rpc
from chain.node.blocks import keys_match
from chain.node.codec import BlockId, parse_block_id, parse_felt, parse_felt_list
from chain.node.errors import RpcError, invalid_params, invalid_request, parse_error
from chain.node.history import MAX_EVENT_KEYS
from chain.node.node import DevNode
from chain.node.read_api import with_proof_facts
from chain.node.store import StoredBlock, StoredTx

log = logging.getLogger("keikochain.ws")

MAX_BLOCKS_BACK = 1024
MAX_ADDRESSES = 128
MAX_SUBSCRIPTIONS = 64
MAX_QUEUE = 10_000
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
ACCEPTED = "ACCEPTED_ON_L2"
STATUSES = ("RECEIVED", "CANDIDATE", "PRE_CONFIRMED", ACCEPTED)

Message = dict[str, Any]


@dataclass
class Connection:
    queue: asyncio.Queue[Message | None]
    loop: asyncio.AbstractEventLoop
    subscriptions: set[str] = field(default_factory=set)
    closed: bool = False

    def push(self, message: Message | None) -> None:
        """From any thread: queue a message (``None`` closes the connection)."""

        def put() -> None:
            if self.closed:
                return
            try:
                self.queue.put_nowait(message)
            except asyncio.QueueFull:
                self.closed = True
                log.warning("closing a WebSocket client that stopped reading")
                with contextlib.suppress(asyncio.QueueFull):
                    self.queue.put_nowait(None)

        self.loop.call_soon_threadsafe(put)


@dataclass
class Subscription:
    id: str
    connection: Connection
    method: str  # the notification method
    matcher: Callable[[StoredBlock, list[StoredTx], DevNode], list[Any]]
    ready: bool = False
    held: list[Any] = field(default_factory=list)

    def notification(self, result: Any) -> Message:
        return {
            "jsonrpc": "2.0",
            "method": self.method,
            "params": {"subscription_id": self.id, "result": result},
        }


def header_json(node: DevNode, block: StoredBlock) -> dict[str, Any]:
    """``BLOCK_HEADER`` of a mined block."""
    body = node.block_json(BlockId(number=block.number), "hashes")
    body.pop("transactions", None)
    body.pop("status", None)
    return body


def _addresses(p: dict[str, Any], key: str) -> set[int] | None:
    value = p.get(key)
    if value is None:
        return None
    addresses = parse_felt_list(value if isinstance(value, list) else [value], key)
    if len(addresses) > MAX_ADDRESSES:
        raise errors.too_many_addresses_in_filter(MAX_ADDRESSES)
    return set(addresses)


def _statuses(p: dict[str, Any], allowed: tuple[str, ...]) -> set[str]:
    value = p.get("finality_status")
    if value is None:
        return {ACCEPTED}
    items = value if isinstance(value, list) else [value]
    if any(s not in allowed for s in items):
        raise invalid_params(f"finality_status: expected values among {', '.join(allowed)}")
    return set(items)


class WsHub:
    """Subscriptions of every connection, fed by the node's new blocks."""

    def __init__(self, node: DevNode, executor: ThreadPoolExecutor) -> None:
        self.node = node
        self.executor = executor
        self._lock = threading.Lock()
        self._subscriptions: dict[str, Subscription] = {}
        self._ids = itertools.count(1)
        node.add_listener(self.on_block)

    # ------------------------------------------------------------ node thread

    def on_block(self, block: StoredBlock, txs: list[StoredTx]) -> None:
        with self._lock:
            subscriptions = list(self._subscriptions.values())
        for sub in subscriptions:
            results = sub.matcher(block, txs, self.node)
            if not results:
                continue
            with self._lock:
                if not sub.ready:
                    sub.held += results
                    continue
            for result in results:
                sub.connection.push(sub.notification(result))

    def _subscribe(
        self,
        connection: Connection,
        method: str,
        matcher: Callable[[StoredBlock, list[StoredTx], DevNode], list[Any]],
        backlog: list[Any],
    ) -> tuple[Subscription, list[Any]]:
        if len(connection.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise invalid_request(f"at most {MAX_SUBSCRIPTIONS} subscriptions per connection")
        sub = Subscription(str(next(self._ids)), connection, method, matcher)
        with self._lock:
            self._subscriptions[sub.id] = sub
        connection.subscriptions.add(sub.id)
        return sub, backlog

    def _from_block(self, p: dict[str, Any]) -> list[StoredBlock]:
        """Mined blocks from ``block_id`` (``SUBSCRIPTION_BLOCK_ID``) to the latest."""
        raw = p.get("block_id", "latest")
        if raw in ("pre_confirmed", "pending", "l1_accepted"):
            raise invalid_params("block_id: a subscription starts at latest, a number or a hash")
        start = self.node.resolve_block(parse_block_id(raw, "block_id"))
        latest = self.node.latest_block_number()
        if latest - start.number > MAX_BLOCKS_BACK:
            raise errors.too_many_blocks_back()
        blocks = [self.node.store.block_by_number(n) for n in range(start.number, latest + 1)]
        return [b for b in blocks if b is not None]

    def subscribe(self, connection: Connection, name: str, p: dict[str, Any]) -> tuple[Any, ...]:
        """Runs on the node's thread (reads the chain): registers the subscription and
        returns it with the notifications it owes for past blocks."""
        node = self.node
        if name == "starknet_subscribeNewHeads":
            blocks = self._from_block(p)
            return self._subscribe(
                connection,
                "starknet_subscriptionNewHeads",
                lambda block, txs, n: [header_json(n, block)],
                [header_json(node, b) for b in blocks],
            )
        if name == "starknet_subscribeEvents":
            addresses = _addresses(p, "from_address")
            keys_raw = p.get("keys") or []
            if not isinstance(keys_raw, list):
                raise invalid_params("keys: expected a list of lists of felts")
            keys = [parse_felt_list(k, f"keys[{i}]") for i, k in enumerate(keys_raw)]
            if sum(len(k) for k in keys) > MAX_EVENT_KEYS:
                raise errors.too_many_keys_in_filter(MAX_EVENT_KEYS)
            statuses = _statuses(p, ("PRE_CONFIRMED", ACCEPTED))

            def events(block: StoredBlock, txs: list[StoredTx], n: DevNode) -> list[Any]:
                if ACCEPTED not in statuses:
                    return []
                out = []
                for tx in txs:
                    for index, event in enumerate(tx.receipt["events"]):
                        address = int(event["from_address"], 16)
                        event_keys = [int(k, 16) for k in event["keys"]]
                        if addresses is not None and address not in addresses:
                            continue
                        if not keys_match(keys, event_keys):
                            continue
                        out.append(
                            {
                                **event,
                                "block_hash": hex(block.hash),
                                "block_number": block.number,
                                "transaction_hash": hex(tx.hash),
                                "transaction_index": tx.index,
                                "event_index": index,
                                "finality_status": ACCEPTED,
                            }
                        )
                return out

            blocks = self._from_block(p)
            backlog = [e for b in blocks for e in events(b, node.store.block_txs(b.number), node)]
            return self._subscribe(connection, "starknet_subscriptionEvents", events, backlog)
        if name == "starknet_subscribeTransactionStatus":
            if "transaction_hash" not in p:
                raise invalid_params("transaction_hash: missing")
            tx_hash = parse_felt(p["transaction_hash"], "transaction_hash")

            def status(block: StoredBlock, txs: list[StoredTx], n: DevNode) -> list[Any]:
                if not any(tx.hash == tx_hash for tx in txs):
                    return []
                return [{"transaction_hash": hex(tx_hash), "status": n.status_json(tx_hash)}]

            backlog = []
            if node.store.tx(tx_hash) is not None:
                backlog = [{"transaction_hash": hex(tx_hash), "status": node.status_json(tx_hash)}]
            return self._subscribe(
                connection, "starknet_subscriptionTransactionStatus", status, backlog
            )
        if name in (
            "starknet_subscribeNewTransactions",
            "starknet_subscribeNewTransactionReceipts",
        ):
            senders = _addresses(p, "sender_address")
            receipts = name == "starknet_subscribeNewTransactionReceipts"
            statuses = _statuses(p, ("PRE_CONFIRMED", ACCEPTED) if receipts else STATUSES)
            tags = p.get("tags") or []
            if not isinstance(tags, list) or any(t != "INCLUDE_PROOF_FACTS" for t in tags):
                raise invalid_params("tags: expected a list of INCLUDE_PROOF_FACTS")

            def new_txs(block: StoredBlock, txs: list[StoredTx], n: DevNode) -> list[Any]:
                if ACCEPTED not in statuses:
                    return []
                out = []
                for tx in txs:
                    sender = tx.tx.get("sender_address") or tx.receipt.get("contract_address")
                    if senders is not None and (sender is None or int(sender, 16) not in senders):
                        continue
                    if receipts:
                        out.append(
                            {
                                **tx.receipt,
                                "block_hash": hex(block.hash),
                                "block_number": block.number,
                            }
                        )
                    else:
                        out.append(
                            {**with_proof_facts(tx.tx, set(tags)), "finality_status": ACCEPTED}
                        )
                return out

            method = (
                "starknet_subscriptionNewTransactionReceipts"
                if receipts
                else "starknet_subscriptionNewTransaction"
            )
            return self._subscribe(connection, method, new_txs, [])
        raise errors.method_not_found(name)

    # ------------------------------------------------------------ loop thread

    def activate(self, sub: Subscription) -> None:
        """After the subscription's answer and backlog are queued: release what came in
        meanwhile, then go live."""
        with self._lock:
            held, sub.held = sub.held, []
            sub.ready = True
        for result in held:
            sub.connection.push(sub.notification(result))

    def unsubscribe(self, connection: Connection, subscription_id: Any) -> bool:
        if not isinstance(subscription_id, str | int) or str(subscription_id) not in (
            connection.subscriptions
        ):
            raise errors.invalid_subscription_id()
        sid = str(subscription_id)
        with self._lock:
            self._subscriptions.pop(sid, None)
        connection.subscriptions.discard(sid)
        return True

    def drop(self, connection: Connection) -> None:
        with self._lock:
            for sid in connection.subscriptions:
                self._subscriptions.pop(sid, None)
        connection.subscriptions.clear()

    # ------------------------------------------------------------- endpoint

    async def _answer(self, connection: Connection, request: Any) -> None:
        loop = asyncio.get_running_loop()
        if not isinstance(request, dict) or request.get("method") not in rpc.WS_METHODS:
            response = await loop.run_in_executor(
                self.executor, rpc.handle_payload, self.node, request
            )
            if response is not None:
                connection.push(response)
            return
        req_id = request.get("id")
        name = request["method"]
        params = request.get("params") or {}
        try:
            if isinstance(params, list):
                params = _positional(name, params)
            if not isinstance(params, dict):
                raise invalid_params("params must be an array or an object")
            if name == "starknet_unsubscribe":
                if "subscription_id" not in params:
                    raise invalid_params("subscription_id: missing")
                result: Any = self.unsubscribe(connection, params["subscription_id"])
                connection.push({"jsonrpc": "2.0", "id": req_id, "result": result})
                return
            sub, backlog = await loop.run_in_executor(
                self.executor, self.subscribe, connection, name, params
            )
        except RpcError as err:
            connection.push({"jsonrpc": "2.0", "id": req_id, "error": err.to_json()})
            return
        connection.push({"jsonrpc": "2.0", "id": req_id, "result": sub.id})
        for result in backlog:
            connection.push(sub.notification(result))
        # push() goes through call_soon_threadsafe: release held ones after those.
        loop.call_soon(self.activate, sub)

    async def serve(self, websocket: WebSocket) -> None:
        await websocket.accept()
        loop = asyncio.get_running_loop()
        connection = Connection(asyncio.Queue(MAX_QUEUE), loop)

        async def sender() -> None:
            while (message := await connection.queue.get()) is not None:
                await websocket.send_text(json.dumps(message))
            await websocket.close(code=1008)

        sending = asyncio.create_task(sender())
        try:
            while not sending.done():
                text = await websocket.receive_text()
                if len(text) > MAX_MESSAGE_BYTES:
                    connection.push(
                        {
                            "jsonrpc": "2.0",
                            "id": None,
                            "error": invalid_request("message too large").to_json(),
                        }
                    )
                    continue
                try:
                    request = json.loads(text)
                except ValueError as exc:
                    connection.push(
                        {
                            "jsonrpc": "2.0",
                            "id": None,
                            "error": parse_error(str(exc)[:200]).to_json(),
                        }
                    )
                    continue
                await self._answer(connection, request)
        except WebSocketDisconnect:
            pass
        finally:
            connection.closed = True
            self.drop(connection)
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sending


_POSITIONAL = {
    "starknet_subscribeNewHeads": ("block_id",),
    "starknet_subscribeEvents": ("from_address", "keys", "block_id", "finality_status"),
    "starknet_subscribeTransactionStatus": ("transaction_hash",),
    "starknet_subscribeNewTransactions": ("finality_status", "sender_address", "tags"),
    "starknet_subscribeNewTransactionReceipts": ("finality_status", "sender_address"),
    "starknet_unsubscribe": ("subscription_id",),
}


def _positional(name: str, params: list[Any]) -> dict[str, Any]:
    names = _POSITIONAL[name]
    if len(params) > len(names):
        raise invalid_params(f"{name} takes at most {len(names)} params")
    return {k: v for k, v in zip(names, params, strict=False) if v is not None}
