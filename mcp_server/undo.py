"""Undoing a person's latest change, from the events it wrote.

A change is one tool call or command (a row of `changes`); its events carry what it did and what the changed
fields were before. Undo reverses the newest change of the last hour that is neither an undo nor undone already,
as a change of its own whose events other consumers and replicas see. It refuses, changing nothing, when the
tasks are no longer as that change left them.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from mcp_server.dates import when_text
from mcp_server.errors import TaskError
from mcp_server.event_catalog import EventType
from mcp_server.event_models import OutboxEvent
from mcp_server.models import Change, Priority, Status, Task, TaskPublic, UndoResult, User
from mcp_server.service import Actor, current_change, record_event, to_public
from mcp_server.validation import start_of_day

WINDOW = timedelta(hours=1)
NOTHING = "nothing to undo from the last hour"
# What a change's events can say about a task and the undo compares before touching it.
COMPARED = ("title", "description", "status", "priority", "tags", "due", "recurrence", "remind_at", "completed_at")


class UndoRefused(TaskError):
    """The tasks moved on since the change: undoing it would overwrite what came later."""


def undo_last_change(session: Session, *, actor: Actor, now: datetime) -> UndoResult:
    """Reverse the person's newest change of the last hour that is not itself an undo and not undone yet."""
    # One undo at a time per person: a second one waits, then sees the first and walks further back. NO KEY UPDATE
    # on PostgreSQL, so a consumer inserting this person's task (a key-share lock on them) never deadlocks with it.
    session.scalars(select(User.id).where(User.id == actor.user_id).with_for_update(key_share=True)).first()
    undone = select(Change.undoes).where(Change.user_id == actor.user_id, Change.undoes.is_not(None))  # type: ignore[union-attr]
    change = session.scalars(
        select(Change)
        .where(
            Change.user_id == actor.user_id,
            Change.undoes.is_(None),  # type: ignore[union-attr]
            Change.made_at >= now - WINDOW,
            Change.id.not_in(undone),  # type: ignore[union-attr]
        )
        .order_by(Change.id.desc())  # type: ignore[union-attr]
        .limit(1)
    ).first()
    if change is None:
        return UndoResult(undone=False, message=NOTHING, restored=[], removed=[])
    events = list(
        session.scalars(
            select(OutboxEvent).where(OutboxEvent.change_id == change.id).order_by(OutboxEvent.id.desc())  # type: ignore[arg-type,union-attr]
        )
    )
    try:
        with session.begin_nested():
            current_change(session, actor=actor, made_at=now, undoes=change.id)
    except IntegrityError:
        raise UndoRefused("that change was undone by another request just now; nothing else was undone") from None
    reversal = _Reversal(session, actor, now)
    for event in events:
        reversal.reverse(event)
    return UndoResult(undone=True, message=reversal.describe(), restored=reversal.restored, removed=reversal.removed)


