"""Task operations: plain functions over a session, scoped to one user, shared by tools, CLI and consumers.

They flush but never commit: the caller's unit of work decides the transaction, so later writes that belong
with a change (its event, say) commit or roll back together with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Insert, and_, delete, func, insert, or_, select, type_coerce, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from mcp_server import search
from mcp_server.db import conflict_insert
from mcp_server.errors import InvalidField, TaskNotFound
from mcp_server.event_catalog import EventType
from mcp_server.models import (
    PRIORITY_BY_RANK,
    BulkDeleteResult,
    Priority,
    Status,
    Task,
    TaskPage,
    TaskPublic,
)
from mcp_server.paging import Order, SortBy, after_cursor, encode_cursor, ordering
from mcp_server.recurrence import first_occurrence, next_occurrence
from mcp_server.signing import cursor_key
from mcp_server.validation import (
    clean_description,
    clean_recurrence,
    clean_tags,
    clean_title,
    read_when,
    resolve_due,
    resolve_remind_at,
    start_of_day,
)

LIMIT_DEFAULT = 50
LIMIT_MAX = 200
ID_MIN, ID_MAX = -(2**63), 2**63 - 1
When = str | date | datetime


@dataclass(frozen=True)
class Actor:
    """Who is acting: every query is scoped to this user, and dates are read in their zone."""

    user_id: int
    zone: ZoneInfo


class TaskCreate(BaseModel):
    title: str
    description: str | None = None
    priority: Priority = Priority.medium
    tags: list[str] = []
    due: When | None = None
    recurrence: str | None = None
    remind_at: str | datetime | None = None


class TaskChanges(BaseModel):
    """A partial update: only the fields that were set change; None clears an optional field."""

    title: str | None = None
    description: str | None = None
    priority: Priority | None = None
    tags: list[str] | None = None
    due: When | None = None
    recurrence: str | None = None
    remind_at: str | datetime | None = None


class TaskFilter(BaseModel):
    status: Literal["open", "completed", "all"] = "open"
    priority: Priority | None = None
    tags: list[str] = []
    query: str | None = None
    due_before: When | None = None
    due_after: When | None = None
    overdue: bool = False
    sort_by: SortBy = "due"
    order: Order = "asc"
    limit: int = LIMIT_DEFAULT
    cursor: str | None = None


def local_iso(moment: datetime | None, zone: ZoneInfo) -> str | None:
    """ISO 8601 with the offset of the owner's zone."""
    return moment.astimezone(zone).isoformat() if moment else None


def due_text(task: Task, zone: ZoneInfo) -> str | None:
    """The public `due`: the day of an all-day task, else the moment in the owner's zone."""
    return task.due_date.isoformat() if task.due_date else local_iso(task.due_at, zone)


def to_public(task: Task, zone: ZoneInfo) -> TaskPublic:
    """The shared task shape, with every moment in the owner's zone."""
    return TaskPublic(
        id=task.id,  # type: ignore[arg-type]
        title=task.title,
        description=task.description,
        status=Status(task.status),
        priority=PRIORITY_BY_RANK[task.priority],
        tags=list(task.tags),
        due=due_text(task, zone),
        recurrence=task.recurrence,
        remind_at=local_iso(task.remind_at, zone),
        series_id=task.series_id,
        created_at=local_iso(task.created_at, zone),  # type: ignore[arg-type]
        updated_at=local_iso(task.updated_at, zone),  # type: ignore[arg-type]
        completed_at=local_iso(task.completed_at, zone),
    )


_INSERT_TASK = insert(Task.__table__).returning(Task.__table__.c.id)
_INSERTED_COLUMNS = [column.key for column in Task.__table__.columns if column.key != "id"]


def add_task(session: Session, *, actor: Actor, data: TaskCreate, now: datetime) -> Task:
    local_now = now.astimezone(actor.zone)
    task = Task(
        user_id=actor.user_id,
        title=clean_title(data.title),
        description=clean_description(data.description),
        priority=data.priority.rank,
        tags=clean_tags(data.tags),
        recurrence=clean_recurrence(data.recurrence),
        remind_at=resolve_remind_at(data.remind_at, local_now),
        created_at=now,
        updated_at=now,
    )
    task.due_at, task.due_date = resolve_due(data.due, local_now)
    _start_series(task, actor.zone, local_now)
    # A plain INSERT on the connection: the new row is not read back in this transaction, so the ORM's unit of work
    # would only add bookkeeping (the returned task is detached, like every task once its unit of work ends).
    values = {name: getattr(task, name) for name in _INSERTED_COLUMNS}
    task.id = session.connection().execute(_INSERT_TASK, values).scalar_one()
    if task.recurrence:
        task.series_id = task.id
        table = Task.__table__
        session.execute(update(table).where(table.c.id == task.id).values(series_id=task.id))
    record_event(session, EventType.task_created, task, actor, made_at=now)
    return task


