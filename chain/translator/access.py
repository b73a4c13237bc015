"""Access rules of the chain translator.

**Who may call what** (the principal comes from the verified access token):

* *trusted callers*: Keiko's services, whose tokens carry the role ``service``
  (:data:`SERVICE_ROLE`), and admins. They act for any learner.
* *learners*: SignInteraction, SubmitForAnchoring, GetAnchorStatus and WatchAnchors for
  their own ``learner_id`` only (the record's learner must be the caller); what they sign
  or submit must be their own statement (its author is the caller).
* RegisterHumanity: trusted callers only (the identity service, after it has checked the
  proof of humanity); a learner cannot register a commitment of its own making.
* public (no token): GetChainInfo, GetInclusionProof, VerifyInclusion,
  GetHumanityRegistration (verifiers must not have to trust Keiko).
"""

from __future__ import annotations

from services.kit.auth import Principal
from services.kit.errors import PermissionDenied, ValidationError

SERVICE_ROLE = "service"
MAX_ID_CHARS = 200


def is_trusted(principal: Principal) -> bool:
    return principal.has_role(SERVICE_ROLE) or principal.is_admin


def require_trusted(principal: Principal) -> None:
    if not is_trusted(principal):
        raise PermissionDenied("only Keiko services may call this")


def require_for_learner(principal: Principal, learner_id: str) -> None:
    if not is_trusted(principal) and principal.user_id != learner_id:
        raise PermissionDenied("a learner may act only on their own records")


def require_author(principal: Principal, author_id: str) -> None:
    """A user signs only as themself; Keiko's services sign as the author they vouch for."""
    if not is_trusted(principal) and principal.user_id != author_id:
        raise PermissionDenied("a user may sign only statements they wrote themself")


def required_text(value: object, field: str, max_chars: int = MAX_ID_CHARS) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, "is required")
    if len(value) > max_chars:
        raise ValidationError(field, f"must be at most {max_chars} characters")
    return value
