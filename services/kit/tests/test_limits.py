"""The one limits table (services.kit.limits), as checked by the typed client before a
call and by the server adapter as it decodes one (for callers that skip our client)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest

from services.api.keiko.learning import v1 as learning_pb
from services.api.keiko.marketplace import v1 as market_pb
from services.kit.clock import FixedClock
from services.kit.errors import ValidationError
from services.kit.grpc.client import stub
from services.kit.grpc.errors import field_violations
from services.kit.grpc.testing import access_token, running_host, token_pair
from services.kit.jsonlimits import JsonRefused, json_depth, loads_limited
from services.kit.limits import TIMESTAMP_MAX, check_message, first_violation


def violation(message: object) -> tuple[str, str] | None:
    found = first_violation(message)  # type: ignore[arg-type]
    return None if found is None else (found.field, found.reason)


def interaction(**fields: object) -> learning_pb.RecordInteractionRequest:
    return learning_pb.RecordInteractionRequest(
        interaction=learning_pb.InteractionInput(**fields)  # type: ignore[arg-type]
    )


def test_strings_bytes_lists_maps_numbers_and_instants() -> None:
    assert violation(interaction(title="t" * 200)) is None
    assert violation(interaction(title="t" * 201)) == (
        "interaction.title",
        "must be at most 200 characters",
    )
    assert violation(interaction(content="c" * 10_000)) is None
    assert violation(interaction(activity_id="a" * 2_049)) == (
        "interaction.activity_id",
        "must be at most 2048 characters",
    )
    assert violation(interaction(title="a\ud800")) == (
        "interaction.title",
        "must be valid Unicode text (it has a lone surrogate)",
    )
    assert violation(interaction(title="a\x00b")) == (
        "interaction.title",
        "must not contain the NUL character (U+0000)",
    )
    assert violation(learning_pb.RecordStatementsRequest(statement_jsons=["{}"] * 1001)) == (
        "statement_jsons",
        "must have at most 1000 items",
    )
    assert violation(
        learning_pb.RecordStatementsRequest(statement_jsons=["{}", "x" * (64 * 1024 + 1)])
    ) == ("statement_jsons[1]", "must be at most 65536 characters")
    webhook = learning_pb.ImportWebhookRequest(
        source_id="s", headers={f"h{i}": "v" for i in range(101)}
    )
    assert violation(webhook) == ("headers", "must have at most 100 items")
    webhook = learning_pb.ImportWebhookRequest(source_id="s", headers={"x-a": "v" * 2049})
    assert violation(webhook) == ("headers['x-a']", "must be at most 2048 characters")
    webhook = learning_pb.ImportWebhookRequest(source_id="s", body=b"x" * (5 * 1024 * 1024 + 1))
    assert violation(webhook) == ("body", "must be at most 5242880 bytes")
    score = interaction(score=learning_pb.Score(scaled=float("nan")))
    assert violation(score) == ("interaction.score.scaled", "must be a finite number")
    late = interaction(occurred_at=TIMESTAMP_MAX)
    assert violation(late) == (
        "interaction.occurred_at",
        "must be between 1970-01-01T00:00:00Z and 2200-01-01T00:00:00Z (exclusive)",
    )
    assert violation(interaction(occurred_at=datetime(2026, 1, 1, tzinfo=UTC))) is None
    assert violation(interaction(duration=timedelta(days=3661))) == (
        "interaction.duration",
        "must be at most 3660 days",
    )
    # Unset oneof members are skipped; the one set is checked.
    assert violation(market_pb.SearchSpacesRequest()) is None
    with pytest.raises(ValidationError):
        check_message(interaction(title="t" * 201))


def test_json_depth_is_measured_before_parsing() -> None:
    assert json_depth('[[1, {"a": "[[[["}]]') == 3
    assert json_depth('["a\\"]"]') == 1
    assert json_depth("5") == 0
    assert loads_limited(b'{"a": [1]}') == {"a": [1]}
    for text, reason in (
        (b"[" * 100_000 + b"]" * 100_000, "JSON nested deeper than 64 levels"),
        (b'{"a": "\xff"}', "body is not UTF-8"),
        (b"[NaN]", "NaN is not JSON"),
        (b"{", "body is not JSON: Expecting property name enclosed in double quotes at 1"),
    ):
        with pytest.raises(JsonRefused) as refused:
            loads_limited(text)
        assert refused.value.reason == reason


class _Recorder(learning_pb.LearningServiceBase):
    async def record_interaction(
        self, record_interaction_request: learning_pb.RecordInteractionRequest
    ) -> learning_pb.RecordInteractionResponse:
        return learning_pb.RecordInteractionResponse()


async def test_client_and_server_refuse_the_same_way() -> None:
    issuer, verifier = token_pair(FixedClock(datetime.now(UTC)))
    token = access_token(issuer, "u1")
    too_long = interaction(title="t" * 201)
    async with (
        running_host([_Recorder()], token_verifier=verifier) as host,
        grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel,
    ):
        # The typed client refuses without a call, with the server's own error.
        client = stub(learning_pb.LearningServiceStub, channel, access_token=token)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await client.record_interaction(too_long)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(refused.value) == [
            ("interaction.title", "must be at most 200 characters")
        ]
        # A raw caller reaches the server, whose adapter refuses it as it decodes.
        raw = channel.unary_unary(
            "/keiko.learning.v1.LearningService/RecordInteraction",
            request_serializer=lambda data: data,
            response_deserializer=lambda data: data,
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await raw(bytes(too_long), metadata=[("authorization", f"Bearer {token}")])
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.details() == "interaction.title: must be at most 200 characters"
        assert field_violations(refused.value) == [
            ("interaction.title", "must be at most 200 characters")
        ]
        assert await client.record_interaction(interaction(title="ok")) is not None
