"""The identity API's messages: decoding requests' enums and profile fields, and encoding
users (the whole user for themself and admins, the public profile for anyone else),
tokens, sessions, passkeys and proof-of-humanity samples and status."""

from __future__ import annotations

from services.api.keiko.identity import v1 as pb
from services.identity.domain import PUBLIC_FIELDS, Credential, Role, Session, TokenPair, User
from services.identity.humanity_service import BiometricSample, HumanityStatus
from services.identity.relying_party import credential_id_text
from services.kit.auth import Principal
from services.kit.errors import ValidationError

# The kit's Role and the proto enum share member names (LEARNER, TUTOR, ...).
_TO_PB_ROLE: dict[Role, pb.Role] = {role: pb.Role.from_string(role.name) for role in Role}
_FROM_PB_ROLE: dict[int, Role] = {int(v): k for k, v in _TO_PB_ROLE.items()}


def role_from_pb(role: int, field_path: str) -> Role:
    found = _FROM_PB_ROLE.get(int(role))
    if found is None:
        raise ValidationError(field_path, "must be a known role other than ROLE_UNSPECIFIED")
    return found


def self_principal(user: User, tokens: TokenPair) -> Principal:
    return Principal(
        user_id=user.id,
        roles=frozenset(str(r) for r in user.roles),
        session_id=tokens.session_id,
    )


_PROFILE_FIELDS = {name: pb.ProfileField.from_string(name.upper()) for name in PUBLIC_FIELDS}
_PROFILE_FIELD_NAMES = {int(v): k for k, v in _PROFILE_FIELDS.items()}


def public_fields_from_pb(values: list[pb.ProfileField]) -> frozenset[str]:
    names = set()
    for i, value in enumerate(values):
        name = _PROFILE_FIELD_NAMES.get(int(value))
        if name is None:
            raise ValidationError(f"public_fields[{i}]", "must be a known profile field")
        names.add(name)
    return frozenset(names)


def sees_everything(user: User, viewer: Principal) -> bool:
    """The user themself and admins see the whole user; anyone else its public profile."""
    return viewer.user_id == user.id or viewer.is_admin


def user_to_pb(user: User, viewer: Principal) -> pb.User:
    """The user themself and admins see everything; anyone else the public profile only:
    the id, the display name, whether a verified human (public: one human, one vote) and
    what the user made public (issue 9)."""
    if sees_everything(user, viewer):
        return pb.User(
            id=user.id,
            email=user.email,
            display_name=user.display_name,
            roles=sorted((_TO_PB_ROLE[r] for r in user.roles), key=int),
            profile=pb.UserProfile(
                bio=user.profile.bio,
                avatar_url=user.profile.avatar_url,
                locale=user.profile.locale,
                time_zone=user.profile.time_zone,
                public_fields=sorted((_PROFILE_FIELDS[f] for f in user.profile.public), key=int),
            ),
            human_verified=user.human_verified,
            created_at=user.created_at,
            updated_at=user.updated_at,
        )
    public = user.profile.public
    return pb.User(
        id=user.id,
        display_name=user.display_name,
        profile=pb.UserProfile(
            bio=user.profile.bio if "bio" in public else "",
            avatar_url=user.profile.avatar_url if "avatar_url" in public else "",
            locale=user.profile.locale if "locale" in public else "",
            time_zone=user.profile.time_zone if "time_zone" in public else "",
        ),
        human_verified=user.human_verified,
    )


_GENOME_FORMATS: dict[int, str] = {
    int(pb.GenomeFormat.VCF): "vcf",
    int(pb.GenomeFormat.FASTA): "fasta",
}


def sample_from_pb(sample: pb.BiometricSample) -> BiometricSample:
    """Unknown or unspecified formats become "" (refused on `sample.genome_format`)."""
    return BiometricSample(
        iris_image=bytes(sample.iris_image),
        genome=bytes(sample.genome),
        genome_format=_GENOME_FORMATS.get(int(sample.genome_format), ""),
    )


def humanity_status_to_pb(status: HumanityStatus) -> pb.HumanityStatus:
    message = pb.HumanityStatus(
        user_id=status.user_id,
        enrolled=status.enrolled,
        humanity_commitment=status.humanity_commitment,
        ed25519_public_key=status.ed25519_public_key,
        registry_tx_hash=status.registry_tx_hash,
        registered_on_chain=status.registered_on_chain,
    )
    if status.enrolled_at is not None:
        message.enrolled_at = status.enrolled_at
    return message


def tokens_to_pb(tokens: TokenPair) -> pb.TokenPair:
    return pb.TokenPair(
        access_token=tokens.access_token,
        access_expires_at=tokens.access_expires_at,
        refresh_token=tokens.refresh_token,
        refresh_expires_at=tokens.refresh_expires_at,
        session_id=tokens.session_id,
    )


def session_to_pb(session: Session, *, current: bool) -> pb.Session:
    return pb.Session(
        id=session.id,
        user_id=session.user_id,
        created_at=session.created_at,
        last_used_at=session.last_used_at,
        expires_at=session.expires_at,
        user_agent=session.user_agent,
        ip_address=session.ip_address,
        current=current,
    )


def credential_to_pb(credential: Credential) -> pb.Credential:
    message = pb.Credential(
        id=credential.id,
        credential_id=credential_id_text(credential.credential_id),
        name=credential.name,
        aaguid=credential.aaguid,
        transports=list(credential.transports),
        backed_up=credential.backed_up,
        created_at=credential.created_at,
    )
    if credential.last_used_at is not None:
        message.last_used_at = credential.last_used_at
    return message
