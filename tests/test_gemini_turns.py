"""Whole chat turns with Gemini at its wire contract, real tools and memory: turns that fail after their tools ran,
and thought signatures kept in the saved thread."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from agent.conversation import Message, TurnInterrupted
from agent.gemini import GeminiModel
from agent.memory import load_thread
from agent.session import chat_turn
from chat_ui.failures import explain
from mcp_server.config import Settings
from mcp_server.runtime import Runtime
from tests.conftest import NOW, ZONE
from tests.fake_gemini import (
    FakeGemini,
    Hold,
    Reply,
    calls_chunk,
    error,
    finish_chunk,
    function_call,
    get,
    last_parts,
    signature_bytes,
    signature_chunk,
    text_chunk,
)

pytestmark = pytest.mark.anyio

KEY = "test-key-not-real"
ADD_MILK = function_call("add_task", {"title": "buy milk", "due": "tomorrow 5pm"})
DONE_BEFORE = "Before it stopped I had already done this, and I remember it: add task “buy milk”."


@pytest.fixture
def runtime(engine, db_url) -> Runtime:
    settings = Settings(database_url=db_url, timezone=ZONE, user=f"g-{uuid.uuid4().hex[:8]}")
    return Runtime(settings=settings, engine=engine, clock=lambda: NOW)


@pytest.fixture
async def model(fake_gemini: FakeGemini) -> AsyncIterator[GeminiModel]:
    gemini = GeminiModel(api_key=KEY, base_url=fake_gemini.url, retries=0, backoff=0.01)
    yield gemini
    await gemini.aclose()


async def say(runtime: Runtime, model: GeminiModel, text: str) -> str:
    return await chat_turn(runtime, actor=runtime.local_actor, user_name="Amina", text=text, thread="t", model=model)


def thread(runtime: Runtime) -> list[Message]:
    with runtime.unit_of_work() as session:
        return load_thread(session, user_id=runtime.local_actor.user_id, key="t")


def tool_answered(body: dict[str, Any]) -> bool:
    return any(get(part, "functionResponse") for part in last_parts(body))


def adds_milk_then(after_the_tool: Reply) -> Any:
    """A script: the person's words get an add_task call; the tool's result gets `after_the_tool`."""
    return lambda body: after_the_tool if tool_answered(body) else [calls_chunk(ADD_MILK)]


async def test_a_turn_failing_after_a_tool_ran_keeps_it_and_says_what_was_done(runtime, model, fake_gemini):
    fake_gemini.script = adds_milk_then(error(503, "The model is overloaded."))

    with pytest.raises(TurnInterrupted) as raised:
        await say(runtime, model, "add buy milk tomorrow 5pm")

    assert explain(raised.value) == (
        "The AI model is not available right now: The Gemini model is unavailable right now (HTTP 503); try again in "
        f"a minute. Your tasks are safe. {DONE_BEFORE}"
    )
    user, called, results, note = thread(runtime)
    assert (user.text, [c.name for c in called.calls]) == ("add buy milk tomorrow 5pm", ["add_task"])
    assert called.calls[0].signature
    assert results.results[0].content["title"] == "buy milk"
    assert note.role == "model"
    assert "HTTP 503" in note.text

    # Asked again, the model sees the task it already added (the API accepts the kept history as it is).
    fake_gemini.script = lambda body: [text_chunk("Buy milk is already on your list for tomorrow 17:00.")]
    assert await say(runtime, model, "try again") == "Buy milk is already on your list for tomorrow 17:00."
    contents = fake_gemini.requests[-1].body["contents"]
    responses = [get(part, "functionResponse") for content in contents for part in content["parts"]]
    assert [r["response"]["result"]["title"] for r in responses if r] == ["buy milk"]


async def test_an_empty_stop_after_a_tool_result_is_retried_once_then_the_turn_is_kept(runtime, model, fake_gemini):
    fake_gemini.script = adds_milk_then([finish_chunk("STOP")])

    with pytest.raises(TurnInterrupted) as raised:
        await say(runtime, model, "add buy milk tomorrow 5pm")

    assert explain(raised.value) == (
        f"The Gemini model gave no answer (finish reason: STOP); try rephrasing your message. {DONE_BEFORE}"
    )
    assert len(fake_gemini.requests) == 3  # the call, the empty ending, and one more try
    assert [m.role for m in thread(runtime)] == ["user", "model", "tool", "model"]


async def test_an_empty_stop_after_a_tool_result_then_an_answer_is_a_normal_turn(runtime, model, fake_gemini):
    endings = iter([[finish_chunk("STOP")], [text_chunk("Added buy milk.", finish="STOP")]])
    fake_gemini.script = lambda body: next(endings) if tool_answered(body) else [calls_chunk(ADD_MILK)]

    assert await say(runtime, model, "add buy milk tomorrow 5pm") == "Added buy milk."
    assert [m.role for m in thread(runtime)] == ["user", "model", "tool", "model"]


async def test_a_turn_stopped_after_a_tool_ran_keeps_it(runtime, model, fake_gemini):
    hold = Hold()
    fake_gemini.script = adds_milk_then([hold, text_chunk("Added.")])

    with anyio.move_on_after(2):
        await say(runtime, model, "add buy milk tomorrow 5pm")
    hold.open()

    user, called, results, note = thread(runtime)
    assert results.results[0].content["title"] == "buy milk"
    assert note.text == "(My answer stopped here: The turn was stopped.)"


async def test_thought_signatures_with_plus_and_slash_survive_saving_and_loading_the_thread(
    runtime, model, fake_gemini
):
    call_signature, text_signature = "+vv8/f7/+//+", "ab+/cd/+"
    fake_gemini.script = lambda body: (
        [text_chunk("Added buy milk."), signature_chunk(text_signature)]
        if tool_answered(body)
        else [calls_chunk(function_call("add_task", {"title": "buy milk"}, signature=call_signature))]
    )
    await say(runtime, model, "add buy milk")

    fake_gemini.script = lambda body: [text_chunk("You're welcome.")]
    await say(runtime, model, "thanks")

    contents = fake_gemini.requests[-1].body["contents"]
    call_part = next(part for part in contents[1]["parts"] if get(part, "functionCall"))
    text_part = contents[3]["parts"][-1]
    assert signature_bytes(get(call_part, "thoughtSignature")) == signature_bytes(call_signature)
    assert text_part["text"] == "Added buy milk."
    assert signature_bytes(get(text_part, "thoughtSignature")) == signature_bytes(text_signature)