class _Reversal:
    """The reversal of one change's events, newest first, and what it did."""

    def __init__(self, session: Session, actor: Actor, now: datetime) -> None:
        self.session, self.actor, self.now = session, actor, now
        self.restored: list[TaskPublic] = []
        self.removed: list[TaskPublic] = []
        self.said: list[tuple[str, str, str]] = []  # (what the change did, the task's title, what undo did)

    def reverse(self, event: OutboxEvent) -> None:
        data = event.data
        after: dict[str, Any] = data["task"]
        kind = EventType(event.type)
        if kind is EventType.task_deleted:
            self._recreate(after)
            self.said.append(("deleted", after["title"], "restored it"))
            return
        task = self._as_left(after)
        if kind is EventType.task_created:
            self._delete(task)
            self.said.append(("added", after["title"], "deleted it"))
        elif kind is EventType.task_updated:
            previous = data["previous"]
            self._restore(task, previous, EventType.task_updated)
            names = [name for name in TaskPublic.model_fields if name in previous]  # JSONB keeps no key order
            restored = ", ".join(f"{name} ({_value_text(name, previous[name])})" for name in names)
            self.said.append(("changed", after["title"], f"restored its {restored}"))
        elif kind is EventType.task_completed:
            following = self._next_occurrence(event, task)
            self._restore(task, data["previous"], EventType.task_reopened)
            done = "reopened it"
            if following is not None:
                self._delete(following)
                done += f" and removed the next occurrence on {when_text(to_public(following, self.actor.zone).due)}"
            self.said.append(("completed", after["title"], done))
        else:
            self._restore(task, data["previous"], EventType.task_completed)
            self.said.append(("reopened", after["title"], "marked it completed again"))

    def describe(self) -> str:
        if len(self.said) == 1:
            did, title, undid = self.said[0]
            return f"Undid: {did} '{title}' — {undid}"
        titles = ", ".join(f"'{title}'" for _, title, _ in reversed(self.said))
        return f"Undid: deleted {len(self.said)} completed tasks — restored {titles}"

    def _as_left(self, after: dict[str, Any]) -> Task:
        """The task, locked, if it is still as the change left it; UndoRefused otherwise."""
        task = self.session.scalars(select(Task).where(Task.id == after["id"]).with_for_update()).first()
        if task is None or task.user_id != self.actor.user_id:
            raise UndoRefused(f"'{after['title']}' was deleted since; nothing was undone")
        _unchanged(task, after, self.actor)
        return task

    def _next_occurrence(self, completion: OutboxEvent, task: Task) -> Task | None:
        """The occurrence the recurrence consumer made of this completion, if it ran (the task is locked, so it
        cannot be running now; if it runs later, it finds the task open and makes none)."""
        made = self.session.scalars(
            select(OutboxEvent).where(
                OutboxEvent.user_id == self.actor.user_id,
                OutboxEvent.type == EventType.task_created.value,
                OutboxEvent.change_id.is_(None),  # type: ignore[union-attr]
                OutboxEvent.id > completion.id,  # type: ignore[operator]
            )
        )
        for event in made:
            if event.data.get("caused_by") == completion.event_id:
                following = self.session.get(Task, event.data["task"]["id"], with_for_update=True)
                if following is None:
                    return None  # deleted since, by a change undone before this one or not: nothing to remove
                if following.status != Status.open.value:
                    raise UndoRefused(
                        f"the next occurrence of '{task.title}' was completed since; reopen or delete it first"
                    )
                _unchanged(following, event.data["task"], self.actor)
                return following
        return None

    def _delete(self, task: Task) -> None:
        self.session.delete(task)
        self.session.flush()
        record_event(self.session, EventType.task_deleted, task, self.actor, made_at=self.now)
        self.removed.append(to_public(task, self.actor.zone))

    def _recreate(self, before: dict[str, Any]) -> None:
        """The deleted task again, under its own id (ids are never given out twice) with every field it had."""
        if self.session.get(Task, before["id"]) is not None:
            raise UndoRefused(f"'{before['title']}' exists again; nothing was undone")
        task = Task(id=before["id"], user_id=self.actor.user_id, title=before["title"])
        _apply(task, before, self.actor, self.now)
        try:
            with self.session.begin_nested():
                self.session.add(task)
                self.session.flush()
        except IntegrityError:
            raise UndoRefused(
                f"another occurrence of '{before['title']}' is due at the same time now; nothing was undone"
            ) from None
        record_event(self.session, EventType.task_created, task, self.actor, made_at=self.now)
        self.restored.append(to_public(task, self.actor.zone))

    def _restore(self, task: Task, previous: dict[str, Any], kind: EventType) -> None:
        """The fields the change set, back as they were; the event says what they were just before the undo."""
        now_values = to_public(task, self.actor.zone).model_dump(mode="json")
        _apply(task, previous, self.actor, self.now)
        task.updated_at = self.now
        try:
            with self.session.begin_nested():
                self.session.flush()
        except IntegrityError:
            raise UndoRefused(
                f"another occurrence of '{task.title}' is due at that time now; nothing was undone"
            ) from None
        names = list(previous)
        before_undo = {name: now_values[name] for name in names}
        record_event(self.session, kind, task, self.actor, names, made_at=self.now, previous=before_undo)
        self.restored.append(to_public(task, self.actor.zone))


def _unchanged(task: Task, after: dict[str, Any], actor: Actor) -> None:
    current = to_public(task, actor.zone).model_dump(mode="json")
    moved = [name for name in COMPARED if name in after and current[name] != after[name]]
    if moved:
        raise UndoRefused(f"'{task.title}' was changed since ({', '.join(moved)}); nothing was undone")


def _apply(task: Task, values: dict[str, Any], actor: Actor, now: datetime) -> None:
    """Set task columns from values in the public task shape (the inverse of to_public, field by field)."""
    for name, value in values.items():
        if name == "priority":
            task.priority = Priority(value).rank
        elif name == "due":
            task.due_at, task.due_date = _due(value, actor)
        elif name == "remind_at":
            task.remind_at = _moment(value)
            # A reminder whose time has passed is not sent late because of the undo.
            task.reminded_at = now if task.remind_at is not None and task.remind_at <= now else None
        elif name in ("created_at", "updated_at", "completed_at"):
            setattr(task, name, _moment(value))
        elif name in ("title", "description", "status", "tags", "recurrence", "series_id"):
            setattr(task, name, list(value) if name == "tags" else value)


def _due(value: str | None, actor: Actor) -> tuple[datetime | None, date | None]:
    if value is None:
        return None, None
    if len(value) == 10:
        day = date.fromisoformat(value)
        return start_of_day(day, actor.zone), day
    return datetime.fromisoformat(value), None


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _value_text(name: str, value: Any) -> str:
    """A field value as a person reads it: dates as 'Fri 1 Jan 2027 09:00', lists joined, nothing as 'none'."""
    if value is None or value == []:
        return "none"
    if isinstance(value, list):
        return ", ".join(value)
    if name in ("due", "remind_at"):
        return when_text(value)
    return str(value)
