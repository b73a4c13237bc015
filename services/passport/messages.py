"""The passport API's messages: decoding requests (interaction types, disclosures, privacy
settings, the learning profile, timestamps) and encoding passports' parts (entries and
their authors and anchors, timeline groups, share links, verifications)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import betterproto

from chain.translator.authors import AuthorKind
from services.api.keiko.common import v1 as common
from services.api.keiko.passport import v1 as pb
from services.kit.clock import as_utc
from services.kit.errors import ValidationError
from services.passport.domain import (
    INTERACTION_TYPES,
    LEARNING_STYLES,
    Disclosure,
    Entry,
    Group,
    Level,
    PrivacySettings,
    Statements,
)
from services.passport.service import ShareLink, Verification

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TYPE_TO_PB = {name: common.InteractionType.from_string(name.upper()) for name in INTERACTION_TYPES}
_TYPE_FROM_PB = {int(v): k for k, v in _TYPE_TO_PB.items()}
_STATUS_TO_PB: dict[str, common.AnchorStatus] = {
    name: common.AnchorStatus.from_string(name.upper())
    for name in ("pending", "anchored", "failed")
}


_LEVEL_TO_PB: dict[Level, pb.TimelineLevel] = {
    level: pb.TimelineLevel.from_string(level.name) for level in Level
}


_PREFERENCE_ENUMS: dict[str, type[betterproto.Enum]] = {
    "pace": pb.PacePreference,
    "interaction_style": pb.InteractionStyle,
    "feedback_frequency": pb.FeedbackFrequency,
    "difficulty_progression": pb.DifficultyProgression,
}


def time_from_pb(value: datetime | None) -> datetime | None:
    if value is None or as_utc(value) == _EPOCH:
        return None
    return as_utc(value)


def interaction_types_from_pb(values: list[common.InteractionType], field: str) -> list[str]:
    out = []
    for i, value in enumerate(values):
        name = _TYPE_FROM_PB.get(int(value))
        if name is None:
            raise ValidationError(f"{field}[{i}]", "must be a known interaction type")
        out.append(name)
    return out


def disclosure_from_pb(message: pb.Disclosure, field: str) -> Disclosure:
    return Disclosure.build(
        field,
        interaction_types_from_pb(list(message.interaction_types), f"{field}.interaction_types"),
        list(message.course_ids),
        message.show_scores,
        message.show_identity,
        message.show_content,
    )


def privacy_from_pb(message: pb.PrivacySettings) -> PrivacySettings:
    return PrivacySettings(
        bool(message.public),
        disclosure_from_pb(message.public_disclosure, "settings.public_disclosure"),
        disclosure_from_pb(message.share_link_disclosure, "settings.share_link_disclosure"),
    )


def _enum_name(value: betterproto.Enum, enum: type[betterproto.Enum], field: str) -> str:
    try:
        member = enum(int(value))
    except ValueError:
        raise ValidationError(field, "must be a known value") from None
    return "" if int(member) == 0 else str(member.name).lower()


def profile_from_pb(message: pb.LearningProfile) -> dict[str, Any]:
    scores = message.learning_style_scores
    prefs = message.preferences
    return {
        "learning_style": _enum_name(
            message.learning_style, pb.LearningStyle, "profile.learning_style"
        ),
        "learning_style_scores": {
            "visual": scores.visual,
            "auditory": scores.auditory,
            "reading_writing": scores.reading_writing,
            "kinesthetic": scores.kinesthetic,
        },
        "preferences": {
            key: _enum_name(getattr(prefs, key), enum, f"profile.preferences.{key}")
            for key, enum in _PREFERENCE_ENUMS.items()
        },
        "strengths": [_skill_json(s) for s in message.strengths],
        "areas_for_improvement": [_skill_json(s) for s in message.areas_for_improvement],
        "last_assessment": _iso(time_from_pb(message.last_assessment)),
    }


def _skill_json(skill: pb.Skill) -> dict[str, Any]:
    return {
        "domain": skill.domain,
        "level": skill.level,
        "confidence": skill.confidence,
        "last_updated": _iso(time_from_pb(skill.last_updated)),
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def disclosure_to_pb(d: Disclosure) -> pb.Disclosure:
    return pb.Disclosure(
        interaction_types=[_TYPE_TO_PB[t] for t in sorted(d.interaction_types or ())],
        course_ids=sorted(d.course_ids or ()),
        show_scores=d.show_scores,
        show_identity=d.show_identity,
        show_content=d.show_content,
    )


def privacy_to_pb(p: PrivacySettings) -> pb.PrivacySettings:
    return pb.PrivacySettings(
        public=p.public,
        public_disclosure=disclosure_to_pb(p.public_disclosure),
        share_link_disclosure=disclosure_to_pb(p.share_link_disclosure),
    )


def _parse_time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def profile_to_pb(profile: dict[str, Any]) -> pb.LearningProfile:
    def skill(s: dict[str, Any]) -> pb.Skill:
        message = pb.Skill(domain=s["domain"], level=s["level"], confidence=s["confidence"])
        when = _parse_time(s.get("last_updated"))
        if when is not None:
            message.last_updated = when
        return message

    style = profile.get("learning_style") or ""
    scores = profile.get("learning_style_scores") or {}
    prefs = profile.get("preferences") or {}
    learning_style = pb.LearningStyle(0)
    if style in LEARNING_STYLES:
        learning_style = pb.LearningStyle.from_string(style.upper())
    message = pb.LearningProfile(
        learning_style=learning_style,
        learning_style_scores=pb.LearningStyleScores(
            **{
                k: int(scores.get(k, 0))
                for k in ("visual", "auditory", "reading_writing", "kinesthetic")
            }
        ),
        preferences=pb.LearningPreferences(
            **{
                key: enum.from_string(prefs[key].upper()) if prefs.get(key) else enum(0)
                for key, enum in _PREFERENCE_ENUMS.items()
            }
        ),
        strengths=[skill(s) for s in profile.get("strengths") or []],
        areas_for_improvement=[skill(s) for s in profile.get("areas_for_improvement") or []],
    )
    when = _parse_time(profile.get("last_assessment"))
    if when is not None:
        message.last_assessment = when
    return message


def anchor_to_pb(entry: Entry) -> common.AnchorState:
    a = entry.anchor
    status = a.status.value
    if status == "anchored" and a.proof is None:
        status = "pending"  # anchored, but its inclusion proof is not here yet
    message = common.AnchorState(
        status=_STATUS_TO_PB[status],
        batch_id=a.batch_id,
        merkle_root=a.root,
        leaf_index=a.leaf_index,
        block_number=a.block,
        tx_hash=a.tx_hash,
        failure_reason=a.failure_reason,
    )
    if a.anchored_at is not None and status == "anchored":
        message.anchored_at = a.anchored_at
    return message


_AUTHOR_KIND_TO_PB = {kind: pb.AuthorKind.from_string(kind.name) for kind in AuthorKind}


def author_to_pb(entry: Entry, disclosure: Disclosure) -> pb.EntryAuthor:
    show_identity = disclosure.show_identity
    author = entry.author(show_identity)
    return pb.EntryAuthor(
        kind=_AUTHOR_KIND_TO_PB[author.kind],
        id=author.id,
        display_name=author.display_name,
        public_key_hex=author.public_key.hex(),
        legacy=entry.legacy,
        label=entry.author_label(show_identity, author),
    )


def entry_to_pb(
    entry: Entry, disclosure: Disclosure, statements: Statements | None = None
) -> pb.PassportEntry:
    """``statements``: the page's, when `group_entries` parsed them."""
    statement = entry.parsed_statement() if statements is None else statements.of(entry)
    message = pb.PassportEntry(
        statement_id=entry.statement_id,
        interaction_type=_TYPE_TO_PB.get(entry.interaction_type, common.InteractionType(0)),
        summary=entry.summary(disclosure.show_scores, statement),
        timestamp=entry.timestamp,
        statement_json=entry.statement_json if disclosure.show_content else "",
        signature_hex=entry.signature_hex,
        public_key_hex=entry.public_key_hex,
        anchor=anchor_to_pb(entry),
        proof_leaf=entry.anchor.leaf,
        proof=list(entry.anchor.proof or ()),
        leaf_encoding=entry.anchor.leaf_encoding,
        author=author_to_pb(entry, disclosure),
    )
    score = entry.score_scaled(statement) if disclosure.show_scores else None
    if score is not None:
        message.score_scaled = score
    return message


