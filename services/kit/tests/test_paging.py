from __future__ import annotations

import pytest

from services.kit.errors import ValidationError
from services.kit.paging import OffsetPageTokens, page_size


def test_offset_tokens_round_trip_and_reject_garbage_and_other_lists() -> None:
    tokens = OffsetPageTokens("o")
    assert tokens.decode(tokens.encode(150)) == 150
    assert tokens.decode("") == 0
    for garbage in ["!!", "bm9wZQ", tokens.encode(-1), OffsetPageTokens("g").encode(3)]:
        with pytest.raises(ValidationError) as caught:
            tokens.decode(garbage)
        assert caught.value.field == "page_token"


def test_a_page_fetched_with_one_extra_row_links_the_next() -> None:
    tokens = OffsetPageTokens("o")
    page = tokens.page(list(range(11)), offset=20, limit=10)
    assert list(page.items) == list(range(10))
    assert tokens.decode(page.next_page_token) == 30
    assert tokens.page(list(range(10)), offset=20, limit=10).next_page_token == ""


def test_page_size_defaults_caps_and_refuses_negatives() -> None:
    assert page_size(0, default=50, maximum=500) == 50
    assert page_size(9999, default=50, maximum=500) == 500
    assert page_size(7) == 7
    with pytest.raises(ValidationError) as caught:
        page_size(-1, field_path="first")
    assert caught.value.field == "first"
