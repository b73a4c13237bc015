"""Authorship of an exported entry: who wrote it, whose key signed it, and what the
chain's key directory says about that key.

The export states each entry's author (:class:`chain.translator.authors.Author`); the
verifier believes none of it without evidence:

* the author's key must be the key the signature verifies with;
* the author must be the one the *signed* statement names: its ``authority`` (a Keiko
  account), else its actor. An entry presented as the learner's own (``self``) must have
  been written by the learner: a statement whose authority is someone else fails, however
  the export labels it. An attested entry must name the authority as its author;
* the statement must be about the passport's learner (its actor), when the export says
  who the learner is;
* the key is looked up in the key directory of the anchor contract. Bound to another
  holder than the expected one (the author; the learner for a ``legacy`` entry, which the
  learner's key signed) fails; revoked before the entry's anchor block fails; not in the
  directory is reported truthfully as "not registered on chain", which alone is not a
  failure (keys are bound by a background job); nor is an anchor contract deployed before
  the directory existed ("no key directory on this chain").
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from chain.translator.authors import (
    Author,
    AuthorKind,
    author_label,
    keiko_account,
    subject_of,
)
from chain.verify.export import ExportEntry
from chain.verify.problems import Failure, Problem
from chain.verify.reader import KeyInfo


class Registration(StrEnum):
    REGISTERED = "registered on chain"
    REVOKED = "revoked on chain"
    NOT_REGISTERED = "not registered on chain"
    NO_DIRECTORY = "no key directory on this chain"
    UNREADABLE = "key directory not readable"


class _NoDirectory(Enum):
    NO_DIRECTORY = "no key directory"


NO_DIRECTORY = _NoDirectory.NO_DIRECTORY

KeyFact = KeyInfo | str | _NoDirectory | None
"""What the chain said about a key: its binding, an error text, None (not bound), or
:data:`NO_DIRECTORY` (an anchor contract deployed before the key directory existed: the
entry's other checks stand, its key's holder cannot be looked up)."""


@dataclass(frozen=True, slots=True)
class AuthorReport:
    """The author of one entry as verified: who, whose key, and the key's registration."""

    kind: AuthorKind
    id: str
    display_name: str
    public_key: bytes
    legacy: bool
    holder: str  # whose key it must be: the author, or the learner for a legacy entry
    registration: Registration
    custody: str | None = None
    block: int | None = None
    revoked_block: int | None = None

    @property
    def label(self) -> str:
        """``self``, ``attested by <name>`` or the legacy wording."""
        return author_label(self.kind, self.id, self.display_name, self.legacy)

    @property
    def key_text(self) -> str:
        whose = "the learner's" if self.kind is AuthorKind.SELF or self.legacy else "the author's"
        text = f"{whose} key {self.public_key.hex()[:16]}…, {self.registration.value}"
        if self.registration in (Registration.REGISTERED, Registration.REVOKED):
            text += f" as a {self.custody} key at block {self.block}"
        if self.revoked_block is not None:
            text += f", revoked at block {self.revoked_block}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "id": self.id,
            "name": self.display_name,
            "label": self.label,
            "public_key": self.public_key.hex(),
            "legacy": self.legacy,
            "key_holder": self.holder,
            "registration": self.registration.value,
            "custody": self.custody,
            "registered_block": self.block,
            "revoked_block": self.revoked_block,
        }


def check_author(
    entry: ExportEntry, learner_id: str | None, fact: KeyFact, anchor_block: int | None
) -> tuple[AuthorReport | None, list[Problem]]:
    """The entry's author report and the problems found (see the module docstring).
    ``None`` when the export does not state the author (version 1)."""
    author = entry.author
    if author is None:
        return None, []
    problems: list[Problem] = []
    if not hmac.compare_digest(author.public_key, entry.public_key):
        problems.append(
            Problem(
                Failure.AUTHOR_KEY_MISMATCH,
                f"the export names {author.public_key.hex()} as the author's key, the entry "
                f"is signed with {entry.public_key.hex()}",
            )
        )
    statement = entry.statement
    actor = keiko_account(statement.get("actor"))
    has_authority = statement.get("authority") is not None
    signed_author = keiko_account(statement.get("authority")) if has_authority else actor
    if learner_id and actor is not None and actor != learner_id:
        problems.append(
            Problem(
                Failure.ENTRY_NOT_LEARNERS,
                f"the signed statement is about {actor}, the passport is {learner_id}'s",
            )
        )
    learner = learner_id or actor or ""
    written_by = signed_author or "an author outside Keiko"
    if author.kind is AuthorKind.SELF:
        if entry.legacy:
            problems.append(
                Problem(Failure.NOT_LEARNERS_OWN, "an entry cannot be both self and legacy")
            )
        if signed_author is None or signed_author != learner or (author.id or learner) != learner:
            problems.append(
                Problem(
                    Failure.NOT_LEARNERS_OWN,
                    f"presented as the learner's own, but the signed statement was written "
                    f"by {written_by}",
                )
            )
    elif author.id != signed_author or (learner and signed_author == learner):
        problems.append(
            Problem(
                Failure.AUTHOR_NOT_AUTHORITY,
                f"the export says {author.kind.value} {author.id!r}, the signed statement "
                f"was written by {written_by}",
            )
        )
    holder = learner if author.kind is AuthorKind.SELF or entry.legacy else author.id
    report, key_problems = _registration(author, entry, holder, fact, anchor_block)
    return report, problems + key_problems


def _registration(
    author: Author, entry: ExportEntry, holder: str, fact: KeyFact, anchor_block: int | None
) -> tuple[AuthorReport, list[Problem]]:
    problems: list[Problem] = []
    key = entry.public_key.hex()

    def report(registration: Registration, info: KeyInfo | None = None) -> AuthorReport:
        return AuthorReport(
            kind=author.kind,
            id=author.id,
            display_name=author.display_name,
            public_key=entry.public_key,
            legacy=entry.legacy,
            holder=holder,
            registration=registration,
            custody=None if info is None else info.kind,
            block=None if info is None else info.block,
            revoked_block=None if info is None else info.revoked_block,
        )

    if isinstance(fact, str):
        problems.append(Problem(Failure.CHAIN_READ_FAILED, f"key directory, key {key}: {fact}"))
        return report(Registration.UNREADABLE), problems
    if fact is None:
        return report(Registration.NOT_REGISTERED), problems
    if fact is NO_DIRECTORY:
        return report(Registration.NO_DIRECTORY), problems
    if holder and fact.subject != subject_of(holder):
        problems.append(
            Problem(
                Failure.KEY_NOT_AUTHORS,
                f"key {key} is bound on chain (block {fact.block}) to another holder, "
                f"not to {holder}",
            )
        )
    revoked_at = fact.revoked_block
    if revoked_at is not None and anchor_block is not None and anchor_block > revoked_at:
        problems.append(
            Problem(
                Failure.KEY_REVOKED,
                f"key {key} was revoked at block {revoked_at}, the entry was "
                f"anchored at block {anchor_block}",
            )
        )
    state = Registration.REGISTERED if revoked_at is None else Registration.REVOKED
    return report(state, fact), problems


__all__ = ["NO_DIRECTORY", "AuthorReport", "KeyFact", "Registration", "check_author"]
