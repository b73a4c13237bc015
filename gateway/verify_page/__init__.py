"""Public passport verification over HTTP: the export documents the CLI verifier reads,
and the verification page.

Routes (all public; what they show is what the passport service lets an anonymous
viewer see, i.e. the owner's public disclosure or the share link's scope):

- ``GET /passports/{passport_id}/export.json``, ``GET /share/{token}/export.json``: the
  ``keiko.passport.export`` v1 document (see :mod:`chain.verify.export`), assembled from
  the passport service's timeline over gRPC. 404 for unknown, private, revoked or expired;
  409 when the disclosure withholds the statement content (signatures cannot be checked
  without it).
- ``GET /verify/{passport_id}``, ``GET /verify/share/{token}``: the timeline with each
  entry's status (verified / failed with reason / pending), verified server side by the
  passport service's VerifyPassport against the chain, a link to each anchor, and how
  to verify independently with ``keiko passport verify``.
- ``GET /verify/tx/{tx_hash}``: the default anchor link, the chain node's
  ``starknet_getTransactionReceipt`` for that hash (JSON). Set ``explorer_tx_url`` (e.g.
  ``https://explorer.example/tx/{tx_hash}``) to link to an explorer instead.

The lead mounts them: ``routes += verify_routes(channel, chain_rpc_url=...)``.
"""

from __future__ import annotations

from gateway.verify_page.routes import verify_routes

__all__ = ["verify_routes"]
