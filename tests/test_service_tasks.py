"""Task operations on PostgreSQL and SQLite: adding, validating, updating, completing, deleting, isolation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session

from mcp_server import service
from mcp_server.db import unit_of_work
from mcp_server.errors import InvalidField, TaskNotFound
from mcp_server.models import Priority
from mcp_server.service import Actor, TaskChanges, TaskCreate
from tests.conftest import NOW, new_actor


@pytest.fixture
def stranger(engine) -> Actor:
    """Another user, made before the test's own unit of work opens (SQLite has one writer at a time)."""
    return new_actor(engine)


def add(session: Session, actor: Actor, **fields) -> service.TaskPublic:
    task = service.add_task(session, actor=actor, data=TaskCreate(**fields), now=NOW)
    return service.to_public(task, actor.zone)


def test_add_task_stores_every_field_in_the_shared_shape(session, actor):
    task = add(
        session,
        actor,
        title="  Buy   milk ",
        description="2 litres",
        priority=Priority.high,
        tags=["#Errands", "@home", "errands"],
        due="2026-11-30T17:00",
        remind_at="2026-11-30T16:00",
    )
    assert task.title == "Buy milk"
    assert task.description == "2 litres"
    assert task.priority == "high"
    assert task.tags == ["errands", "home"]
    assert task.due == "2026-11-30T17:00:00+05:00"
    assert task.remind_at == "2026-11-30T16:00:00+05:00"
    assert task.status == "open"
    assert task.recurrence is None
    assert task.series_id is None
    assert task.completed_at is None
    assert task.created_at == "2026-11-29T10:00:00+05:00"


def test_add_task_defaults_to_medium_priority_without_due(session, actor):
    task = add(session, actor, title="walk the dog")
    assert (task.priority, task.tags, task.due, task.description) == ("medium", [], None, None)


def test_date_only_due_is_an_all_day_task(session, actor):
    assert add(session, actor, title="pay rent", due="2026-12-01").due == "2026-12-01"


def test_due_phrase_is_resolved_in_the_users_zone(session, actor):
    assert add(session, actor, title="call bank", due="tomorrow 5pm").due == "2026-11-30T17:00:00+05:00"


def test_due_with_offset_is_shown_in_the_users_zone(session, actor):
    assert add(session, actor, title="sync", due="2026-11-30T12:00:00Z").due == "2026-11-30T17:00:00+05:00"


def test_recurring_task_starts_a_series(session, actor):
    task = add(session, actor, title="standup", recurrence="rrule:freq=weekly;byday=mo,th", due="2026-11-30T09:30")
    assert task.recurrence == "FREQ=WEEKLY;BYDAY=MO,TH"
    assert task.series_id == task.id


def test_recurring_task_without_due_starts_on_the_first_matching_day(session, actor):
    task = add(session, actor, title="timesheet", recurrence="FREQ=WEEKLY;BYDAY=FR")
    assert task.due == "2026-12-04"


@pytest.mark.parametrize(
    ("fields", "field", "hint"),
    [
        ({"title": "   "}, "title", "1 to 500"),
        ({"title": "x" * 501}, "title", "1 to 500"),
        ({"title": "ok", "description": "d" * 10_001}, "description", "10000"),
        ({"title": "ok", "tags": ["#"]}, "tags", "empty"),
        ({"title": "ok", "tags": [f"t{i}" for i in range(21)]}, "tags", "at most 20"),
        ({"title": "ok", "due": "the day the music died"}, "due", "YYYY-MM-DD"),
        ({"title": "ok", "due": "2026-02-30"}, "due", "YYYY-MM-DD"),
        ({"title": "ok", "recurrence": "FREQ=SOMETIMES"}, "recurrence", "FREQ=WEEKLY"),
        ({"title": "ok", "recurrence": "BYDAY=MO"}, "recurrence", "no FREQ"),
        ({"title": "ok", "recurrence": "DTSTART:20260101T000000\nRRULE:FREQ=DAILY"}, "recurrence", "DTSTART"),
        ({"title": "ok", "recurrence": "FREQ=DAILY;COUNT=2;UNTIL=20270101"}, "recurrence", "not both"),
        ({"title": "ok", "remind_at": "2026-11-29T09:00"}, "remind_at", "has passed"),
        ({"title": "ok", "remind_at": "2026-12-01"}, "remind_at", "time of day"),
    ],
)
def test_invalid_field_is_named_with_what_would_be_accepted(session, actor, fields, field, hint):
    with pytest.raises(InvalidField) as caught:
        add(session, actor, **fields)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert hint in str(caught.value)


def test_invalid_add_stores_nothing(engine, actor):
    def add_two() -> None:
        with unit_of_work(engine) as session:
            add(session, actor, title="valid", tags=["ok"])
            add(session, actor, title="ok", due="not a date")

    with pytest.raises(InvalidField):
        add_two()
    with unit_of_work(engine) as session:
        assert service.list_tasks(session, actor=actor, spec=service.TaskFilter(status="all"), now=NOW).tasks == []


