"""The documentation stands alone: no link or path leads outside the repository, and
every relative link points at a file that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_OUTSIDE = re.compile(r"(\.\./shared|/work/|\bshared/MISSION)")


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_docs_stay_inside_the_repository(path: Path) -> None:
    text = path.read_text()
    assert not _OUTSIDE.search(text), f"{path.name} refers outside the repository"
    for target in _LINK.findall(text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue  # a URL or an anchor on the same page
        resolved = (path.parent / target.split("#", 1)[0]).resolve()
        assert resolved.is_relative_to(ROOT), f"{path.name}: {target} leaves the repository"
        assert resolved.exists(), f"{path.name}: {target} does not exist"
