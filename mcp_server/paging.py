"""Keyset paging: an opaque, signed cursor holds the sort key and id of the last task on a page."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, func, or_, tuple_

from mcp_server.errors import InvalidField
from mcp_server.models import Task
from mcp_server.signing import sign, unsign

SortBy = Literal["due", "priority", "created", "title"]
Order = Literal["asc", "desc"]

_KEYS: dict[str, Any] = {
    "due": Task.due_at,
    "priority": Task.priority,
    "created": Task.created_at,
    "title": func.lower(Task.title),
}
_DATETIME_KEYS = {"due", "created"}
CURSOR_MAX = 4096  # characters; a cursor for the longest title is about 2,700


def sort_key(sort_by: SortBy) -> Any:
    return _KEYS[sort_by]


@cache  # clauses are immutable; building them anew costs more than the query they order
def ordering(sort_by: SortBy, order: Order) -> tuple[Any, ...]:
    """Sort key, then id as tie-breaker; tasks without a due date come last either way."""
    key, tie = sort_key(sort_by), Task.id
    if order == "asc":
        return key.asc().nulls_last(), tie.asc()
    return key.desc().nulls_last(), tie.desc()


def key_of(sort_by: SortBy, task: Task) -> Any:
    if sort_by == "due":
        return task.due_at
    if sort_by == "priority":
        return task.priority
    if sort_by == "created":
        return task.created_at
    return task.title.lower()


def encode_cursor(sort_by: SortBy, order: Order, task: Task, key: bytes) -> str:
    """The position after `task`, signed so that only cursors this install issued are ever read back."""
    value = key_of(sort_by, task)
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([sort_by, order, value, task.id], separators=(",", ":"), ensure_ascii=False)
    return sign(key, raw.encode())


def after_cursor(sort_by: SortBy, order: Order, cursor: str, key: bytes) -> ColumnElement[bool]:
    """The condition selecting the tasks that follow the cursor in this ordering."""
    value, last_id = _decode(sort_by, order, cursor, key)
    key_column = sort_key(sort_by)
    beyond = (lambda a, b: a > b) if order == "asc" else (lambda a, b: a < b)
    if value is None:  # already among the tasks without a due date
        return and_(key_column.is_(None), beyond(Task.id, last_id))
    # A row comparison, which an index on (key, id) can seek to, unlike the equivalent OR of comparisons.
    after = beyond(tuple_(key_column, Task.id), tuple_(value, last_id))
    return or_(after, key_column.is_(None)) if sort_by == "due" else after


def _decode(sort_by: SortBy, order: Order, cursor: str, key: bytes) -> tuple[Any, int]:
    payload = unsign(key, cursor) if len(cursor) <= CURSOR_MAX else None
    if payload is None:
        raise InvalidField("cursor", "is not one list_tasks returned; call list_tasks without cursor")
    cursor_sort, cursor_order, value, last_id = json.loads(payload)
    if (cursor_sort, cursor_order) != (sort_by, order):
        raise InvalidField("cursor", "belongs to another sort order; repeat the query with the same sort_by and order")
    if value is not None and sort_by in _DATETIME_KEYS:
        value = datetime.fromisoformat(value)
    return value, last_id
