"""The named reasons an entry fails verification, and one problem found in an entry."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Failure(StrEnum):
    """Named reasons an entry fails (the value is what reports print)."""

    MALFORMED = "malformed entry"
    STATEMENT_MISMATCH = "statement does not match signature"
    SIGNATURE_INVALID = "signature invalid"
    STATEMENT_HASH_MISMATCH = "statement hash does not match statement"
    KEY_NOT_LEARNERS = "public key is not the learner's"
    LEAF_MISMATCH = "leaf does not match entry data"
    UNKNOWN_LEAF_ENCODING = "unknown leaf encoding"
    NOT_ANCHORED = "entry not anchored"
    CHAIN_READ_FAILED = "chain read failed"
    BATCH_ROOT_MISMATCH = "batch root mismatch"
    ROOT_NOT_ANCHORED = "root not anchored on chain"
    BATCH_DOMAIN_MISMATCH = "batch domain mismatch"
    BLOCK_MISMATCH = "anchor block mismatch"
    TX_MISMATCH = "anchor transaction mismatch"
    INDEX_OUT_OF_RANGE = "leaf index outside the batch"
    PROOF_FAILED = "proof does not reach root"
    # Authorship (chain.verify.authorship)
    AUTHOR_KEY_MISMATCH = "author key is not the signing key"
    NOT_LEARNERS_OWN = "presented as the learner's own but not the learner's"
    AUTHOR_NOT_AUTHORITY = "author is not the signed statement's authority"
    ENTRY_NOT_LEARNERS = "entry is about another learner"
    KEY_NOT_AUTHORS = "key is registered on chain to another holder"
    KEY_REVOKED = "key was revoked before the entry was anchored"


@dataclass(frozen=True, slots=True)
class Problem:
    reason: Failure
    detail: str

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}"


__all__ = ["Failure", "Problem"]
