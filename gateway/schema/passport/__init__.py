"""The Life-Learning Passport over GraphQL, one module per capability: the passport and
its timeline as a Relay-style connection (`timeline`), the learning profile (`profile`),
privacy settings (`privacy`), share links (`share_links`), server-side verification
(`verification`), and the `passportUpdated` / `interactionAnchored` subscriptions
(`subscriptions`, both fed by WatchPassport, so a subscriber only ever sees their own
passport).

Every resolver calls the passport service over gRPC; none imports its Python code.
`PassportEntry.verification` resolves through a per-request DataLoader: all entries of a
page are verified by one VerifyPassport call per passport (and page), not one VerifyEntry
per entry.
"""

from __future__ import annotations

import strawberry

from gateway.schema.passport.common import PageInfo, passport_client
from gateway.schema.passport.privacy import PrivacyMutation
from gateway.schema.passport.profile import ProfileMutation, ProfileQuery
from gateway.schema.passport.share_links import ShareLinksMutation, ShareLinksQuery
from gateway.schema.passport.subscriptions import PassportSubscription
from gateway.schema.passport.timeline import TimelineQuery
from gateway.schema.passport.verification import VerificationQuery


# The order of the bases is the order of the fields in the SDL.
@strawberry.type
class PassportQuery(TimelineQuery, ProfileQuery, ShareLinksQuery, VerificationQuery):
    pass


@strawberry.type
class PassportMutation(ShareLinksMutation, PrivacyMutation, ProfileMutation):
    pass


__all__ = [
    "PageInfo",
    "PassportMutation",
    "PassportQuery",
    "PassportSubscription",
    "passport_client",
]
