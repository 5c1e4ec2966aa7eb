"""Poison and stuck events on real databases: dead-lettered or retried, never blocking anyone else's events.

Each test gets a database of its own, since it leaves failures and locks behind on purpose.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import anyio
import psycopg
import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from events import recurrence
from events.consumers import Consumers, DeliveryLimits, Event, Outcome
from events.dead_letters import count_dead_letters, dead_letters
from events.inprocess import InProcessTransport
from events.relay import Relay, RelaySettings
from mcp_server import service
from mcp_server.db import create_db_engine, unit_of_work
from mcp_server.event_catalog import TASK_EVENTS, EventType, to_cloudevent
from mcp_server.event_models import DeliveryFailure, OutboxEvent
from mcp_server.models import Task
from mcp_server.service import Actor, TaskCreate
from tests.conftest import NOW, migrated, new_actor
from tests.processes import taskflow_env

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

# Small limits, so the tests see several attempts and a dead letter within seconds. The budget stays well above what
# a handler takes on a loaded machine: where it runs out, its exception can land in a garbage-collector callback
# (which reports it as unraisable) instead of the handler, and only the spinning handler's test is about budgets.
LIMITS = DeliveryLimits(budget=2.0, lock_timeout=0.3, max_attempts=3)
FAST = RelaySettings(poll=0.1, backoff_base=0.1, backoff_cap=0.4)
DUE = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)  # 09:00 in Asia/Karachi
# Rules earlier versions accepted: expanding them spun without end, raised, or scanned for seconds.
POISONED_RULES = [
    "FREQ=DAILY;INTERVAL=0",
    "FREQ=DAILY;INTERVAL=-1",
    "FREQ=YEARLY;INTERVAL=0;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=SECONDLY;BYHOUR=25",
]


@pytest.fixture(params=["postgresql", "sqlite"])
def own_url(request: pytest.FixtureRequest, make_pg_database, tmp_path) -> str:
    return migrated(make_pg_database() if request.param == "postgresql" else f"sqlite:///{tmp_path / 'taskflow.db'}")


@pytest.fixture
def own_engine(own_url: str) -> Iterator[Engine]:
    engine = create_db_engine(own_url)
    yield engine
    engine.dispose()


def consumers_of(engine: Engine) -> Consumers:
    consumers = Consumers(engine, limits=LIMITS)
    recurrence.subscribe(consumers)
    return consumers


@asynccontextmanager
async def relay_running(engine: Engine, consumers: Consumers) -> AsyncIterator[None]:
    relay = Relay(engine, InProcessTransport(consumers), settings=FAST)
    async with anyio.create_task_group() as group:
        group.start_soon(relay.run)
        yield
        group.cancel_scope.cancel()


async def eventually(condition: Callable[[], bool], within: float) -> float:
    """Seconds until `condition` held; fails after `within`."""
    started = time.monotonic()
    while not await anyio.to_thread.run_sync(condition):
        assert time.monotonic() - started < within, f"not within {within} s"
        await anyio.sleep(0.05)
    return time.monotonic() - started


def recurring_completion(engine: Engine, actor: Actor, rule: str = "FREQ=DAILY") -> int:
    """A recurring task of `actor`, completed: its completion event waits in the outbox."""
    with unit_of_work(engine) as session:
        task = service.add_task(
            session,
            actor=actor,
            data=TaskCreate(title="water plants", due="2026-12-01T09:00", recurrence=rule),
            now=NOW,
        )
    with unit_of_work(engine) as session:
        service.complete_task(session, actor=actor, task_id=task.id, now=NOW)  # type: ignore[arg-type]
    return task.id  # type: ignore[return-value]


def old_completion(engine: Engine, actor: Actor, rule: str) -> int:
    """A task stored with `rule` straight in the table, as older versions let through, then completed."""
    with unit_of_work(engine) as session:
        task = Task(
            user_id=actor.user_id, title="old rule", recurrence=rule, due_at=DUE, created_at=NOW, updated_at=NOW
        )
        session.add(task)
        session.flush()
        task.series_id = task.id
    with unit_of_work(engine) as session:
        service.complete_task(session, actor=actor, task_id=task.id, now=NOW)  # type: ignore[arg-type]
    return task.id  # type: ignore[return-value]


def occurrences(engine: Engine, series_id: int) -> int:
    with unit_of_work(engine) as session:
        return session.scalar(select(func.count()).where(Task.series_id == series_id)) or 0


def letters_of(engine: Engine, actor: Actor) -> list[DeliveryFailure]:
    return [letter for letter in dead_letters(engine) if letter.cloudevent()["data"]["user_id"] == actor.user_id]


def unsent(engine: Engine, actor: Actor) -> int:
    with unit_of_work(engine) as session:
        mine = (OutboxEvent.user_id == actor.user_id, OutboxEvent.sent_at.is_(None))  # type: ignore[union-attr]
        return session.scalar(select(func.count()).select_from(OutboxEvent).where(*mine)) or 0


@pytest.mark.parametrize("rule", POISONED_RULES)
async def test_a_poisoned_rule_ends_dead_lettered_and_blocks_nobody(own_engine, rule):
    poisoned, other = new_actor(own_engine), new_actor(own_engine)
    poison = old_completion(own_engine, poisoned, rule)
    later_of_poisoned = recurring_completion(own_engine, poisoned)  # queued behind the poison in the same stream
    others = recurring_completion(own_engine, other)
    async with relay_running(own_engine, consumers_of(own_engine)):
        # Sooner than the poison's attempts could all run out: the other person's event did not queue behind them.
        assert await eventually(lambda: occurrences(own_engine, others) == 2, within=10) < (
            LIMITS.budget * LIMITS.max_attempts
        )
        await eventually(lambda: occurrences(own_engine, later_of_poisoned) == 2, within=10)
        await eventually(lambda: len(letters_of(own_engine, poisoned)) == 1, within=20)
        await eventually(lambda: unsent(own_engine, poisoned) == 0, within=10)  # settled: the stream moved on
        after = recurring_completion(own_engine, poisoned)
        await eventually(lambda: occurrences(own_engine, after) == 2, within=10)
    (letter,) = letters_of(own_engine, poisoned)
    assert letter.consumer == recurrence.CONSUMER
    assert letter.cloudevent()["data"]["task"]["id"] == poison
    assert 1 <= letter.attempts <= LIMITS.max_attempts
    assert letter.first_attempt_at <= letter.last_attempt_at
    assert occurrences(own_engine, poison) == 1


async def test_a_domain_error_is_dead_lettered_at_the_first_attempt(own_engine):
    actor = new_actor(own_engine)
    old_completion(own_engine, actor, "FREQ=DAILY;INTERVAL=-1")
    async with relay_running(own_engine, consumers_of(own_engine)):
        await eventually(lambda: len(letters_of(own_engine, actor)) == 1, within=10)
    (letter,) = letters_of(own_engine, actor)
    assert letter.attempts == 1
    assert letter.error.startswith("InvalidRule")


def spin(_session: Session, _event: Event) -> None:
    while True:  # a handler that never returns by itself
        pass


async def test_a_failure_that_may_pass_is_retried_and_then_dead_lettered(own_engine):
    actor = new_actor(own_engine)
    recurring_completion(own_engine, actor)
    consumers = Consumers(own_engine, limits=LIMITS)
    consumers.subscribe(TASK_EVENTS, "spinning", spin, frozenset({EventType.task_completed.value}))
    async with relay_running(own_engine, consumers):  # runs out of its time budget on every attempt
        await eventually(lambda: len(letters_of(own_engine, actor)) == 1, within=30)
    (letter,) = letters_of(own_engine, actor)
    assert letter.consumer == "spinning"
    assert letter.attempts == LIMITS.max_attempts
    assert "time budget" in letter.error
    assert letter.last_attempt_at > letter.first_attempt_at  # with backoff in between


@pytest.fixture
def own_pg_url(make_pg_database) -> str:
    return migrated(make_pg_database())


async def test_a_handler_stuck_on_a_lock_holds_up_nobody_and_the_relay_still_stops(own_pg_url):
    """PostgreSQL only: on SQLite one writer holds the whole database, by design, so nobody could go on."""
    engine = create_db_engine(own_pg_url)
    try:
        stuck_user, other = new_actor(engine), new_actor(engine)
        stuck = recurring_completion(engine, stuck_user)
        limits = DeliveryLimits(budget=2.0, lock_timeout=0.3, max_attempts=1000)
        consumers = Consumers(engine, limits=limits)
        recurrence.subscribe(consumers)
        with psycopg.connect(own_pg_url) as holder:
            holder.execute("SELECT id FROM tasks WHERE id = %s FOR UPDATE", (stuck,))  # held until the block ends
            others = recurring_completion(engine, other)
            async with relay_running(engine, consumers):
                await eventually(lambda: occurrences(engine, others) == 2, within=10)  # the stuck one never ends
                more = recurring_completion(engine, other)
                await eventually(lambda: occurrences(engine, more) == 2, within=10)
                assert occurrences(engine, stuck) == 1
                stopping = time.monotonic()
            assert time.monotonic() - stopping < limits.budget + 2.0  # cancelling waits for one handler at most
            holder.rollback()
        async with relay_running(engine, consumers):  # the lock gone, the held event goes through after all
            await eventually(lambda: occurrences(engine, stuck) == 2, within=10)
        assert letters_of(engine, stuck_user) == []
    finally:
        engine.dispose()


def taskflow(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["taskflow", *args], env=taskflow_env(url), capture_output=True, text=True, timeout=60, check=False
    )


def dead_letter_of(engine: Engine, rule: str) -> tuple[Actor, int]:
    """A completion whose rule fails permanently, delivered once: a dead letter."""
    actor = new_actor(engine)
    task_id = old_completion(engine, actor, rule)
    consumers_of(engine).deliver("task-events", completion_of(engine, actor))
    return actor, task_id


def completion_of(engine: Engine, actor: Actor) -> dict:
    with unit_of_work(engine) as session:
        return to_cloudevent(session.scalars(select(OutboxEvent).where(OutboxEvent.user_id == actor.user_id)).one())


def fix_rule(engine: Engine, task_id: int) -> None:
    with unit_of_work(engine) as session:
        task = session.get(Task, task_id)
        assert task is not None
        task.recurrence = "FREQ=DAILY"


def dead_letter_total(engine: Engine) -> int:
    """The count readiness reports."""
    with unit_of_work(engine) as session:
        return count_dead_letters(session)


def test_dead_letters_are_listed_and_replayed_once_by_the_command(own_url, own_engine):
    actor, task_id = dead_letter_of(own_engine, "FREQ=DAILY;INTERVAL=-1")
    listed = taskflow(own_url, "events", "dead-letters", "--json")
    assert listed.returncode == 0, listed.stderr
    (letter,) = json.loads(listed.stdout)
    assert (letter["consumer"], letter["topic"], letter["attempts"]) == ("recurrence", "task-events", 1)
    assert letter["event"]["data"]["task"]["id"] == task_id
    assert letter["error"].startswith("InvalidRule")
    assert letter["first_attempt_at"] == letter["last_attempt_at"]
    text = taskflow(own_url, "events", "dead-letters")
    assert f"{letter['id']}  recurrence on task-events" in text.stdout
    assert dead_letter_total(own_engine) == 1

    still_broken = taskflow(own_url, "events", "retry", str(letter["id"]))
    assert still_broken.returncode == 1
    assert "failed again" in still_broken.stdout
    assert json.loads(taskflow(own_url, "events", "dead-letters", "--json").stdout)[0]["attempts"] == 2

    fix_rule(own_engine, task_id)
    replayed = taskflow(own_url, "events", "retry", str(letter["id"]))
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.strip() == f"{letter['id']}: handled"
    assert occurrences(own_engine, task_id) == 2
    again = taskflow(own_url, "events", "retry", str(letter["id"]))
    assert (again.returncode, again.stdout.strip()) == (1, f"{letter['id']}: no such dead letter")
    assert occurrences(own_engine, task_id) == 2
    assert taskflow(own_url, "events", "dead-letters").stdout.strip() == "no dead letters"
    assert dead_letter_total(own_engine) == 0


def test_concurrent_replays_of_all_dead_letters_handle_each_once(own_url, own_engine):
    broken = [dead_letter_of(own_engine, "FREQ=DAILY;INTERVAL=-1") for _ in range(3)]
    for _, task_id in broken:
        fix_rule(own_engine, task_id)
    env = taskflow_env(own_url)
    runs = [
        subprocess.Popen(["taskflow", "events", "retry", "--all"], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [run.communicate(timeout=60)[0] for run in runs]
    assert sum(output.count(": handled") for output in outputs) == 3
    assert [occurrences(own_engine, task_id) for _, task_id in broken] == [2, 2, 2]
    assert dead_letters(own_engine) == []


def test_retry_needs_an_id_or_all(own_url):
    refused = taskflow(own_url, "events", "retry")
    assert refused.returncode == 2
    assert "give one dead letter's ID or --all" in refused.stderr


def test_a_dead_letter_does_not_hold_up_its_redelivery_stream(own_engine):
    """Redelivered (Dapr delivers at least once), a dead letter is answered DROP again, not retried forever."""
    actor, _ = dead_letter_of(own_engine, "FREQ=DAILY;INTERVAL=-1")
    assert consumers_of(own_engine).deliver("task-events", completion_of(own_engine, actor)) is Outcome.drop
    (letter,) = letters_of(own_engine, actor)
    assert letter.attempts == 2

