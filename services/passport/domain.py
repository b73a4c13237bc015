"""Passport domain: disclosures, privacy settings, learning profiles, timeline grouping.

Plain types and rules, no I/O. Interaction types are the lowercase names of
``keiko.common.v1.InteractionType`` (``question``, ``answer``, ...).

Disclosure semantics. ``interaction_types`` / ``course_ids``: ``None`` means "all";
a (possibly empty) frozenset means "only these" (empty after narrowing = nothing).
Revealing content reveals the statement JSON, which carries the result (scores): so
``show_content`` requires ``show_scores``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from chain.translator.authors import Author, AuthorKind, author_label, display_name_of_service
from chain.translator.leaves import LEAF_ENCODING
from services.kit.clock import as_utc
from services.kit.errors import ValidationError

INTERACTION_TYPES = ("question", "answer", "exercise", "discussion", "evaluation", "feedback")
MAX_ID_CHARS = 200
MAX_LABEL_CHARS = 200
MAX_LIST_ITEMS = 100
MAX_SKILLS = 50
DEFAULT_PAGE = 50
MAX_PAGE = 500


def check_id(value: str, field_name: str, *, required: bool = True) -> str:
    if not isinstance(value, str):
        raise ValidationError(field_name, "must be a string")
    value = value.strip()
    if required and not value:
        raise ValidationError(field_name, "is required")
    if len(value) > MAX_ID_CHARS:
        raise ValidationError(field_name, f"must be at most {MAX_ID_CHARS} characters")
    return value


# -- disclosure -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Disclosure:
    interaction_types: frozenset[str] | None = None
    course_ids: frozenset[str] | None = None
    show_scores: bool = False
    show_identity: bool = False
    show_content: bool = False

    @classmethod
    def build(
        cls,
        field_name: str,
        interaction_types: Sequence[str],
        course_ids: Sequence[str],
        show_scores: bool,
        show_identity: bool,
        show_content: bool,
    ) -> Disclosure:
        if len(interaction_types) > len(INTERACTION_TYPES):
            raise ValidationError(f"{field_name}.interaction_types", "too many types")
        types: set[str] = set()
        for i, t in enumerate(interaction_types):
            if t not in INTERACTION_TYPES:
                raise ValidationError(
                    f"{field_name}.interaction_types[{i}]", "must be a known interaction type"
                )
            types.add(t)
        if len(course_ids) > MAX_LIST_ITEMS:
            raise ValidationError(
                f"{field_name}.course_ids", f"at most {MAX_LIST_ITEMS} course ids"
            )
        courses = {check_id(c, f"{field_name}.course_ids[{i}]") for i, c in enumerate(course_ids)}
        if show_content and not show_scores:
            raise ValidationError(
                f"{field_name}.show_content",
                "the statement content contains the scores: set show_scores too",
            )
        return cls(
            frozenset(types) or None,
            frozenset(courses) or None,
            bool(show_scores),
            bool(show_identity),
            bool(show_content),
        )

    def narrow(self, bound: Disclosure) -> Disclosure:
        """What ``self`` reveals within ``bound`` (never more than either)."""

        def meet(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
            if a is None:
                return b
            if b is None:
                return a
            return a & b

        return Disclosure(
            meet(self.interaction_types, bound.interaction_types),
            meet(self.course_ids, bound.course_ids),
            self.show_scores and bound.show_scores,
            self.show_identity and bound.show_identity,
            self.show_content and bound.show_content and self.show_scores and bound.show_scores,
        )

    def within(self, bound: Disclosure) -> bool:
        return self.narrow(bound) == self

    def admits(self, interaction_type: str, course_id: str) -> bool:
        if self.interaction_types is not None and interaction_type not in self.interaction_types:
            return False
        return self.course_ids is None or course_id in self.course_ids

    def to_json(self) -> dict[str, Any]:
        return {
            "interaction_types": None
            if self.interaction_types is None
            else sorted(self.interaction_types),
            "course_ids": None if self.course_ids is None else sorted(self.course_ids),
            "show_scores": self.show_scores,
            "show_identity": self.show_identity,
            "show_content": self.show_content,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Disclosure:
        types = data.get("interaction_types")
        courses = data.get("course_ids")
        return cls(
            None if types is None else frozenset(types),
            None if courses is None else frozenset(courses),
            bool(data.get("show_scores")),
            bool(data.get("show_identity")),
            bool(data.get("show_content")),
        )


# The owner sees everything.
FULL = Disclosure(None, None, True, True, True)
# Defaults: private passport; links reveal entries, content and scores but not identity.
DEFAULT_PUBLIC = Disclosure(None, None, True, False, True)
DEFAULT_SHARE = Disclosure(None, None, True, False, True)


@dataclass(frozen=True, slots=True)
class PrivacySettings:
    public: bool = False
    public_disclosure: Disclosure = DEFAULT_PUBLIC
    share_link_disclosure: Disclosure = DEFAULT_SHARE

    def to_json(self) -> dict[str, Any]:
        return {
            "public": self.public,
            "public_disclosure": self.public_disclosure.to_json(),
            "share_link_disclosure": self.share_link_disclosure.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> PrivacySettings:
        if not data:
            return cls()
        return cls(
            bool(data.get("public")),
            Disclosure.from_json(data.get("public_disclosure") or {}),
            Disclosure.from_json(data.get("share_link_disclosure") or {}),
        )


# -- learning profile ---------------------------------------------------------------------

LEARNING_STYLES = ("visual", "auditory", "reading_writing", "kinesthetic", "multimodal")


def _percent(value: int, field_name: str) -> int:
    if not 0 <= value <= 100:
        raise ValidationError(field_name, "must be between 0 and 100")
    return value


def validate_profile(profile: Mapping[str, Any]) -> dict[str, Any]:
    """Check a profile given as JSON-able dict (see :func:`servicer.profile_from_pb`):
    enums as names or ``""``, percentages 0-100, at most ``MAX_SKILLS`` skills per list."""
    out: dict[str, Any] = {
        "learning_style": profile.get("learning_style", ""),
        "learning_style_scores": {},
        "preferences": dict(profile.get("preferences") or {}),
        "strengths": [],
        "areas_for_improvement": [],
        "last_assessment": profile.get("last_assessment"),
    }
    style = out["learning_style"]
    if style and style not in LEARNING_STYLES:
        raise ValidationError("profile.learning_style", "must be a known learning style")
    for key, value in (profile.get("learning_style_scores") or {}).items():
        out["learning_style_scores"][key] = _percent(
            int(value), f"profile.learning_style_scores.{key}"
        )
    for list_name in ("strengths", "areas_for_improvement"):
        skills = profile.get(list_name) or []
        if len(skills) > MAX_SKILLS:
            raise ValidationError(f"profile.{list_name}", f"at most {MAX_SKILLS} skills")
        for i, skill in enumerate(skills):
            path = f"profile.{list_name}[{i}]"
            domain = str(skill.get("domain", "")).strip()
            if not domain:
                raise ValidationError(f"{path}.domain", "is required")
            if len(domain) > MAX_ID_CHARS:
                raise ValidationError(f"{path}.domain", f"at most {MAX_ID_CHARS} characters")
            out[list_name].append(
                {
                    "domain": domain,
                    "level": _percent(int(skill.get("level", 0)), f"{path}.level"),
                    "confidence": _percent(int(skill.get("confidence", 0)), f"{path}.confidence"),
                    "last_updated": skill.get("last_updated"),
                }
            )
    return out


# -- entries and the timeline -------------------------------------------------------------


class AnchorStatus(StrEnum):
    PENDING = "pending"
    ANCHORED = "anchored"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Anchor:
    status: AnchorStatus
    batch_id: str = ""
    domain: str = "learning"
    root: str = ""
    leaf: str = ""
    leaf_index: int = 0
    # How `leaf` is computed; a statement not anchored yet gets the translator's current.
    leaf_encoding: str = LEAF_ENCODING
    proof: tuple[str, ...] | None = None
    block: int = 0
    tx_hash: str = ""
    failure_reason: str = ""
    anchored_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """A timeline entry as stored (the owner's full view)."""

    statement_id: str
    learner_id: str
    interaction_type: str
    verb_id: str
    object_id: str
    course_id: str
    class_id: str
    tutorial_session_id: str
    study_session_id: str
    timestamp: datetime
    statement_json: str
    signature_hex: str
    public_key_hex: str
    anchor: Anchor
    seq: int = 0
    author_id: str = ""  # the Keiko account the statement's authority names
    author_kind: str = AuthorKind.SELF.value
    signer_id: str = ""  # whose key signed it, once the translator says so
    author_name: str = ""  # the author's display name, when known

    @property
    def statement(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.statement_json)
        return parsed

    def context_activity_name(self, iri_tail: str, statement: Any = None) -> str:
        """The name the statement's context gives the activity whose IRI ends with
        ``iri_tail`` (e.g. ``/course/<id>``), or ''. ``statement``: this entry's
        `parsed_statement()` when the caller has it."""
        try:
            parsed = self.statement if statement is None else statement
            activities = (parsed.get("context") or {}).get("contextActivities") or {}
        except (ValueError, AttributeError):
            return ""
        if not isinstance(activities, Mapping):
            return ""
        for kind in ("parent", "grouping", "other"):
            found = activities.get(kind) or []
            for activity in found if isinstance(found, list) else []:
                if isinstance(activity, Mapping) and str(activity.get("id", "")).endswith(iri_tail):
                    definition = activity.get("definition") or {}
                    if isinstance(definition, Mapping):
                        return _first_text(definition.get("name") or {})[:300]
        return ""

    @property
    def legacy(self) -> bool:
        """Written by someone else but signed with the learner's key: how every entry was
        signed before per-author signing. Shown as recorded by its writer, never as the
        learner's own nor as the writer's signature."""
        return self.author_id not in ("", self.learner_id) and self.signer_id == self.learner_id

    @property
    def kind(self) -> AuthorKind:
        try:
            return AuthorKind(self.author_kind)
        except ValueError:
            return AuthorKind.SELF if self.author_id in ("", self.learner_id) else AuthorKind.USER

    def author(self, show_identity: bool) -> Author:
        """Who wrote it and the key that signed it. The learner's own id is withheld unless
        the viewer may see the learner's identity; an attesting user or service is named."""
        kind = self.kind
        if kind is AuthorKind.SELF:
            author_id = self.learner_id if show_identity else ""
            name = ""
        else:
            author_id = self.author_id
            name = self.author_name or display_name_of_service(self.author_id)
        key = bytes.fromhex(self.public_key_hex) if self.public_key_hex else b""
        return Author(kind, author_id, name, key)

    def author_label(self, show_identity: bool, author: Author | None = None) -> str:
        """``author``: this entry's ``author(show_identity)`` when the caller has it."""
        if author is None:
            author = self.author(show_identity)
        return author_label(author.kind, author.id, author.display_name, self.legacy)

    def parsed_statement(self) -> Any:
        """The statement parsed, or None when it is not JSON: what `summary` and
        `score_scaled` take, so one page parses each statement once."""
        try:
            return json.loads(self.statement_json)
        except ValueError:
            return None

    def score_scaled(self, statement: Any = None) -> float | None:
        """``statement``: this entry's `parsed_statement()` when the caller has it."""
        try:
            parsed = self.statement if statement is None else statement
            result = parsed.get("result") or {}
            score = (result.get("score") or {}).get("scaled")
        except (ValueError, AttributeError):
            return None
        return float(score) if isinstance(score, int | float) else None

    def summary(self, show_scores: bool, statement: Any = None) -> str:
        """One human line, e.g. ``answered: Question 3 (0.8)``. ``statement``: this
        entry's `parsed_statement()` when the caller has it."""
        if statement is None:
            statement = self.parsed_statement()
        if statement is None:
            statement = {}
        verb = statement.get("verb") or {}
        display = verb.get("display") or {}
        word = _first_text(display) or (self.verb_id.rstrip("/").rsplit("/", 1)[-1] or "did")
        obj = statement.get("object") or {}
        definition = obj.get("definition") or {} if isinstance(obj, Mapping) else {}
        name = _first_text(definition.get("name") or {}) or self.object_id or "an activity"
        text = f"{word} {name}"
        score = self.score_scaled(statement) if show_scores else None
        if score is not None:
            text += f" ({score:g})"
        return text[:300]


class Statements:
    """The statements of one page's entries, each parsed once: a group's title, an
    entry's summary and its score all read it (parsed three to five times before)."""

    __slots__ = ("_parsed",)

    def __init__(self) -> None:
        self._parsed: dict[str, Any] = {}

    def of(self, entry: Entry) -> Any:
        """`entry.parsed_statement()`, from the first time it was asked for."""
        key = entry.statement_id
        try:
            return self._parsed[key]
        except KeyError:
            parsed = self._parsed[key] = entry.parsed_statement()
            return parsed


def _first_text(language_map: Mapping[str, Any]) -> str:
    if not isinstance(language_map, Mapping) or not language_map:
        return ""
    for key in ("en-US", "en", "es", "es-ES"):
        if isinstance(language_map.get(key), str):
            return str(language_map[key])
    first = next(iter(language_map.values()))
    return first if isinstance(first, str) else ""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Level(StrEnum):
    COURSE = "course"
    CLASS = "class"
    TUTORIAL_SESSION = "tutorial_session"
    STUDY_SESSION = "study_session"
    UNGROUPED = "ungrouped"


@dataclass
class Group:
    level: Level
    id: str
    entries: list[Entry] = field(default_factory=list)
    children: list[Group] = field(default_factory=list)
    first: tuple[datetime, int] | None = None
    index: dict[tuple[Level, str], Group] = field(default_factory=dict, repr=False)

    title: str = ""

    def resolve_titles(self, statements: Statements) -> None:
        """Name this group and its children from the signed statements below them: each
        statement's context names the course, class and session it was recorded in
        (definition.name), so the title is as verifiable as the entries. A group no
        statement names keeps its id."""
        for child in self.children:
            child.resolve_titles(statements)
        if self.level is Level.UNGROUPED:
            self.title = "Other interactions"
            return
        self.title = self._named_in(self, statements) or self.id

    def _named_in(self, group: Group, statements: Statements) -> str:
        iri_tail = f"/{_SEGMENTS[self.level]}/{self.id}"
        for entry in group.entries:
            name = entry.context_activity_name(iri_tail, statements.of(entry))
            if name:
                return name
        for child in group.children:
            name = self._named_in(child, statements)
            if name:
                return name
        return ""


# The IRI path segment of each level's activities (services.learning.hierarchy).
_SEGMENTS = {
    Level.COURSE: "course",
    Level.CLASS: "class",
    Level.TUTORIAL_SESSION: "tutorial-session",
    Level.STUDY_SESSION: "study-session",
}


def _path(entry: Entry) -> list[tuple[Level, str]]:
    path: list[tuple[Level, str]] = []
    if entry.course_id:
        path.append((Level.COURSE, entry.course_id))
    if entry.class_id:
        path.append((Level.CLASS, entry.class_id))
    if entry.tutorial_session_id:
        path.append((Level.TUTORIAL_SESSION, entry.tutorial_session_id))
    elif entry.study_session_id:
        path.append((Level.STUDY_SESSION, entry.study_session_id))
    return path or [(Level.UNGROUPED, "")]


def group_entries(entries: Iterable[Entry], statements: Statements | None = None) -> list[Group]:
    """The timeline tree of chronologically ordered ``entries``: courses, then classes
    outside courses, sessions outside classes, and one ungrouped group, each level
    ordered by its earliest entry (ties: insertion). ``statements``: the page's parsed
    statements, for the caller to reuse."""
    if statements is None:
        statements = Statements()
    roots: dict[tuple[Level, str], Group] = {}
    for order, entry in enumerate(entries):
        key = (entry.timestamp, order)
        siblings = roots
        node: Group | None = None
        for level, ident in _path(entry):
            node = siblings.get((level, ident))
            if node is None:
                node = Group(level, ident, first=key)
                siblings[(level, ident)] = node
            siblings = node.index
        assert node is not None
        node.entries.append(entry)

    def finish(groups: Mapping[tuple[Level, str], Group]) -> list[Group]:
        rank = {
            Level.COURSE: 0,
            Level.CLASS: 1,
            Level.TUTORIAL_SESSION: 2,
            Level.STUDY_SESSION: 2,
            Level.UNGROUPED: 3,
        }
        out = sorted(groups.values(), key=lambda g: (rank[g.level], g.first or (_EPOCH, 0)))
        for group in out:
            group.children = finish(group.index)
        return out

    tree = finish(roots)
    for group in tree:
        group.resolve_titles(statements)
    return tree


# -- cursors ----------------------------------------------------------------------------


def cursor_scope(*parts: object) -> str:
    """A short digest of what a page token was issued for (the passport, the viewer's
    disclosure, the filters): a token replayed against another query is rejected."""
    digest = hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()
    return digest[:12]


def encode_cursor(timestamp: datetime, ident: str, scope: str = "") -> str:
    raw = json.dumps([as_utc(timestamp).isoformat(), ident, scope], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(
    token: str, scope: str = "", field_name: str = "page_token"
) -> tuple[datetime, str] | None:
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        when, ident, issued_for = json.loads(raw)
        parsed = datetime.fromisoformat(when)
        if not isinstance(ident, str) or parsed.tzinfo is None:
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ValidationError(field_name, "is not a page token of this list") from None
    if issued_for != scope:
        raise ValidationError(field_name, "was issued for other filters or another viewer")
    return as_utc(parsed), ident


def with_anchor(entry: Entry, anchor: Anchor) -> Entry:
    return replace(entry, anchor=anchor)
