"""Client pieces that need no node."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starknet_py.net.account.account import _parse_calls
from starknet_py.net.client_models import Call

from chain.client import Deployment, decode_short_string, short_string
from chain.client.core import execute_calldata

FELT = st.integers(min_value=0, max_value=2**251)
CALLS = st.lists(
    st.builds(Call, to_addr=FELT, selector=FELT, calldata=st.lists(FELT, max_size=5)),
    min_size=1,
    max_size=4,
)


@given(CALLS)
def test_execute_calldata_is_what_starknet_py_sends(calls: list[Call]) -> None:
    assert execute_calldata(calls) == _parse_calls(1, calls)


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=31))
def test_short_strings_round_trip(text: str) -> None:
    assert decode_short_string(short_string(text)) == text


def test_short_string_limits() -> None:
    with pytest.raises(ValueError):
        short_string("x" * 32)
    assert short_string("learning") == int.from_bytes(b"learning", "big")


def test_deployment_formats() -> None:
    body = {
        "chain_id": "0x4b",
        "contracts": {
            "interaction_anchor": {"address": "0x10", "class_hash": "0x20"},
            "governance": "0x30",
        },
        "admin": "0x1",
    }
    deployment = Deployment.load(body)
    assert deployment.chain_id == 0x4B
    assert deployment.address_of("interaction_anchor") == 0x10
    assert deployment.contracts["interaction_anchor"].class_hash == 0x20
    assert deployment.address_of("governance") == 0x30
    assert deployment.extra == {"admin": "0x1"}
    with pytest.raises(KeyError):
        deployment.address_of("humanity_registry")
    with pytest.raises(ValueError):
        Deployment.load({"contracts": {"governance": {"address": "zz"}}})
    with pytest.raises(ValueError):
        Deployment.load({"contracts": []})
