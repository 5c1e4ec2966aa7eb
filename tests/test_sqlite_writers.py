"""Units of work of one process take turns for SQLite's single write lock: a thread never waits for it in SQLite's
busy handler, which sleeps between tries and left the lock idle under concurrent HTTP calls."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import event, func, select

from mcp_server.accounts import add_user
from mcp_server.db import create_db_engine, unit_of_work
from mcp_server.models import User
from tests.conftest import migrated

THREADS = 8
UNITS_EACH = 15


def test_concurrent_units_of_work_never_meet_a_locked_database(tmp_path):
    """With SQLite's busy timeout at zero, a unit of work that found the write lock taken would fail at once
    ("database is locked"); queued in the process, every one of them commits."""
    engine = create_db_engine(migrated(f"sqlite:///{tmp_path / 'writers.db'}"))

    @event.listens_for(engine, "connect")
    def _no_busy_waiting(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout = 0")

    def add_users(thread: int) -> None:
        for unit in range(UNITS_EACH):
            with unit_of_work(engine) as session:
                add_user(session, name=f"writer {thread}.{unit}", timezone="UTC")

    try:
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(add_users, range(THREADS)))
        with unit_of_work(engine) as session:
            assert session.scalar(select(func.count()).select_from(User)) == THREADS * UNITS_EACH
    finally:
        engine.dispose()
