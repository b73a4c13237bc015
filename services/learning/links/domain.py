"""Actor links as rules. No I/O.

How a link is proven (two parties, each proving what only they can):

1. The learner, signed in to Keiko, creates a one-time link code (CreateActorLinkCode).
   Creating it is their consent; it expires after CODE_TTL and works once.
2. The learner gives the code to the institution (enters it in the LMS profile, or reads
   it to staff). The institution, authenticated as itself (its LRS client's Basic
   credentials, or its owner's Keiko account), confirms the identity *it* knows the
   learner by in its own system (ConfirmActorLink, or POST
   /xapi/extensions/keiko/actor-links): an Agent with an mbox, mbox_sha1sum, openid or
   account. That is the institution vouching for its own account or address.

The link binds (institution, identity) -> learner. Only statements the *same*
institution stores (through any of its LRS clients or webhook sources) about that
identity enter the learner's passport, authored by the institution (the statement's
authority names the institution's Keiko account, so its key signs the entry, shown as
"attested by" it). Another institution sending statements about the same address
reaches no passport until the learner links it too: no institution can route records
into a learner's passport without the learner's code, and a learner cannot claim an
identity no institution vouches for. Either party may revoke a link; statements stored
before a link, or after its revocation, stay in the LRS only.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from services.kit.errors import ValidationError
from services.learning.hierarchy.domain import KEIKO_HOME_PAGE
from services.learning.xapi import agent_key, validate_agent

CODE_TTL = timedelta(hours=24)
MAX_OPEN_CODES = 20  # a learner's unexpired, unused codes
MAX_CODE = 64
ACTIVE = "active"  # `slot` of a link in force (see storage)


def new_code() -> str:
    """A code a person can read and type: 4 groups of 5 base32 characters (100 bits)."""
    raw = secrets.token_bytes(20)  # one byte per character: 256 % 32 == 0, so uniform
    text = "".join("ABCDEFGHJKLMNPQRSTUVWXYZ23456789"[b % 32] for b in raw)
    return "-".join(text[i : i + 5] for i in range(0, 20, 5))


def code_hash(code: str) -> str:
    """What is stored of a code: the SHA-256 of its normalized form."""
    normalized = code.strip().upper().replace(" ", "")
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def check_code(code: str) -> str:
    if not code.strip():
        raise ValidationError("code", "is required")
    if len(code) > MAX_CODE:
        raise ValidationError("code", f"must be at most {MAX_CODE} characters")
    return code


def linkable_agent(agent_json: str) -> tuple[dict[str, Any], str]:
    """The vouched identity and its key: an Agent (not a Group) that is not already a
    Keiko account."""
    if not agent_json:
        raise ValidationError("agent", "is required")
    agent = validate_agent(agent_json, "agent")
    account = agent.get("account")
    if isinstance(account, Mapping) and account.get("homePage") == KEIKO_HOME_PAGE:
        raise ValidationError("agent.account", "is a Keiko account already: nothing to link")
    key = agent_key(agent)
    assert key is not None  # validate_agent requires an identifier
    identity = {k: v for k, v in agent.items() if k != "name"}
    identity.setdefault("objectType", "Agent")
    return identity, key
