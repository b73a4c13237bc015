"""LRS client rules. No I/O.

An LRS client authenticates with HTTP Basic (key + secret; only the secret's SHA-256 is
stored) and acts as a principal `lrs:<client id>` on behalf of its owner: the owner is the
statements' authority and the statement rules apply to the owner's user id (so a client
writes the owner's own record or external actors', never another Keiko learner's).
"""

from __future__ import annotations

from services.kit.auth import Principal
from services.kit.errors import ValidationError

LRS_SESSION_PREFIX = "lrs:"
WEBHOOK_SESSION_PREFIX = "webhook:"
MAX_NAME = 200


def check_name(value: str) -> str:
    text = value.strip()
    if not text:
        raise ValidationError("name", "must not be empty")
    if len(text) > MAX_NAME:
        raise ValidationError("name", f"must be at most {MAX_NAME} characters")
    return text


def client_principal(owner_id: str, client_id: str) -> Principal:
    """The principal an LRS client acts as: its owner, without the owner's roles."""
    return Principal(user_id=owner_id, roles=frozenset(), session_id=LRS_SESSION_PREFIX + client_id)


def acting_through_credentials(caller: Principal) -> bool:
    """True for an LRS client or a webhook source acting for its owner."""
    return caller.session_id.startswith((LRS_SESSION_PREFIX, WEBHOOK_SESSION_PREFIX))