def get_task(session: Session, *, actor: Actor, task_id: int) -> Task:
    # Ids are 64-bit on both databases; a larger number names no task (and neither driver could send it).
    task = session.get(Task, task_id) if ID_MIN <= task_id <= ID_MAX else None
    if task is None or task.user_id != actor.user_id:
        raise TaskNotFound(task_id)
    return task


def update_task(session: Session, *, actor: Actor, task_id: int, changes: TaskChanges, now: datetime) -> Task:
    task = get_task(session, actor=actor, task_id=task_id)
    before = to_public(task, actor.zone)
    local_now = now.astimezone(actor.zone)
    given = changes.model_dump(include=changes.model_fields_set)
    if "title" in given:
        task.title = clean_title(given["title"] or "")
    if "description" in given:
        task.description = clean_description(given["description"])
    if "priority" in given:
        task.priority = Priority(given["priority"] or Priority.medium).rank
    if "tags" in given:
        task.tags = clean_tags(given["tags"] or [])
    if "due" in given:
        task.due_at, task.due_date = resolve_due(changes.due, local_now)
    if "recurrence" in given:
        task.recurrence = clean_recurrence(given["recurrence"])
    if "remind_at" in given:
        task.remind_at, task.reminded_at = resolve_remind_at(changes.remind_at, local_now), None
    if "recurrence" in given or "due" in given:
        _start_series(task, actor.zone, local_now)
    if task.recurrence and task.series_id is None:
        task.series_id = task.id
    old, new = before.model_dump(), to_public(task, actor.zone).model_dump()
    changed = [name for name in new if old[name] != new[name]]
    if not changed:
        return task
    task.updated_at = now
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise InvalidField("due", "another occurrence of this recurring task is already due then") from None
    record_event(session, EventType.task_updated, task, actor, changed, made_at=now, previous=_only(old, changed))
    return task


def _start_series(task: Task, zone: ZoneInfo, local_now: datetime) -> None:
    """A recurring task starts at its due, or without one on the rule's first day from today; either way the rule
    must occur from its start on (InvalidRule otherwise)."""
    if not task.recurrence:
        return
    if task.due_at is None:
        first = first_occurrence(task.recurrence, local_now.date(), zone)
        task.due_at, task.due_date = start_of_day(first, zone), first  # type: ignore[arg-type]
    else:
        first_occurrence(task.recurrence, task.due_date or task.due_at, zone)


def complete_task(session: Session, *, actor: Actor, task_id: int, now: datetime) -> Task:
    task = get_task(session, actor=actor, task_id=task_id)
    if task.status != Status.open:
        return task
    task.status, task.completed_at, task.updated_at = Status.completed.value, now, now
    session.flush()
    previous = {"status": Status.open.value, "completed_at": None}
    record_event(session, EventType.task_completed, task, actor, list(previous), made_at=now, previous=previous)
    return task


def reopen_task(session: Session, *, actor: Actor, task_id: int, now: datetime) -> Task:
    task = get_task(session, actor=actor, task_id=task_id)
    if task.status != Status.completed:
        return task
    previous = {"status": Status.completed.value, "completed_at": local_iso(task.completed_at, actor.zone)}
    task.status, task.completed_at, task.updated_at = Status.open.value, None, now
    session.flush()
    record_event(session, EventType.task_reopened, task, actor, list(previous), made_at=now, previous=previous)
    return task


def delete_task(session: Session, *, actor: Actor, task_id: int, now: datetime) -> Task:
    task = get_task(session, actor=actor, task_id=task_id)
    session.delete(task)
    session.flush()
    record_event(session, EventType.task_deleted, task, actor, made_at=now)
    return task


