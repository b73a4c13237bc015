"""Tables of the demo service: one schema, a parent/child pair with a unique column."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, ForeignKey, Integer, MetaData, String, Table

from services.kit.db import NAMING_CONVENTION

metadata = MetaData(schema="kitdemo", naming_convention=NAMING_CONVENTION)

widgets = Table(
    "widgets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

parts = Table(
    "parts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("widget_id", Integer, ForeignKey("kitdemo.widgets.id"), nullable=False),
    Column("label", String(50), nullable=False),
)
