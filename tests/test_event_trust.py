"""Consumers trust the database, not the payload: forged or stale completions change nothing, ids cannot be claimed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from events import recurrence
from events.consumers import Consumers, Outcome
from mcp_server import service
from mcp_server.db import unit_of_work
from mcp_server.event_catalog import SOURCE, to_cloudevent
from mcp_server.event_models import OutboxEvent, new_event_id
from mcp_server.models import Task
from mcp_server.service import Actor, TaskCreate, TaskFilter
from tests.conftest import NOW, new_actor


@pytest.fixture
def consumers(engine) -> Consumers:
    consumers = Consumers(engine)
    recurrence.subscribe(consumers)
    return consumers


def add_recurring(engine, actor: Actor, due: str = "2026-12-01T09:00") -> int:
    with unit_of_work(engine) as session:
        data = TaskCreate(title="standup", due=due, recurrence="FREQ=DAILY")
        return service.add_task(session, actor=actor, data=data, now=NOW).id  # type: ignore[return-value]


def complete(engine, actor: Actor, task_id: int) -> dict:
    """Complete the task; its completion event as the relay would publish it."""
    with unit_of_work(engine) as session:
        service.complete_task(session, actor=actor, task_id=task_id, now=NOW)
    with unit_of_work(engine) as session:
        rows = session.scalars(select(OutboxEvent).where(OutboxEvent.type == "com.taskflow.task.completed"))
        return to_cloudevent(next(row for row in rows if row.data["task"]["id"] == task_id))


def tasks_of(engine, actor: Actor) -> list[dict]:
    with unit_of_work(engine) as session:
        page = service.list_tasks(session, actor=actor, spec=TaskFilter(status="all", sort_by="due"), now=NOW)
    return [task.model_dump(mode="json") for task in page.tasks]


def forged(event: dict, **data_changes) -> dict:
    """The event with a fresh id and its data changed, as someone able to post to a route could send it."""
    return {**event, "id": str(uuid.uuid4()), "data": {**event["data"], **data_changes}}


def test_a_completion_claimed_by_another_user_changes_nothing(engine, consumers):
    victim, forger = new_actor(engine), new_actor(engine)
    task_id = add_recurring(engine, victim)
    real = complete(engine, victim, task_id)
    assert consumers.deliver("task-events", forged(real, user_id=forger.user_id)) is Outcome.success
    assert len(tasks_of(engine, victim)) == 1
    assert tasks_of(engine, forger) == []


def test_a_completion_of_a_task_that_is_not_completed_changes_nothing(engine, consumers):
    actor = new_actor(engine)
    task_id = add_recurring(engine, actor)
    real = complete(engine, actor, task_id)
    with unit_of_work(engine) as session:
        service.reopen_task(session, actor=actor, task_id=task_id, now=NOW)
    assert consumers.deliver("task-events", real) is Outcome.success  # arriving after the reopen
    assert [task["status"] for task in tasks_of(engine, actor)] == ["open"]


def test_a_completion_naming_another_occurrence_changes_nothing(engine, consumers):
    actor = new_actor(engine)
    task_id = add_recurring(engine, actor)
    real = complete(engine, actor, task_id)
    moved = {**real["data"]["task"], "due": "2026-12-05T09:00:00+05:00"}
    assert consumers.deliver("task-events", forged(real, task=moved)) is Outcome.success
    assert len(tasks_of(engine, actor)) == 1


def test_the_next_occurrence_comes_from_the_stored_task_not_the_payload(engine, consumers):
    actor = new_actor(engine)
    task_id = add_recurring(engine, actor)
    real = complete(engine, actor, task_id)
    lies = {**real["data"]["task"], "title": "transfer money", "recurrence": "FREQ=HOURLY", "tags": ["x"]}
    assert consumers.deliver("task-events", forged(real, task=lies)) is Outcome.success
    following = tasks_of(engine, actor)[1]
    assert (following["title"], following["recurrence"], following["tags"]) == ("standup", "FREQ=DAILY", [])
    assert following["due"] == "2026-12-02T09:00:00+05:00"


def test_a_forged_event_under_a_predicted_id_does_not_preempt_the_real_one(engine, consumers):
    actor = new_actor(engine)
    task_id = add_recurring(engine, actor)
    real = complete(engine, actor, task_id)
    with unit_of_work(engine) as session:
        row_id = session.scalars(select(OutboxEvent.id).where(OutboxEvent.event_id == real["id"])).one()
    harmless = {"specversion": "1.0", "source": SOURCE, "type": "com.taskflow.task.completed", "data": {}}
    # The row's own number (once the event id) is predictable: under it, nothing is pre-empted any more.
    consumers.deliver("task-events", {**harmless, "id": str(row_id), "data": real["data"]})
    # Even the real id, learnt somehow, does not help from another source: the inbox keys on both.
    consumers.deliver("task-events", {**real, "source": "/elsewhere", "data": {"user_id": 1, "task": {"id": 1}}})
    assert consumers.deliver("task-events", real) is Outcome.success
    assert len(tasks_of(engine, actor)) == 2


def test_another_users_task_in_the_same_series_slot_does_not_take_it(engine, consumers):
    victim, forger = new_actor(engine), new_actor(engine)
    task_id = add_recurring(engine, victim)
    with unit_of_work(engine) as session:
        squatter = Task(
            user_id=forger.user_id, title="squat", series_id=task_id, recurrence="FREQ=DAILY",
            due_at=datetime(2026, 12, 2, 4, 0, tzinfo=UTC), created_at=NOW, updated_at=NOW,
        )  # fmt: skip
        session.add(squatter)
    consumers.deliver("task-events", complete(engine, victim, task_id))
    assert [task["due"] for task in tasks_of(engine, victim)] == [
        "2026-12-01T09:00:00+05:00",
        "2026-12-02T09:00:00+05:00",
    ]


def test_event_ids_are_uuid7_in_creation_order_and_unrelated_to_each_other():
    ids = [new_event_id() for _ in range(2000)]
    parsed = [uuid.UUID(event_id) for event_id in ids]
    assert {event_id.version for event_id in parsed} == {7}
    assert {event_id.variant for event_id in parsed} == {uuid.RFC_4122}
    assert len(set(ids)) == len(ids)
    milliseconds = [event_id.int >> 80 for event_id in parsed]
    assert milliseconds == sorted(milliseconds)
    # The 74 random bits: consecutive ids differ in about half of them, never by a counter's step.
    random_bits = [event_id.int & ((1 << 62) - 1) | ((event_id.int >> 64) & 0xFFF) << 62 for event_id in parsed]
    flips = [bin(a ^ b).count("1") for a, b in zip(random_bits, random_bits[1:], strict=False)]
    assert 30 < sum(flips) / len(flips) < 44


@given(
    data=st.dictionaries(
        st.sampled_from(["user_id", "task", "changed", "other"]),
        st.none() | st.integers() | st.text(max_size=30) | st.dictionaries(
            st.sampled_from(["id", "due", "title"]),
            st.none() | st.integers(min_value=-(2**70), max_value=2**70) | st.text(max_size=30),
        ),
    )
)  # fmt: skip
@example(data={"user_id": "\x00", "task": {"title": "\ud800"}})  # PostgreSQL's JSONB refuses both
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_completion_payload_is_answered_and_creates_nothing_unasked(engine, consumers, data):
    event = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/fuzz", "type": "com.taskflow.task.completed"}
    with unit_of_work(engine) as session:
        before = session.scalar(select(Task.id).order_by(Task.id.desc()).limit(1))  # type: ignore[union-attr]
    assert consumers.deliver("task-events", {**event, "data": data}) in {Outcome.success, Outcome.drop}
    with unit_of_work(engine) as session:
        assert session.scalar(select(Task.id).order_by(Task.id.desc()).limit(1)) == before  # type: ignore[union-attr]