def delete_completed_tasks(session: Session, *, actor: Actor, confirm: bool, now: datetime) -> BulkDeleteResult:
    """Delete every completed task of the user, but only once confirmed; otherwise say how many would go."""
    mine_completed = and_(Task.user_id == actor.user_id, Task.status == Status.completed.value)
    if not confirm:
        count = session.scalar(select(func.count()).select_from(Task).where(mine_completed)) or 0
        message = (
            f"{count} completed task(s) would be deleted; ask the person, then call again with confirm=true"
            if count
            else "there are no completed tasks to delete"
        )
        return BulkDeleteResult(deleted=0, would_delete=count, message=message)
    # In id order: DELETE ... RETURNING gives rows in whatever order the table holds them.
    deleted = sorted(session.scalars(delete(Task).where(mine_completed).returning(Task)), key=lambda task: task.id)
    for task in deleted:
        record_event(session, EventType.task_deleted, task, actor, made_at=now)
    count = len(deleted)
    return BulkDeleteResult(deleted=count, would_delete=count, message=f"deleted {count} completed task(s)")


def add_next_occurrence(
    session: Session, *, actor: Actor, completed: TaskPublic, now: datetime, caused_by: str
) -> Task | None:
    """The occurrence after a completed one of a series, with the same fields and the reminder shifted alike.

    None when the task does not repeat, the series has ended, or that occurrence exists already (a redelivered
    or concurrent completion): the unique (series_id, due_at) index decides, not a prior check. Its event names
    the completion event that `caused_by` it, so undoing that completion finds it.
    """
    if not completed.recurrence or completed.due is None:
        return None
    due = _parse_public_when(completed.due)
    following = next_occurrence(completed.recurrence, due, actor.zone)
    if following is None:
        return None
    task = Task(
        user_id=actor.user_id,
        title=completed.title,
        description=completed.description,
        priority=completed.priority.rank,
        tags=list(completed.tags),
        recurrence=following.rule,
        series_id=completed.series_id or completed.id,
        created_at=now,
        updated_at=now,
    )
    task.due_at, task.due_date = resolve_due(following.due, now.astimezone(actor.zone))
    if completed.remind_at is not None:
        lead = _start_of_due(due, actor.zone) - datetime.fromisoformat(completed.remind_at)
        task.remind_at = task.due_at - lead  # type: ignore[operator]
    # A clash on that index skips the INSERT rather than failing it: no savepoint, and no ORM flush (nothing reads
    # the task back).
    connection = session.connection()
    values = {name: getattr(task, name) for name in _INSERTED_COLUMNS}
    task.id = connection.execute(_insert_occurrence(connection.dialect.name), values).scalar()
    if task.id is None:
        return None
    record_event(session, EventType.task_created, task, actor, caused_by=caused_by)
    return task


@cache
def _insert_occurrence(dialect_name: str) -> Insert:
    """INSERT of a task that does nothing should its series already have an occurrence due then."""
    table = Task.__table__
    return conflict_insert(dialect_name)(table).on_conflict_do_nothing().returning(table.c.id)  # type: ignore[no-any-return]


def _parse_public_when(value: str) -> date | datetime:
    """A `due` of the public shape back into a date (all-day) or an aware datetime."""
    return date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)


def _start_of_due(due: date | datetime, zone: ZoneInfo) -> datetime:
    return due if isinstance(due, datetime) else start_of_day(due, zone)


def _only(values: dict[str, Any], names: list[str]) -> dict[str, Any]:
    return {name: values[name] for name in names}


def record_event(
    session: Session,
    type: EventType,
    task: Task,
    actor: Actor,
    changed: list[str] | None = None,
    *,
    made_at: datetime | None = None,
    previous: dict[str, Any] | None = None,
    caused_by: str | None = None,
) -> None:
    """The event of this change, in the same transaction; reminders are re-planned when one may have moved.

    A person's change (`made_at` given) is one row of `changes` per unit of work, and its events say what the
    changed fields were before, so it can be undone. A consumer's event names the event that `caused_by` it.
    """
    data: dict[str, Any] = {
        "task": to_public(task, actor.zone).model_dump(mode="json"),
        "changed": changed or [],
        "user_id": actor.user_id,
    }
    if previous is not None:
        data["previous"] = previous
    if caused_by is not None:
        data["caused_by"] = caused_by
    from mcp_server import outbox  # with the event tables: commands that only read never load them

    wake = (outbox.REMINDERS_CHANNEL,) if task.remind_at is not None else ()
    if made_at is None or "change" in session.info:
        change_id = None if made_at is None else session.info["change"]
        outbox.append(session, type=type, user_id=actor.user_id, data=data, change_id=change_id, wake=wake)
        return
    # The unit of work's change is recorded with its first event (in the same statement, where the database can).
    change = {"user_id": actor.user_id, "made_at": made_at, "undoes": None}
    session.info["change"] = outbox.append(
        session, type=type, user_id=actor.user_id, data=data, change=change, wake=wake
    )


