"""Passport credential use cases: issue, list, read, revoke; status lists; presentations.

**Issuing** (the learner, for their own anchored entries): the entries are selected (by id,
by course, or all), checked (:func:`~services.passport.credentials.domain.check_issuable`),
planned into credentials and issuers (:func:`~services.passport.credentials.domain.plan`),
each given a random slot in its issuer's status list, built with the Keikochain anchors as
evidence (:mod:`chain.credentials`) and signed by the translator
(:class:`~services.passport.credentials.signing.CredentialSigning`), which refuses any key
that would sign what its holder does not stand behind. Idempotent on ``request_id``.

**Who sees a credential.** Its subject (the learner) and its issuer (the key holder) always;
anyone else only through a share link or the public passport whose disclosure shows
every entry in it and the statements' content (like the export), and only while it is not
revoked. A credential issued *for* a share link shows only through that link.

**Revocation** by the subject or the issuer, when a statement in it is voided, and when
the share link it was issued for is revoked (:mod:`services.passport.credentials.revocation`);
the issuer's status list is re-signed and republished by :meth:`CredentialService.publish`,
called right away and by the publisher job until it succeeds.

One module a capability: `issuing`, `reading` (who sees what, presentations), `status`
(status lists, revocation), on `core`.
"""

from __future__ import annotations

from services.passport.credentials.service.core import STATUS_PATH, credential_of
from services.passport.credentials.service.issuing import Issuing
from services.passport.credentials.service.reading import Reading


class CredentialService(Issuing, Reading):
    """Every credential use case (status lists and revocation come with issuing)."""


__all__ = ["STATUS_PATH", "CredentialService", "credential_of"]
