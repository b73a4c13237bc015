"""Tables of the translator's on-chain identities and actions, on the ``chain`` schema's
shared metadata (which imports this module, so migrations and their checks see them):

* ``learner_accounts``: each learner's own Starknet account
  (:mod:`chain.translator.learner_accounts`);
* ``governance_proposals``: proposals created on chain through CreateGovernanceProposal,
  by request id (:mod:`chain.translator.governance`), so a retry returns the first one.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, LargeBinary, String, Table

from chain.translator.storage import metadata

learner_accounts = Table(
    "learner_accounts",
    metadata,
    Column("learner_id", String(512), primary_key=True),
    Column("address", String(66), nullable=False, unique=True),
    Column("public_key", String(66), nullable=False),
    # KeyVault record the Stark key derives from; NULL when the key lives on the device.
    Column("key_record", LargeBinary, nullable=True),
    Column("state", String(16), nullable=False),
    Column("deploy_tx_hash", String(66), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


governance_proposals = Table(
    "governance_proposals",
    metadata,
    Column("request_id", String(200), primary_key=True),
    Column("proposal_id", String(200), nullable=False),
    Column("onchain_proposal_id", String(66), nullable=False),
    Column("tx_hash", String(66), nullable=False),
    Column("block", BigInteger, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
