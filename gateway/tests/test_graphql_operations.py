"""The client operations the docs, the command line and the web app send are valid
against the exported schema (graphql/schema.graphql): graphql/operations/*.graphql and the
operations embedded in gateway/static/app/app.js."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from graphql import build_schema, parse, validate

from keiko.gateway_client import OPERATIONS_DIR, operations

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = build_schema((ROOT / "graphql" / "schema.graphql").read_text())
APP_JS = ROOT / "gateway" / "static" / "app" / "app.js"
FILES = sorted(OPERATIONS_DIR.glob("*.graphql"))


def _errors(document: str) -> list[str]:
    return [error.message for error in validate(SCHEMA, parse(document))]


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_documented_operations_are_valid(path: Path) -> None:
    assert _errors(path.read_text()) == []


def test_every_operation_has_one_name_across_files() -> None:
    names = operations()
    assert len(FILES) >= 4
    for needed in (
        "BeginRegistration",
        "RecordInteraction",
        "RecordInteractions",
        "CreateShareLink",
        "Users",
    ):
        assert needed in names


def test_web_app_operations_are_valid() -> None:
    found = re.findall(r"^  (\w+): `([^`]+)`", APP_JS.read_text(), re.M)
    assert len(found) >= 9
    for name, document in found:
        assert _errors(document) == [], name


def test_an_invalid_operation_is_caught() -> None:
    """The check itself works: a field the schema lacks is an error."""
    assert _errors("query { me { id noSuchField } }")
