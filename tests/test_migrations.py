"""The Alembic migrations build the schema the models describe, on PostgreSQL and SQLite."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from mcp_server.db import create_db_engine
from mcp_server.migrate import (
    SchemaOutdated,
    alembic_config,
    ensure_schema,
    head_revision,
    is_current,
    is_managed_by_hand,
    upgrade,
)


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_engine(request, make_pg_database, tmp_path):
    url = make_pg_database() if request.param == "postgresql" else f"sqlite:///{tmp_path / 'fresh.db'}"
    engine = create_db_engine(url)
    yield engine
    engine.dispose()


def test_upgrade_from_empty_creates_every_table(empty_engine):
    assert not is_current(empty_engine)
    upgrade(empty_engine)
    assert is_current(empty_engine)
    assert {"users", "api_tokens", "tasks"} <= set(inspect(empty_engine).get_table_names())


def test_models_and_migrations_agree(empty_engine):
    upgrade(empty_engine)
    with empty_engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"include_name": lambda name, kind, _: not is_managed_by_hand(name, kind), "compare_type": True},
        )
        assert compare_metadata(context, SQLModel.metadata) == []


def test_search_indexes_exist_per_dialect(empty_engine):
    upgrade(empty_engine)
    with empty_engine.connect() as connection:
        if empty_engine.dialect.name == "postgresql":
            names = set(connection.scalars(text("SELECT indexname FROM pg_indexes WHERE tablename = 'tasks'")))
            assert {"ix_tasks_search", "ix_tasks_tags"} <= names
        else:
            rows = connection.execute(text("SELECT name, type FROM sqlite_master WHERE name LIKE 'tasks_fts%'"))
            kinds = dict(rows.all())
            assert kinds["tasks_fts"] == "table"
            assert {"tasks_fts_insert", "tasks_fts_update", "tasks_fts_delete"} <= set(kinds)


def test_downgrade_to_empty_and_up_again(empty_engine):
    upgrade(empty_engine)
    with empty_engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert set(inspect(empty_engine).get_table_names()) <= {"alembic_version"}
    upgrade(empty_engine)
    assert is_current(empty_engine)


def test_embedded_sqlite_upgrades_itself(tmp_path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'new' / 'taskflow.db'}")
    ensure_schema(engine)
    assert is_current(engine)


def test_an_outdated_postgresql_schema_is_refused_with_the_command_to_run(make_pg_database):
    engine = create_db_engine(make_pg_database())
    with pytest.raises(SchemaOutdated, match="run `taskflow db upgrade`"):
        ensure_schema(engine)
    engine.dispose()


def test_sqlite_partial_indexes_keep_their_condition(tmp_path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    upgrade(engine)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql LIKE '%WHERE%'")
        )
        partial = {name for name, _sql in rows}
    assert {"ix_outbox_unsent", "ix_outbox_unsent_user", "ix_outbox_unsent_available"} <= partial
    assert "ix_tasks_pending_reminders" in partial


@pytest.mark.parametrize("table", ["tasks", "outbox"])
def test_ids_are_never_given_out_again(empty_engine, table):
    """Events are recognised by id and tasks named by it: an id freed by a delete must not come back."""
    from mcp_server.db import unit_of_work
    from mcp_server.service import TaskCreate, add_task
    from tests.conftest import NOW, new_actor

    upgrade(empty_engine)
    actor = new_actor(empty_engine)
    with unit_of_work(empty_engine) as session:
        add_task(session, actor=actor, data=TaskCreate(title="x"), now=NOW)
    with empty_engine.begin() as connection:
        newest = connection.scalar(text(f"SELECT max(id) FROM {table}"))
        connection.execute(text(f"DELETE FROM {table} WHERE id = :id"), {"id": newest})
    with unit_of_work(empty_engine) as session:
        add_task(session, actor=actor, data=TaskCreate(title="y"), now=NOW)
    with empty_engine.connect() as connection:
        assert connection.scalar(text(f"SELECT max(id) FROM {table}")) > newest


def test_events_written_before_uuid_ids_keep_their_ids_and_inbox_entries(empty_engine):
    upgrade(empty_engine, "0005")
    with empty_engine.begin() as connection:
        connection.execute(text("INSERT INTO users (name, timezone, created_at) VALUES ('old', 'UTC', '2026-11-01')"))
        connection.execute(
            text(
                "INSERT INTO outbox (topic, type, user_id, data, created_at, available_at, attempts) "
                "VALUES ('task-events', 'com.taskflow.task.created', 1, '{}', '2026-11-01', '2026-11-01', 0)"
            )
        )
        connection.execute(text("INSERT INTO inbox VALUES ('recurrence', '1', '2026-11-01')"))
    upgrade(empty_engine)
    with empty_engine.connect() as connection:
        assert connection.execute(text("SELECT id, event_id FROM outbox")).all() == [(1, "1")]
        assert connection.execute(text("SELECT consumer, source, event_id FROM inbox")).all() == [
            ("recurrence", "/taskflow/task-service", "1")
        ]


def test_the_head_read_from_the_migration_files_is_alembics():
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()
