"""undo_last_change through the real MCP client, on PostgreSQL and SQLite: each kind of change, walking back, the
one-hour window, the recurrence consumer's race, and concurrent undos."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from mcp import ClientSession
from sqlalchemy import select, text, update

from events import recurrence
from events.consumers import Consumers, Event, Outcome
from mcp_server.accounts import actor_for, ensure_user
from mcp_server.db import unit_of_work
from mcp_server.event_catalog import to_cloudevent
from mcp_server.event_models import OutboxEvent
from mcp_server.models import Change, Task
from mcp_server.service import Actor, TaskCreate, add_task
from mcp_server.undo import NOTHING, UndoRefused, undo_last_change
from tests.conftest import NOW, ZONE, connected
from tests.test_mcp_memory import call, error

pytestmark = pytest.mark.anyio


class Clock:
    """The tool server's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Person:
    """A tool server acting as one person, with a clock the test moves."""

    def __init__(self, client: ClientSession, name: str, clock: Clock) -> None:
        self.client, self.name, self.clock = client, name, clock

    async def __call__(self, tool: str, **arguments: Any) -> dict:
        self.clock.advance(seconds=1)  # changes happen one after another, as a person makes them
        return await call(self.client, tool, **arguments)

    async def undo(self) -> dict:
        return await self("undo_last_change")

    async def all_tasks(self) -> list[dict]:
        return (await call(self.client, "list_tasks", status="all", limit=200))["tasks"]


@pytest.fixture
async def person(engine, db_url) -> AsyncIterator[Person]:
    clock, name = Clock(), f"undoer-{uuid.uuid4().hex[:8]}"
    async with connected(engine, db_url, user=name, clock=clock) as client:
        yield Person(client, name, clock)


def consumers(engine) -> Consumers:
    made = Consumers(engine)
    recurrence.subscribe(made)
    return made


def completion_event(engine, task_id: int) -> dict:
    """The task.completed event of this task, as the relay would publish it."""
    with unit_of_work(engine) as session:
        rows = session.scalars(
            select(OutboxEvent).where(OutboxEvent.type == "com.taskflow.task.completed").order_by(OutboxEvent.id)
        )
        return to_cloudevent(next(row for row in rows if row.data["task"]["id"] == task_id))


def without_updated_at(task: dict) -> dict:
    return {name: value for name, value in task.items() if name != "updated_at"}


async def test_undoing_an_added_task_deletes_it_and_writes_the_deletion_event(engine, person):
    task = await person("add_task", title="buy milk")
    result = await person.undo()
    assert result["undone"] is True
    assert result["message"] == "Undid: added 'buy milk' — deleted it"
    assert [removed["id"] for removed in result["removed"]] == [task["id"]]
    assert "no task" in await error(person.client, "get_task", task_id=task["id"])
    with unit_of_work(engine) as session:
        last = session.scalars(select(OutboxEvent).order_by(OutboxEvent.id.desc()).limit(1)).one()
        undo_change = session.get(Change, last.change_id)
    assert (last.type, last.data["task"]["id"]) == ("com.taskflow.task.deleted", task["id"])
    assert undo_change.undoes is not None  # other consumers see the reversal, marked as an undo


async def test_undoing_a_deletion_brings_back_every_field_under_the_same_id(person):
    task = await person(
        "add_task",
        title="water the plants",
        description="the ferns need less",
        priority="high",
        tags=["home", "garden"],
        due="2026-12-02T08:00",
        recurrence="FREQ=WEEKLY;BYDAY=WE",
        remind_at="2026-12-02T07:30",
    )
    await person("delete_task", task_id=task["id"])
    result = await person.undo()
    assert result["message"] == "Undid: deleted 'water the plants' — restored it"
    back = await call(person.client, "get_task", task_id=task["id"])
    assert without_updated_at(back) == without_updated_at(task)


async def test_undoing_a_completion_reopens_it_and_removes_the_occurrence_it_created(engine, person):
    rent = await person("add_task", title="pay rent", due="2026-12-01", recurrence="FREQ=MONTHLY;BYMONTHDAY=1")
    await person("complete_task", task_id=rent["id"])
    assert consumers(engine).deliver("task-events", completion_event(engine, rent["id"])) is Outcome.success
    assert [task["due"] for task in await person.all_tasks()] == ["2026-12-01", "2027-01-01"]
    result = await person.undo()
    said = "Undid: completed 'pay rent' — reopened it and removed the next occurrence on Fri 1 Jan 2027"
    assert result["message"] == said
    assert [(task["due"], task["status"]) for task in await person.all_tasks()] == [("2026-12-01", "open")]


