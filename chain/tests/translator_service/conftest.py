"""Fixtures of the translator service tests: a migrated ``chain`` schema, signed records."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from nacl.signing import SigningKey

from chain.translator.batching import Domain
from chain.translator.leaves import LEAF_ENCODING, leaf_from_hash, statement_hash
from chain.translator.signing import canonical_bytes
from chain.translator.storage import MIGRATIONS_DIR, ChainStore, NewRecord
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.migrations import upgrade


@pytest.fixture
def database_schemas() -> Sequence[str]:
    return ("chain",)


@pytest.fixture
async def chain_db(database: Database) -> Database:
    await upgrade(database, "chain", MIGRATIONS_DIR)
    return database


@pytest.fixture
def store(chain_db: Database, clock: FixedClock) -> ChainStore:
    return ChainStore(chain_db, clock)


LEARNER_KEY = SigningKey(bytes(range(32)))


def statement(i: int, learner: str = "ana") -> dict[str, object]:
    return {
        "id": f"00000000-0000-4000-8000-{i:012d}",
        "actor": {"account": {"homePage": "https://keiko.example", "name": learner}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
        "object": {"id": f"https://keiko.example/q/{i}"},
        "result": {"score": {"scaled": 0.8}},
    }


def new_record(i: int, learner: str = "ana", domain: Domain = Domain.LEARNING) -> NewRecord:
    canonical = canonical_bytes(statement(i, learner))
    signature = bytes(LEARNER_KEY.sign(canonical).signature)
    public_key = bytes(LEARNER_KEY.verify_key)
    digest = statement_hash(canonical)
    return NewRecord(
        domain=domain,
        record_id=f"rec-{i}",
        learner_id=learner,
        statement_sha256=digest,
        signature=signature,
        public_key=public_key,
        leaf=leaf_from_hash(digest, signature, public_key),
        leaf_encoding=LEAF_ENCODING,
    )
