"""Whole chat turns with the Gemini adapter against the Gemini stand-in, the real tools and a real database: undo
and a day question, where the model's calls run and its answer is built from what they returned."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent.gemini import GeminiModel
from agent.session import chat_turn
from mcp_server import service
from mcp_server.config import Settings
from mcp_server.runtime import Runtime
from mcp_server.service import TaskCreate, TaskFilter
from tests.conftest import NOW, ZONE
from tests.fake_gemini import FakeGemini, calls_chunk, function_call, get, last_parts, text_chunk

pytestmark = pytest.mark.anyio


@pytest.fixture
def runtime(engine, db_url) -> Runtime:
    settings = Settings(database_url=db_url, timezone=ZONE, user=f"gemini-{uuid.uuid4().hex[:8]}")
    return Runtime(settings=settings, engine=engine, clock=lambda: NOW)


@pytest.fixture
async def model(fake_gemini: FakeGemini) -> AsyncIterator[GeminiModel]:
    gemini = GeminiModel(api_key="test-key-not-real", base_url=fake_gemini.url, retries=1, backoff=0.01)
    yield gemini
    await gemini.aclose()


async def say(runtime: Runtime, model: GeminiModel, text: str) -> str:
    actor = runtime.local_actor
    return await chat_turn(runtime, actor=actor, user_name="Amina", text=text, thread="t1", model=model)


def tool_result(body: dict[str, Any]) -> dict[str, Any] | None:
    """What the tool answered, when the request ends with a function response (the model now explains it)."""
    for part in last_parts(body):
        if response := get(part, "functionResponse"):
            return response["response"]["result"]
    return None


def titles(runtime: Runtime) -> list[str]:
    with runtime.unit_of_work() as session:
        page = service.list_tasks(session, actor=runtime.local_actor, spec=TaskFilter(status="all"), now=NOW)
    return [task.title for task in page.tasks]


def add(runtime: Runtime, **fields: Any) -> None:
    with runtime.unit_of_work() as session:
        service.add_task(session, actor=runtime.local_actor, data=TaskCreate(**fields), now=NOW)


async def test_the_model_undoes_the_last_change_and_says_what_was_undone(runtime, model, fake_gemini):
    add(runtime, title="book the dentist", due="2026-12-02")
    add(runtime, title="buy stamps")

    def gemini(body: dict[str, Any]) -> list:
        result = tool_result(body)
        if result is None:
            return [calls_chunk(function_call("undo_last_change", {}, id="fc-1", signature="c2lnLXVuZG8="))]
        return [text_chunk(f"Done. {result['message']}.", finish="STOP")]

    fake_gemini.script = gemini
    reply = await say(runtime, model, "undo that")

    assert reply == "Done. Undid: added 'buy stamps' — deleted it."
    assert titles(runtime) == ["book the dentist"]
    first = fake_gemini.requests[0].body
    declared = {d["name"] for tool in get(first, "tools") for d in get(tool, "functionDeclarations")}
    assert "undo_last_change" in declared
    instruction = get(first, "systemInstruction")["parts"][0]["text"]
    assert "undo_last_change" in instruction


async def test_the_model_answers_a_day_question_from_a_due_window(runtime, model, fake_gemini):
    add(runtime, title="submit the report", due="2026-12-04T11:00")
    add(runtime, title="team lunch", due="2026-12-04")
    add(runtime, title="call the plumber", due="2026-12-05")
    add(runtime, title="renew insurance")

    def gemini(body: dict[str, Any]) -> list:
        result = tool_result(body)
        if result is None:  # Sunday 29 November: friday is 4 December
            window = {"due_after": "2026-12-04", "due_before": "2026-12-04"}
            return [calls_chunk(function_call("list_tasks", window, id="fc-1", signature="c2lnLWxpc3Q="))]
        lines = [f"- {task['title']} ({task['due']})" for task in result["tasks"]]
        return [text_chunk("Due on Friday 4 December:\n" + "\n".join(lines), finish="STOP")]

    fake_gemini.script = gemini
    reply = await say(runtime, model, "what's due on friday?")

    assert reply == (
        "Due on Friday 4 December:\n- team lunch (2026-12-04)\n- submit the report (2026-12-04T11:00:00+05:00)"
    )
