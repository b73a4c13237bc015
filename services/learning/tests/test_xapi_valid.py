"""Valid statements (after the specification's examples) pass and are normalized."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from services.kit.clock import FixedClock
from services.learning.tests import examples as ex
from services.learning.xapi import (
    XAPIVersion,
    agent_key,
    canonical_bytes,
    statement_hash_hex,
    validate_statement,
    validate_statements,
)

V1 = XAPIVersion.V1_0_3
V2 = XAPIVersion.V2_0_0
CLOCK_AT = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)


@pytest.mark.parametrize("version", [V1, V2])
@pytest.mark.parametrize(
    "statement", [ex.SIMPLE, ex.LONG, ex.CHOICE_ANSWER, ex.SUBSTATEMENT, ex.VOIDING, ex.ATTACHMENT]
)
def test_spec_examples_are_valid_in_both_versions(statement: dict, version: XAPIVersion) -> None:
    validated = validate_statement(statement, version=version)
    assert validated.version is version
    json.dumps(validated.statement)  # plain JSON
    assert canonical_bytes(validated.statement)


def test_simple_statement_summary() -> None:
    v = validate_statement(ex.SIMPLE, version="1.0.3")
    assert v.id == "fd41c918-b88b-4b20-a0a5-a4c32391aaa0"
    assert v.actor_key == "mailto:user@example.com"
    assert v.verb_id == "http://example.com/xapi/verbs#sent-a-statement"
    assert v.object_type == "Activity"
    assert v.object_id == "http://example.com/xapi/activity/simplestatement"
    assert v.timestamp == datetime(2015, 11, 18, 12, 17, tzinfo=UTC)
    assert v.stored is None
    assert v.registration is None
    assert not v.is_voiding
    assert v.statement["version"] == "1.0.0"  # the LRS default for 1.0.x


def test_clock_sets_stored_and_default_timestamp_and_id() -> None:
    statement = ex.clone(ex.SIMPLE)
    del statement["id"], statement["timestamp"]
    v = validate_statement(statement, version=V2, clock=FixedClock(CLOCK_AT))
    assert v.statement["stored"] == "2026-03-01T08:30:15.123Z"
    assert v.statement["timestamp"] == "2026-03-01T08:30:15.123Z"
    assert v.stored == datetime(2026, 3, 1, 8, 30, 15, 123000, tzinfo=UTC)
    assert v.timestamp == v.stored
    assert v.statement["version"] == "2.0.0"
    assert v.id == v.statement["id"] and len(v.id) == 36


def test_clock_overrides_a_client_stored_and_authority_is_replaced() -> None:
    authority = {
        "objectType": "Agent",
        "account": {"homePage": "https://keiko.network", "name": "lrs-client-1"},
    }
    v = validate_statement(ex.LONG, version=V1, clock=FixedClock(CLOCK_AT), authority=authority)
    assert v.statement["stored"] == "2026-03-01T08:30:15.123Z"
    assert v.statement["timestamp"] == "2013-05-18T05:32:34.804+00:00"  # the client's, untouched
    assert v.statement["authority"] == authority


def test_long_example_summary_lists_related_agents_and_activities() -> None:
    v = validate_statement(ex.LONG, version=V1)
    assert v.actor_key == "mailto:teampb@example.com"
    assert v.registration == "ec531277-b57b-4c15-8d91-d292c5b2b8f7"
    assert v.activity_ids[0] == "http://www.example.com/meetings/occurances/34534"
    assert "http://www.example.com/meetings/series/267" in v.activity_ids
    assert 'account:["http://www.example.com","13936749"]' in v.agent_keys
    assert "openid:http://toby.openid.example.org/" in v.agent_keys
    assert "sha1:ebd31e95054c018b10727ccffd2ef2ec3a016ee9" in v.agent_keys


def test_single_context_activity_is_normalized_to_an_array() -> None:
    v = validate_statement(ex.CHOICE_ANSWER, version=V1)
    parent = v.statement["context"]["contextActivities"]["parent"]
    assert parent == [{"id": "https://keiko.network/xapi/activities/class/algebra-3"}]


def test_voiding_statement_summary_and_lowercased_ref() -> None:
    v = validate_statement(ex.VOIDING, version=V1)
    assert v.is_voiding
    assert v.voided_statement_id == "e05aa883-acaf-40ad-bf54-02c8ce485fb0"
    assert v.object_type == "StatementRef"


def test_agent_object_is_summarized_by_its_key() -> None:
    statement = ex.setting(
        ex.SIMPLE, "object", {"objectType": "Agent", "mbox": "mailto:bo@example.org"}
    )
    v = validate_statement(statement, version=V1)
    assert v.object_type == "Agent"
    assert v.object_id == "mailto:bo@example.org"


def test_v2_context_agents_and_groups() -> None:
    v = validate_statement(ex.V2_CONTEXT_AGENTS, version=V2)
    assert v.timestamp == datetime(2026, 1, 31, 6, 30, 0, 123456, tzinfo=UTC)
    assert 'account:["https://keiko.network/ai-tutors","tutor-ai-1"]' in v.agent_keys
    assert "mailto:cy@example.org" in v.agent_keys


def test_v2_accepts_1_0_x_statements() -> None:
    validate_statement(ex.setting(ex.SIMPLE, "version", "1.0.3"), version=V2)


def test_json_text_and_bytes_are_accepted() -> None:
    text = json.dumps(ex.SIMPLE)
    assert validate_statement(text).statement == validate_statement(text.encode()).statement


def test_batch_shares_one_stored_instant() -> None:
    second = ex.setting(ex.SIMPLE, "id", "0b2d1c3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e")
    out = validate_statements([ex.SIMPLE, second], version=V1, clock=FixedClock(CLOCK_AT))
    assert [v.stored for v in out] == [CLOCK_AT.replace(microsecond=123000)] * 2
    assert validate_statements("[]") == []


def test_extensions_accept_any_json_including_null() -> None:
    statement = ex.setting(
        ex.SIMPLE,
        "result",
        {"extensions": {"https://x.example/e": None, "urn:x:y": [1, {"a": {}}]}},
    )
    validate_statement(statement)


def test_input_is_not_mutated() -> None:
    statement = ex.clone(ex.CHOICE_ANSWER)
    validate_statement(statement, clock=FixedClock(CLOCK_AT))
    assert statement == ex.CHOICE_ANSWER


def test_canonical_bytes_are_rfc8785_and_hash_is_stable() -> None:
    a = {"b": 1, "a": [1.0, "é", None, True, 1e21, 0.1]}
    assert canonical_bytes(a) == '{"a":[1,"é",null,true,1e+21,0.1],"b":1}'.encode()
    reordered = dict(reversed(list(ex.SIMPLE.items())))
    assert statement_hash_hex(ex.SIMPLE) == statement_hash_hex(reordered)
    assert len(statement_hash_hex(ex.SIMPLE)) == 64


def test_agent_key_forms() -> None:
    assert agent_key({"mbox_sha1sum": "EBD31E95054C018B10727CCFFD2EF2EC3A016EE9"}) == (
        "sha1:ebd31e95054c018b10727ccffd2ef2ec3a016ee9"
    )
    assert agent_key({"objectType": "Group", "member": []}) is None
    assert agent_key({"account": {"homePage": "https://a.b", "name": 'x"|y'}}) == (
        'account:["https://a.b","x\\"|y"]'
    )


def test_statement_comparison_ignores_what_the_lrs_may_change() -> None:
    from services.learning.xapi import statements_equivalent

    stored = validate_statement(
        ex.LONG,
        clock=FixedClock(CLOCK_AT),
        authority={"account": {"homePage": "https://keiko.network", "name": "client"}},
    ).statement
    resent = ex.clone(ex.LONG)
    resent["id"] = resent["id"].upper()
    resent["timestamp"] = "2013-05-18T07:32:34.804+02:00"  # same instant, other zone
    resent["actor"]["member"].reverse()  # member order is not significant
    del resent["stored"], resent["authority"], resent["version"]
    assert statements_equivalent(stored, resent)
    # A statement sent without timestamp matches the stored one whose timestamp the LRS set.
    bare = ex.clone(ex.SIMPLE)
    del bare["timestamp"]
    kept = validate_statement(bare, clock=FixedClock(CLOCK_AT)).statement
    assert statements_equivalent(kept, bare)
    # Real differences are conflicts.
    assert not statements_equivalent(stored, ex.setting(resent, "result.success", False))
    assert not statements_equivalent(
        stored, ex.setting(resent, "timestamp", "2013-05-18T05:32:35Z")
    )
    assert not statements_equivalent(stored, ex.setting(resent, "verb.display.en-US", "went to"))


def test_python_inputs_are_converted_to_plain_json() -> None:
    from enum import IntEnum, StrEnum
    from types import MappingProxyType

    class Verb(StrEnum):
        SENT = "http://example.com/xapi/verbs#sent-a-statement"

    class Points(IntEnum):
        EIGHT = 8

    statement = ex.clone(ex.CHOICE_ANSWER)
    statement["verb"] = MappingProxyType({"id": Verb.SENT})
    statement["result"]["score"]["raw"] = Points.EIGHT
    statement["object"]["definition"]["correctResponsesPattern"] = ("golf[,]tetris",)
    v = validate_statement(MappingProxyType(statement))
    assert type(v.statement["verb"]) is dict and type(v.statement["verb"]["id"]) is str
    assert type(v.statement["result"]["score"]["raw"]) is int
    assert v.statement["object"]["definition"]["correctResponsesPattern"] == ["golf[,]tetris"]
    assert canonical_bytes(v.statement)


@pytest.mark.parametrize("version", [XAPIVersion.V1_0_3, XAPIVersion.V2_0_0])
def test_value_rules_the_specification_allows(version: XAPIVersion) -> None:
    """Data 2.4.4.1: every definition property is optional, so `{}` is a definition.
    Communication 3.3.s3.b3: "1.0" is read as "1.0.0", kept as sent (Data 2.4.10).
    ISO 8601: a week duration alone (`P4W`) is valid."""
    v = validate_statement(
        {
            **ex.SIMPLE,
            "object": {**ex.SIMPLE["object"], "definition": {}},
            "result": {"duration": "P4W"},
            "version": "1.0",
        },
        version=version,
    )
    assert v.statement["object"]["definition"] == {}
    assert v.statement["version"] == "1.0"
