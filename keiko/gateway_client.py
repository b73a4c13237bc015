"""The command line as a GraphQL client of the gateway, like any other client.

Operations are the documented ones in ``graphql/operations/*.graphql`` (validated against
the schema by a test): a request sends the whole file with ``operationName``. Signing in
uses a passkey file (:class:`keiko.authenticator.SoftwareAuthenticator`): the normal
WebAuthn login over the network, checked by the identity service like a browser's. No
command reaches around the gateway's authorization.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from keiko.authenticator import SoftwareAuthenticator

OPERATIONS_DIR = Path(__file__).resolve().parents[1] / "graphql" / "operations"
_OPERATION = re.compile(r"^\s*(?:query|mutation|subscription)\s+(\w+)", re.M)


class ClientError(Exception):
    """A refused or failed call, with the gateway's reason (and GraphQL code)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(f"{message} ({code})" if code else message)
        self.code = code


@cache
def operations() -> dict[str, str]:
    """Operation name -> the text of the file defining it."""
    found: dict[str, str] = {}
    for path in sorted(OPERATIONS_DIR.glob("*.graphql")):
        text = path.read_text()
        for name in _OPERATION.findall(text):
            if name in found:
                raise ValueError(f"operation {name} is defined twice in {OPERATIONS_DIR}")
            found[name] = text
    return found


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class Session:
    user: dict[str, Any]
    access_token: str
    refresh_token: str


class GatewayClient:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 60) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        # No keep-alive: one command, few calls; no stale pooled connection to trip on.
        self.http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def call(self, operation: str, **variables: Any) -> dict[str, Any]:
        """Run a documented operation; the ``data`` of its answer."""
        document = operations().get(operation)
        if document is None:
            raise ValueError(f"no operation {operation} in {OPERATIONS_DIR}")
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            reply = self.http.post(
                "/graphql",
                json={"query": document, "operationName": operation, "variables": variables},
                headers=headers,
            )
        except httpx.HTTPError as err:
            raise ClientError(f"cannot reach the gateway at {self.base_url}: {err}") from None
        try:
            body = reply.json()
        except ValueError:
            raise ClientError(f"{self.base_url}/graphql: HTTP {reply.status_code}") from None
        errors = body.get("errors") or []
        if errors:
            first = errors[0]
            code = (first.get("extensions") or {}).get("code", "")
            raise ClientError(str(first.get("message", "error")), str(code))
        return dict(body["data"])

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path)

    # -- passkeys ---------------------------------------------------------------------------

    def sign_up(self, email: str, name: str, authenticator: SoftwareAuthenticator) -> Session:
        begun = self.call("BeginRegistration", email=email, displayName=name)["beginRegistration"]
        credential = authenticator.create(begun["optionsJson"])
        done = self.call(
            "FinishRegistration", id=begun["id"], credential=credential, name="keiko command line"
        )["finishRegistration"]
        return self._signed_in(done)

    def log_in(self, email: str, authenticator: SoftwareAuthenticator) -> Session:
        begun = self.call("BeginLogin", email=email)["beginLogin"]
        assertion = authenticator.get(begun["optionsJson"])
        done = self.call("FinishLogin", id=begun["id"], credential=assertion)["finishLogin"]
        return self._signed_in(done)

    def _signed_in(self, done: dict[str, Any]) -> Session:
        tokens = done["tokens"]
        self.token = tokens["accessToken"]
        return Session(done["user"], tokens["accessToken"], tokens["refreshToken"])


def new_authenticator(gateway_url: str, rp_id: str) -> SoftwareAuthenticator:
    return SoftwareAuthenticator(origin=origin_of(gateway_url), rp_id=rp_id)


def request_id() -> str:
    return uuid.uuid4().hex


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))
