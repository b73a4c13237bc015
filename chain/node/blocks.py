"""Block headers, commitments and the JSON of state diffs and events.

Commitments are Poseidon hashes over a block's contents and ``new_root`` chains the
state-diff commitments: Keikochain's own scheme (there is no Patricia trie),
deterministic and tamper-evident.
"""

from __future__ import annotations

from typing import Any

from poseidon_py.poseidon_hash import poseidon_hash_many

from chain.node.codec import hex_list
from chain.node.fees import block_prices
from chain.node.store import ChainStore, StateDiff, StoredBlock
from chain.vm import Event

STARKNET_VERSION = "0.14.0"
SEQUENCER_ADDRESS = int.from_bytes(b"KEIKO_SEQUENCER", "big")
BLOCK_HASH_TAG = int.from_bytes(b"KEIKO_BLOCK_V0", "big")


def felts_hash(values: list[int]) -> int:
    return poseidon_hash_many(values) if values else 0


def event_json(event: Event) -> dict[str, Any]:
    return {
        "from_address": hex(event.from_address),
        "keys": hex_list(event.keys),
        "data": hex_list(event.data),
    }


def block_header(
    number: int,
    parent: StoredBlock | None,
    timestamp: int,
    tx_hashes: list[int],
    receipts: list[dict[str, Any]],
    events: list[Event],
    diff: StateDiff,
) -> tuple[dict[str, Any], int]:
    """Header fields and block hash. Commitments are Poseidon hashes over the block's
    contents and ``new_root`` chains the state-diff commitments: Keikochain's own
    scheme (there is no Patricia trie), deterministic and tamper-evident."""
    old_root = int(parent.header["new_root"], 16) if parent else 0
    diff_body = state_diff_json(diff)
    state_diff_commitment = felts_hash(
        [
            *(x for (a, k), v in sorted(diff.storage.items()) for x in (a, k, v)),
            *(x for a, n in sorted(diff.nonces.items()) for x in (a, n)),
            *(x for a, c in sorted(diff.class_hashes.items()) for x in (a, c)),
            *(c.class_hash for c in diff.declared),
        ]
    )
    new_root = poseidon_hash_many([old_root, state_diff_commitment])
    event_commitment = felts_hash(
        [
            poseidon_hash_many([e.from_address, felts_hash(e.keys), felts_hash(e.data)])
            for e in events
        ]
    )
    receipt_commitment = felts_hash(
        [
            poseidon_hash_many(
                [
                    int(r["transaction_hash"], 16),
                    int(r["actual_fee"]["amount"], 16),
                    0 if r["execution_status"] == "SUCCEEDED" else 1,
                ]
            )
            for r in receipts
        ]
    )
    transaction_commitment = felts_hash(tx_hashes)
    parent_hash = parent.hash if parent else 0
    block_hash = poseidon_hash_many(
        [
            BLOCK_HASH_TAG,
            number,
            new_root,
            SEQUENCER_ADDRESS,
            timestamp,
            len(tx_hashes),
            transaction_commitment,
            len(events),
            event_commitment,
            receipt_commitment,
            state_diff_commitment,
            parent_hash,
        ]
    )
    header = {
        "block_hash": hex(block_hash),
        "parent_hash": hex(parent_hash),
        "block_number": number,
        "new_root": hex(new_root),
        "timestamp": timestamp,
        "sequencer_address": hex(SEQUENCER_ADDRESS),
        **block_prices(),
        "l1_da_mode": "BLOB",
        "starknet_version": STARKNET_VERSION,
        "event_commitment": hex(event_commitment),
        "transaction_commitment": hex(transaction_commitment),
        "receipt_commitment": hex(receipt_commitment),
        "state_diff_commitment": hex(state_diff_commitment),
        "event_count": len(events),
        "transaction_count": len(tx_hashes),
        "state_diff_length": len(diff),
        "_old_root": hex(old_root),
        "_state_diff": diff_body,
    }
    return header, block_hash


def commit_genesis(store: ChainStore, diff: StateDiff, timestamp: int) -> StoredBlock:
    """Write block 0 holding the genesis state (no transactions)."""
    header, block_hash = block_header(0, None, timestamp, [], [], [], diff)
    block = StoredBlock(0, block_hash, header, [])
    store.commit_block(block, [], [], diff)
    return block


def keys_match(flt: list[list[int]], keys: list[int]) -> bool:
    for position, allowed in enumerate(flt):
        if not allowed:
            continue
        if position >= len(keys) or keys[position] not in allowed:
            return False
    return True


def state_diff_json(diff: StateDiff) -> dict[str, Any]:
    by_address: dict[int, list[dict[str, str]]] = {}
    for (address, key), value in sorted(diff.storage.items()):
        by_address.setdefault(address, []).append({"key": hex(key), "value": hex(value)})
    return {
        "storage_diffs": [
            {"address": hex(a), "storage_entries": entries} for a, entries in by_address.items()
        ],
        "deprecated_declared_classes": [],
        "declared_classes": [
            {"class_hash": hex(c.class_hash), "compiled_class_hash": hex(c.compiled_class_hash)}
            for c in diff.declared
        ],
        "deployed_contracts": [
            {"address": hex(a), "class_hash": hex(c)} for a, c in sorted(diff.class_hashes.items())
        ],
        "replaced_classes": [],
        "nonces": [
            {"contract_address": hex(a), "nonce": hex(n)} for a, n in sorted(diff.nonces.items())
        ],
    }


def filter_state_diff(body: dict[str, Any], addresses: set[int]) -> dict[str, Any]:
    """``getStateUpdate``'s ``contract_addresses``: only those contracts' entries (class
    declarations are not filtered, as the spec says)."""

    def keep(item: dict[str, Any], key: str) -> bool:
        return int(item[key], 16) in addresses

    return {
        **body,
        "storage_diffs": [d for d in body["storage_diffs"] if keep(d, "address")],
        "deployed_contracts": [d for d in body["deployed_contracts"] if keep(d, "address")],
        "replaced_classes": [d for d in body["replaced_classes"] if keep(d, "contract_address")],
        "nonces": [d for d in body["nonces"] if keep(d, "contract_address")],
    }
