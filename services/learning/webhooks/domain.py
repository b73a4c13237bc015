"""Webhook sources as rules: the kinds, how a delivery is authenticated and mapped. No I/O.

Moodle and Canvas sign deliveries with HMAC (`X-Keiko-Signature`, the shared secret kept
as given since HMAC needs it); Learning Locker and SCORM Cloud send HTTP Basic
`<source id>:<secret>`, of which only the SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from services.kit.clock import Clock
from services.kit.errors import Unauthenticated
from services.learning.common.basic_auth import basic_credentials
from services.learning.imports import canvas, common, learning_locker, moodle, scorm_cloud
from services.learning.xapi import ValidatedStatement


class WebhookKind:
    LEARNING_LOCKER = "learning_locker"
    SCORM_CLOUD = "scorm_cloud"
    MOODLE = "moodle"
    CANVAS = "canvas"
    ALL = (LEARNING_LOCKER, SCORM_CLOUD, MOODLE, CANVAS)
    BASIC = (LEARNING_LOCKER, SCORM_CLOUD)


MIN_SECRET = 16
MAX_SECRET = 256


def secret_hash(secret: str) -> str:
    """What is stored of a Basic-auth source's secret: its SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def verify_delivery(
    *,
    kind: str,
    source_id: str,
    hmac_secret: str | None,
    password_hash: str | None,
    headers: Mapping[str, str],
    body: bytes,
) -> None:
    """Unauthenticated unless the delivery carries the source's credentials."""
    if kind == WebhookKind.MOODLE:
        moodle.verify_request(headers, body, secret=hmac_secret or "")
    elif kind == WebhookKind.CANVAS:
        canvas.verify_request(headers, body, secret=hmac_secret or "")
    else:
        # Basic auth (Learning Locker forwarder, SCORM Cloud postback): user name = the
        # source id, password = the secret, of which only the SHA-256 is stored. The
        # mappers' verify_request needs the plain password, so the header is checked here
        # against the hash, with the same rules and constant-time comparison.
        user, password = basic_credentials(common.get_header(headers, common.AUTHORIZATION_HEADER))
        ok_user = hmac.compare_digest(user.encode(), source_id.encode())
        ok_password = hmac.compare_digest(secret_hash(password), password_hash or "")
        if not (ok_user and ok_password):
            raise Unauthenticated("invalid webhook credentials")
        verify = (
            learning_locker.verify_request
            if kind == WebhookKind.LEARNING_LOCKER
            else scorm_cloud.verify_request
        )
        verify(headers, username=user, password=password)


def map_delivery(kind: str, name: str, body: bytes, clock: Clock) -> list[ValidatedStatement]:
    """The statements a delivery maps to (`name`: the source's name, a site URL for Moodle
    and Canvas, optionally the app's home page for SCORM Cloud)."""
    if kind == WebhookKind.LEARNING_LOCKER:
        return learning_locker.map_payload(body, clock=clock)
    if kind == WebhookKind.SCORM_CLOUD:
        if name.startswith(("https://", "http://")):
            return scorm_cloud.map_payload(body, app_home_page=name, clock=clock)
        return scorm_cloud.map_payload(body, clock=clock)
    if kind == WebhookKind.MOODLE:
        return moodle.map_payload(body, site=name, clock=clock)
    return canvas.map_payload(body, canvas_url=name, clock=clock)
