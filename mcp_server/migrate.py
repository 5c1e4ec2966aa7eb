"""Schema migrations (Alembic), run from code so they ship inside the installed package.

Alembic itself is imported only to migrate: telling whether a schema is current reads the revisions from the
migration files and the database's `alembic_version` row directly, so a command that finds the schema current
starts without it.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from mcp_server.search import PG_COLUMN, PG_INDEX, SQLITE_FTS_TABLE

if TYPE_CHECKING:
    from alembic.config import Config

VERSIONS = Path(__file__).with_name("migrations") / "versions"
_REVISION = re.compile(r'^(down_revision|revision)\b[^=]*=\s*(?:"([^"]*)"|None)', re.MULTILINE)

# Objects the models cannot describe (per-dialect search indexes), created by the migrations alone.
TAGS_INDEX = "ix_tasks_tags"
_HAND_MANAGED_INDEXES = {PG_INDEX, TAGS_INDEX}


class SchemaOutdated(Exception):
    """The database is behind the code; the message says how to upgrade it."""


def is_managed_by_hand(name: str | None, kind: str) -> bool:
    """Whether autogenerate should leave this object alone."""
    if kind == "table":
        return bool(name and name.startswith(SQLITE_FTS_TABLE))
    if kind == "column":
        return name == PG_COLUMN
    return kind == "index" and name in _HAND_MANAGED_INDEXES


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "mcp_server:migrations")
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


@cache
def head_revision() -> str:
    """The revision no migration file builds on: the one a current schema carries."""
    revisions, bases = set(), set()
    for path in VERSIONS.glob("*.py"):
        for name, value in _REVISION.findall(path.read_text(encoding="utf-8")):
            (revisions if name == "revision" else bases).add(value)
    heads = revisions - bases
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


def is_current(engine: Engine) -> bool:
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return False
        revisions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return revisions == [head_revision()]


def ensure_schema(engine: Engine) -> None:
    """Embedded SQLite upgrades itself; a shared PostgreSQL is upgraded on purpose, by `taskflow db upgrade`."""
    if is_current(engine):
        return
    if engine.dialect.name == "sqlite":
        upgrade(engine)
        return
    raise SchemaOutdated("the database schema is not up to date; run `taskflow db upgrade`")
