"""Webhook import mappers: Learning Locker, SCORM Cloud, Moodle and Canvas payloads mapped to
validated xAPI statements with idempotent ids (see `common` for authentication)."""

from services.learning.imports import canvas, common, learning_locker, moodle, scorm_cloud
from services.learning.imports.common import (
    SIGNATURE_HEADER,
    hmac_signature,
    import_statement_id,
    verify_basic_auth,
    verify_hmac_signature,
)

__all__ = [
    "SIGNATURE_HEADER",
    "canvas",
    "common",
    "hmac_signature",
    "import_statement_id",
    "learning_locker",
    "moodle",
    "scorm_cloud",
    "verify_basic_auth",
    "verify_hmac_signature",
]
