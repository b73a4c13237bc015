"""The vocabulary of the authorization matrix: who calls (`Caller`), what must happen
(`Outcome`), and one operation's rows (`Rows`). The table itself is `table.py`.

Caller kinds (each a separate account in the shared fixture, see `world.py`):

- anonymous: no access token;
- owner: owns what the rows target: instructor of the course and its class, tutor of
  the tutorial session, the reservation and the tutor session, owner of the space,
  creator (admin) of the communities; also a learner with a record of their own;
- learner: another learner, unrelated to anything of the owner's;
- invited: named as the student of the owner's sessions and reservation, not accepted;
- participant: named as the student of the owner's sessions and reservation, accepted;
- other_tutor: a tutor who runs a session of their own with the participant;
- member / non_member: in the owner's communities, or in none of them;
- admin: a platform admin.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.authz.world import Ctx


class Caller(enum.StrEnum):
    ANONYMOUS = "anonymous"
    OWNER = "owner"
    LEARNER = "learner"
    INVITED = "invited"
    PARTICIPANT = "participant"
    OTHER_TUTOR = "other_tutor"
    MEMBER = "member"
    NON_MEMBER = "non_member"
    ADMIN = "admin"


# Rows of one operation run in this order: callers expected to be refused change nothing,
# so they go first; the owner and an admin, whose calls may change state, go last.
RUN_ORDER = (
    Caller.ANONYMOUS,
    Caller.LEARNER,
    Caller.NON_MEMBER,
    Caller.MEMBER,
    Caller.INVITED,
    Caller.OTHER_TUTOR,
    Caller.PARTICIPANT,
    Caller.OWNER,
    Caller.ADMIN,
)


class Outcome(enum.Enum):
    """What a row expects. gRPC status / GraphQL `extensions.code`."""

    # The call succeeds (a stream delivers its first message).
    OK = ("OK", "OK")
    # Not refused for who the caller is: it succeeds, or fails only because of the
    # object's state (FAILED_PRECONDITION, ALREADY_EXISTS), e.g. an earlier row already
    # cancelled what this one cancels.
    ALLOWED = ("OK|FAILED_PRECONDITION|ALREADY_EXISTS", "OK|FAILED_PRECONDITION|CONFLICT")
    # Authorized, then needs the chain, which the matrix fixture does not run.
    NEEDS_CHAIN = (
        "OK|FAILED_PRECONDITION|UNAVAILABLE",
        "OK|FAILED_PRECONDITION|SERVICE_UNAVAILABLE",
    )
    # Authorized, then refused for the input the row deliberately sends (an empty
    # biometric sample, an empty proof): what a valid input does is tested elsewhere.
    INPUT_CHECKED = ("INVALID_ARGUMENT", "BAD_USER_INPUT")
    DENIED = ("PERMISSION_DENIED", "FORBIDDEN")
    NOT_FOUND = ("NOT_FOUND", "NOT_FOUND")
    UNAUTHENTICATED = ("UNAUTHENTICATED", "UNAUTHENTICATED")
    # Declared in a contract but not built in this release, for everyone.
    UNIMPLEMENTED = ("UNIMPLEMENTED", "NOT_IMPLEMENTED")

    def accepts(self, code: str, *, graphql: bool) -> bool:
        return code in self.value[1 if graphql else 0].split("|")


OK = Outcome.OK
ALLOWED = Outcome.ALLOWED
NEEDS_CHAIN = Outcome.NEEDS_CHAIN
INPUT_CHECKED = Outcome.INPUT_CHECKED
DENIED = Outcome.DENIED
NOT_FOUND = Outcome.NOT_FOUND
UNAUTHENTICATED = Outcome.UNAUTHENTICATED
UNIMPLEMENTED = Outcome.UNIMPLEMENTED

Args = Callable[["Ctx"], Mapping[str, Any] | Awaitable[Mapping[str, Any]]]
Trigger = Callable[["Ctx", Mapping[str, Any]], Awaitable[None]]


def expect(default: Outcome | None = None, **outcomes: Outcome) -> dict[Caller, Outcome]:
    """One outcome per caller kind; `default` fills the callers not named."""
    table = {Caller(name): outcome for name, outcome in outcomes.items()}
    for caller in Caller:
        if caller not in table:
            if default is None:
                raise ValueError(f"no outcome for caller {caller}")
            table[caller] = default
    return table


# Profiles most operations follow; a row may override any caller.
PUBLIC = expect(OK)
SIGNED_IN = expect(OK, anonymous=UNAUTHENTICATED)
OWNER_OR_ADMIN = expect(DENIED, anonymous=UNAUTHENTICATED, owner=OK, admin=OK)
ADMIN_ONLY = expect(DENIED, anonymous=UNAUTHENTICATED, admin=OK)
PARTIES = expect(
    DENIED, anonymous=UNAUTHENTICATED, owner=OK, participant=OK, admin=OK
)  # the organizer, the accepted participant and admins
MEMBERS = expect(DENIED, anonymous=UNAUTHENTICATED, owner=OK, member=OK, admin=OK)


def no_args(_: Ctx) -> Mapping[str, Any]:
    return {}


@dataclass(frozen=True)
class Rows:
    """The rows of one operation: the outcome for each caller kind, and how to call it.

    `args(ctx)` gives the GraphQL variables (named as the field's arguments) or the gRPC
    request (proto JSON names); `ctx.me` is the calling account. A stream's OK rows run
    `trigger(ctx, args)` once the subscription is registered, to cause the event it must
    deliver (not needed when the stream sends something first by itself).
    """

    op: str
    outcomes: Mapping[Caller, Outcome]
    args: Args = no_args
    trigger: Trigger | None = None
    # Tells two entries of one operation apart (different targets).
    variant: str = ""
    # A stream whose event takes long to come (an anchoring): every caller's stream is
    # opened at once and the triggers run together.
    together: bool = False
    # Callers whose outcome is the design but not yet the behaviour, with the reason: the
    # run fails when such a row already passes (remove it from `pending` then).
    pending: Mapping[Caller, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.op} [{self.variant}]" if self.variant else self.op

    def outcome(self, caller: Caller) -> Outcome:
        return self.outcomes[caller]


def rows(
    op: str,
    profile: Mapping[Caller, Outcome],
    args: Args = no_args,
    *,
    trigger: Trigger | None = None,
    variant: str = "",
    together: bool = False,
    pending: Mapping[str, str] | None = None,
    **overrides: Outcome,
) -> Rows:
    """`rows("MarketplaceService/GetReservation", PARTIES, lambda x: {...}, invited=OK)`."""
    outcomes = dict(profile)
    for name, outcome in overrides.items():
        outcomes[Caller(name)] = outcome
    waiting = {Caller(name): why for name, why in (pending or {}).items()}
    return Rows(op, outcomes, args, trigger, variant, together, waiting)
