"""Property-based fuzzing of all nine tools through the real MCP client, on both databases.

Every call returns a result or a specific tool error (`Error executing tool NAME: field: problem`), never the
generic "failed unexpectedly", within the deadline of 2 s, and no call logs an unexpected failure. Examples mix
valid values with hostile ones, for users in zones at both ends of the clock (UTC+14 and Los Angeles).

| class of input (where)                                    | answer                                              |
|-----------------------------------------------------------|-----------------------------------------------------|
| NUL (U+0000): any string argument, tags items             | `title: contains a NUL character …`                 |
| lone surrogate (U+D800-DFFF): anywhere a string goes      | `tags[1]: contains a lone surrogate …`              |
| any Unicode text, empty, blank, up to 20,000 characters   | stored, or `title: must be 1 to 500 characters …`   |
| ids: any integer (beyond 64 bits too)                     | the task, or `no task N; list_tasks finds ids`      |
| ids, limit: strings, booleans, fractions (5.0 reads as 5) | `task_id: Input should be a valid integer`          |
| ISO dates and times of years 1-9999, offsets -12 to +14   | kept within 1900-2200, else `due: … is outside the  |
|   (every date field and filter), phrases ('in 9999 months')|   years 1900-2200`                                 |
| unreadable dates, garbage                                 | `due: could not read '…' as a date; use …`          |
| cursors: random text, unsigned base64 JSON of random      | `cursor: is not one list_tasks returned; …`         |
|   values, real cursors with one character changed         |                                                     |
| a real cursor with another sort                           | `cursor: belongs to another sort order; …`          |
| search queries: random text, up to 2,000 words            | results, or `query: must be at most 500 characters` |
|                                                           |   or `query: must have at most 32 words`            |
| booleans as strings or numbers ("yes", 1, "true")         | `confirm: Input should be a valid boolean`          |
| wrong JSON types for any argument (null, list, object)    | `priority: Input should be 'high', 'medium' or 'low'` |
| unknown argument names (user_id, random names)            | `unknown argument(s) 'user_id'; add_task takes …`   |
| tag lists: hundreds of items, duplicates, '#' alone       | stored, or `tags: at most 20 different tags (…)`    |
| recurrence rules: valid, impossible, random, over 500 long | stored, or `recurrence: …`                          |

The example count comes from a Hypothesis profile: `tool-fuzz` (300 per tool and database, as CI runs it) or
`tool-fuzz-quick` (30), chosen with TASKFLOW_TEST_FUZZ_PROFILE.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import ClientSession

from tests.conftest import connected

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

settings.register_profile(
    "tool-fuzz",
    max_examples=300,
    deadline=timedelta(seconds=2),
    database=None,  # nothing written into the working tree; a failure prints its example
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("tool-fuzz-quick", parent=settings.get_profile("tool-fuzz"), max_examples=30)
PROFILE = settings.get_profile(os.environ.get("TASKFLOW_TEST_FUZZ_PROFILE", "tool-fuzz"))

ZONES = ["Pacific/Kiritimati", "America/Los_Angeles"]
GENERIC = "failed unexpectedly"


@dataclass
class World:
    """Clients acting for one user per zone, with ids of their tasks and cursors list_tasks issued to them."""

    clients: list[ClientSession]
    ids: list[int]
    cursors: list[str]


@pytest.fixture
async def world(engine, db_url) -> AsyncIterator[World]:
    async with connected(engine, db_url, ZONES[0]) as east, connected(engine, db_url, ZONES[1]) as west:
        ids, cursors = [], []
        for client in (east, west):
            for n in range(4):
                result = await client.call_tool("add_task", {"title": f"seed {n}", "due": f"2026-12-0{n + 1}"})
                ids.append(result.structuredContent["id"])
            await client.call_tool("complete_task", {"task_id": ids[-1]})
            for sort_by in ("due", "title"):
                page = await client.call_tool("list_tasks", {"limit": 1, "sort_by": sort_by, "status": "all"})
                cursors.append(page.structuredContent["next_cursor"])
        yield World(clients=[east, west], ids=ids, cursors=cursors)


@dataclass(frozen=True)
class Seeded:
    """A task id or cursor of the world's (index into its lists), optionally with one character replaced."""

    kind: str  # "id" or "cursor"
    index: int
    at: int | None = None
    char: str = ""

    def resolve(self, world: World) -> Any:
        values: list[Any] = world.ids if self.kind == "id" else world.cursors
        value = values[self.index % len(values)]
        return value if self.at is None else altered(value, self.at, self.char)


def resolved(arguments: dict[str, Any], world: World) -> dict[str, Any]:
    return {name: value.resolve(world) if isinstance(value, Seeded) else value for name, value in arguments.items()}


