"""Compile the Keikochain contracts: contracts/src/<name>.cairo -> contracts/build/.

    python scripts/compile_contracts.py            # (re)write contracts/build/
    python scripts/compile_contracts.py --check    # fail, listing drift, if build/ is stale

Toolchain (see shared notes "keikochain-toolchain"): no machine here reaches crates.io,
so Scarb is out. Cairo -> Sierra uses ``starknet-compile`` 2.1.0 with its complete
corelib, taken from the cairo-lang==0.12.3 sdist on PyPI (downloaded once into
``.cache/``, checked against a pinned SHA-256). Sierra -> CASM uses the
``starknet-sierra-compile`` bundled with the installed cairo-lang 0.14.0.1, whose VM
runs the result; ``--add-pythonic-hints`` because that VM executes Python hints.

Outputs, written deterministically (sorted where order is ours, 2-space JSON):

- ``<name>.sierra.json``: the contract class as starknet-compile emits it (the ABI stays a
  JSON list; its class hash is computed over ``json.dumps(abi)``, which is what
  starknet-py does when it declares the class).
- ``<name>.casm.json``: the compiled class.
- ``classes.json``: ``{name: {"class_hash": hex, "compiled_class_hash": hex}}``; the
  compiled class hash uses the Poseidon method (Starknet < 0.14.1, what cairo-lang
  0.14.0.1 computes), not starknet-py 0.30's BLAKE2S default.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
SRC_DIR = REPO_ROOT / "contracts" / "src"
BUILD_DIR = REPO_ROOT / "contracts" / "build"
CACHE_DIR = REPO_ROOT / ".cache"

SDIST_VERSION = "0.12.3"
SDIST_NAME = f"cairo-lang-{SDIST_VERSION}.zip"
# Pinned so a tampered or re-uploaded archive cannot silently change our compiler.
SDIST_SHA256 = "651abdaa5f911d1d8f5605749e3540e7fc4efb7fb625925e5a499c4ca04fcc85"
# Inside the sdist: bin/starknet-compile plus the corelib it resolves relative to itself.
SDIST_COMPILER_DIR = (
    f"cairo-lang-{SDIST_VERSION}/starkware/starknet/compiler/v1/sierra-compiler-major-1/"
)
TOOLCHAIN_DIR = CACHE_DIR / "starknet-compile-2.1.0"
STARKNET_COMPILE_VERSION = "starknet-compile 2.1.0"

SIERRA_COMPILE_ARGS = ["--add-pythonic-hints", "--allowed-libfuncs-list-name", "all"]


class CompileError(RuntimeError):
    pass


@dataclass(frozen=True)
class Artifacts:
    name: str
    sierra: dict[str, Any]
    casm: dict[str, Any]
    class_hash: int
    compiled_class_hash: int


def _dump_json(obj: Any) -> str:
    return json.dumps(obj, indent=2) + "\n"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download_sdist() -> Path:
    download_dir = CACHE_DIR / "pip-download"
    archive = download_dir / SDIST_NAME
    if not archive.exists():
        download_dir.mkdir(parents=True, exist_ok=True)
        print(f"downloading cairo-lang=={SDIST_VERSION} sdist from PyPI ...", file=sys.stderr)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"cairo-lang=={SDIST_VERSION}",
                "-d",
                str(download_dir),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    actual = _sha256(archive)
    if actual != SDIST_SHA256:
        raise CompileError(f"{archive}: sha256 {actual}, expected {SDIST_SHA256}")
    return archive


def ensure_starknet_compile() -> Path:
    """Path of the cached starknet-compile 2.1.0, fetching and extracting it once."""
    exe = TOOLCHAIN_DIR / "bin" / "starknet-compile"
    if exe.exists():
        return exe
    archive = _download_sdist()
    # Extract into a sibling temp dir and rename, so an interrupted run never leaves a
    # half-extracted toolchain that later runs would trust.
    staging = Path(tempfile.mkdtemp(prefix="starknet-compile-", dir=CACHE_DIR))
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                if not member.startswith(SDIST_COMPILER_DIR) or member.endswith("/"):
                    continue
                target = staging / member[len(SDIST_COMPILER_DIR) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
        for binary in (staging / "bin").iterdir():
            binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        version = subprocess.run(
            [str(staging / "bin" / "starknet-compile"), "--version"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        if version != STARKNET_COMPILE_VERSION:
            raise CompileError(f"unexpected compiler version {version!r}")
        if TOOLCHAIN_DIR.exists():
            shutil.rmtree(TOOLCHAIN_DIR)
        staging.rename(TOOLCHAIN_DIR)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return exe


def starknet_sierra_compile() -> Path:
    """The Sierra -> CASM compiler shipped with the installed cairo-lang 0.14.0.1."""
    # Imported lazily: it is the only part of the script that needs starkware.
    import chain.cairo_compat  # noqa: F401  (must precede starkware imports)

    # isort: split
    from starkware.starknet.compiler.v1.compiler_exe_paths import STARKNET_SIERRA_COMPILE_EXE

    return Path(STARKNET_SIERRA_COMPILE_EXE)


def _run(cmd: list[str]) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CompileError(f"{' '.join(cmd)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def compile_contract(source: Path, starknet_compile: Path, sierra_compile: Path) -> Artifacts:
    from starknet_py.common import create_casm_class, create_sierra_compiled_contract
    from starknet_py.hash.casm_class_hash import compute_casm_class_hash
    from starknet_py.hash.hash_method import HashMethod
    from starknet_py.hash.sierra_class_hash import compute_sierra_class_hash

    name = source.stem
    with tempfile.TemporaryDirectory(prefix=f"keiko-{name}-") as tmp:
        sierra_path = Path(tmp) / f"{name}.sierra.json"
        casm_path = Path(tmp) / f"{name}.casm.json"
        _run([str(starknet_compile), "--single-file", str(source), str(sierra_path)])
        _run([str(sierra_compile), str(sierra_path), str(casm_path), *SIERRA_COMPILE_ARGS])
        sierra_text = sierra_path.read_text()
        casm_text = casm_path.read_text()
    class_hash = compute_sierra_class_hash(create_sierra_compiled_contract(sierra_text))
    compiled_class_hash = compute_casm_class_hash(
        create_casm_class(casm_text), hash_method=HashMethod.POSEIDON
    )
    return Artifacts(
        name=name,
        sierra=json.loads(sierra_text),
        casm=json.loads(casm_text),
        class_hash=class_hash,
        compiled_class_hash=compiled_class_hash,
    )


def compile_all(out_dir: Path, src_dir: Path = SRC_DIR) -> dict[str, Path]:
    """Compile every ``src_dir/*.cairo`` into ``out_dir``; return written files by name."""
    sources = sorted(src_dir.glob("*.cairo"))
    if not sources:
        raise CompileError(f"no .cairo sources in {src_dir}")
    starknet_compile = ensure_starknet_compile()
    sierra_compile = starknet_sierra_compile()
    # The compilers are separate processes, so threads overlap them on both cores.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = list(
            pool.map(lambda s: compile_contract(s, starknet_compile, sierra_compile), sources)
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    classes: dict[str, dict[str, str]] = {}
    for art in results:
        files[f"{art.name}.sierra.json"] = _dump_json(art.sierra)
        files[f"{art.name}.casm.json"] = _dump_json(art.casm)
        classes[art.name] = {
            "class_hash": hex(art.class_hash),
            "compiled_class_hash": hex(art.compiled_class_hash),
        }
    files["classes.json"] = _dump_json(dict(sorted(classes.items())))
    written = {}
    for filename, text in files.items():
        path = out_dir / filename
        path.write_text(text)
        written[filename] = path
    return written


def drift(expected_dir: Path, actual_dir: Path) -> list[str]:
    """Describe every difference between freshly compiled and committed artifacts."""

    def listing(directory: Path) -> set[str]:
        return {p.name for p in directory.glob("*.json")} if directory.exists() else set()

    expected, actual = listing(expected_dir), listing(actual_dir)
    problems = [f"missing: {actual_dir / n}" for n in sorted(expected - actual)]
    problems += [f"stale (no source): {actual_dir / n}" for n in sorted(actual - expected)]
    for name in sorted(expected & actual):
        if (expected_dir / name).read_bytes() != (actual_dir / name).read_bytes():
            problems.append(f"differs from sources: {actual_dir / name}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="recompile into a temp dir and fail if contracts/build/ differs",
    )
    args = parser.parse_args(argv)
    # `chain.cairo_compat` must be importable when run as `python scripts/...`.
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    try:
        if args.check:
            with tempfile.TemporaryDirectory(prefix="keiko-contracts-") as tmp:
                compile_all(Path(tmp))
                problems = drift(Path(tmp), BUILD_DIR)
            if problems:
                print("contract artifacts drifted; run scripts/compile_contracts.py:")
                for problem in problems:
                    print(f"  {problem}")
                return 1
            print(f"contracts/build is up to date ({len(list(SRC_DIR.glob('*.cairo')))} contracts)")
            return 0
        written = compile_all(BUILD_DIR)
        # A build dir also holding artifacts of deleted sources would fail --check.
        for stale in set(BUILD_DIR.glob("*.json")) - set(written.values()):
            stale.unlink()
        classes = json.loads((BUILD_DIR / "classes.json").read_text())
        for name, hashes in classes.items():
            print(f"{name:20s} class_hash={hashes['class_hash']}")
        return 0
    except (CompileError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
