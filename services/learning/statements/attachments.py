"""Attachments and signed statements as rules. No I/O.

* Communication 1.5.2: a statement's attachment either names a `fileUrl` or comes as a
  part of a `multipart/mixed` request, matched by the SHA-2 the attachment object
  declares (the part's X-Experience-API-Hash); the LRS checks the part's data against that
  digest. An attachment with neither is 400; so is a part no attachment names.
* Data 2.6: a signed statement carries a JWS (compact serialization) as the attachment of
  usageType `http://adlnet.gov/expapi/attachments/signature`. The LRS decodes it, checks
  the algorithm is RS256, RS384 or RS512, that the payload is the statement as received
  without its signature attachment (statement comparison), and, when the JWS header holds
  an X.509 certificate chain (`x5c`), the signature against the first certificate's key.
  A malformed signature is 400 and nothing is stored.

Attachment data is stored content-addressed by its SHA-2 hex digest, so the same file
sent with many statements is kept once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from services.kit.errors import ValidationError
from services.learning.xapi import statements_equivalent, vocab
from services.learning.xapi.version import XAPIVersion

SIGNATURE_ALGORITHMS = ("RS256", "RS384", "RS512")
MAX_ATTACHMENT_BYTES = 16 * 1024 * 1024
_DIGESTS = {56: hashlib.sha224, 64: hashlib.sha256, 96: hashlib.sha384, 128: hashlib.sha512}


@dataclass(frozen=True)
class AttachmentPart:
    """One part of a multipart/mixed request after the statements."""

    sha2: str
    content_type: str
    content: bytes


def sha2_of(content: bytes, like: str) -> str:
    """The digest of `content` with the SHA-2 variant whose hex length `like` has."""
    digest = _DIGESTS.get(len(like))
    if digest is None:
        raise ValidationError("sha2", "must be the hex digest of SHA-224, -256, -384 or -512")
    return digest(content).hexdigest()


def check_parts(parts: Sequence[AttachmentPart]) -> dict[str, AttachmentPart]:
    """Parts by digest, each checked against its own data (ValidationError names it)."""
    out: dict[str, AttachmentPart] = {}
    for i, part in enumerate(parts):
        declared = part.sha2.lower()
        path = f"attachments[{i}]"
        if len(part.content) > MAX_ATTACHMENT_BYTES:
            raise ValidationError(
                f"{path}.content", f"must be at most {MAX_ATTACHMENT_BYTES} bytes"
            )
        if sha2_of(part.content, declared) != declared:
            raise ValidationError(
                f"{path}.sha2", "does not match the part's data (X-Experience-API-Hash)"
            )
        out[declared] = AttachmentPart(declared, part.content_type, part.content)
    return out


def attachment_objects(statement: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(path, attachment object) of a statement, its SubStatement's included."""
    found = [
        (f"attachments[{j}]", a)
        for j, a in enumerate(statement.get("attachments") or [])
        if isinstance(a, Mapping)
    ]
    obj = statement.get("object")
    if isinstance(obj, Mapping) and obj.get("objectType") == "SubStatement":
        found += [(f"object.{p}", a) for p, a in attachment_objects(obj)]
    return found


def match_parts(
    statements: Sequence[Mapping[str, Any]],
    incoming: Sequence[Mapping[str, Any]],
    parts: Mapping[str, AttachmentPart],
    version: XAPIVersion,
) -> list[list[str]]:
    """For each statement, the digests of the parts it uses; every attachment without a
    fileUrl needs its part, every part an attachment, and every signature is verified
    (`incoming`: the statements as received, which a signature's payload must match)."""
    used: set[str] = set()
    out: list[list[str]] = []
    for i, (statement, raw) in enumerate(zip(statements, incoming, strict=True)):
        mine: list[str] = []
        for path, attachment in attachment_objects(statement):
            where = f"statements[{i}].{path}"
            sha2 = str(attachment["sha2"]).lower()
            part = parts.get(sha2)
            signature = attachment.get("usageType") == vocab.ATTACHMENT_SIGNATURE
            if part is None:
                if signature:
                    raise ValidationError(
                        where, "a signature must be sent as a part (multipart/mixed)"
                    )
                if "fileUrl" not in attachment:
                    raise ValidationError(
                        where, "has no fileUrl and no multipart part with its sha2"
                    )
                continue
            if attachment["length"] != len(part.content):
                raise ValidationError(f"{where}.length", "does not match the part's data")
            if signature:
                verify_signature(raw, part.content, f"statements[{i}]", version)
            mine.append(sha2)
            used.add(sha2)
        out.append(mine)
    unused = sorted(set(parts) - used)
    if unused:
        raise ValidationError("attachments", f"part {unused[0]} matches no attachment")
    return out


def _unsigned(statement: Mapping[str, Any]) -> dict[str, Any]:
    """The statement as it was before its signature attachment was added."""
    out = dict(statement)
    kept = [
        a
        for a in out.get("attachments") or []
        if not (isinstance(a, Mapping) and a.get("usageType") == vocab.ATTACHMENT_SIGNATURE)
    ]
    if kept:
        out["attachments"] = kept
    else:
        out.pop("attachments", None)
    return out


def verify_signature(
    statement: Mapping[str, Any], jws: bytes, path: str, version: XAPIVersion
) -> None:
    """Data 2.6.s5: ValidationError (400) for a malformed or mismatched signature."""
    where = f"{path}.signature"
    try:
        token = jws.decode("ascii").strip()
        header = jwt.get_unverified_header(token)
        payload_b64 = token.split(".")[1]
        payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    except (UnicodeDecodeError, jwt.PyJWTError, IndexError, ValueError, binascii.Error):
        raise ValidationError(where, "is not a JWS in compact serialization") from None
    alg = header.get("alg")
    if alg not in SIGNATURE_ALGORITHMS:
        raise ValidationError(where, f"must use RS256, RS384 or RS512, not {alg!r}")
    if not isinstance(payload, dict):
        raise ValidationError(where, "its payload is not a statement")
    if "id" not in payload and "id" in statement:
        payload["id"] = statement["id"]
    try:
        same = statements_equivalent(payload, _unsigned(statement), version=version)
    except ValidationError:
        same = False
    if not same:
        raise ValidationError(where, "its payload is not the statement it is attached to")
    chain = header.get("x5c")
    if chain is None:
        return
    try:
        certificate = x509.load_der_x509_certificate(base64.b64decode(chain[0]))
        key = certificate.public_key()
    except (ValueError, TypeError, IndexError, binascii.Error):
        raise ValidationError(where, "x5c does not hold an X.509 certificate") from None
    if not isinstance(key, RSAPublicKey):
        raise ValidationError(where, "the x5c certificate's key is not an RSA key")
    try:
        jwt.api_jws.PyJWS().decode(token, key=key, algorithms=[alg])
    except jwt.PyJWTError:
        raise ValidationError(where, "does not verify with the x5c certificate's key") from None