def group_to_pb(
    group: Group, disclosure: Disclosure, statements: Statements | None = None
) -> pb.TimelineGroup:
    return pb.TimelineGroup(
        level=_LEVEL_TO_PB[group.level],
        id=group.id,
        title=group.title,
        children=[group_to_pb(g, disclosure, statements) for g in group.children],
        entries=[entry_to_pb(e, disclosure, statements) for e in group.entries],
    )


def link_to_pb(link: ShareLink) -> pb.ShareLink:
    message = pb.ShareLink(
        id=link.id,
        label=link.label,
        scope=disclosure_to_pb(link.scope),
        created_at=link.created_at,
        view_count=link.view_count,
    )
    if link.expires_at is not None:
        message.expires_at = link.expires_at
    if link.revoked_at is not None:
        message.revoked_at = link.revoked_at
    return message


def verification_to_pb(v: Verification) -> pb.EntryVerification:
    return pb.EntryVerification(
        statement_id=v.statement_id,
        signature_valid=v.signature_valid,
        inclusion_valid=v.inclusion_valid,
        root_on_chain=v.root_on_chain,
        verified=v.verified,
        reason=v.reason,
        block_number=v.block,
        tx_hash=v.tx_hash,
        key_holder=v.key_holder,
        key_registration=v.key_registration,
        key_custody=v.key_custody,
        key_registered_block=v.key_registered_block,
    )
