"""Listing on PostgreSQL and SQLite: every filter, sort order, paging and full-text search."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session

from mcp_server import service
from mcp_server.errors import InvalidField
from mcp_server.service import Actor, TaskCreate, TaskFilter
from tests.conftest import NOW


def add(session: Session, actor: Actor, title: str, minutes: int = 0, **fields) -> int:
    data = TaskCreate(title=title, **fields)
    return service.add_task(session, actor=actor, data=data, now=NOW + timedelta(minutes=minutes)).id


def titles(session: Session, actor: Actor, **spec) -> list[str]:
    page = service.list_tasks(session, actor=actor, spec=TaskFilter(**spec), now=NOW)
    return [task.title for task in page.tasks]


@pytest.fixture
def sample(session, actor) -> Actor:
    add(session, actor, "report", 1, priority="high", tags=["work"], due="2026-11-30T09:00")
    add(session, actor, "groceries", 2, priority="low", tags=["home", "errands"], due="2026-11-29")
    add(session, actor, "dentist", 3, tags=["health"], due="2026-12-10T15:00", description="bring the insurance card")
    add(session, actor, "old invoice", 4, priority="high", tags=["work", "finance"], due="2026-11-20")
    add(session, actor, "someday", 5, priority="low")
    done = add(session, actor, "filed taxes", 6, tags=["finance"], due="2026-11-01")
    service.complete_task(session, actor=actor, task_id=done, now=NOW)
    return actor


def test_open_tasks_by_due_with_undated_last(session, sample):
    assert titles(session, sample) == ["old invoice", "groceries", "report", "dentist", "someday"]


def test_due_descending_still_puts_undated_last(session, sample):
    assert titles(session, sample, order="desc") == ["dentist", "report", "groceries", "old invoice", "someday"]


@pytest.mark.parametrize(
    ("status", "expected"), [("completed", ["filed taxes"]), ("all", ["filed taxes", "old invoice", "groceries"])]
)
def test_status_filter(session, sample, status, expected):
    assert titles(session, sample, status=status, limit=3) == expected


def test_priority_filter(session, sample):
    assert titles(session, sample, priority="high") == ["old invoice", "report"]


def test_tags_must_all_match(session, sample):
    assert titles(session, sample, tags=["work"]) == ["old invoice", "report"]
    assert titles(session, sample, tags=["#Work", "finance"]) == ["old invoice"]
    assert titles(session, sample, tags=["work", "home"]) == []


def test_due_before_includes_the_whole_day(session, sample):
    assert titles(session, sample, due_before="2026-11-30") == ["old invoice", "groceries", "report"]


def test_due_after_and_before_make_a_window(session, sample):
    assert titles(session, sample, due_after="2026-11-29", due_before="2026-11-29") == ["groceries"]
    assert titles(session, sample, due_after="2026-11-30T09:00", due_before="2026-12-31") == ["report", "dentist"]


def test_due_bounds_accept_phrases(session, sample):
    assert titles(session, sample, due_after="today", due_before="tomorrow") == ["groceries", "report"]


def test_overdue_is_open_and_past_due_with_today_not_overdue(session, sample):
    assert titles(session, sample, overdue=True) == ["old invoice"]


def test_sort_by_priority_high_first(session, sample):
    assert titles(session, sample, sort_by="priority") == ["report", "old invoice", "dentist", "groceries", "someday"]


def test_sort_by_title_ignores_case(session, actor):
    for name in ("banana", "Apple", "cherry"):
        add(session, actor, name)
    assert titles(session, actor, sort_by="title") == ["Apple", "banana", "cherry"]
    assert titles(session, actor, sort_by="title", order="desc") == ["cherry", "banana", "Apple"]


def test_sort_by_created(session, sample):
    assert titles(session, sample, sort_by="created", order="desc", limit=2) == ["someday", "old invoice"]


@pytest.mark.parametrize(
    ("sort_by", "order"),
    [(key, order) for key in ("due", "priority", "created", "title") for order in ("asc", "desc")],
)
def test_paging_visits_every_task_once_in_order(session, actor, sort_by, order):
    for i in range(23):
        due = None if i % 4 == 0 else f"2026-12-{1 + i % 3:02d}"  # repeated keys and undated tasks
        add(session, actor, f"task {i % 5}", i, priority=("high", "medium", "low")[i % 3], due=due)
    whole = titles(session, actor, sort_by=sort_by, order=order, limit=200)
    seen, cursor, pages = [], None, 0
    while True:
        spec = TaskFilter(sort_by=sort_by, order=order, limit=5, cursor=cursor)
        page = service.list_tasks(session, actor=actor, spec=spec, now=NOW)
        seen.extend(page.tasks)
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 5
    assert [task.title for task in seen] == whole
    assert len({task.id for task in seen}) == 23


def test_a_cursor_from_another_sort_is_refused(session, sample):
    page = service.list_tasks(session, actor=sample, spec=TaskFilter(limit=1), now=NOW)
    with pytest.raises(InvalidField, match="cursor: belongs to another sort"):
        titles(session, sample, sort_by="title", cursor=page.next_cursor)


@pytest.mark.parametrize("cursor", ["garbage", "W10", "eyJ4IjoxfQ"])
def test_a_forged_cursor_is_refused(session, sample, cursor):
    with pytest.raises(InvalidField, match="cursor"):
        titles(session, sample, cursor=cursor)


@pytest.mark.parametrize("limit", [0, 201])
def test_limit_out_of_range_is_refused(session, sample, limit):
    with pytest.raises(InvalidField, match="limit: must be between 1 and 200"):
        titles(session, sample, limit=limit)


@pytest.fixture
def library(session, actor) -> Actor:
    add(session, actor, "research flights to Lisbon", 1)
    add(session, actor, "buy sunscreen", 2, description="SPF 50, for the Lisbon trip")
    add(session, actor, "review PR #42", 3)
    add(session, actor, "50% off sale: ends_friday", 4)
    add(session, actor, "Café meeting", 5)
    add(session, actor, "'; DROP TABLE tasks; --", 6)
    return actor


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("lisbon", ["research flights to Lisbon", "buy sunscreen"]),
        ("lisb", ["research flights to Lisbon", "buy sunscreen"]),
        ("LISBON flights", ["research flights to Lisbon"]),
        ("spf", ["buy sunscreen"]),
        ("#42", ["review PR #42"]),
        ("pr 4", ["review PR #42"]),
        ("50%", ["50% off sale: ends_friday", "buy sunscreen"]),
        ("friday", ["50% off sale: ends_friday"]),
        ("café", ["Café meeting"]),
        ("'; DROP TABLE tasks; --", ["'; DROP TABLE tasks; --"]),
        ('"quoted" OR * NEAR(', []),
        ("%", ["50% off sale: ends_friday"]),
        ("nothing-like-this", []),
    ],
)
def test_search_matches_words_as_prefixes_and_treats_syntax_as_text(session, library, query, expected):
    assert sorted(titles(session, library, query=query, sort_by="created")) == sorted(expected)


def test_search_follows_edits_and_deletes(session, library):
    found = service.list_tasks(session, actor=library, spec=TaskFilter(query="lisbon flights"), now=NOW).tasks[0]
    service.update_task(
        session, actor=library, task_id=found.id, changes=service.TaskChanges(title="research trains to Porto"), now=NOW
    )
    assert titles(session, library, query="porto") == ["research trains to Porto"]
    assert titles(session, library, query="flights") == []
    service.delete_task(session, actor=library, task_id=found.id, now=NOW)
    assert titles(session, library, query="porto") == []


def test_search_combines_with_filters(session, library):
    assert titles(session, library, query="lisbon", due_before="2026-12-31") == []