def unsigned(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def altered(cursor: str, at: int, char: str) -> str:
    at %= len(cursor)
    return cursor[:at] + char + cursor[at + 1 :]


ANY_CHAR = st.characters(exclude_categories=())  # NUL and lone surrogates included
HOSTILE = st.sampled_from(
    ["\x00", "a\x00b", "\ud800", "x\udfff", "", " ", "%", "_", "'", '"', "\\", "; DROP TABLE tasks", "#", "@",
     "null", "[]", "{}", "[1]", "true", "1", "*", "NEAR", "a OR b", "-x", ":*", "!", "&", "|"]
)  # fmt: skip
BIG = st.builds(lambda c, n: c * n, st.sampled_from(["x", "é", "😀", " ", "\x00", "a "]), st.integers(0, 20_000))
TEXT = st.one_of(st.text(ANY_CHAR, max_size=60), HOSTILE, BIG, st.text(max_size=600))
WRONG = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
OFFSETS = st.sampled_from([None, UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=12))])
DATES = st.one_of(
    st.dates().map(date.isoformat),
    st.datetimes(timezones=OFFSETS).map(lambda moment: moment.isoformat(timespec="minutes")),
    st.sampled_from(
        ["9999-12-31", "0001-01-01", "0001-01-01T00:00", "9999-12-31T23:59:59+14:00", "1899-12-31", "2201-01-01",
         "1900-01-01", "2200-12-31T23:59", "tomorrow 5pm", "in 9999 months", "in 9999 weeks", "in 9999 days",
         "in 9999 hours", "dec 15 0001 1am", "jan 1 9999 11pm", "next friday", "the 31st", "feb 29", "someday", ""]
    ),
    TEXT,
    WRONG,
)  # fmt: skip
RULES = st.one_of(
    st.sampled_from(
        ["FREQ=DAILY", "FREQ=WEEKLY;BYDAY=MO,TH", "FREQ=MONTHLY;BYMONTHDAY=31", "FREQ=DAILY;COUNT=3",
         "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "FREQ=DAILY;UNTIL=20000101", "RRULE:FREQ=DAILY", "FREQ=HOURLY", "",
         "FREQ=DAILY;BYHOUR=" + ",".join(["1"] * 300)]
    ),
    TEXT,
    WRONG,
)  # fmt: skip
WORDS = st.lists(st.text("abcdefgh", min_size=1, max_size=8), max_size=2_000).map(" ".join)
TAGS = st.one_of(
    st.none(),
    st.lists(st.one_of(TEXT, st.sampled_from(["work", "#Home", "@me", "a b"])), max_size=30),
    st.lists(st.text("abc", min_size=1, max_size=12), min_size=20, max_size=400),
    WRONG,
)
BOOLS = st.one_of(st.booleans(), st.sampled_from(["yes", "true", "false", 1, 0, 1.0]), WRONG)
NUMBERS = st.one_of(st.integers(-5, 250), st.integers(), st.floats(), st.sampled_from(["5", True, 5.0, 2.5]), WRONG)
UNKNOWN = st.dictionaries(st.one_of(st.sampled_from(["user_id", "id", "force", "owner"]), st.text(max_size=8)), WRONG)


def one_of_or(values: list[str]) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(values), TEXT, WRONG)


def task_ids() -> st.SearchStrategy[Any]:
    extremes = [2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 0, -1, 10**30]
    seeded = st.builds(Seeded, st.just("id"), st.integers(0, 7))
    return st.one_of(seeded, st.sampled_from(extremes), st.integers(), NUMBERS)


def cursors() -> st.SearchStrategy[Any]:
    values = st.one_of(st.none(), st.integers(), st.text(max_size=20), st.floats(), DATES)
    return st.one_of(
        st.builds(Seeded, st.just("cursor"), st.integers(0, 3)),
        st.builds(Seeded, st.just("cursor"), st.integers(0, 3), st.integers(0, 200), ANY_CHAR),
        st.lists(values, max_size=5).map(unsigned),
        TEXT,
        WRONG,
    )


def task_fields() -> dict[str, st.SearchStrategy[Any]]:
    return {
        "title": TEXT,
        "description": st.one_of(TEXT, WRONG),
        "priority": one_of_or(["high", "medium", "low"]),
        "tags": TAGS,
        "due": DATES,
        "recurrence": RULES,
        "remind_at": DATES,
    }


def arguments(tool: str) -> st.SearchStrategy[dict[str, Any]]:
    optional: dict[str, st.SearchStrategy[Any]] = {
        "add_task": {name: value for name, value in task_fields().items() if name != "title"},
        "update_task": task_fields(),
        "list_tasks": {
            "status": one_of_or(["open", "completed", "all"]),
            "priority": one_of_or(["high", "medium", "low"]),
            "tags": TAGS,
            "query": st.one_of(TEXT, WORDS),
            "due_before": DATES,
            "due_after": DATES,
            "overdue": BOOLS,
            "sort_by": one_of_or(["due", "priority", "created", "title"]),
            "order": one_of_or(["asc", "desc"]),
            "limit": NUMBERS,
            "cursor": cursors(),
        },
        "delete_completed_tasks": {"confirm": BOOLS},
        "undo_last_change": {},
    }.get(tool, {})
    required = {"title": TEXT} if tool == "add_task" else {} if tool in optional else {"task_id": task_ids()}
    declared = st.fixed_dictionaries(required, optional=optional)
    return st.one_of(declared, st.builds(lambda given, extra: {**extra, **given}, declared, UNKNOWN))


def fuzzing(tool: str) -> Any:
    """The property for one tool (examples are drawn before the call: Hypothesis stops a run between draws)."""

    @PROFILE
    @given(zone=st.integers(0, len(ZONES) - 1), drawn=arguments(tool))
    async def property_holds(world: World, caplog: pytest.LogCaptureFixture, zone: int, drawn: dict) -> None:
        caplog.clear()  # one fixture serves every example
        result = await world.clients[zone].call_tool(tool, resolved(drawn, world))
        if result.isError:
            message = result.content[0].text
            assert GENERIC not in message
            assert re.match(rf"Error executing tool {tool}: \S", message), message
        else:
            assert result.structuredContent is not None
        assert not [record for record in caplog.records if record.levelname == "ERROR"]

    return property_holds


test_add_task = fuzzing("add_task")
test_list_tasks = fuzzing("list_tasks")
test_get_task = fuzzing("get_task")
test_update_task = fuzzing("update_task")
test_complete_task = fuzzing("complete_task")
test_reopen_task = fuzzing("reopen_task")
test_delete_task = fuzzing("delete_task")
test_delete_completed_tasks = fuzzing("delete_completed_tasks")
test_undo_last_change = fuzzing("undo_last_change")
