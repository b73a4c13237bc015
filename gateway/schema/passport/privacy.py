"""Privacy over GraphQL: what viewers may see of a passport (disclosures) and the owner's
settings."""

from __future__ import annotations

import strawberry

from gateway.context import Info
from gateway.errors import rpc
from gateway.schema.learning import InteractionType
from gateway.schema.passport.common import _type_from_pb, _type_to_pb, passport_client
from services.api.keiko.passport import v1 as pb


@strawberry.type(description="What a viewer may see of a passport.")
class Disclosure:
    interaction_types: list[InteractionType] = strawberry.field(description="Empty: every type.")
    course_ids: list[str] = strawberry.field(description="Empty: every course.")
    show_scores: bool
    show_identity: bool
    show_content: bool = strawberry.field(
        description="Reveal the signed statements (needed to verify signatures)."
    )

    @staticmethod
    def from_pb(d: pb.Disclosure) -> Disclosure:
        return Disclosure(
            interaction_types=[t for t in map(_type_from_pb, d.interaction_types) if t],
            course_ids=list(d.course_ids),
            show_scores=d.show_scores,
            show_identity=d.show_identity,
            show_content=d.show_content,
        )


@strawberry.input
class DisclosureInput:
    # The defaults are the passport service's own (services.passport.domain.DEFAULT_SHARE):
    # scores and content shown, identity not. Content is what independent verification
    # checks signatures against, so `{}` keeps a passport verifiable.
    interaction_types: list[InteractionType] = strawberry.field(default_factory=list)
    course_ids: list[str] = strawberry.field(default_factory=list)
    show_scores: bool = True
    show_identity: bool = False
    show_content: bool = True

    def to_pb(self) -> pb.Disclosure:
        return pb.Disclosure(
            interaction_types=[_type_to_pb(t) for t in self.interaction_types],
            course_ids=list(self.course_ids),
            show_scores=self.show_scores,
            show_identity=self.show_identity,
            show_content=self.show_content,
        )


@strawberry.type
class PrivacySettings:
    public: bool = strawberry.field(description="Anyone with the passport id may read it.")
    public_disclosure: Disclosure
    share_link_disclosure: Disclosure = strawberry.field(
        description="Upper bound of what share links reveal; the default scope of new links."
    )

    @staticmethod
    def from_pb(p: pb.PrivacySettings) -> PrivacySettings:
        return PrivacySettings(
            public=p.public,
            public_disclosure=Disclosure.from_pb(p.public_disclosure),
            share_link_disclosure=Disclosure.from_pb(p.share_link_disclosure),
        )


@strawberry.input
class PrivacySettingsInput:
    public: bool
    public_disclosure: DisclosureInput
    share_link_disclosure: DisclosureInput


@strawberry.type
class PrivacyMutation:
    @strawberry.mutation(description="Replace your privacy settings; links are narrowed.")
    async def update_privacy_settings(
        self, info: Info, input: PrivacySettingsInput
    ) -> PrivacySettings:
        info.context.require_token()
        reply = await rpc(
            passport_client(info).update_privacy_settings(
                pb.UpdatePrivacySettingsRequest(
                    settings=pb.PrivacySettings(
                        public=input.public,
                        public_disclosure=input.public_disclosure.to_pb(),
                        share_link_disclosure=input.share_link_disclosure.to_pb(),
                    )
                )
            )
        )
        return PrivacySettings.from_pb(reply.settings)
