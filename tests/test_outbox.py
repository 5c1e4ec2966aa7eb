"""Every change to a task writes its event to the outbox in the same transaction, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlmodel import Session

from mcp_server import service
from mcp_server.db import unit_of_work
from mcp_server.errors import InvalidField
from mcp_server.event_catalog import to_cloudevent
from mcp_server.event_models import OutboxEvent
from mcp_server.models import Change
from mcp_server.service import Actor, TaskChanges, TaskCreate
from tests.conftest import NOW


def events_of(session: Session, actor: Actor) -> list[OutboxEvent]:
    statement = select(OutboxEvent).where(OutboxEvent.user_id == actor.user_id).order_by(OutboxEvent.id)
    return list(session.scalars(statement))


def test_each_change_appends_its_event_with_the_task_and_changed_fields(session, actor):
    task = service.add_task(session, actor=actor, data=TaskCreate(title="pay rent", due="2026-12-01"), now=NOW)
    service.update_task(session, actor=actor, task_id=task.id, changes=TaskChanges(priority="high"), now=NOW)
    service.complete_task(session, actor=actor, task_id=task.id, now=NOW)
    service.reopen_task(session, actor=actor, task_id=task.id, now=NOW)
    service.delete_task(session, actor=actor, task_id=task.id, now=NOW)
    events = events_of(session, actor)
    assert [event.type for event in events] == [
        "com.taskflow.task.created",
        "com.taskflow.task.updated",
        "com.taskflow.task.completed",
        "com.taskflow.task.reopened",
        "com.taskflow.task.deleted",
    ]
    assert {event.topic for event in events} == {"task-events"}
    created, updated = events[0].data, events[1].data
    assert created["task"]["title"] == "pay rent"
    assert created["task"]["due"] == "2026-12-01"
    assert created["user_id"] == actor.user_id
    assert updated["changed"] == ["priority"]
    assert updated["task"]["priority"] == "high"
    assert events[2].data["task"]["status"] == "completed"


def test_one_unit_of_work_is_one_change_of_the_person_that_all_its_events_name(session, actor):
    first = service.add_task(session, actor=actor, data=TaskCreate(title="a"), now=NOW)
    service.complete_task(session, actor=actor, task_id=first.id, now=NOW)
    service.add_task(session, actor=actor, data=TaskCreate(title="b"), now=NOW)
    events = events_of(session, actor)
    (change_id,) = {event.change_id for event in events}
    change = session.get(Change, change_id)
    assert len(events) == 3
    assert (change.user_id, change.made_at, change.undoes) == (actor.user_id, NOW, None)


def test_an_update_that_changes_nothing_writes_no_event(session, actor):
    task = service.add_task(session, actor=actor, data=TaskCreate(title="same", priority="low"), now=NOW)
    service.update_task(session, actor=actor, task_id=task.id, changes=TaskChanges(priority="low"), now=NOW)
    assert [event.type for event in events_of(session, actor)] == ["com.taskflow.task.created"]


def test_a_failed_change_leaves_no_event(engine, actor):
    def add_then_fail() -> None:
        with unit_of_work(engine) as session:
            service.add_task(session, actor=actor, data=TaskCreate(title="first"), now=NOW)
            service.add_task(session, actor=actor, data=TaskCreate(title="x", due="not a date"), now=NOW)

    with pytest.raises(InvalidField):
        add_then_fail()
    with unit_of_work(engine) as session:
        assert events_of(session, actor) == []


def test_bulk_delete_writes_one_event_per_task(session, actor):
    for title in ("a", "b"):
        task = service.add_task(session, actor=actor, data=TaskCreate(title=title), now=NOW)
        service.complete_task(session, actor=actor, task_id=task.id, now=NOW)
    service.delete_completed_tasks(session, actor=actor, confirm=True, now=NOW)
    deleted = [e.data["task"]["title"] for e in events_of(session, actor) if e.type.endswith("deleted")]
    assert sorted(deleted) == ["a", "b"]


def test_bulk_delete_writes_its_events_in_task_order(session, actor):
    tasks = [service.add_task(session, actor=actor, data=TaskCreate(title=title), now=NOW) for title in "abc"]
    for task in reversed(tasks):  # the rows' newest versions now lie in the table in the opposite order
        service.complete_task(session, actor=actor, task_id=task.id, now=NOW)
    service.delete_completed_tasks(session, actor=actor, confirm=True, now=NOW)
    deleted = [e.data["task"]["id"] for e in events_of(session, actor) if e.type.endswith("deleted")]
    assert deleted == [task.id for task in tasks]


def test_a_commit_wakes_the_outbox_and_reminder_channels(engine, actor):
    woken: list[set[str]] = []
    with unit_of_work(engine, woken.append) as session:
        service.add_task(session, actor=actor, data=TaskCreate(title="x", remind_at="2026-11-30T09:00"), now=NOW)
    assert woken == [{"taskflow_outbox", "taskflow_reminders"}]


def test_a_rolled_back_change_wakes_nobody(engine, actor):
    woken: list[set[str]] = []
    with pytest.raises(InvalidField), unit_of_work(engine, woken.append) as session:  # noqa: PT012
        service.add_task(session, actor=actor, data=TaskCreate(title="x"), now=NOW)
        raise InvalidField("title", "changed my mind")
    assert woken == []


def test_an_active_trace_travels_with_the_event(session, actor):
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    context = SpanContext(trace_id=0x1234, span_id=0x5678, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    with trace.use_span(NonRecordingSpan(context)):
        service.add_task(session, actor=actor, data=TaskCreate(title="traced"), now=NOW)
    (event,) = events_of(session, actor)
    assert event.traceparent == f"00-{0x1234:032x}-{0x5678:016x}-01"
    assert to_cloudevent(event)["traceparent"] == event.traceparent
