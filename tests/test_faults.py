"""Database faults and stops against real `taskflow` processes on PostgreSQL, each test on a database of its own."""

from __future__ import annotations

import signal
import time
import uuid
from functools import partial

import anyio
import httpx
import psycopg
import pytest

from mcp_server.db import create_db_engine
from mcp_server.event_catalog import EventType
from tests.conftest import migrated
from tests.fault_helpers import (
    DatabaseFaults,
    LoadRecord,
    ToolClient,
    damage,
    load_through_faults,
    user_with_token,
    wait_for_outbox,
)
from tests.processes import answers, free_port, serving, taskflow_env, wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

# The goal is 2 s from the database coming back to the first successful tool call (bench/faults.py measures it);
# here the first call after recovery must succeed, within a bound that allows for a machine busy with other tests.
RECOVERY_BOUND = 5.0
STOP_GOAL = 10.0  # seconds from SIGTERM to the process's end


@pytest.fixture
def database(make_pg_database) -> str:
    """A migrated PostgreSQL database of the test's own: its faults touch no other test."""
    return migrated(make_pg_database())


async def test_tool_calls_recover_within_two_seconds_and_nothing_is_lost_or_doubled(database):
    env = taskflow_env(database)
    token = user_with_token(env)
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    async def during_outage() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=20) as http:
            assert (await http.get("/readyz")).status_code == 503
            assert (await http.get("/healthz")).status_code == 200

    with serving(["serve", "mcp", "--port", str(port)], env, f"http://127.0.0.1:{port}/healthz"):
        record, recovered = await load_through_faults(database, f"{url}/mcp", token, during_outage)
        assert recovered.failed_calls == 0  # no stale pooled connection, no restart needed
        assert recovered.seconds <= RECOVERY_BOUND
        await anyio.to_thread.run_sync(wait_until, lambda: answers(f"{url}/readyz"), 10.0)
        await anyio.to_thread.run_sync(wait_for_outbox, database)
    assert record.added, record
    assert record.completed, record
    assert damage(database, record).__dict__ == {"lost": 0, "duplicated": 0}


def add_recurring_completions(database: str, count: int) -> list[int]:
    """In one transaction, `count` recurring tasks completed (their task.completed events in the outbox) and as many
    reminders due now; the completed tasks' ids."""
    from datetime import timedelta

    from sqlalchemy import update

    from mcp_server.accounts import actor_for, add_user
    from mcp_server.db import unit_of_work
    from mcp_server.models import Task, utcnow
    from mcp_server.service import TaskCreate, add_task, complete_task

    engine = create_db_engine(database)
    completed = []
    now = utcnow()
    with unit_of_work(engine) as session:
        actors = [
            actor_for(add_user(session, name=f"worker-{uuid.uuid4().hex[:8]}", timezone="UTC")) for _ in range(10)
        ]
        for n in range(count):
            actor = actors[n % len(actors)]
            data = TaskCreate(title=f"series {n}", due="2027-01-04T09:00", recurrence="FREQ=DAILY")
            task = add_task(session, actor=actor, data=data, now=now)
            complete_task(session, actor=actor, task_id=task.id, now=now)
            completed.append(task.id)
            reminded = add_task(session, actor=actor, data=TaskCreate(title=f"remind {n}"), now=now)
            # Past due and stored without the scheduler's wake-up (add_task returns the task, not a tracked row).
            session.execute(update(Task).where(Task.id == reminded.id).values(remind_at=now - timedelta(seconds=1)))
    engine.dispose()
    return completed


def outbox_count(database: str, condition: str) -> int:
    with psycopg.connect(database) as connection:
        return connection.execute(
            f"SELECT count(*) FROM outbox WHERE topic = 'task-events' AND {condition}"
        ).fetchone()[0]


def in_transaction(database: str, application: str) -> bool:
    """A process that connected as `application` has a transaction open (claiming, delivering or settling)."""
    with psycopg.connect(database) as connection:
        return (
            connection.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND xact_start IS NOT NULL",
                (application,),
            ).fetchone()[0]
            > 0
        )


