"""Reusing a genesis that was already made by real transactions.

Genesis runs a few dozen Cairo VM executions (system contracts, mints, the DECLAREs and
the deployment INVOKE of Keiko's contracts): seconds of CPU, for a result that depends
only on the compiled contracts, the chain id, the seed and the number of accounts. The
first node made with a given combination saves its database right after genesis (SQLite's
online backup) under the cache directory; later nodes with the same combination start
from a copy of it. The copy holds the same blocks, transactions, receipts and traces the
original genesis mined (its timestamps included): nothing in it was written any other
way. ``KEIKO_GENESIS_SNAPSHOTS=0`` turns this off.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

from chain.class_cache import cache_dir, digest

ENV_SNAPSHOTS = "KEIKO_GENESIS_SNAPSHOTS"
FORMAT = "keikochain-genesis-v1"


def enabled() -> bool:
    return os.environ.get(ENV_SNAPSHOTS, "1").strip() not in ("0", "false", "no")


def snapshot_key(build_dir: Path, chain_id: int, seed: str, accounts: int) -> str:
    artifacts = sorted(build_dir.glob("*.json"))
    return digest(
        FORMAT,
        hex(chain_id),
        seed,
        str(accounts),
        *(f"{p.name}:{digest(p.read_text())}" for p in artifacts),
    )


def _path(key: str) -> Path:
    return cache_dir() / "genesis" / f"{key}.sqlite3"


def restore(key: str, target: Path) -> bool:
    """Copy the snapshot to ``target`` (a database not yet created); False if none."""
    source = _path(key)
    if not enabled() or not source.exists():
        return False
    tmp = target.with_suffix(".restoring")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)
    return True


def save(key: str, database: Path) -> None:
    """Back ``database`` up as the snapshot of ``key`` (consistent even under WAL)."""
    if not enabled():
        return
    target = _path(key)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        with sqlite3.connect(database) as source, sqlite3.connect(tmp) as copy:
            source.backup(copy)
        os.replace(tmp, target)
    except OSError:
        pass  # no writable cache: the next node runs genesis again
