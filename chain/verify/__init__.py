"""Independent passport verification: export format, chain reader protocol, verifier, report.

Used by the command line verifier (``keiko passport verify``) and the public verification
page. See :mod:`chain.verify.export` for the document format and
:mod:`chain.verify.verifier` for what is checked.
"""

from chain.verify.authorship import AuthorReport, Registration
from chain.verify.export import (
    EXPORT_FORMAT,
    EXPORT_VERSION,
    AnchorProof,
    ExportEntry,
    MalformedEntry,
    PassportExport,
    build_entry,
    parse_export,
)
from chain.verify.reader import (
    AnchorContractReader,
    AnchorTransaction,
    AsyncChainReader,
    BatchInfo,
    ChainReader,
    InMemoryChainReader,
    KeyInfo,
)
from chain.verify.render import render_text
from chain.verify.verifier import (
    EntryReport,
    EntryStatus,
    Failure,
    Problem,
    VerificationReport,
    averify_passport,
    verify_passport,
)

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "AnchorContractReader",
    "AnchorProof",
    "AnchorTransaction",
    "AsyncChainReader",
    "AuthorReport",
    "BatchInfo",
    "ChainReader",
    "EntryReport",
    "EntryStatus",
    "ExportEntry",
    "Failure",
    "InMemoryChainReader",
    "KeyInfo",
    "MalformedEntry",
    "PassportExport",
    "Problem",
    "Registration",
    "VerificationReport",
    "averify_passport",
    "build_entry",
    "parse_export",
    "render_text",
    "verify_passport",
]