def test_update_changes_only_the_given_fields_and_keeps_recurrence(session, actor):
    task = add(session, actor, title="gym", recurrence="FREQ=WEEKLY;BYDAY=MO", due="2026-11-30T19:00", tags=["health"])
    later = NOW + timedelta(minutes=5)
    updated = service.update_task(
        session, actor=actor, task_id=task.id, changes=TaskChanges(title="gym session", priority="high"), now=later
    )
    public = service.to_public(updated, actor.zone)
    assert (public.title, public.priority, public.tags) == ("gym session", "high", ["health"])
    assert public.recurrence == "FREQ=WEEKLY;BYDAY=MO"
    assert public.due == "2026-11-30T19:00:00+05:00"
    assert public.updated_at == "2026-11-29T10:05:00+05:00"


def test_update_with_none_clears_optional_fields(session, actor):
    task = add(session, actor, title="x", description="notes", due="2026-12-01", recurrence="FREQ=DAILY")
    updated = service.update_task(
        session, actor=actor, task_id=task.id, changes=TaskChanges(description=None, due=None, recurrence=None), now=NOW
    )
    assert (updated.description, updated.due_at, updated.due_date, updated.recurrence) == (None, None, None, None)


def test_update_rejects_an_empty_title(session, actor):
    task = add(session, actor, title="x")
    with pytest.raises(InvalidField, match="title"):
        service.update_task(session, actor=actor, task_id=task.id, changes=TaskChanges(title=""), now=NOW)


def test_complete_and_reopen_are_idempotent(session, actor):
    task = add(session, actor, title="x")
    done = service.complete_task(session, actor=actor, task_id=task.id, now=NOW)
    again = service.complete_task(session, actor=actor, task_id=task.id, now=NOW + timedelta(hours=1))
    assert (again.status, again.completed_at) == ("completed", NOW)
    assert done is again
    reopened = service.reopen_task(session, actor=actor, task_id=task.id, now=NOW)
    assert (reopened.status, reopened.completed_at) == ("open", None)
    assert service.reopen_task(session, actor=actor, task_id=task.id, now=NOW).status == "open"


def test_delete_removes_the_task(session, actor):
    task = add(session, actor, title="x")
    assert service.delete_task(session, actor=actor, task_id=task.id, now=NOW).title == "x"
    with pytest.raises(TaskNotFound, match=f"no task {task.id}; list_tasks finds ids"):
        service.get_task(session, actor=actor, task_id=task.id)


def test_bulk_delete_needs_confirmation_and_says_how_many(session, actor):
    for title in ("a", "b", "c"):
        task = add(session, actor, title=title)
        if title != "c":
            service.complete_task(session, actor=actor, task_id=task.id, now=NOW)
    refused = service.delete_completed_tasks(session, actor=actor, confirm=False, now=NOW)
    assert (refused.deleted, refused.would_delete) == (0, 2)
    assert "confirm=true" in refused.message
    done = service.delete_completed_tasks(session, actor=actor, confirm=True, now=NOW)
    assert done.deleted == 2
    left = service.list_tasks(session, actor=actor, spec=service.TaskFilter(status="all"), now=NOW).tasks
    assert [t.title for t in left] == ["c"]


@pytest.mark.parametrize("operation", ["get", "update", "complete", "reopen", "delete"])
def test_another_users_task_is_not_found(stranger, session, actor, operation):
    task = add(session, actor, title="mine")
    calls = {
        "get": lambda: service.get_task(session, actor=stranger, task_id=task.id),
        "update": lambda: service.update_task(
            session, actor=stranger, task_id=task.id, changes=TaskChanges(title="x"), now=NOW
        ),
        "complete": lambda: service.complete_task(session, actor=stranger, task_id=task.id, now=NOW),
        "reopen": lambda: service.reopen_task(session, actor=stranger, task_id=task.id, now=NOW),
        "delete": lambda: service.delete_task(session, actor=stranger, task_id=task.id, now=NOW),
    }
    with pytest.raises(TaskNotFound):
        calls[operation]()
    assert service.get_task(session, actor=actor, task_id=task.id).title == "mine"


def test_another_users_tasks_are_neither_listed_nor_bulk_deleted(stranger, session, actor):
    task = add(session, actor, title="mine")
    service.complete_task(session, actor=actor, task_id=task.id, now=NOW)
    assert service.list_tasks(session, actor=stranger, spec=service.TaskFilter(status="all"), now=NOW).tasks == []
    assert service.delete_completed_tasks(session, actor=stranger, confirm=True, now=NOW).deleted == 0
    assert service.get_task(session, actor=actor, task_id=task.id).status == "completed"
