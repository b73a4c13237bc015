"""Value formats, the version header and canonical bytes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.kit.errors import ValidationError
from services.learning.xapi import XAPIVersion, canonical_bytes, parse_version_header
from services.learning.xapi import formats as f


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.0.3", XAPIVersion.V1_0_3),
        ("1.0", XAPIVersion.V1_0_3),
        ("1.0.0", XAPIVersion.V1_0_3),
        (" 1.0.1 ", XAPIVersion.V1_0_3),
        ("2.0.0", XAPIVersion.V2_0_0),
        ("2.0", XAPIVersion.V2_0_0),
    ],
)
def test_version_header_accepted(value: str, expected: XAPIVersion) -> None:
    assert parse_version_header(value) is expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "header is required"),
        ("", "header must not be empty"),
        ("0.95", 'unsupported version "0.95": expected 1.0.x (1.0.3) or 2.0.x (2.0.0)'),
        ("1.1.0", 'unsupported version "1.1.0": expected 1.0.x (1.0.3) or 2.0.x (2.0.0)'),
        ("1.0.x", 'unsupported version "1.0.x": expected 1.0.x (1.0.3) or 2.0.x (2.0.0)'),
        ("2", 'unsupported version "2": expected 1.0.x (1.0.3) or 2.0.x (2.0.0)'),
    ],
)
def test_version_header_rejected(value: str | None, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_version_header(value)
    assert (info.value.field, info.value.reason) == ("X-Experience-API-Version", reason)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-31T12:00:00Z", datetime(2026, 1, 31, 12, tzinfo=UTC)),
        ("2026-01-31t12:00:00.5z", datetime(2026, 1, 31, 12, 0, 0, 500000, tzinfo=UTC)),
        ("2026-01-31T12:00:00+01:30", datetime(2026, 1, 31, 10, 30, tzinfo=UTC)),
        ("2026-01-31T00:00:00-05:00", datetime(2026, 1, 31, 5, tzinfo=UTC)),
        (
            "2024-02-29T23:59:59.999999999+00:00",
            datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC),
        ),
    ],
)
def test_timestamps_parse_to_utc(text: str, expected: datetime) -> None:
    assert f.parse_timestamp(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-31 12:00:00Z",
        "2026-01-31T12:00Z",
        "2026-01-31T12:00:00+0100",
        "2026-01-31T24:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-01-31T12:00:00+24:00",
        "2026-01-31T12:00:00Z\n",
        "\uff12026-01-31T12:00:00Z",
    ],
)
def test_bad_timestamps(text: str) -> None:
    with pytest.raises(f.TimestampError):
        f.parse_timestamp(text)


def test_format_timestamp_is_utc_milliseconds() -> None:
    from datetime import timezone

    when = datetime(2026, 1, 31, 13, 0, 0, 987654, tzinfo=timezone(timedelta(hours=1)))
    assert f.format_timestamp(when) == "2026-01-31T12:00:00.987Z"
    with pytest.raises(ValueError):
        f.format_timestamp(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "text", ["PT1H0M0S", "P1Y2M3DT4H5M6S", "P3W", "PT0.5S", "P1D", "PT36H", "P0D", "PT1M30,5S"]
)
def test_durations_valid(text: str) -> None:
    assert f.is_duration(text)


@pytest.mark.parametrize("text", ["P", "PT", "1H", "PT1.5H30M", "P1H", "PT-1S", "pt1h", "P1DT", ""])
def test_durations_invalid(text: str) -> None:
    assert not f.is_duration(text)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(0), "PT0S"),
        (timedelta(hours=1, minutes=2, seconds=3.5), "PT1H2M3.5S"),
        (timedelta(days=1, seconds=30), "PT24H30S"),
        (timedelta(minutes=5), "PT5M"),
    ],
)
def test_format_duration(delta: timedelta, text: str) -> None:
    assert f.format_duration(delta) == text
    assert f.is_duration(text)


@pytest.mark.parametrize(
    "tag",
    [
        "en",
        "en-US",
        "es-419",
        "zh-Hant-TW",
        "tlh",
        "und",
        "x-keiko",
        "sl-rozaj-biske",
        "en-GB-oed",
        "de-CH-1901",
        "en-a-bbb-x-a-ccc",
    ],
)
def test_language_tags_valid(tag: str) -> None:
    assert f.is_language_tag(tag)


@pytest.mark.parametrize("tag", ["en_US", "", "e", "en-", "123", "en-US-", "toolongtag", "en US"])
def test_language_tags_invalid(tag: str) -> None:
    assert not f.is_language_tag(tag)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("http://adlnet.gov/expapi/verbs/answered", True),
        ("urn:uuid:6ba7b810-9dad-41d1-80b4-00c04fd430c8", True),
        ("https://例え.jp/活動", True),
        ("http://example.com/%41", True),
        ("http://example.com/%4", False),
        ("/relative/path", False),
        ("no scheme", False),
        ("http://exa mple.com", False),
        ("1http://x", False),
    ],
)
def test_iri(value: str, ok: bool) -> None:
    assert f.is_iri(value) is ok


def test_irl_needs_an_authority() -> None:
    assert f.is_irl("https://keiko.network")
    assert not f.is_irl("urn:x:y")
    assert not f.is_irl("https://")


def test_canonical_bytes_errors_are_validation_errors() -> None:
    with pytest.raises(ValidationError) as info:
        canonical_bytes({"a": 2**60})
    assert info.value.field == "statement"
    assert info.value.reason.startswith("cannot be canonicalized (RFC 8785)")
