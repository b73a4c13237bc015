"""Passport credentials: which entries become which credentials, issued by whom.

Plain types and rules, no I/O (the W3C documents themselves are built by
:mod:`chain.credentials`). Three formats:

* ``learning_record``: one ``LearningRecordCredential`` listing the selected entries,
  issued by the learner (a learner's compilation may include entries others attested:
  each record keeps its author's signature and names its author);
* ``per_entry``: one ``LearningRecordCredential`` per entry, issued by the entry's author:
  the learner for their own, the attesting tutor or Keiko service otherwise;
* ``open_badge``: an Open Badges 3.0 ``OpenBadgeCredential`` awarding an achievement, the
  entries as evidence; issued by their author when they share one, else by the learner.

Every entry must be signed and anchored (its anchor is the evidence). An entry another
account wrote but the learner's key signed (before per-author signing: "legacy") is not
issued: a credential would name the writer as author of the learner's signature.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from chain.credentials.learning_credentials import ACHIEVEMENT_TYPES, MAX_TEXT_CHARS
from chain.credentials.records import AuthorKind
from chain.translator.authors import author_kind, statement_author
from services.kit.errors import FailedPrecondition, ValidationError
from services.passport.domain import MAX_ID_CHARS, AnchorStatus, Entry, check_id

MAX_SELECTION = 500
MAX_PER_ENTRY = 100
MAX_IRI_CHARS = 1000


class CredentialFormat(StrEnum):
    LEARNING_RECORD = "learning_record"
    PER_ENTRY = "per_entry"
    OPEN_BADGE = "open_badge"


class RevocationReason(StrEnum):
    REVOKED_BY_LEARNER = "revoked_by_learner"
    REVOKED_BY_ISSUER = "revoked_by_issuer"
    VOIDED_STATEMENT = "voided_statement"
    WITHDRAWN_SHARE = "withdrawn_share"


@dataclass(frozen=True, slots=True)
class AchievementInput:
    id: str
    name: str
    description: str
    criteria: str
    achievement_type: str = "Course"

    def checked(self) -> AchievementInput:
        def text(value: str, field: str, limit: int = MAX_TEXT_CHARS) -> str:
            if not value.strip():
                raise ValidationError(f"achievement.{field}", "is required")
            if len(value) > limit:
                raise ValidationError(f"achievement.{field}", f"at most {limit} characters")
            return value

        if not self.id.startswith(("https://", "http://", "urn:")):
            raise ValidationError("achievement.id", "must be an IRI (https:, http: or urn:)")
        kind = self.achievement_type or "Course"
        if kind not in ACHIEVEMENT_TYPES:
            raise ValidationError(
                "achievement.achievement_type", f"must be one of {', '.join(ACHIEVEMENT_TYPES)}"
            )
        return AchievementInput(
            text(self.id, "id", MAX_IRI_CHARS),
            text(self.name, "name"),
            text(self.description, "description"),
            text(self.criteria, "criteria"),
            kind,
        )


@dataclass(frozen=True, slots=True)
class IssueRequest:
    format: CredentialFormat
    statement_ids: tuple[str, ...] = ()
    course_id: str = ""
    achievement: AchievementInput | None = None
    share_link_id: str = ""
    request_id: str = ""

    def checked(self) -> IssueRequest:
        if len(self.statement_ids) > MAX_SELECTION:
            raise ValidationError("statement_ids", f"at most {MAX_SELECTION} entries")
        ids = tuple(check_id(s, f"statement_ids[{i}]") for i, s in enumerate(self.statement_ids))
        if len(set(ids)) != len(ids):
            raise ValidationError("statement_ids", "lists an entry twice")
        achievement = None
        if self.format is CredentialFormat.OPEN_BADGE:
            if self.achievement is None:
                raise ValidationError("achievement", "an Open Badge needs the achievement")
            achievement = self.achievement.checked()
        elif self.achievement is not None:
            raise ValidationError("achievement", "only for the OPEN_BADGE format")
        return IssueRequest(
            self.format,
            ids,
            check_id(self.course_id, "course_id", required=False),
            achievement,
            check_id(self.share_link_id, "share_link_id", required=False),
            _request_id(self.request_id),
        )


def _request_id(value: str) -> str:
    if len(value) > 128:
        raise ValidationError("request_id", "at most 128 characters")
    return value


@dataclass(frozen=True, slots=True)
class EntryAuthor:
    """Who signed an entry, as the translator recorded it (the statement's authority)."""

    author_id: str
    kind: AuthorKind


def entry_author(entry: Entry) -> EntryAuthor:
    """The entry's author as the passport knows it (the translator's word once anchored),
    else as the statement's authority names it."""
    author_id = entry.author_id or statement_author(entry.statement, entry.learner_id)
    return EntryAuthor(author_id, author_kind(author_id, entry.learner_id))


@dataclass(frozen=True, slots=True)
class Planned:
    """One credential to issue: whose key signs it, over which entries."""

    holder_id: str
    entries: tuple[Entry, ...]


def check_issuable(entries: Sequence[Entry], learner_key_hex: str) -> None:
    """Every entry signed, anchored with its proof, and not legacy (see the docstring)."""
    for entry in entries:
        where = f"entry {entry.statement_id}"
        if not entry.signature_hex or not entry.public_key_hex:
            raise FailedPrecondition(f"{where} is not signed yet")
        if entry.anchor.status is not AnchorStatus.ANCHORED or entry.anchor.proof is None:
            raise FailedPrecondition(f"{where} is not anchored yet: its anchor is the evidence")
        author = entry_author(entry)
        signed_with_learners_key = entry.public_key_hex == learner_key_hex
        if entry.legacy or (author.kind is not AuthorKind.SELF and signed_with_learners_key):
            raise FailedPrecondition(
                f"{where} was written by {author.author_id} but signed with your key "
                "(before per-author signing): it cannot be issued as their attestation"
            )


def plan(request: IssueRequest, entries: Sequence[Entry], learner_id: str) -> list[Planned]:
    """Which credentials ``request`` issues over ``entries`` (see the module docstring)."""
    if not entries:
        raise FailedPrecondition("no entries to issue")
    if request.format is CredentialFormat.PER_ENTRY:
        if len(entries) > MAX_PER_ENTRY:
            raise ValidationError(
                "statement_ids", f"at most {MAX_PER_ENTRY} entries, one credential each"
            )
        return [Planned(entry_author(e).author_id, (e,)) for e in entries]
    holder = learner_id
    if request.format is CredentialFormat.OPEN_BADGE:
        authors = {entry_author(e).author_id for e in entries}
        if len(authors) == 1:
            holder = authors.pop()
    return [Planned(holder, tuple(entries))]


@dataclass(frozen=True, slots=True)
class IssuedCredential:
    """A stored credential."""

    id: str
    owner_id: str
    passport_id: str
    format: CredentialFormat
    holder_id: str
    issuer_did: str
    subject_did: str
    statement_ids: tuple[str, ...]
    status_list_id: str
    status_index: int
    document_json: str
    issued_at: datetime
    share_link_id: str = ""
    revoked_at: datetime | None = None
    revocation_reason: RevocationReason | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def check_credential_id(value: str) -> str:
    value = check_id(value, "credential_id")
    if not value.startswith("urn:uuid:") or len(value) > MAX_ID_CHARS:
        raise ValidationError("credential_id", "must be a urn:uuid: credential id")
    return value


__all__ = [
    "MAX_PER_ENTRY",
    "MAX_SELECTION",
    "AchievementInput",
    "CredentialFormat",
    "EntryAuthor",
    "IssueRequest",
    "IssuedCredential",
    "Planned",
    "RevocationReason",
    "check_credential_id",
    "check_issuable",
    "entry_author",
    "plan",
]
