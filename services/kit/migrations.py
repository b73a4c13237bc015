"""The one alembic environment shared by every service's migrations.

Each service has `services/<svc>/migrations/` holding `versions/` and a three-line `env.py`:

    from services.kit.migrations import run_env
    from services.<svc>.storage import metadata
    run_env(metadata)

No `alembic.ini` and no per-service `script.py.mako`: the configuration is built here and
new revisions are rendered from the kit's template (`services/kit/migration_template/`).
The version table `alembic_version` lives in the service's own schema, so services migrate
independently. Migrations run on the async engine through `run_sync`, in one transaction,
in batch mode on SQLite (ALTER TABLE there is recreate-and-copy).

    python -m services.kit.migrations revision <svc> -m "add users"   # autogenerate
    python -m services.kit.migrations upgrade [--url URL] [svc ...]     # apply
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.autogenerate import RevisionContext
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from services.kit.db import Database

__all__ = [
    "TEMPLATE_DIR",
    "current_revision",
    "downgrade",
    "generate_revision",
    "run_env",
    "service_migration_dirs",
    "upgrade",
    "upgrade_all",
]

TEMPLATE_DIR = Path(__file__).with_name("migration_template")
REPO_ROOT = Path(__file__).resolve().parents[2]
_FILE_TEMPLATE = "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s"


# -- env.py side ----------------------------------------------------------------------------


def run_env(metadata: MetaData, *, schema: str | None = None) -> None:
    """Body of every service's `env.py`. Runs inside alembic, on the connection we hand it."""
    schema = schema or metadata.schema
    if not schema:
        raise RuntimeError("service metadata needs a schema: MetaData(schema='<service>')")
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection) or context.is_offline_mode():
        raise RuntimeError(
            "run migrations through services.kit.migrations (upgrade / revision), "
            "not the alembic command line"
        )

    def include_name(name: str | None, type_: str, _parents: Any) -> bool:
        # Only this service's schema: other services' tables are not ours to diff.
        return name == schema if type_ == "schema" else True

    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table_schema=schema,
        include_schemas=True,
        include_name=include_name,  # type: ignore[arg-type]
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


# -- configuration --------------------------------------------------------------------------


class _KitScriptDirectory(ScriptDirectory):
    """A script directory whose revision template falls back to the kit's shared one."""

    def _generate_template(self, src: Path, dest: Path, **kw: Any) -> None:
        if Path(src).name == "script.py.mako" and not Path(src).exists():
            src = TEMPLATE_DIR / "script.py.mako"
        super()._generate_template(src, dest, **kw)


def _config(migrations_dir: Path) -> Config:
    migrations_dir = Path(migrations_dir)
    if not (migrations_dir / "env.py").is_file():
        raise FileNotFoundError(f"no env.py in {migrations_dir}")
    (migrations_dir / "versions").mkdir(exist_ok=True)
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir).replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("file_template", _FILE_TEMPLATE)
    return cfg


def _script_directory(cfg: Config) -> _KitScriptDirectory:
    base = ScriptDirectory.from_config(cfg)
    return _KitScriptDirectory(
        base.dir,
        file_template=base.file_template,
        truncate_slug_length=base.truncate_slug_length,
        version_locations=base.version_locations,
        messaging_opts=base.messaging_opts,
    )


# -- running migrations ---------------------------------------------------------------------


def _check_schema(db: Database, service: str) -> None:
    if db.dialect == "sqlite" and service not in db.schemas:
        raise ValueError(
            f"schema {service!r} is not attached: create the Database with schemas=[{service!r}]"
        )


def _raw_pragma(conn: Connection, pragma: str) -> None:
    # On the DBAPI connection, so SQLAlchemy does not wrap it in a transaction first.
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"PRAGMA {pragma}")
    finally:
        cursor.close()


def _migrate_sync(conn: Connection, cfg: Config, service: str, action: str, target: str) -> None:
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        # Batch mode drops and recreates tables; FK enforcement must be off meanwhile, and
        # the pragma cannot change inside a transaction. Checked after the migration instead.
        _raw_pragma(conn, "foreign_keys = OFF")
        # Take the write lock up front: alembic reads the version table before writing.
        conn.execution_options(keiko_sqlite_begin_immediate=True)
    try:
        with conn.begin():
            if not sqlite:
                # Replicas starting together: one migrates, the others wait, then see head.
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                    {"key": f"keiko.migrate.{service}"},
                )
                conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{service}"')
            cfg.attributes["connection"] = conn
            if action == "upgrade":
                command.upgrade(cfg, target)
            else:
                command.downgrade(cfg, target)
            if sqlite:
                broken = conn.exec_driver_sql(f'PRAGMA "{service}".foreign_key_check').fetchall()
                if broken:
                    raise RuntimeError(f"migration left dangling foreign keys: {broken[:5]}")
    finally:
        if sqlite:
            conn.execution_options(keiko_sqlite_begin_immediate=False)
            _raw_pragma(conn, "foreign_keys = ON")


async def upgrade(db: Database, service: str, migrations_dir: Path, revision: str = "head") -> None:
    """Apply `service`'s migrations up to `revision` (default head). Idempotent."""
    _check_schema(db, service)
    cfg = _config(migrations_dir)
    async with db.engine.connect() as conn:
        await conn.run_sync(_migrate_sync, cfg, service, "upgrade", revision)


async def downgrade(db: Database, service: str, migrations_dir: Path, revision: str) -> None:
    """Revert `service`'s migrations down to `revision` (`"base"` reverts everything)."""
    _check_schema(db, service)
    cfg = _config(migrations_dir)
    async with db.engine.connect() as conn:
        await conn.run_sync(_migrate_sync, cfg, service, "downgrade", revision)


