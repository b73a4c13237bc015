"""Content-addressed memo of the expensive pure functions of a contract class.

Computing a class hash and a compiled class hash means Poseidon over every felt of the
Sierra program and of the CASM bytecode: about a second per contract here (starknet-py's
Poseidon goes through ctypes for each permutation). Compiling Sierra to CASM is another
subprocess. Both are deterministic functions of the class text, so their results are kept
by the SHA-256 of that text, in memory and in a small JSON file under the user's cache
directory (``$KEIKO_CACHE_DIR`` or ``$XDG_CACHE_HOME/keikochain`` or
``~/.cache/keikochain``). A missing or unreadable file only means computing again; a
result is never trusted from anything but its own input's digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

ENV_CACHE_DIR = "KEIKO_CACHE_DIR"
FILE_NAME = "memo.json"

_lock = threading.Lock()
_memory: dict[str, str] = {}
_loaded = False


def cache_dir() -> Path:
    explicit = os.environ.get(ENV_CACHE_DIR, "").strip()
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".cache") / "keikochain"


def digest(*parts: str) -> str:
    sha = hashlib.sha256()
    for part in parts:
        sha.update(hashlib.sha256(part.encode()).digest())
    return sha.hexdigest()


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    try:
        body = json.loads((cache_dir() / FILE_NAME).read_text())
    except (OSError, ValueError):
        return
    if isinstance(body, dict):
        _memory.update({str(k): str(v) for k, v in body.items()})


def _save() -> None:
    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f"{FILE_NAME}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(_memory, sort_keys=True))
        os.replace(tmp, directory / FILE_NAME)
    except OSError:
        pass  # a read-only home: the memo stays in memory only


def memoized(kind: str, key: str, compute: Callable[[], str]) -> str:
    """``compute()`` once per ``(kind, key)``; ``key`` must be a digest of every input."""
    name = f"{kind}:{key}"
    with _lock:
        _load()
        found = _memory.get(name)
    if found is not None:
        return found
    value = compute()
    with _lock:
        _memory[name] = value
        _save()
    return value
