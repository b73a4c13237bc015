"""xAPI for Keiko: strict statement validation (1.0.3 and 2.0), canonical bytes, vocabulary."""

from services.learning.xapi.canonical import canonical_bytes, statement_hash, statement_hash_hex
from services.learning.xapi.compare import statements_equivalent
from services.learning.xapi.formats import format_duration, format_timestamp, parse_timestamp
from services.learning.xapi.primitives import agent_key
from services.learning.xapi.validation import (
    ValidatedStatement,
    validate_agent,
    validate_iri,
    validate_statement,
    validate_statements,
)
from services.learning.xapi.version import (
    VERSION_HEADER,
    XAPIVersion,
    parse_version_header,
)

__all__ = [
    "VERSION_HEADER",
    "ValidatedStatement",
    "XAPIVersion",
    "agent_key",
    "canonical_bytes",
    "format_duration",
    "format_timestamp",
    "parse_timestamp",
    "parse_version_header",
    "statement_hash",
    "statement_hash_hex",
    "statements_equivalent",
    "validate_agent",
    "validate_iri",
    "validate_statement",
    "validate_statements",
]