def test_two_workers_one_killed_mid_batch_each_effect_and_reminder_exactly_once(database):
    ports = [free_port(), free_port()]
    # libpq names each worker's connections, so the test sees which worker is in the middle of a batch.
    doomed_env, survivor_env = (taskflow_env(database, PGAPPNAME=name) for name in ("doomed", "survivor"))
    with (
        serving(["worker", "--port", str(ports[0])], doomed_env, f"http://127.0.0.1:{ports[0]}/healthz") as doomed,
        serving(["worker", "--port", str(ports[1])], survivor_env, f"http://127.0.0.1:{ports[1]}/healthz") as other,
    ):
        completed = add_recurring_completions(database, 300)

        def mid_batch() -> bool:
            return outbox_count(database, "sent_at IS NULL AND attempts > 0") > 0 and in_transaction(database, "doomed")

        wait_until(mid_batch, 30, interval=0.005)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        assert outbox_count(database, "sent_at IS NOT NULL") < len(completed)
        wait_for_outbox(database, timeout=120)  # the killed worker's claim is taken over once its lease ends
        # The reminders were written without a wake-up, so the survivor's scheduler finds them on its next round.
        wait_until(lambda: len(fired_reminders(database)) == len(completed), 120)
        assert other.poll() is None
    assert damage(database, LoadRecord(completed=completed)).__dict__ == {"lost": 0, "duplicated": 0}
    reminders = fired_reminders(database)
    assert len(reminders) == len(completed)
    assert {count for _, count in reminders} == {1}


def fired_reminders(database: str) -> list[tuple[str, int]]:
    """(task id, how many reminder.due events it has) for every task whose reminder fired."""
    with psycopg.connect(database) as connection:
        return connection.execute(
            "SELECT data->>'task_id', count(*) FROM outbox WHERE type = %s GROUP BY 1", (EventType.reminder_due.value,)
        ).fetchall()


def waiting_on_a_lock(database: str) -> bool:
    with psycopg.connect(database) as watcher:
        row = watcher.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    return row[0] > 0


async def test_sigterm_stops_serve_mcp_within_ten_seconds_while_a_handler_is_stuck(database):
    env = taskflow_env(database)
    token = user_with_token(env)
    port = free_port()
    mcp_url = f"http://127.0.0.1:{port}/mcp"

    with serving(["serve", "mcp", "--port", str(port)], env, f"http://127.0.0.1:{port}/healthz") as server:
        client = ToolClient(mcp_url, token)
        task = await client.call("add_task", title="locked")
        with psycopg.connect(database) as holder:  # holds the task's row lock until the block ends
            holder.execute("SELECT * FROM tasks WHERE id = %s FOR UPDATE", (task["id"],))
            async with anyio.create_task_group() as group:
                group.start_soon(partial(client.call, "complete_task", task_id=task["id"]))
                await anyio.to_thread.run_sync(wait_until, partial(waiting_on_a_lock, database), 20.0)
                began = time.monotonic()
                server.send_signal(signal.SIGTERM)
                await anyio.to_thread.run_sync(server.wait, STOP_GOAL + 5)
                assert time.monotonic() - began <= STOP_GOAL
                group.cancel_scope.cancel()


def test_worker_survives_ten_seconds_without_its_database(database):
    env = taskflow_env(database)
    port = free_port()
    faults = DatabaseFaults(database)
    ready = f"http://127.0.0.1:{port}/readyz"
    with serving(["worker", "--port", str(port)], env, f"http://127.0.0.1:{port}/healthz") as worker:
        wait_until(lambda: answers(ready))
        with faults.refusing():
            wait_until(lambda: answers(ready, 503))
            time.sleep(10)
            assert worker.poll() is None
        wait_until(lambda: answers(ready))
        completed = add_recurring_completions(database, 3)
        wait_for_outbox(database, timeout=60)
        assert worker.poll() is None
    assert damage(database, LoadRecord(completed=completed)).__dict__ == {"lost": 0, "duplicated": 0}


@pytest.mark.parametrize("command", [["up"], ["serve", "chat"]])
def test_the_chat_reports_readiness_through_an_outage_and_stops_on_sigterm(database, tmp_path, command):
    from tests.e2e_helpers import clean_env

    port = free_port()
    env = clean_env(database, tmp_path, APP_API_TOKEN="dapr-token")
    base = f"http://127.0.0.1:{port}"
    with serving([*command, "--port", str(port)], env, f"http://127.0.0.1:{port}/healthz") as chat:
        wait_until(lambda: answers(f"{base}/readyz"))
        services = httpx.get(f"{base}/readyz", timeout=5).json()["services"]
        assert "reminders to open chats" in services
        assert ("outbox relay" in services) == (command == ["up"])
        with DatabaseFaults(database).refusing():
            wait_until(lambda: answers(f"{base}/readyz", 503))
            assert answers(f"{base}/healthz")
        wait_until(lambda: answers(f"{base}/readyz"))
        began = time.monotonic()
        chat.send_signal(signal.SIGTERM)
        chat.wait(timeout=STOP_GOAL + 5)
        assert time.monotonic() - began <= STOP_GOAL
