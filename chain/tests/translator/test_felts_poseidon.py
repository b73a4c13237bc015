"""Felt encodings and Poseidon: agreement with starknet-py and cairo-lang's reference."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starknet_py.cairo.felt import decode_shortstring, encode_shortstring

# cairo-lang's pure-Python Poseidon is the reference; its module needs no chain.cairo_compat.
from starkware.cairo.common.poseidon_hash import poseidon_hash as ref_hash_pair
from starkware.cairo.common.poseidon_hash import poseidon_hash_many as ref_hash_many

from chain.translator.felts import (
    FELT_PRIME,
    bytes_to_felts,
    check_felt,
    decode_short_string,
    encode_short_string,
    felt_to_hex,
    felts_to_bytes,
    parse_felt,
)
from chain.translator.poseidon import hash_many, hash_pair
from services.kit.errors import ValidationError

felts = st.integers(min_value=0, max_value=FELT_PRIME - 1)


def test_prime_is_starks() -> None:
    assert FELT_PRIME == 0x800000000000011000000000000000000000000000000000000000000000001


@pytest.mark.parametrize("text", ["learning", "reputation", "marketplace", "governance", "a", ""])
def test_short_strings_match_starknet_py(text: str) -> None:
    assert encode_short_string(text) == encode_shortstring(text)
    assert decode_short_string(encode_short_string(text)) == decode_shortstring(
        encode_shortstring(text)
    )


def test_short_string_known_value() -> None:
    assert encode_short_string("learning") == int.from_bytes(b"learning", "big")
    assert encode_short_string("learning") == 0x6C6561726E696E67


@pytest.mark.parametrize("bad", ["x" * 32, "ñandú", 7])
def test_short_string_rejects(bad: object) -> None:
    with pytest.raises(ValidationError):
        encode_short_string(bad)  # type: ignore[arg-type]


def test_bytes_to_felts_is_big_endian_16_byte_chunks() -> None:
    data = bytes(range(32))
    assert bytes_to_felts(data) == [
        int.from_bytes(bytes(range(16)), "big"),
        int.from_bytes(bytes(range(16, 32)), "big"),
    ]
    assert felts_to_bytes(bytes_to_felts(data)) == data
    with pytest.raises(ValidationError):
        bytes_to_felts(b"\x00" * 15)
    with pytest.raises(ValidationError):
        bytes_to_felts(b"")


def test_felt_hex_roundtrip_and_rejects() -> None:
    assert parse_felt(felt_to_hex(12345), "x") == 12345
    assert parse_felt("0xABC", "x") == 0xABC
    for bad in ["123", "0x", "0x1_0", "0xg", hex(FELT_PRIME), 5, None, "0x" + "1" * 65]:
        with pytest.raises(ValidationError):
            parse_felt(bad, "x")


def test_check_felt_rejects_bool_and_range() -> None:
    for bad in [True, -1, FELT_PRIME, 1.0, "1"]:
        with pytest.raises(ValidationError):
            check_felt(bad, "x")


@settings(max_examples=60, deadline=None)
@given(felts, felts)
def test_hash_pair_equals_cairo_lang_reference(a: int, b: int) -> None:
    assert hash_pair(a, b) == ref_hash_pair(a, b)


@settings(max_examples=40, deadline=None)
@given(st.lists(felts, min_size=0, max_size=11))
def test_hash_many_equals_cairo_lang_reference(values: list[int]) -> None:
    assert hash_many(values) == ref_hash_many(values)


def test_hash_rejects_non_felts() -> None:
    with pytest.raises(ValidationError):
        hash_pair(FELT_PRIME, 1)
    with pytest.raises(ValidationError):
        hash_many([1, -1])
