"""SQLite persistence of the dev chain: one database file per data directory.

Each block is written in one SQLite transaction (header, transactions, receipts,
events, state diff, newly declared classes), so a crash never leaves half a block.
State is kept twice: ``state_current`` (what the VM loads at start) and
``state_history`` (every value with the block that wrote it, for queries at older
blocks). Felts are stored as ``0x`` hex text: they do not fit SQLite's 64-bit integers.

The connection belongs to the thread that created it: the node runs every chain
operation on one worker thread.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS classes (
    class_hash TEXT PRIMARY KEY,
    compiled_class_hash TEXT NOT NULL,
    sierra TEXT NOT NULL,
    casm TEXT NOT NULL,
    block_number INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS state_current (
    kind TEXT NOT NULL,
    address TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    block_number INTEGER NOT NULL,
    PRIMARY KEY (kind, address, key)
);
CREATE TABLE IF NOT EXISTS state_history (
    kind TEXT NOT NULL,
    address TEXT NOT NULL,
    key TEXT NOT NULL,
    block_number INTEGER NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (kind, address, key, block_number)
);
CREATE TABLE IF NOT EXISTS blocks (
    number INTEGER PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    header TEXT NOT NULL,
    tx_hashes TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS transactions (
    hash TEXT PRIMARY KEY,
    block_number INTEGER NOT NULL,
    tx_index INTEGER NOT NULL,
    tx TEXT NOT NULL,
    receipt TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    block_number INTEGER NOT NULL,
    tx_hash TEXT NOT NULL,
    tx_index INTEGER NOT NULL,
    event_index INTEGER NOT NULL,
    from_address TEXT NOT NULL,
    keys TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS traces (
    hash TEXT PRIMARY KEY,
    trace TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_block ON events (block_number, id);
CREATE INDEX IF NOT EXISTS events_address ON events (from_address, id);
CREATE INDEX IF NOT EXISTS transactions_block ON transactions (block_number, tx_index);
"""

# State kinds: a contract's storage slot, an account nonce, a contract's class hash.
STORAGE = "storage"
NONCE = "nonce"
CLASS_HASH = "class"


@dataclass
class StateDiff:
    """What one block changed: ``{(address, key): value}`` per kind (key 0 for nonce/class)."""

    storage: dict[tuple[int, int], int] = field(default_factory=dict)
    nonces: dict[int, int] = field(default_factory=dict)
    class_hashes: dict[int, int] = field(default_factory=dict)
    declared: list[DeclaredClass] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.storage) + len(self.nonces) + len(self.class_hashes) + len(self.declared)


@dataclass(frozen=True)
class DeclaredClass:
    class_hash: int
    compiled_class_hash: int
    sierra: dict[str, Any]
    casm: dict[str, Any]


@dataclass(frozen=True)
class StoredTx:
    hash: int
    index: int
    tx: dict[str, Any]
    receipt: dict[str, Any]
    trace: dict[str, Any] | None = None


@dataclass(frozen=True)
class StoredEvent:
    id: int
    block_number: int
    tx_hash: int
    tx_index: int
    event_index: int
    from_address: int
    keys: list[int]
    data: list[int]


@dataclass(frozen=True)
class StoredBlock:
    number: int
    hash: int
    header: dict[str, Any]
    tx_hashes: list[int]


@dataclass
class CurrentState:
    storage: dict[int, dict[int, int]] = field(default_factory=dict)
    nonces: dict[int, int] = field(default_factory=dict)
    class_hashes: dict[int, int] = field(default_factory=dict)


def _h(value: int) -> str:
    return hex(value)


