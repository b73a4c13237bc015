"""Attachments and signed statements over HTTP, xAPI 1.0.3 and 2.0, both engines:
multipart/mixed with SHA-2 matched parts and fileUrl attachments (Communication 1.5.2),
GET ?attachments=true (2.1.3), JWS-signed statements (Data 2.6), content-addressed data."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

from gateway.tests.test_xapi_resource import LiveLearning, live_learning, lrs_headers
from gateway.xapi import multipart
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.events import EventBus
from services.learning.statements.tables import attachments

VERSIONS = ("1.0.3", "2.0.0")
STATEMENTS = "/xapi/statements"
SIGNATURE = "http://adlnet.gov/expapi/attachments/signature"


@pytest.fixture
async def gw(
    migrated_database: Database, event_bus: EventBus, clock: FixedClock
) -> AsyncIterator[LiveLearning]:
    async with live_learning(migrated_database, event_bus, clock) as live:
        yield live


def statement(*attached: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "actor": {"objectType": "Agent", "mbox": "mailto:sample@example.org"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
        "object": {"objectType": "Activity", "id": "https://example.org/multipart"},
    }
    if attached:
        out["attachments"] = list(attached)
    return out


def attachment(data: bytes, **extra: Any) -> dict[str, Any]:
    return {
        "usageType": "http://example.org/attachment-usage/test",
        "display": {"en-US": "A test attachment"},
        "contentType": "text/plain",
        "length": len(data),
        "sha2": hashlib.sha256(data).hexdigest(),
        **extra,
    }


def body(statements: Any, *parts: tuple[str, bytes]) -> tuple[dict[str, str], bytes]:
    content_type, data = multipart.build(
        [
            multipart.Part({"Content-Type": "application/json"}, json.dumps(statements).encode()),
            *(
                multipart.Part(
                    {
                        "Content-Type": "application/octet-stream",
                        "Content-Transfer-Encoding": "binary",
                        "X-Experience-API-Hash": sha2,
                    },
                    data,
                )
                for sha2, data in parts
            ),
        ]
    )
    return {"Content-Type": content_type}, data


async def versioned(gw: LiveLearning, version: str) -> dict[str, str]:
    return {**await lrs_headers(gw), "X-Experience-API-Version": version}


async def test_multipart_attachments_and_retrieval(
    gw: LiveLearning, migrated_database: Database
) -> None:
    for version in VERSIONS:
        h = await versioned(gw, version)
        data = f"here is a simple attachment ({version})\r\n--not-a-boundary\x00\xff".encode(
            "latin-1"
        )
        sha2 = hashlib.sha256(data).hexdigest()
        one, two = statement(attachment(data)), statement(attachment(data))
        headers, payload = body([one, two], (sha2, data))
        posted = await gw.http.post(STATEMENTS, content=payload, headers={**h, **headers})
        assert posted.status_code == 200, posted.text
        # Content-addressed: two statements, one copy of the data.
        async with migrated_database.session() as s:
            copies = (
                await s.execute(
                    select(func.count()).select_from(attachments).where(attachments.c.sha2 == sha2)
                )
            ).scalar_one()
        assert copies == 1
        got = await gw.http.get(
            STATEMENTS, params={"statementId": one["id"], "attachments": "true"}, headers=h
        )
        assert got.status_code == 200 and got.headers["Content-Type"].startswith("multipart/mixed")
        first, part = multipart.parse(got.headers["Content-Type"], got.content)
        assert json.loads(first.content)["id"] == one["id"]
        assert part.headers["x-experience-api-hash"] == sha2 and part.content == data
        listing = await gw.http.get(STATEMENTS, params={"attachments": "true"}, headers=h)
        parts = multipart.parse(listing.headers["Content-Type"], listing.content)
        assert json.loads(parts[0].content)["statements"]
        assert [p.content for p in parts[1:]].count(data) == 1
        plain = await gw.http.get(STATEMENTS, params={"statementId": one["id"]}, headers=h)
        assert plain.headers["Content-Type"].startswith("application/json")
        # PUT takes multipart/mixed too.
        three = statement(attachment(data))
        headers, payload = body(three, (sha2, data))
        put = await gw.http.put(
            STATEMENTS,
            params={"statementId": three["id"]},
            content=payload,
            headers={**h, **headers},
        )
        assert put.status_code == 204, put.text


async def test_attachment_rules(gw: LiveLearning) -> None:
    """Communication 1.5.1.s1.b2 (fileUrl only, as application/json), 1.5.2.s3.b5 (neither
    fileUrl nor part: 400), the part's data must match its hash."""
    for version in VERSIONS:
        h = await versioned(gw, version)
        data = b"certificate"
        sha2 = hashlib.sha256(data).hexdigest()
        linked = statement(attachment(data, fileUrl="https://example.org/certificate.pdf"))
        assert (await gw.http.post(STATEMENTS, json=linked, headers=h)).status_code == 200
        missing = await gw.http.post(STATEMENTS, json=statement(attachment(data)), headers=h)
        assert missing.status_code == 400
        assert missing.json()["field"] == "statements[0].attachments[0]"
        headers, payload = body(statement(attachment(data)), (sha2, b"tampered"))
        wrong = await gw.http.post(STATEMENTS, content=payload, headers={**h, **headers})
        assert (wrong.status_code, wrong.json()["field"]) == (400, "attachments[0].sha2")
        headers, payload = body(statement(), (sha2, data))
        unused = await gw.http.post(STATEMENTS, content=payload, headers={**h, **headers})
        assert (unused.status_code, unused.json()["field"]) == (400, "attachments")
        content_type, text_first = multipart.build(
            [multipart.Part({"Content-Type": "text/plain"}, json.dumps(statement()).encode())]
        )
        first = await gw.http.post(
            STATEMENTS, content=text_first, headers={**h, "Content-Type": content_type}
        )
        assert first.status_code == 400 and first.json()["field"] == "Content-Type"


