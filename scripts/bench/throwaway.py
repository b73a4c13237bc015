"""A throwaway PostgreSQL database for one benchmark run, dropped afterwards even on failure."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy.engine import URL, make_url

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


async def _admin(url: URL, statement: str) -> None:
    conn = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@asynccontextmanager
async def throwaway_postgres(admin_url: str = ADMIN_URL) -> AsyncIterator[str]:
    """Yields the SQLAlchemy (asyncpg) URL of a fresh database made through `admin_url`."""
    admin = make_url(admin_url).set(drivername="postgresql")
    name = f"keiko_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    await _admin(admin, f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(drivername="postgresql+asyncpg", database=name).render_as_string(
            hide_password=False
        )
    finally:
        await _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
