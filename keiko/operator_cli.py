"""Operator commands: ``keiko admin bootstrap``, ``keiko users``, ``keiko lrs-clients``,
``keiko webhooks``.

Only ``admin bootstrap`` touches the database, and only on the server's own machine: its
access to ``KEIKO_DATABASE_URL`` (the data dir on the embedded default) is its authority,
as it must be for the first admin, whom no other admin can name. It refuses once an admin
exists. Every other command is a GraphQL client of the gateway, authenticated like any
user (a passkey file and the normal WebAuthn login, or ``--token``), and authorized by the
services exactly as a browser's calls are.

The operator's passkey file (default ``~/.config/keiko/operator-passkey.json``, mode 0600;
``KEIKO_OPERATOR_PASSKEY`` or ``--passkey-file``) holds a software passkey like an SSH key
holds a private key: ``admin bootstrap`` makes it when it signs the operator up.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from keiko.authenticator import SoftwareAuthenticator
from keiko.gateway_client import (
    ClientError,
    GatewayClient,
    new_authenticator,
    print_json,
    request_id,
)
from keiko.settings import Settings

ROLES = ("LEARNER", "TUTOR", "SPACE_OWNER", "COMMUNITY_ADMIN", "ADMIN")
WEBHOOK_KINDS = ("LEARNING_LOCKER", "SCORM_CLOUD", "MOODLE", "CANVAS")


def default_passkey_file() -> Path:
    if os.environ.get("KEIKO_OPERATOR_PASSKEY"):
        return Path(os.environ["KEIKO_OPERATOR_PASSKEY"])
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "keiko" / "operator-passkey.json"


class UsageError(Exception):
    """Exit code 2, with the reason."""


# -- signing in --------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser, settings: Settings) -> None:
    parser.add_argument(
        "--gateway",
        default=settings.public_gateway_url,
        help=f"the gateway's URL (default: {settings.public_gateway_url})",
    )
    parser.add_argument(
        "--passkey-file",
        type=Path,
        default=None,
        help="the operator's passkey file (default: KEIKO_OPERATOR_PASSKEY or "
        "~/.config/keiko/operator-passkey.json)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("KEIKO_TOKEN", ""),
        help="an access token instead of the passkey (default: KEIKO_TOKEN)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def signed_in_client(args: argparse.Namespace) -> GatewayClient:
    """A client holding an access token: ``--token``, else the passkey file's session
    (its refresh token, rotated and saved back), else a passkey login (a WebAuthn
    ceremony, rate limited by identity: hence the kept session)."""
    client = GatewayClient(args.gateway)
    if args.token:
        client.token = args.token
        return client
    path = args.passkey_file or default_passkey_file()
    if not path.exists():
        client.close()
        raise UsageError(
            f"no passkey file at {path}: run `keiko admin bootstrap --email <you>` on the "
            "server first, or pass --token"
        )
    authenticator, extra = SoftwareAuthenticator.load(path)
    email = str(extra["email"])
    refresh = str(extra.get("refresh_token") or "")
    try:
        if refresh:
            try:
                tokens = client.call("RefreshTokens", refreshToken=refresh)["refreshTokens"]
                client.token, refresh = tokens["accessToken"], tokens["refreshToken"]
            except ClientError:
                refresh = ""  # expired or revoked: log in again
        if not refresh:
            refresh = client.log_in(email, authenticator).refresh_token
    except BaseException:
        client.close()
        raise
    finally:
        # The sign count and the rotated refresh token, back to the file.
        authenticator.save(path, email=email, refresh_token=refresh)
    return client


# -- admin bootstrap ---------------------------------------------------------------------


async def _other_admins(settings: Settings, email: str) -> list[str]:
    from services.identity.service import list_admins
    from services.kit.db import Database

    database = Database(settings.resolved_database_url, schemas=["identity"])
    try:
        return [a.email for a in await list_admins(database) if a.email != email.lower()]
    finally:
        await database.dispose()


async def _grant_admin(settings: Settings, email: str) -> dict[str, Any]:
    from services.identity.service import grant_admin
    from services.kit.clock import SystemClock
    from services.kit.db import Database
    from services.kit.errors import NotFound

    database = Database(settings.resolved_database_url, schemas=["identity"])
    try:
        user = await grant_admin(database, SystemClock(), email)
    except NotFound:
        raise UsageError(f"no account with the email {email}") from None
    finally:
        await database.dispose()
    return {"id": user.id, "email": user.email, "roles": sorted(r.value for r in user.roles)}


def bootstrap(args: argparse.Namespace, settings: Settings) -> int:
    path: Path = args.passkey_file or default_passkey_file()
    email = args.email.strip()
    made_passkey = False
    others = asyncio.run(_other_admins(settings, email))
    if others:
        raise UsageError(
            f"an admin exists already ({', '.join(others)}): bootstrap makes only the first "
            "one. That admin grants roles: keiko users grant-role <email> ADMIN"
        )
    if not args.existing_account:
        if path.exists():
            _, extra = SoftwareAuthenticator.load(path)
            if str(extra.get("email", "")).lower() != email.lower():
                raise UsageError(
                    f"{path} holds the passkey of {extra.get('email')}; pass another --passkey-file"
                )
        else:
            # Sign the operator up over the gateway, like anyone: the passkey is the file.
            authenticator = new_authenticator(args.gateway, settings.webauthn_rp_id)
            with GatewayClient(args.gateway) as client:
                client.sign_up(email, args.name, authenticator)
            authenticator.save(path, email=email)
            made_passkey = True
    granted = asyncio.run(_grant_admin(settings, email))
    if not args.existing_account:
        # Log in again: the new token carries the ADMIN role.
        with signed_in_client(args) as client:
            me = client.call("Me")["me"]
        granted["roles"] = me["roles"]
    if args.json:
        print_json({**granted, "passkey_file": None if args.existing_account else str(path)})
        return 0
    print(f"{email} is an admin (roles: {', '.join(granted['roles'])}).")
    if made_passkey:
        print(f"Its passkey: {path} (keep it like a private key).")
    if args.existing_account:
        print("Log in again (web app or refresh) for the role to reach your tokens.")
    return 0


# -- users -------------------------------------------------------------------------------


def _find_user(client: GatewayClient, who: str) -> dict[str, Any]:
    """A user, with their roles, by email or id."""
    if "@" not in who:
        return dict(client.call("User", id=who)["user"])
    found = client.call("Users", query=who)["users"]["nodes"]
    exact = [u for u in found if (u.get("email") or "").lower() == who.lower()]
    if not exact:
        raise UsageError(f"no user with the email {who}")
    return dict(exact[0])


def users_list(args: argparse.Namespace, client: GatewayClient) -> int:
    out: list[dict[str, Any]] = []
    after = None
    while True:
        page = client.call("Users", query=args.query, role=args.role, after=after)["users"]
        out += page["nodes"]
        if not page["hasNextPage"]:
            break
        after = page["endCursor"]
    if args.json:
        print_json(out)
        return 0
    for user in out:
        print(
            f"{user['id']}  {user['email'] or '-':<32} {user['displayName']:<24} "
            f"{','.join(user['roles'])}"
        )
    print(f"{len(out)} user(s)")
    return 0


def users_change_role(args: argparse.Namespace, client: GatewayClient, grant: bool) -> int:
    user = _find_user(client, args.user)
    roles = set(user["roles"])
    roles = roles | {args.role} if grant else roles - {args.role}
    changed = client.call("SetUserRoles", userId=user["id"], roles=sorted(roles))["setUserRoles"]
    if args.json:
        print_json(changed)
    else:
        print(
            f"{changed['email'] or changed['id']}: {', '.join(changed['roles']) or 'no roles'}"
            " (from their next login or token refresh)"
        )
    return 0


# -- LRS clients and webhook sources -----------------------------------------------------


def _all(client: GatewayClient, operation: str, field: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = None
    while True:
        page = client.call(operation, after=after)[field]
        out += page["nodes"]
        if not page["hasNextPage"]:
            return out
        after = page["endCursor"]


def lrs_create(args: argparse.Namespace, client: GatewayClient) -> int:
    made = client.call("RegisterLrsClient", name=args.name, requestId=request_id())[
        "registerLrsClient"
    ]
    endpoint = f"{client.base_url}/xapi/"
    if args.json:
        print_json({**made, "endpoint": endpoint})
        return 0
    print(f"LRS client {made['client']['name']} ({made['client']['id']})")
    print(f"  endpoint  {endpoint}")
    print(f"  key       {made['client']['key']}      (Basic auth user name)")
    print(f"  secret    {made['secret']}      (Basic auth password: shown once)")
    return 0


def lrs_list(args: argparse.Namespace, client: GatewayClient) -> int:
    found = _all(client, "LrsClients", "lrsClients")
    if args.json:
        print_json(found)
        return 0
    for c in found:
        state = f"revoked {c['revokedAt']}" if c["revokedAt"] else "active"
        print(f"{c['id']}  {c['key']}  {c['name']:<24} {state}")
    print(f"{len(found)} LRS client(s)")
    return 0


def lrs_revoke(args: argparse.Namespace, client: GatewayClient) -> int:
    revoked = client.call("RevokeLrsClient", id=args.id)["revokeLrsClient"]
    if args.json:
        print_json(revoked)
    else:
        print(f"revoked LRS client {revoked['name']} ({revoked['key']})")
    return 0


def webhooks_create(args: argparse.Namespace, client: GatewayClient) -> int:
    made = client.call(
        "RegisterWebhookSource",
        input={
            "name": args.name,
            "kind": args.kind,
            "secret": args.secret,
            "courseId": args.course_id,
            "requestId": request_id(),
        },
    )["registerWebhookSource"]
    source = made["source"]
    url = f"{client.base_url}{source['endpointPath']}"
    if args.json:
        print_json({**made, "url": url})
        return 0
    print(f"webhook source {source['name']} ({source['kind']}, {source['id']})")
    print(f"  URL to configure on the platform  {url}")
    if made["generatedSecret"]:
        print(f"  signing secret                    {made['generatedSecret']}  (shown once)")
    return 0


def webhooks_list(args: argparse.Namespace, client: GatewayClient) -> int:
    found = _all(client, "WebhookSources", "webhookSources")
    if args.json:
        print_json(found)
        return 0
    for s in found:
        state = f"revoked {s['revokedAt']}" if s["revokedAt"] else "active"
        print(f"{s['id']}  {s['kind']:<16} {s['name']:<24} {s['endpointPath']}  {state}")
    print(f"{len(found)} webhook source(s)")
    return 0


def webhooks_revoke(args: argparse.Namespace, client: GatewayClient) -> int:
    revoked = client.call("RevokeWebhookSource", id=args.id)["revokeWebhookSource"]
    if args.json:
        print_json(revoked)
    else:
        print(f"revoked webhook source {revoked['name']}")
    return 0


# -- parsing -----------------------------------------------------------------------------

Handler = Callable[[argparse.Namespace, GatewayClient], int]


def build_parser(group: str, settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"keiko {group}")
    sub = parser.add_subparsers(dest="action", required=True)

    def add(name: str, help: str, handler: Handler | None = None) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help)
        _common(command, settings)
        if handler is not None:
            command.set_defaults(handler=handler)
        return command

    if group == "admin":
        boot = add(
            "bootstrap",
            "make the first admin (on the server's machine: needs its database); signs "
            "the operator up with a new passkey file unless --existing-account",
        )
        boot.add_argument("--email", required=True)
        boot.add_argument("--name", default="Keiko operator")
        boot.add_argument(
            "--existing-account",
            action="store_true",
            help="grant ADMIN to an account that signed up already (e.g. in the web app)",
        )
    elif group == "users":
        listing = add("list", "list users (admins)", users_list)
        listing.add_argument("--query", default="", help="part of an email or name")
        listing.add_argument("--role", choices=ROLES)
        for name, grant in (("grant-role", True), ("revoke-role", False)):
            change = add(
                name,
                f"{'grant' if grant else 'revoke'} a role (admins)",
                lambda a, c, g=grant: users_change_role(a, c, g),  # type: ignore[misc]
            )
            change.add_argument("user", help="email or user id")
            change.add_argument("role", choices=ROLES)
    elif group == "lrs-clients":
        add("create", "issue xAPI Basic auth credentials", lrs_create).add_argument("name")
        add("list", "your LRS clients", lrs_list)
        add("revoke", "revoke an LRS client", lrs_revoke).add_argument("id")
    elif group == "webhooks":
        create = add("create", "allow an LRS or LMS to push by webhook", webhooks_create)
        create.add_argument("name", help="the platform's URL, e.g. https://moodle.school.example")
        create.add_argument("--kind", required=True, choices=WEBHOOK_KINDS)
        create.add_argument("--secret", default="", help="the platform's signing secret")
        create.add_argument("--course-id", default=None, help="attach imports to a course")
        add("list", "your webhook sources", webhooks_list)
        add("revoke", "revoke a webhook source", webhooks_revoke).add_argument("id")
    return parser


GROUPS = ("admin", "users", "lrs-clients", "webhooks")


def main(group: str, argv: Sequence[str]) -> int:
    settings = Settings()
    args = build_parser(group, settings).parse_args(list(argv))
    try:
        if group == "admin":
            return bootstrap(args, settings)
        with signed_in_client(args) as client:
            return int(args.handler(args, client))
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ClientError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
