"""What every governance table shares: the `governance` schema's metadata, the event
outbox and processed-events tables, UTC datetimes, and the session a store works on.

Every datetime is written as UTC; SQLite returns naive values, read back as UTC. An
anchor is stored as JSON (proposals and standards both carry one).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, MetaData
from sqlalchemy.ext.asyncio import AsyncSession

from services.governance import domain as d
from services.kit.db import NAMING_CONVENTION
from services.kit.events.dedupe import processed_events_table
from services.kit.events.outbox import outbox_table

metadata = MetaData(schema="governance", naming_convention=NAMING_CONVENTION)
outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)


def ts(name: str, nullable: bool = False) -> Column[Any]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


def anchor_to_json(anchor: d.Anchor) -> dict[str, Any]:
    return {
        "status": anchor.status.value,
        "tx_hash": anchor.tx_hash,
        "block_number": anchor.block_number,
        "batch_id": anchor.batch_id,
        "merkle_root": anchor.merkle_root,
        "failure_reason": anchor.failure_reason,
        "anchored_at": anchor.anchored_at.isoformat() if anchor.anchored_at else None,
    }


def anchor_from_json(data: dict[str, Any]) -> d.Anchor:
    anchored_at = data.get("anchored_at")
    return d.Anchor(
        status=d.AnchorStatus(data.get("status", "none")),
        tx_hash=data.get("tx_hash", ""),
        block_number=int(data.get("block_number", 0)),
        batch_id=data.get("batch_id", ""),
        merkle_root=data.get("merkle_root", ""),
        failure_reason=data.get("failure_reason", ""),
        anchored_at=datetime.fromisoformat(anchored_at) if anchored_at else None,
    )


class Store:
    """Queries and writes on one session (the caller owns the transaction)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def _postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"