def _certificate(key: rsa.RSAPrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Keiko test signer")])
    now = datetime(2026, 1, 1, tzinfo=UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def _signed(
    signed: dict[str, Any], key: Any, alg: str, x5c: str | None = None
) -> tuple[dict[str, Any], bytes]:
    headers = {"x5c": [x5c]} if x5c else None
    token = jwt.encode(signed, key, algorithm=alg, headers=headers).encode()
    sig = {
        "usageType": SIGNATURE,
        "display": {"en-US": "Signature"},
        "contentType": "application/octet-stream",
        "length": len(token),
        "sha2": hashlib.sha256(token).hexdigest(),
    }
    return {**signed, "attachments": [sig]}, token


async def test_signed_statements(gw: LiveLearning) -> None:
    """Data 2.6: RS256/384/512 validated and stored; HS256, a payload that is not the
    statement, and a signature the x5c certificate does not verify are 400."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    x5c = _certificate(key)
    for version in VERSIONS:
        h = await versioned(gw, version)
        for alg in ("RS256", "RS384", "RS512"):
            original = statement()
            stmt, token = _signed(original, key, alg, x5c)
            headers, payload = body(stmt, (hashlib.sha256(token).hexdigest(), token))
            ok = await gw.http.post(STATEMENTS, content=payload, headers={**h, **headers})
            assert ok.status_code == 200, (alg, ok.text)
            got = await gw.http.get(
                STATEMENTS, params={"statementId": original["id"], "attachments": "true"}, headers=h
            )
            parts = multipart.parse(got.headers["Content-Type"], got.content)
            assert parts[1].content == token
        cases = {
            "hmac": _signed(statement(), b"shared-secret-of-32-bytes-length!", "HS256"),
            "other key": _signed(statement(), other, "RS256", x5c),
        }
        tampered, token = _signed(statement(), key, "RS256", x5c)
        tampered["verb"] = {"id": "http://adlnet.gov/expapi/verbs/failed"}
        cases["not the statement"] = (tampered, token)
        for name, (stmt, token) in cases.items():
            headers, payload = body(stmt, (hashlib.sha256(token).hexdigest(), token))
            refused = await gw.http.post(STATEMENTS, content=payload, headers={**h, **headers})
            assert refused.status_code == 400, (name, refused.text)
            assert refused.json()["field"] == "statements[0].signature", name


async def test_request_size_limits(gw: LiveLearning) -> None:
    """A part larger than any other xAPI body (6 MiB) is stored: the statements route
    takes 5 MiB of JSON plus a part at the 16 MiB part limit (docs/limits.md); its JSON
    alone stays within 5 MiB (413), as every other xAPI body does."""
    h = await versioned(gw, "2.0.0")
    data = bytes(range(256)) * (6 * 4096)
    sha2 = hashlib.sha256(data).hexdigest()
    s = statement(attachment(data))
    headers, payload = body(s, (sha2, data))
    posted = await gw.http.post(STATEMENTS, content=payload, headers={**h, **headers})
    assert posted.status_code == 200, posted.text
    got = await gw.http.get(
        STATEMENTS, params={"statementId": s["id"], "attachments": "true"}, headers=h
    )
    assert got.status_code == 200, got.text[:300]
    assert multipart.parse(got.headers["Content-Type"], got.content)[1].content == data
    padded = statement()
    padded["result"] = {"extensions": {"https://example.org/pad": "x" * (5 * 1024 * 1024)}}
    too_big = await gw.http.post(STATEMENTS, json=padded, headers=h)
    assert too_big.status_code == 413
    state = await gw.http.put(
        "/xapi/activities/profile",
        params={"activityId": "https://example.org/a", "profileId": "big"},
        content=b"x" * (6 * 1024 * 1024),
        headers=h,
    )
    assert state.status_code == 413  # other xAPI routes keep 5 MiB
