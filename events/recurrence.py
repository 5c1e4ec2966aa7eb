"""The recurrence consumer: completing an occurrence of a recurring task creates the next one.

The event only says which task to look at: the series is continued from the stored task, and only when the database
agrees with the event (the task exists, is the event's user's, is completed, and is the occurrence that was due).
"""

from __future__ import annotations

import logging
from datetime import date, datetime

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select
from sqlmodel import Session, col

from events.consumers import Consumers, Event, MalformedEvent
from mcp_server.accounts import actor_for
from mcp_server.event_catalog import TASK_EVENTS, EventType
from mcp_server.models import Status, Task, User, utcnow
from mcp_server.service import add_next_occurrence, to_public

log = logging.getLogger(__name__)

CONSUMER = "recurrence"
_LOCKED = "recurrence: locked tasks"  # session.info key: lock_completed_tasks's tasks and owners, by id (None: none)
_ID_MAX = 2**63 - 1


class _CompletedTask(BaseModel):
    id: int = Field(ge=1, le=_ID_MAX)
    due: str | None
    completed_at: str | None = None  # absent from events written before completions could be undone


class _Completion(BaseModel):
    """What a task.completed event claims; each claim is checked against the database."""

    user_id: int = Field(ge=1, le=_ID_MAX)
    task: _CompletedTask


def lock_completed_tasks(session: Session, events: list[Event]) -> None:
    """Lock the tasks a transaction's completions name in one statement, for their handlers to find."""
    ids = sorted({claim.task.id for event in events if (claim := _claim(event)) is not None})
    if not ids:  # none readable: each handler says why
        return
    session.info[_LOCKED] = dict.fromkeys(ids) | _lock(session, ids)


def _lock(session: Session, ids: list[int]) -> dict[int, tuple[Task, User]]:
    """The tasks, locked in id order (as every transaction takes them, so two never wait on each other), with their
    owners, unlocked: continuing a series needs the owner, and a query of its own for each would cost a round trip."""
    rows = session.execute(
        select(Task, User)
        .join(User, col(User.id) == col(Task.user_id))
        .where(col(Task.id).in_(ids))
        .order_by(col(Task.id))
        .with_for_update(of=Task)  # type: ignore[arg-type]
    )
    return {task.id: (task, owner) for task, owner in rows}


def _claim(event: Event) -> _Completion | None:
    try:
        return _Completion.model_validate(event.data)
    except ValidationError:
        return None


def _locked_task(session: Session, task_id: int) -> tuple[Task, User] | None:
    """The task, locked, so a reopen or edit committing meanwhile cannot slip between the checks and the next
    occurrence; and its owner."""
    locked: dict[int, tuple[Task, User] | None] = session.info.get(_LOCKED, {})
    if task_id in locked:
        return locked[task_id]
    return _lock(session, [task_id]).get(task_id)


def on_task_completed(session: Session, event: Event) -> None:
    try:
        claim = _Completion.model_validate(event.data)
    except ValidationError as error:
        first = error.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise MalformedEvent(f"task.completed without a valid {where}: {first['msg']}") from None
    locked = _locked_task(session, claim.task.id)
    if locked is None or locked[0].user_id != claim.user_id or locked[0].status != Status.completed:
        log.info("event %s: task %d is not a completed task of that user; nothing to do", event.id, claim.task.id)
        return
    task, owner = locked
    if not _is_due_at(task, claim.task.due):
        log.info("event %s: task %d has moved since; nothing to do", event.id, claim.task.id)
        return
    if not _is_completion(task, claim.task.completed_at):
        # Undone and completed again: that later completion's own event continues the series.
        log.info("event %s: task %d was completed again since; nothing to do", event.id, claim.task.id)
        return
    if not task.recurrence:
        return
    actor = actor_for(owner)
    add_next_occurrence(session, actor=actor, completed=to_public(task, actor.zone), now=utcnow(), caused_by=event.id)


def _is_due_at(task: Task, claimed: str | None) -> bool:
    """Whether the stored task is the occurrence the event names: the same day, or the same instant."""
    if claimed is None:
        return task.due_at is None
    try:
        moment = date.fromisoformat(claimed) if len(claimed) == 10 else datetime.fromisoformat(claimed)
    except ValueError:
        raise MalformedEvent("task.completed with an unreadable due") from None
    if isinstance(moment, datetime):
        return task.due_date is None and moment.tzinfo is not None and task.due_at == moment
    return task.due_date == moment


def _is_completion(task: Task, claimed: str | None) -> bool:
    """Whether the stored completion is the one the event names (events without the moment are taken as it)."""
    if claimed is None:
        return True
    try:
        return task.completed_at == datetime.fromisoformat(claimed)
    except ValueError:
        raise MalformedEvent("task.completed with an unreadable completed_at") from None


def subscribe(consumers: Consumers) -> None:
    completed = frozenset({EventType.task_completed.value})
    consumers.subscribe(TASK_EVENTS, CONSUMER, on_task_completed, completed, prepare=lock_completed_tasks)
