"""The PostgreSQL engine on the wire: the round trips a tool call's unit of work costs, and a pooled connection whose
backend died is replaced before any work is sent."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import pq
from sqlalchemy import Engine, event, text

from mcp_server import service
from mcp_server.db import create_db_engine, unit_of_work
from mcp_server.service import TaskCreate, TaskFilter
from tests.conftest import NOW, migrated, new_actor
from tests.processes import wait_until

# What the client sends that waits for the server's answer: a simple query, or the Sync ending an extended one.
ROUND_TRIP = re.compile(r"^F\t\d+\t(Query|Sync)\b", re.MULTILINE)


class Wire:
    """The libpq trace of every connection an engine opens from now on."""

    def __init__(self, engine: Engine, path: Path) -> None:
        self.path = path
        self._connections: list[psycopg.Connection] = []
        event.listen(engine, "connect", self._trace)

    def _trace(self, dbapi_connection: psycopg.Connection, _record: object) -> None:
        self._start(dbapi_connection)
        self._connections.append(dbapi_connection)

    def _start(self, connection: psycopg.Connection) -> None:
        with self.path.open("a") as log:
            connection.pgconn.trace(os.dup(log.fileno()))
        connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)

    def round_trips(self, work: Callable[[], object]) -> str:
        """What `work` sent and received; its round trips are ROUND_TRIP's matches."""
        before = self._flushed()
        work()
        return self._flushed()[len(before) :]

    def _flushed(self) -> str:
        for connection in self._connections:
            if not connection.closed:
                connection.pgconn.untrace()  # writes out what the trace holds
                self._start(connection)
        return self.path.read_text() if self.path.exists() else ""


@pytest.fixture
def wired(pg_url: str, tmp_path: Path) -> Iterator[tuple[Engine, Wire]]:
    engine = create_db_engine(pg_url)
    wire = Wire(engine, tmp_path / "wire.log")
    yield engine, wire
    engine.dispose()


def test_adding_a_task_is_four_round_trips_with_its_change_event_and_wake_ups(wired):
    engine, wire = wired
    actor = new_actor(engine)  # the pooled connection is warm from here on

    def add() -> None:
        with unit_of_work(engine) as session:
            data = TaskCreate(title="x", remind_at="2026-11-30T09:00")
            service.add_task(session, actor=actor, data=data, now=NOW)

    sent = wire.round_trips(add)
    # BEGIN (the pool's liveness check too), the task, the person's change with its event and both NOTIFYs, COMMIT.
    assert len(ROUND_TRIP.findall(sent)) == 4, sent
    assert "'taskflow_outbox'" in sent
    assert "'taskflow_reminders'" in sent


def test_listing_tasks_is_three_round_trips(wired):
    engine, wire = wired
    actor = new_actor(engine)

    def page() -> None:
        with unit_of_work(engine) as session:
            service.list_tasks(session, actor=actor, spec=TaskFilter(), now=NOW)

    sent = wire.round_trips(page)
    assert len(ROUND_TRIP.findall(sent)) == 3, sent  # BEGIN, SELECT, COMMIT


def test_the_event_wakes_listeners_on_commit_only(pg_url):
    engine = create_db_engine(pg_url)
    actor = new_actor(engine)
    with psycopg.connect(pg_url, autocommit=True) as listener:
        listener.execute("LISTEN taskflow_outbox")
        listener.execute("LISTEN taskflow_reminders")
        with pytest.raises(RuntimeError), unit_of_work(engine) as session:  # noqa: PT012
            service.add_task(session, actor=actor, data=TaskCreate(title="x", remind_at="2026-11-30T09:00"), now=NOW)
            raise RuntimeError("rolled back")
        assert [n.channel for n in listener.notifies(timeout=0.5)] == []
        with unit_of_work(engine) as session:
            for title in ("a", "b"):
                data = TaskCreate(title=title, remind_at="2026-11-30T09:00")
                service.add_task(session, actor=actor, data=data, now=NOW)
        channels = [n.channel for n in listener.notifies(timeout=1.0, stop_after=2)]
    engine.dispose()
    assert sorted(channels) == ["taskflow_outbox", "taskflow_reminders"]


def test_a_pooled_connection_whose_backend_was_killed_is_replaced_before_any_work(pg_url):
    engine = create_db_engine(pg_url)
    actor = new_actor(engine)
    with unit_of_work(engine) as session:
        killed = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (killed,))

        def gone() -> bool:
            return admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (killed,)).fetchone() == (0,)

        wait_until(gone, 5.0)
    with unit_of_work(engine) as session:
        task = service.add_task(session, actor=actor, data=TaskCreate(title="after the kill"), now=NOW)
        serving = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    with unit_of_work(engine) as session:
        page = service.list_tasks(session, actor=actor, spec=TaskFilter(), now=NOW)
    engine.dispose()
    assert serving != killed
    assert [t.id for t in page.tasks] == [task.id]


def test_moments_read_back_unchanged_whatever_zone_the_database_defaults_to(make_pg_database):
    url = migrated(make_pg_database())
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE \"{url.rsplit('/', 1)[1]}\" SET timezone TO 'America/St_Johns'")
    engine = create_db_engine(url)
    actor = new_actor(engine)
    with unit_of_work(engine) as session:
        data = TaskCreate(title="call", due="2026-12-01T23:30", remind_at="2026-12-01T23:00")
        added = service.add_task(session, actor=actor, data=data, now=NOW)
    with unit_of_work(engine) as session:
        page = service.list_tasks(session, actor=actor, spec=TaskFilter(due_before="2026-12-01"), now=NOW)
        stored = service.get_task(session, actor=actor, task_id=added.id)
    engine.dispose()
    assert (stored.due_at, stored.remind_at, stored.created_at) == (added.due_at, added.remind_at, NOW)
    assert [task.due for task in page.tasks] == ["2026-12-01T23:30:00+05:00"]