async def test_a_completion_undone_before_the_consumer_ran_never_gets_its_occurrence(engine, person):
    rent = await person("add_task", title="pay rent", due="2026-12-01", recurrence="FREQ=MONTHLY;BYMONTHDAY=1")
    await person("complete_task", task_id=rent["id"])
    event = completion_event(engine, rent["id"])
    assert (await person.undo())["message"] == "Undid: completed 'pay rent' — reopened it"
    assert consumers(engine).deliver("task-events", event) is Outcome.success  # late: the task is open again
    assert [(task["due"], task["status"]) for task in await person.all_tasks()] == [("2026-12-01", "open")]


async def test_a_stale_completion_does_not_continue_the_series_after_undo_and_completing_again(engine, person):
    rent = await person("add_task", title="pay rent", due="2026-12-01", recurrence="FREQ=MONTHLY;BYMONTHDAY=1")
    await person("complete_task", task_id=rent["id"])
    stale = completion_event(engine, rent["id"])
    await person.undo()
    await person("complete_task", task_id=rent["id"])
    with unit_of_work(engine) as session:
        completions = select(OutboxEvent).where(OutboxEvent.type == "com.taskflow.task.completed")
        rows = session.scalars(completions.order_by(OutboxEvent.id))  # the newest last: without order, any order
        fresh = to_cloudevent([row for row in rows if row.data["task"]["id"] == rent["id"]][-1])
    consumers(engine).deliver("task-events", stale)
    assert len(await person.all_tasks()) == 1  # the undone completion made nothing
    consumers(engine).deliver("task-events", fresh)
    assert (await person.undo())["message"].endswith("removed the next occurrence on Fri 1 Jan 2027")


async def test_undoing_a_reopen_completes_it_again_as_it_was(person):
    task = await person("add_task", title="file taxes")
    done = await person("complete_task", task_id=task["id"])
    await person("reopen_task", task_id=task["id"])
    result = await person.undo()
    assert result["message"] == "Undid: reopened 'file taxes' — marked it completed again"
    again = await call(person.client, "get_task", task_id=task["id"])
    assert (again["status"], again["completed_at"]) == ("completed", done["completed_at"])


async def test_undoing_an_update_restores_the_changed_fields(person):
    task = await person("add_task", title="call bob", due="2026-12-01", priority="low", tags=["work"])
    await person("update_task", task_id=task["id"], title="call Robert", due="2026-12-04T15:00", tags=[])
    result = await person.undo()
    assert (
        result["message"]
        == "Undid: changed 'call Robert' — restored its title (call bob), tags (work), due (Tue 1 Dec 2026)"
    )
    back = await call(person.client, "get_task", task_id=task["id"])
    assert without_updated_at(back) == without_updated_at(task)


async def test_undoing_a_bulk_delete_restores_every_task_at_once(person):
    titles = ["a report", "b slides", "c invoice"]
    for title in titles:
        added = await person("add_task", title=title, tags=["work"])
        await person("complete_task", task_id=added["id"])
    await person("add_task", title="still open")
    assert (await person("delete_completed_tasks", confirm=True))["deleted"] == 3
    result = await person.undo()
    assert result["message"] == "Undid: deleted 3 completed tasks — restored 'a report', 'b slides', 'c invoice'"
    tasks = await person.all_tasks()
    assert sorted((task["title"], task["status"]) for task in tasks) == [
        *[(title, "completed") for title in titles],
        ("still open", "open"),
    ]


async def test_repeated_undo_walks_back_and_never_undoes_an_undo(person):
    first = await person("add_task", title="first")
    await person("add_task", title="second")
    await person("update_task", task_id=first["id"], priority="high")
    messages = [(await person.undo())["message"] for _ in range(4)]
    assert messages == [
        "Undid: changed 'first' — restored its priority (medium)",
        "Undid: added 'second' — deleted it",
        "Undid: added 'first' — deleted it",
        NOTHING,
    ]
    assert await person.all_tasks() == []


async def test_walking_back_through_a_series_removes_each_occurrence_in_turn(engine, person):
    gym = await person("add_task", title="gym", due="2026-11-30T19:00", recurrence="FREQ=DAILY")
    await person("complete_task", task_id=gym["id"])
    consumers(engine).deliver("task-events", completion_event(engine, gym["id"]))
    following = next(task for task in await person.all_tasks() if task["id"] != gym["id"])
    await person("complete_task", task_id=following["id"])
    consumers(engine).deliver("task-events", completion_event(engine, following["id"]))
    assert len(await person.all_tasks()) == 3
    assert (await person.undo())["message"].endswith("removed the next occurrence on Wed 2 Dec 2026 19:00")
    assert (await person.undo())["message"].endswith("removed the next occurrence on Tue 1 Dec 2026 19:00")
    assert [(task["id"], task["status"]) for task in await person.all_tasks()] == [(gym["id"], "open")]


