"""Where the time goes, from a py-spy raw profile (collapsed stacks, one line each:
``frame;frame;... count``): the share of samples each frame appears in (inclusive) and
the share at the top of the stack (self), for the frames that matter most.

    .venv/bin/python scripts/bench/profile_summary.py profile.txt [--top 30] [--match keiko]
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def summarize(path: Path, top: int, match: str) -> str:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1] for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    lines = [f"{total} samples", "", "| inclusive | self | frame |", "|---:|---:|---|"]
    shown = 0
    for frame, count in inclusive.most_common():
        if match and match not in frame:
            continue
        lines.append(f"| {count / total:.1%} | {own[frame] / total:.1%} | `{frame}` |")
        shown += 1
        if shown >= top:
            break
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--match", default="")
    args = parser.parse_args()
    print(summarize(args.profile, args.top, args.match))


if __name__ == "__main__":
    main()