class ChainStore:
    """The chain's SQLite database (``<data dir>/chain.sqlite3``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        self._conn.close()

    # --- meta -----------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # --- blocks ---------------------------------------------------------------------

    def commit_block(
        self,
        block: StoredBlock,
        txs: list[StoredTx],
        events: list[tuple[int, int, int, int, list[int], list[int]]],
        diff: StateDiff,
        meta: dict[str, str] | None = None,
    ) -> None:
        """Write one block atomically. ``events``: (tx_hash, tx_index, event_index,
        from_address, keys, data)."""
        n = block.number
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "INSERT INTO blocks (number, hash, header, tx_hashes) VALUES (?, ?, ?, ?)",
                (
                    n,
                    _h(block.hash),
                    json.dumps(block.header),
                    json.dumps([_h(t) for t in block.tx_hashes]),
                ),
            )
            conn.executemany(
                "INSERT INTO transactions (hash, block_number, tx_index, tx, receipt) "
                "VALUES (?, ?, ?, ?, ?)",
                [(_h(t.hash), n, t.index, json.dumps(t.tx), json.dumps(t.receipt)) for t in txs],
            )
            conn.executemany(
                "INSERT INTO traces (hash, trace) VALUES (?, ?)",
                [(_h(t.hash), json.dumps(t.trace)) for t in txs if t.trace is not None],
            )
            conn.executemany(
                "INSERT INTO events (block_number, tx_hash, tx_index, event_index, from_address,"
                " keys, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        n,
                        _h(th),
                        ti,
                        ei,
                        _h(fa),
                        json.dumps([_h(k) for k in ks]),
                        json.dumps([_h(d) for d in ds]),
                    )
                    for th, ti, ei, fa, ks, ds in events
                ],
            )
            rows: list[tuple[str, str, str, str]] = []
            rows += [(STORAGE, _h(a), _h(k), _h(v)) for (a, k), v in diff.storage.items()]
            rows += [(NONCE, _h(a), "0x0", _h(v)) for a, v in diff.nonces.items()]
            rows += [(CLASS_HASH, _h(a), "0x0", _h(v)) for a, v in diff.class_hashes.items()]
            conn.executemany(
                "INSERT INTO state_history (kind, address, key, block_number, value) "
                "VALUES (?, ?, ?, ?, ?)",
                [(kind, a, k, n, v) for kind, a, k, v in rows],
            )
            conn.executemany(
                "INSERT INTO state_current (kind, address, key, value, block_number) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(kind, address, key) DO UPDATE SET "
                "value = excluded.value, block_number = excluded.block_number",
                [(kind, a, k, v, n) for kind, a, k, v in rows],
            )
            conn.executemany(
                "INSERT OR IGNORE INTO classes (class_hash, compiled_class_hash, sierra, casm,"
                " block_number) VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        _h(c.class_hash),
                        _h(c.compiled_class_hash),
                        json.dumps(c.sierra),
                        json.dumps(c.casm),
                        n,
                    )
                    for c in diff.declared
                ],
            )
            for key, value in (meta or {}).items():
                self.set_meta(key, value)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def latest_block_number(self) -> int | None:
        row = self._conn.execute("SELECT MAX(number) FROM blocks").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def _block_from_row(self, row: tuple[Any, ...]) -> StoredBlock:
        return StoredBlock(
            number=int(row[0]),
            hash=int(row[1], 16),
            header=json.loads(row[2]),
            tx_hashes=[int(t, 16) for t in json.loads(row[3])],
        )

    def block_by_number(self, number: int) -> StoredBlock | None:
        row = self._conn.execute(
            "SELECT number, hash, header, tx_hashes FROM blocks WHERE number = ?", (number,)
        ).fetchone()
        return None if row is None else self._block_from_row(row)

    def block_by_hash(self, block_hash: int) -> StoredBlock | None:
        row = self._conn.execute(
            "SELECT number, hash, header, tx_hashes FROM blocks WHERE hash = ?", (_h(block_hash),)
        ).fetchone()
        return None if row is None else self._block_from_row(row)

    # --- transactions ---------------------------------------------------------------

    def tx(self, tx_hash: int) -> tuple[int, StoredTx] | None:
        row = self._conn.execute(
            "SELECT block_number, tx_index, tx, receipt FROM transactions WHERE hash = ?",
            (_h(tx_hash),),
        ).fetchone()
        if row is None:
            return None
        return int(row[0]), StoredTx(tx_hash, int(row[1]), json.loads(row[2]), json.loads(row[3]))

    def trace(self, tx_hash: int) -> dict[str, Any] | None:
        row = self._conn.execute(
            "SELECT trace FROM traces WHERE hash = ?", (_h(tx_hash),)
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def block_txs(self, number: int) -> list[StoredTx]:
        rows = self._conn.execute(
            "SELECT hash, tx_index, tx, receipt FROM transactions WHERE block_number = ? "
            "ORDER BY tx_index",
            (number,),
        ).fetchall()
        return [
            StoredTx(int(r[0], 16), int(r[1]), json.loads(r[2]), json.loads(r[3])) for r in rows
        ]

    # --- events ---------------------------------------------------------------------

    def iter_events(
        self, from_block: int, to_block: int, start_id: int, addresses: list[int] | None
    ) -> Iterator[StoredEvent]:
        sql = (
            "SELECT id, block_number, tx_hash, tx_index, event_index, from_address, keys, data "
            "FROM events WHERE block_number BETWEEN ? AND ? AND id >= ?"
        )
        params: list[Any] = [from_block, to_block, start_id]
        if addresses is not None:
            sql += f" AND from_address IN ({','.join('?' * len(addresses))})"
            params += [_h(a) for a in addresses]
        sql += " ORDER BY id"
        for row in self._conn.execute(sql, params):
            yield StoredEvent(
                id=int(row[0]),
                block_number=int(row[1]),
                tx_hash=int(row[2], 16),
                tx_index=int(row[3]),
                event_index=int(row[4]),
                from_address=int(row[5], 16),
                keys=[int(k, 16) for k in json.loads(row[6])],
                data=[int(d, 16) for d in json.loads(row[7])],
            )

    # --- state ----------------------------------------------------------------------

    def load_current_state(self) -> CurrentState:
        state = CurrentState()
        for kind, address, key, value in self._conn.execute(
            "SELECT kind, address, key, value FROM state_current"
        ):
            a, k, v = int(address, 16), int(key, 16), int(value, 16)
            if kind == STORAGE:
                state.storage.setdefault(a, {})[k] = v
            elif kind == NONCE:
                state.nonces[a] = v
            elif kind == CLASS_HASH:
                state.class_hashes[a] = v
        return state

    def load_state_at(self, block_number: int) -> CurrentState:
        """The whole state as it was after ``block_number`` (for calls at older blocks)."""
        state = CurrentState()
        for kind, address, key, value in self._conn.execute(
            "SELECT kind, address, key, value FROM state_history WHERE block_number <= ? "
            "ORDER BY block_number",
            (block_number,),
        ):
            a, k, v = int(address, 16), int(key, 16), int(value, 16)
            if kind == STORAGE:
                state.storage.setdefault(a, {})[k] = v
            elif kind == NONCE:
                state.nonces[a] = v
            elif kind == CLASS_HASH:
                state.class_hashes[a] = v
        return state

    def value_at(self, kind: str, address: int, key: int, block_number: int) -> tuple[int, int]:
        """(value, block that wrote it) at ``block_number``; (0, 0) when never written."""
        row = self._conn.execute(
            "SELECT value, block_number FROM state_history WHERE kind = ? AND address = ? "
            "AND key = ? AND block_number <= ? ORDER BY block_number DESC LIMIT 1",
            (kind, _h(address), _h(key), block_number),
        ).fetchone()
        return (0, 0) if row is None else (int(row[0], 16), int(row[1]))

    def has_value_at(self, kind: str, address: int, block_number: int) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM state_history WHERE kind = ? AND address = ? AND block_number <= ? "
            "LIMIT 1",
            (kind, _h(address), block_number),
        ).fetchone()
        return row is not None

    # --- classes --------------------------------------------------------------------

    def load_classes(self) -> list[DeclaredClass]:
        return [
            DeclaredClass(int(ch, 16), int(cch, 16), json.loads(s), json.loads(c))
            for ch, cch, s, c in self._conn.execute(
                "SELECT class_hash, compiled_class_hash, sierra, casm FROM classes "
                "ORDER BY block_number, class_hash"
            )
        ]

    def class_declared_at(self, class_hash: int) -> int | None:
        row = self._conn.execute(
            "SELECT block_number FROM classes WHERE class_hash = ?", (_h(class_hash),)
        ).fetchone()
        return None if row is None else int(row[0])

    def sierra_class(self, class_hash: int) -> dict[str, Any] | None:
        row = self._conn.execute(
            "SELECT sierra FROM classes WHERE class_hash = ?", (_h(class_hash),)
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))
