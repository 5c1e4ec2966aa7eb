"""Keyset paging: an opaque cursor holds the sort key and id of the last task on a page."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, func, or_, tuple_

from mcp_server.errors import InvalidField
from mcp_server.models import Task

SortBy = Literal["due", "priority", "created", "title"]
Order = Literal["asc", "desc"]

_KEYS: dict[str, Any] = {
    "due": Task.due_at,
    "priority": Task.priority,
    "created": Task.created_at,
    "title": func.lower(Task.title),
}
_DATETIME_KEYS = {"due", "created"}


def sort_key(sort_by: SortBy) -> Any:
    return _KEYS[sort_by]


def ordering(sort_by: SortBy, order: Order) -> list[Any]:
    """Sort key, then id as tie-breaker; tasks without a due date come last either way."""
    key, tie = sort_key(sort_by), Task.id
    if order == "asc":
        return [key.asc().nulls_last(), tie.asc()]
    return [key.desc().nulls_last(), tie.desc()]


def key_of(sort_by: SortBy, task: Task) -> Any:
    if sort_by == "due":
        return task.due_at
    if sort_by == "priority":
        return task.priority
    if sort_by == "created":
        return task.created_at
    return task.title.lower()


def encode_cursor(sort_by: SortBy, order: Order, task: Task) -> str:
    value = key_of(sort_by, task)
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([sort_by, order, value, task.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def after_cursor(sort_by: SortBy, order: Order, cursor: str) -> ColumnElement[bool]:
    """The condition selecting the tasks that follow the cursor in this ordering."""
    value, last_id = _decode(sort_by, order, cursor)
    key = sort_key(sort_by)
    beyond = (lambda a, b: a > b) if order == "asc" else (lambda a, b: a < b)
    if value is None:  # already among the tasks without a due date
        return and_(key.is_(None), beyond(Task.id, last_id))
    # A row comparison, which an index on (key, id) can seek to, unlike the equivalent OR of comparisons.
    after = beyond(tuple_(key, Task.id), tuple_(value, last_id))
    return or_(after, key.is_(None)) if sort_by == "due" else after


def _decode(sort_by: SortBy, order: Order, cursor: str) -> tuple[Any, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, cursor_order, value, last_id = json.loads(raw)
        if value is not None and sort_by in _DATETIME_KEYS:
            value = datetime.fromisoformat(value)
    except (binascii.Error, ValueError, TypeError):
        raise InvalidField("cursor", "is not one list_tasks returned; call list_tasks without cursor") from None
    if (cursor_sort, cursor_order) != (sort_by, order) or not isinstance(last_id, int):
        raise InvalidField("cursor", "belongs to another sort order; repeat the query with the same sort_by and order")
    return value, last_id
