"""multipart/mixed (RFC 2046 5.1) for statements with attachments (xAPI Communication
1.5.2): parse a request body into parts, and build a response body from parts.

Strict by design: delimiters are CRLF "--" boundary, part headers end at the first empty
line, and data is taken byte for byte (Content-Transfer-Encoding binary), so attachment
data is never re-encoded.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from gateway.xapi.http import HttpError

MAX_PARTS = 1 + 500  # the statements, then at most one part per attachment of a batch
MAX_HEADER_BYTES = 8 * 1024


@dataclass(frozen=True)
class Part:
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased
    content: bytes = b""


def boundary_of(content_type: str) -> str:
    """The boundary parameter of a multipart/mixed Content-Type (400 when missing)."""
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "boundary":
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            if 1 <= len(value) <= 70:
                return value
    raise HttpError(400, "multipart/mixed needs a boundary of 1 to 70 characters", "Content-Type")


def parse(content_type: str, body: bytes) -> list[Part]:
    delimiter = b"--" + boundary_of(content_type).encode("latin-1")
    if body.startswith(delimiter):
        body = b"\r\n" + body  # no preamble: the first delimiter starts the body
    pieces = body.split(b"\r\n" + delimiter)
    if len(pieces) < 3 or not pieces[-1].startswith(b"--"):
        raise HttpError(400, "is not a complete multipart/mixed body", "Content-Type")
    parts: list[Part] = []
    for piece in pieces[1:-1]:
        if len(parts) >= MAX_PARTS:
            raise HttpError(400, f"has more than {MAX_PARTS} parts", "Content-Type")
        if not piece.startswith(b"\r\n"):
            raise HttpError(400, "a boundary line must end with CRLF", "Content-Type")
        head, sep, content = piece[2:].partition(b"\r\n\r\n")
        if not sep:
            if piece[2:].startswith(b"\r\n"):  # no headers at all
                head, content = b"", piece[4:]
            else:
                raise HttpError(400, "a part's headers must end with an empty line", "Content-Type")
        if len(head) > MAX_HEADER_BYTES:
            raise HttpError(400, "a part's headers are too long", "Content-Type")
        headers: dict[str, str] = {}
        for line in head.decode("latin-1").split("\r\n") if head else []:
            name, colon, value = line.partition(":")
            if not colon:
                raise HttpError(400, f"malformed part header {line[:40]!r}", "Content-Type")
            headers[name.strip().lower()] = value.strip()
        parts.append(Part(headers, content))
    return parts


def build(parts: list[Part]) -> tuple[str, bytes]:
    """(Content-Type, body) of a multipart/mixed response holding `parts`."""
    boundary = "keiko-" + secrets.token_hex(16)
    while any(boundary.encode() in part.content for part in parts):
        boundary = "keiko-" + secrets.token_hex(16)  # RFC 2046: never inside a part
    chunks: list[bytes] = []
    for part in parts:
        chunks.append(b"--" + boundary.encode() + b"\r\n")
        for name, value in part.headers.items():
            chunks.append(f"{name}: {value}\r\n".encode("latin-1"))
        chunks.append(b"\r\n" + part.content + b"\r\n")
    chunks.append(b"--" + boundary.encode() + b"--\r\n")
    return f'multipart/mixed; boundary="{boundary}"', b"".join(chunks)
