"""Schema migrations (Alembic), run from code so they ship inside the installed package."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from mcp_server.search import PG_COLUMN, PG_INDEX, SQLITE_FTS_TABLE

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
    config = Config()
    config.set_main_option("script_location", "mcp_server:migrations")
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def is_current(engine: Engine) -> bool:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision() == head


def ensure_schema(engine: Engine) -> None:
    """Embedded SQLite upgrades itself; a shared PostgreSQL is upgraded on purpose, by `taskflow db upgrade`."""
    if is_current(engine):
        return
    if engine.dialect.name == "sqlite":
        upgrade(engine)
        return
    raise SchemaOutdated("the database schema is not up to date; run `taskflow db upgrade`")
