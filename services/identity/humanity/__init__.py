"""Proof of humanity: iris + genome -> fuzzy extractor -> humanity key -> Ed25519 key.

The identity service calls :func:`enroll` and :func:`reproduce` (see docs/humanity.md).
Modules: ``iris`` (OpenCV pipeline), ``genome`` (VCF/FASTA -> SNP panel genotypes),
``panel`` (the SNP panel), ``features`` (bits for the fuzzy extractor), ``fuzzy``
(code-offset BCH fuzzy extractor), ``bch`` (its compiled decoder), ``index`` (the
duplicate-check index), ``keys`` (HKDF, commitment, Ed25519), ``pipeline`` (the API),
``synthetic`` (test and evaluation data).
"""

from services.identity.humanity.index import IndexKey
from services.identity.humanity.pipeline import (
    CaptureMismatch,
    DuplicateHuman,
    EnrolledTemplateStore,
    Enrollment,
    GenomeFormat,
    InMemoryTemplateStore,
    Reproduction,
    enroll,
    reproduce,
    warm_up,
)

__all__ = [
    "CaptureMismatch",
    "DuplicateHuman",
    "EnrolledTemplateStore",
    "Enrollment",
    "GenomeFormat",
    "InMemoryTemplateStore",
    "IndexKey",
    "Reproduction",
    "enroll",
    "reproduce",
    "warm_up",
]
