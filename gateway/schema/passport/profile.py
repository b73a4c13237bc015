"""The learning profile over GraphQL: the owner's learning style, preferences and skills."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime

import strawberry

from gateway.context import Info
from gateway.errors import ClientError, rpc
from gateway.schema.passport.common import _enum_from, _when, passport_client
from services.api.keiko.passport import v1 as pb


@strawberry.enum(description="Dominant learning style (VARK).")
class LearningStyle(enum.Enum):
    UNSPECIFIED = "UNSPECIFIED"
    VISUAL = "VISUAL"
    AUDITORY = "AUDITORY"
    READING_WRITING = "READING_WRITING"
    KINESTHETIC = "KINESTHETIC"
    MULTIMODAL = "MULTIMODAL"


@strawberry.enum
class PacePreference(enum.Enum):
    UNSPECIFIED = "UNSPECIFIED"
    SLOW = "SLOW"
    MODERATE = "MODERATE"
    FAST = "FAST"


@strawberry.enum
class InteractionStyle(enum.Enum):
    UNSPECIFIED = "UNSPECIFIED"
    COLLABORATIVE = "COLLABORATIVE"
    INDEPENDENT = "INDEPENDENT"
    MIXED = "MIXED"


@strawberry.enum
class FeedbackFrequency(enum.Enum):
    UNSPECIFIED = "UNSPECIFIED"
    IMMEDIATE = "IMMEDIATE"
    PERIODIC = "PERIODIC"
    FINAL = "FINAL"


@strawberry.enum
class DifficultyProgression(enum.Enum):
    UNSPECIFIED = "UNSPECIFIED"
    GRADUAL = "GRADUAL"
    MODERATE = "MODERATE"
    CHALLENGING = "CHALLENGING"


@strawberry.type
class Skill:
    domain: str
    level: int
    confidence: int
    last_updated: datetime | None


@strawberry.input
class SkillInput:
    domain: str
    level: int
    confidence: int = 0
    last_updated: datetime | None = None


@strawberry.type
class LearningStyleScores:
    visual: int
    auditory: int
    reading_writing: int
    kinesthetic: int


@strawberry.type
class LearningPreferences:
    pace: PacePreference
    interaction_style: InteractionStyle
    feedback_frequency: FeedbackFrequency
    difficulty_progression: DifficultyProgression


@strawberry.type
class LearningProfile:
    learning_style: LearningStyle
    learning_style_scores: LearningStyleScores
    preferences: LearningPreferences
    strengths: list[Skill]
    areas_for_improvement: list[Skill]
    last_assessment: datetime | None

    @staticmethod
    def from_pb(p: pb.LearningProfile) -> LearningProfile:
        def skills(items: Sequence[pb.Skill]) -> list[Skill]:
            return [
                Skill(
                    domain=s.domain,
                    level=s.level,
                    confidence=s.confidence,
                    last_updated=_when(s.last_updated),
                )
                for s in items
            ]

        s, prefs = p.learning_style_scores, p.preferences
        return LearningProfile(
            learning_style=_enum_from(p.learning_style, pb.LearningStyle, LearningStyle),  # type: ignore[arg-type]
            learning_style_scores=LearningStyleScores(
                visual=s.visual,
                auditory=s.auditory,
                reading_writing=s.reading_writing,
                kinesthetic=s.kinesthetic,
            ),
            preferences=LearningPreferences(
                pace=_enum_from(prefs.pace, pb.PacePreference, PacePreference),  # type: ignore[arg-type]
                interaction_style=_enum_from(  # type: ignore[arg-type]
                    prefs.interaction_style, pb.InteractionStyle, InteractionStyle
                ),
                feedback_frequency=_enum_from(  # type: ignore[arg-type]
                    prefs.feedback_frequency, pb.FeedbackFrequency, FeedbackFrequency
                ),
                difficulty_progression=_enum_from(  # type: ignore[arg-type]
                    prefs.difficulty_progression, pb.DifficultyProgression, DifficultyProgression
                ),
            ),
            strengths=skills(p.strengths),
            areas_for_improvement=skills(p.areas_for_improvement),
            last_assessment=_when(p.last_assessment),
        )


@strawberry.input
class LearningProfileInput:
    learning_style: LearningStyle = LearningStyle.UNSPECIFIED
    visual: int = 0
    auditory: int = 0
    reading_writing: int = 0
    kinesthetic: int = 0
    pace: PacePreference = PacePreference.UNSPECIFIED
    interaction_style: InteractionStyle = InteractionStyle.UNSPECIFIED
    feedback_frequency: FeedbackFrequency = FeedbackFrequency.UNSPECIFIED
    difficulty_progression: DifficultyProgression = DifficultyProgression.UNSPECIFIED
    strengths: list[SkillInput] = strawberry.field(default_factory=list)
    areas_for_improvement: list[SkillInput] = strawberry.field(default_factory=list)
    last_assessment: datetime | None = None

    def to_pb(self) -> pb.LearningProfile:
        def percent(value: int, field: str) -> int:
            if not 0 <= value <= 100:
                raise ClientError(
                    f"{field} must be between 0 and 100", "BAD_USER_INPUT", field=field
                )
            return value

        def skills(items: list[SkillInput], name: str) -> list[pb.Skill]:
            out = []
            for i, s in enumerate(items):
                skill = pb.Skill(
                    domain=s.domain,
                    level=percent(s.level, f"profile.{name}[{i}].level"),
                    confidence=percent(s.confidence, f"profile.{name}[{i}].confidence"),
                )
                if s.last_updated is not None:
                    skill.last_updated = s.last_updated
                out.append(skill)
            return out

        profile = pb.LearningProfile(
            learning_style=pb.LearningStyle.from_string(self.learning_style.value),
            learning_style_scores=pb.LearningStyleScores(
                visual=percent(self.visual, "profile.visual"),
                auditory=percent(self.auditory, "profile.auditory"),
                reading_writing=percent(self.reading_writing, "profile.reading_writing"),
                kinesthetic=percent(self.kinesthetic, "profile.kinesthetic"),
            ),
            preferences=pb.LearningPreferences(
                pace=pb.PacePreference.from_string(self.pace.value),
                interaction_style=pb.InteractionStyle.from_string(self.interaction_style.value),
                feedback_frequency=pb.FeedbackFrequency.from_string(self.feedback_frequency.value),
                difficulty_progression=pb.DifficultyProgression.from_string(
                    self.difficulty_progression.value
                ),
            ),
            strengths=skills(self.strengths, "strengths"),
            areas_for_improvement=skills(self.areas_for_improvement, "areas_for_improvement"),
        )
        if self.last_assessment is not None:
            profile.last_assessment = self.last_assessment
        return profile


@strawberry.type
class ProfileQuery:
    @strawberry.field(description="Your learning profile.")
    async def learning_profile(self, info: Info) -> LearningProfile:
        info.context.require_token()
        reply = await rpc(
            passport_client(info).get_learning_profile(pb.GetLearningProfileRequest())
        )
        return LearningProfile.from_pb(reply.profile)


@strawberry.type
class ProfileMutation:
    @strawberry.mutation(description="Replace your learning profile.")
    async def update_learning_profile(
        self, info: Info, input: LearningProfileInput
    ) -> LearningProfile:
        info.context.require_token()
        reply = await rpc(
            passport_client(info).update_learning_profile(
                pb.UpdateLearningProfileRequest(profile=input.to_pb())
            )
        )
        return LearningProfile.from_pb(reply.profile)
