"""Export the gateway's GraphQL schema to graphql/schema.graphql; --check fails on drift."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.schema import build_schema  # noqa: E402

TARGET = ROOT / "graphql" / "schema.graphql"
HEADER = "# Generated from gateway/schema by scripts/export_schema.py. Do not edit.\n\n"


def render() -> str:
    return HEADER + build_schema().as_str().rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    args = parser.parse_args()
    sdl = render()
    if args.check:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != sdl:
            print(
                f"{TARGET.relative_to(ROOT)} is out of date: run `make generate`", file=sys.stderr
            )
            return 1
        print(f"{TARGET.relative_to(ROOT)} is up to date")
        return 0
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_text(sdl)
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