async def test_changes_older_than_an_hour_are_not_undone(person):
    await person("add_task", title="old one")
    person.clock.advance(minutes=30)
    await person("add_task", title="newer one")
    person.clock.advance(minutes=45)  # the first is 75 minutes old, the second 45
    assert (await person.undo())["message"] == "Undid: added 'newer one' — deleted it"
    result = await person.undo()
    assert (result["undone"], result["message"]) == (False, NOTHING)
    assert [task["title"] for task in await person.all_tasks()] == ["old one"]


async def test_a_person_undoes_only_their_own_changes(engine, db_url, person):
    mine = await person("add_task", title="mine")
    async with connected(engine, db_url, clock=person.clock) as other:
        await call(other, "add_task", title="theirs")
        person.clock.advance(seconds=1)
        assert (await call(other, "undo_last_change"))["message"] == "Undid: added 'theirs' — deleted it"
        assert (await call(other, "undo_last_change"))["message"] == NOTHING
    assert [task["id"] for task in await person.all_tasks()] == [mine["id"]]


async def test_an_undo_that_would_overwrite_a_later_change_is_refused_and_changes_nothing(engine, person):
    task = await person("add_task", title="call bob")
    await person("update_task", task_id=task["id"], title="call Bob")
    with unit_of_work(engine) as session:  # a writer that keeps no history, e.g. an older replica mid-upgrade
        session.execute(update(Task).where(Task.id == task["id"]).values(title="call Bob today"))
    message = await error(person.client, "undo_last_change")
    assert "'call Bob today' was changed since (title); nothing was undone" in message
    assert (await call(person.client, "get_task", task_id=task["id"]))["title"] == "call Bob today"


async def test_changes_from_any_surface_are_undone(engine, db_url, person):
    """A change made by the command line or another MCP server (a service call in its own unit of work)."""
    actor = actor_named(engine, person.name)
    with unit_of_work(engine) as session:
        add_task(session, actor=actor, data=TaskCreate(title="from the terminal"), now=person.clock.now)
    assert (await person.undo())["message"] == "Undid: added 'from the terminal' — deleted it"


def actor_named(engine, name: str) -> Actor:
    """The person the tool server acts as (created on first use, whoever comes first)."""
    with unit_of_work(engine) as session:
        return actor_for(ensure_user(session, name=name, timezone=ZONE))


# PostgreSQL: undos and the recurrence consumer from several connections at once.


@pytest.fixture
def pg_engine(engine, db_url):
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks across connections: PostgreSQL")
    return engine


def blocked_on_a_lock(engine, count: int) -> bool:
    """Whether `count` sessions wait for a row lock, within a generous deadline."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            waiting = connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            )
        if waiting >= count:
            return True
        time.sleep(0.05)
    return False


def undo_in_thread(engine, actor: Actor, now: datetime, results: list) -> threading.Thread:
    def run() -> None:
        try:
            with unit_of_work(engine) as session:
                results.append(undo_last_change(session, actor=actor, now=now).message)
        except UndoRefused as refused:
            results.append(str(refused))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


async def test_an_undo_racing_the_recurrence_consumer_removes_the_occurrence_it_made(pg_engine, person):
    rent = await person("add_task", title="pay rent", due="2026-12-01", recurrence="FREQ=MONTHLY;BYMONTHDAY=1")
    await person("complete_task", task_id=rent["id"])
    event = Event.from_envelope(completion_event(pg_engine, rent["id"]))
    actor = actor_named(pg_engine, person.name)
    results: list[str] = []
    with unit_of_work(pg_engine) as consumer_session:
        # The consumer has locked the task (its first step) but not yet made the occurrence when the undo starts.
        consumer_session.execute(select(Task).where(Task.id == rent["id"]).with_for_update())
        thread = undo_in_thread(pg_engine, actor, person.clock.now, results)
        assert blocked_on_a_lock(pg_engine, 1)
        recurrence.on_task_completed(consumer_session, event)
    thread.join(timeout=30)
    assert results == ["Undid: completed 'pay rent' — reopened it and removed the next occurrence on Fri 1 Jan 2027"]
    assert [(task["due"], task["status"]) for task in await person.all_tasks()] == [("2026-12-01", "open")]


async def test_two_concurrent_undos_undo_two_different_changes(pg_engine, person):
    await person("add_task", title="first")
    await person("add_task", title="second")
    actor = actor_named(pg_engine, person.name)
    results: list[str] = []
    with unit_of_work(pg_engine) as holder:  # both undos start while another transaction holds the person
        holder.execute(text("SELECT id FROM users WHERE id = :id FOR UPDATE"), {"id": actor.user_id})
        threads = [undo_in_thread(pg_engine, actor, person.clock.now, results) for _ in range(2)]
        assert blocked_on_a_lock(pg_engine, 2)
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == ["Undid: added 'first' — deleted it", "Undid: added 'second' — deleted it"]
    with unit_of_work(pg_engine) as session:
        undone = session.scalars(
            select(Change.undoes).where(Change.user_id == actor.user_id, Change.undoes.is_not(None))
        )
        assert len(set(undone)) == 2