def current_change(session: Session, *, actor: Actor, made_at: datetime, undoes: int | None = None) -> int:
    """The id of this unit of work's change, recorded on first use: everything one call does is undone together."""
    if "change" not in session.info:
        from mcp_server import outbox

        row = {"user_id": actor.user_id, "made_at": made_at, "undoes": undoes}
        session.info["change"] = outbox.record_change(session, row)
    return session.info["change"]


# Built once: coercing sixteen columns anew for every page costs more than reading the page.
_TASK_ROWS = select(*Task.__table__.columns)


def list_tasks(session: Session, *, actor: Actor, spec: TaskFilter, now: datetime) -> TaskPage:
    if not 1 <= spec.limit <= LIMIT_MAX:
        raise InvalidField("limit", f"must be between 1 and {LIMIT_MAX} (got {spec.limit})")
    local_now = now.astimezone(actor.zone)
    conditions = [Task.user_id == actor.user_id, *_filters(session, spec, local_now)]
    if spec.cursor:
        conditions.append(after_cursor(spec.sort_by, spec.order, spec.cursor, cursor_key(session)))
    # Plain rows on the connection rather than Task objects: a page is only read, so the ORM's execution and
    # identity-map bookkeeping would be wasted work.
    statement = _TASK_ROWS.where(*conditions).order_by(*ordering(spec.sort_by, spec.order)).limit(spec.limit + 1)
    rows: list[Any] = session.connection().execute(statement).all()
    page, more = rows[: spec.limit], len(rows) > spec.limit
    next_cursor = encode_cursor(spec.sort_by, spec.order, page[-1], cursor_key(session)) if more else None
    return TaskPage(tasks=[to_public(task, actor.zone) for task in page], next_cursor=next_cursor)


def _filters(session: Session, spec: TaskFilter, local_now: datetime) -> list[ColumnElement[bool]]:
    dialect = session.get_bind().dialect.name
    found: list[ColumnElement[bool]] = []
    if spec.status != "all" or spec.overdue:
        found.append(Task.status == (Status.open.value if spec.overdue else spec.status))
    if spec.priority is not None:
        found.append(Task.priority == spec.priority.rank)
    if spec.tags:
        found.append(_has_tags(dialect, clean_tags(spec.tags)))
    if spec.query and spec.query.strip():
        found.append(search.matches(dialect, spec.query))
    if spec.due_before not in (None, ""):
        found.append(Task.due_at < _boundary("due_before", spec.due_before, local_now, end=True))  # type: ignore[arg-type]
    if spec.due_after not in (None, ""):
        found.append(Task.due_at >= _boundary("due_after", spec.due_after, local_now, end=False))  # type: ignore[arg-type]
    if spec.overdue:
        found.append(
            or_(
                and_(Task.due_date.is_(None), Task.due_at < local_now),  # type: ignore[union-attr]
                and_(Task.due_date.is_not(None), Task.due_date < local_now.date()),  # type: ignore[union-attr]
            )
        )
    return found


def _boundary(field: str, value: When, local_now: datetime, *, end: bool) -> datetime:
    """Both bounds include the day or moment named: a date bound covers that whole day."""
    when = read_when(field, value, local_now)
    if isinstance(when, datetime):
        return when + timedelta(microseconds=1) if end else when
    return start_of_day(when + timedelta(days=1) if end else when, local_now.tzinfo)


def _has_tags(dialect: str, tags: list[str]) -> ColumnElement[bool]:
    """Every tag must be on the task: JSONB containment (GIN-indexed) on PostgreSQL, json_each on SQLite."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB  # loaded by the engine already; SQLite never needs it

        return type_coerce(Task.tags, JSONB).contains(tags)
    conditions: list[Any] = []
    for tag in tags:
        entries = func.json_each(Task.tags).table_valued("value")
        conditions.append(select(1).select_from(entries).where(entries.c.value == tag).exists())
    return and_(*conditions)
