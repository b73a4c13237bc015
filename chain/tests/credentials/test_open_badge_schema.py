"""An Open Badge that Keiko issues validates against the Open Badges 3.0 JSON Schema."""

from __future__ import annotations

import copy

from chain.credentials.badge_schema import open_badge_errors
from chain.credentials.records import AuthorKind
from chain.credentials.status_list import StatusEntry
from chain.tests.credentials.factory import ANA, Ledger, badge_credential, statement


def test_keiko_open_badge_validates_and_broken_ones_do_not() -> None:
    [record] = Ledger().anchor([(statement(ANA, 1), ANA, AuthorKind.SELF)])
    badge = badge_credential(
        ANA, ANA, [record], status=StatusEntry("https://keiko.test/credentials/status/1", 5)
    )
    assert open_badge_errors(badge) == []

    no_criteria = copy.deepcopy(badge)
    del no_criteria["credentialSubject"]["achievement"]["criteria"]
    assert open_badge_errors(no_criteria) == [
        "credentialSubject.achievement: 'criteria' is a required property"
    ]
    wrong_context = copy.deepcopy(badge)
    wrong_context["@context"] = wrong_context["@context"][::-1]
    assert open_badge_errors(wrong_context)
    no_valid_from = copy.deepcopy(badge)
    del no_valid_from["validFrom"]
    assert open_badge_errors(no_valid_from) == ["(document): 'validFrom' is a required property"]
    bad_evidence = copy.deepcopy(badge)
    bad_evidence["evidence"][0]["type"] = ["KeikochainAnchor"]
    assert open_badge_errors(bad_evidence)
