"""Who signed a record: the author model the translator, the verifier and the passport share.

**The rule.** A record about a learner is signed by its *author's* key:

* the learner's own key (custodial, or their registered device key) signs only what the
  learner submitted themself: the author is the learner, kind :attr:`AuthorKind.SELF`;
* another Keiko user (a tutor's feedback, an admin's correction) signs with *their* key:
  kind :attr:`AuthorKind.USER`, shown as "attested by" that user;
* a Keiko service (the attendance record the learning service derives from a completed
  tutor session) signs with the service's key: kind :attr:`AuthorKind.SERVICE`.

The author of an xAPI statement is the Keiko account its ``authority`` names (the LRS sets
the authority from the writer's credentials, so the signature covers the author's name);
without an authority, the learner the statement is about.

**Subjects.** The key directory on chain (the ``interaction_anchor`` contract) binds each
signing key to its holder's *subject*, a felt committing to the holder's id without
revealing it::

    subject = poseidon_hash_many([short string 'keiko.subject.v1', H[0:16], H[16:32]])
    H = sha256(UTF-8 holder id)

Anyone who knows an id can recompute its subject; a subject does not reveal the id
(user ids are random UUIDs).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from chain.translator.felts import bytes_to_felts, encode_short_string
from chain.translator.poseidon import hash_many
from services.kit.errors import ValidationError

KEIKO_HOME_PAGE = "https://keiko.network"
"""The homePage of Keiko accounts in xAPI agents (``{"account": {"homePage", "name"}}``)."""

SUBJECT_ENCODING = "keiko.subject.v1"
MAX_HOLDER_ID_CHARS = 200

SERVICE_AUTHORS: Mapping[str, str] = {
    "keiko-learning": "Keiko learning service",
}
"""Keiko services that author records, by author id, with the name the passport shows.
Their ids are not user ids (user ids are UUIDs), so the two never collide."""


class AuthorKind(StrEnum):
    SELF = "self"
    USER = "user"
    SERVICE = "service"


class KeyCustody(StrEnum):
    """Who holds a signing key (the directory's ``kind``)."""

    CUSTODIAL = "custodial"  # a user's key, held encrypted by Keiko's translator
    DEVICE = "device"  # a user's registered key, held on their device (humanity-derived)
    SERVICE = "service"  # a Keiko service's key, held by the translator


@dataclass(frozen=True, slots=True)
class Author:
    """The author of one record: what kind, who, the name to show and the signing key."""

    kind: AuthorKind
    id: str
    display_name: str
    public_key: bytes

    @property
    def attested(self) -> bool:
        """Written by someone other than the learner the record is about."""
        return self.kind is not AuthorKind.SELF


def author_label(kind: AuthorKind, author_id: str, display_name: str, legacy: bool) -> str:
    """How an entry's author reads to a person: ``self``, ``attested by <name>``, or, for
    an entry someone else wrote that the learner's key signed (before per-author signing),
    the legacy wording, which claims neither the learner nor the writer signed as author."""
    name = display_name or SERVICE_AUTHORS.get(author_id, "")
    who = name or author_id or "an unnamed author"
    if legacy:
        return f"recorded by {who}, signed with the learner's key (legacy)"
    if kind is AuthorKind.SELF:
        return "self"
    if kind is AuthorKind.SERVICE:
        return f"attested by {who} (Keiko service)"
    return f"attested by {who}" + (f" ({author_id})" if name and author_id else "")


def is_service(author_id: str) -> bool:
    return author_id in SERVICE_AUTHORS


def author_kind(author_id: str, learner_id: str) -> AuthorKind:
    """SELF when the learner wrote it, SERVICE for a Keiko service, else USER."""
    if author_id == learner_id:
        return AuthorKind.SELF
    return AuthorKind.SERVICE if is_service(author_id) else AuthorKind.USER


def custody_of(holder_id: str) -> KeyCustody:
    """The custody kind of a key the translator holds for ``holder_id``."""
    return KeyCustody.SERVICE if is_service(holder_id) else KeyCustody.CUSTODIAL


def check_holder_id(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, "is required")
    if len(value) > MAX_HOLDER_ID_CHARS:
        raise ValidationError(field, f"must be at most {MAX_HOLDER_ID_CHARS} characters")
    return value


def subject_of(holder_id: str) -> int:
    """The subject felt of a key holder's id (see the module docstring)."""
    digest = hashlib.sha256(check_holder_id(holder_id, "holder_id").encode("utf-8")).digest()
    return hash_many([encode_short_string(SUBJECT_ENCODING), *bytes_to_felts(digest)])


def keiko_account(agent: object) -> str | None:
    """The Keiko user id an xAPI Agent names through its account, else None."""
    if not isinstance(agent, Mapping) or agent.get("objectType", "Agent") != "Agent":
        return None
    account = agent.get("account")
    if isinstance(account, Mapping) and account.get("homePage") == KEIKO_HOME_PAGE:
        name = account.get("name")
        return name if isinstance(name, str) and name else None
    return None


def statement_author(
    statement: Mapping[str, Any], learner_id: str, recorded_by: str = "", field: str = "statement"
) -> str:
    """The author of a statement about ``learner_id``: the Keiko account of its
    ``authority``, else ``recorded_by``, else the learner. A non-Keiko authority, or a
    ``recorded_by`` that contradicts the authority, is refused: nobody can be made to
    sign what they did not write."""
    authority = statement.get("authority")
    if authority is not None:
        author = keiko_account(authority)
        if author is None:
            raise ValidationError(
                f"{field}.authority", "must be the Keiko account of the statement's author"
            )
        if recorded_by and recorded_by != author:
            raise ValidationError(
                "recorded_by", f"is {recorded_by!r} but the statement's authority is {author!r}"
            )
        return check_holder_id(author, f"{field}.authority.account.name")
    return check_holder_id(
        recorded_by or learner_id, "recorded_by" if recorded_by else "learner_id"
    )


def display_name_of_service(author_id: str) -> str:
    return SERVICE_AUTHORS.get(author_id, "")


__all__ = [
    "KEIKO_HOME_PAGE",
    "SERVICE_AUTHORS",
    "Author",
    "AuthorKind",
    "KeyCustody",
    "author_kind",
    "author_label",
    "check_holder_id",
    "custody_of",
    "display_name_of_service",
    "is_service",
    "keiko_account",
    "statement_author",
    "subject_of",
]