async def upgrade_all(db: Database, services: Mapping[str, Path]) -> None:
    """Upgrade each service (schema name -> migrations dir) to head, in the given order."""
    for service, migrations_dir in services.items():
        await upgrade(db, service, migrations_dir)


async def current_revision(db: Database, service: str) -> str | None:
    """The revision `service`'s schema is at, or None if never migrated."""
    _check_schema(db, service)

    def read(conn: Connection) -> str | None:
        ctx = MigrationContext.configure(conn, opts={"version_table_schema": service})
        return ctx.get_current_revision()

    async with db.engine.connect() as conn:
        return await conn.run_sync(read)


# Services whose package is not `services/<schema>/`: the chain translator (schema "chain").
_OTHER_MIGRATIONS = {"chain": Path("chain") / "translator" / "migrations"}


def service_migration_dirs(root: Path | None = None) -> dict[str, Path]:
    """Every service's migrations dir that has an env.py, keyed by service (= schema):
    `services/<svc>/migrations/` plus the chain translator's."""
    base = root or REPO_ROOT
    found = {
        env.parent.parent.name: env.parent
        for env in sorted((base / "services").glob("*/migrations/env.py"))
        if env.parent.parent.name != "kit"
    }
    for schema, relative in _OTHER_MIGRATIONS.items():
        if (base / relative / "env.py").exists():
            found[schema] = base / relative
    return found


# -- generating revisions -------------------------------------------------------------------


def _revision_sync(conn: Connection, cfg: Config, message: str, autogenerate: bool) -> Path:
    script_dir = _script_directory(cfg)
    revision_context = RevisionContext(
        cfg,
        script_dir,
        {
            "message": message,
            "autogenerate": autogenerate,
            "sql": False,
            "head": "head",
            "splice": False,
            "branch_label": None,
            "version_path": None,
            "rev_id": None,
            "depends_on": None,
        },
    )

    def retrieve(rev: Any, ctx: MigrationContext) -> list[Any]:
        if autogenerate:
            revision_context.run_autogenerate(rev, ctx)
        else:
            revision_context.run_no_autogenerate(rev, ctx)
        return []

    cfg.attributes["connection"] = conn
    with EnvironmentContext(
        cfg,
        script_dir,
        fn=retrieve,
        as_sql=False,
        template_args=revision_context.template_args,
        revision_context=revision_context,
    ):
        script_dir.run_env()
    scripts = [s for s in revision_context.generate_scripts() if isinstance(s, Script)]
    if len(scripts) != 1:
        raise RuntimeError(f"expected one revision, alembic produced {len(scripts)}")
    return Path(scripts[0].path)


def _ruff(path: Path) -> None:
    """Make the generated file pass the repository's lint and format checks."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists() and not shutil.which(ruff):
        return
    for args in (["check", "--fix", "--quiet"], ["format", "--quiet"]):
        subprocess.run([ruff, *args, str(path)], check=False, cwd=REPO_ROOT, capture_output=True)


async def generate_revision(
    service: str,
    migrations_dir: Path,
    message: str,
    *,
    url: str | None = None,
    autogenerate: bool = True,
) -> Path:
    """Write a new revision for `service`, autogenerated by diffing its metadata against a
    database migrated to the current head (a throwaway SQLite file unless `url` is given).
    Returns the new file's path. Review it: autogenerate misses renames and data moves."""
    with tempfile.TemporaryDirectory(prefix="keiko-revision-") as tmp:
        db = Database(url or f"sqlite+aiosqlite:///{tmp}/keiko.db", schemas=[service])
        try:
            await db.create_schemas()
            await upgrade(db, service, migrations_dir)
            cfg = _config(migrations_dir)
            async with db.engine.connect() as conn:
                path = await conn.run_sync(_revision_sync, cfg, message, autogenerate)
        finally:
            await db.dispose()
    _ruff(path)
    return path


# -- command line ---------------------------------------------------------------------------


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.kit.migrations")
    sub = parser.add_subparsers(dest="cmd", required=True)
    rev = sub.add_parser("revision", help="autogenerate a new revision for a service")
    rev.add_argument("service")
    rev.add_argument("-m", "--message", required=True)
    rev.add_argument("--dir", type=Path, help="migrations dir (default services/<svc>/migrations)")
    rev.add_argument("--url", help="diff against this database instead of a temporary SQLite")
    rev.add_argument("--empty", action="store_true", help="no autogenerate: an empty revision")
    up = sub.add_parser("upgrade", help="apply migrations up to head")
    up.add_argument("services", nargs="*", help="default: every service with migrations")
    up.add_argument("--url", default=os.environ.get("KEIKO_DATABASE_URL"))
    args = parser.parse_args(argv)

    if args.cmd == "revision":
        mdir = args.dir or REPO_ROOT / "services" / args.service / "migrations"
        path = asyncio.run(
            generate_revision(
                args.service, mdir, args.message, url=args.url, autogenerate=not args.empty
            )
        )
        print(f"wrote {path}")
        return 0

    if not args.url:
        parser.error("--url or KEIKO_DATABASE_URL is required")
    dirs = service_migration_dirs()
    wanted = {s: dirs[s] for s in (args.services or dirs)}

    async def run() -> None:
        db = Database(args.url, schemas=list(wanted))
        try:
            await db.create_schemas()
            await upgrade_all(db, wanted)
        finally:
            await db.dispose()

    asyncio.run(run())
    print(f"upgraded {', '.join(wanted) or 'nothing'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
