"""When a turn fails, the chat says which part is unavailable in a sentence."""

from __future__ import annotations

import httpx
from sqlalchemy.exc import OperationalError

from agent.conversation import ModelDeclined, ModelUnavailable, TurnInterrupted
from chat_ui.failures import UNEXPECTED, explain


def test_the_model_being_unavailable_is_said_with_its_reason():
    text = explain(ModelUnavailable("The Gemini API key was refused."))
    assert text.startswith("The AI model is not available right now: The Gemini API key was refused.")


def test_an_unreachable_tool_server_is_found_inside_task_groups():
    request = httpx.Request("POST", "http://mcp-server:8000/mcp")
    group = ExceptionGroup("unhandled errors in a TaskGroup", [httpx.ConnectError("refused", request=request)])
    assert explain(group, "http://mcp-server:8000/mcp").startswith(
        "The task service at http://mcp-server:8000/mcp is not answering"
    )


def test_a_refused_tool_token_names_the_setting():
    request = httpx.Request("POST", "http://mcp-server:8000/mcp")
    error = httpx.HTTPStatusError("401", request=request, response=httpx.Response(401, request=request))
    assert "TASKFLOW_MCP_TOKEN" in explain(error)


def test_the_database_and_anything_else():
    assert explain(OperationalError("SELECT 1", {}, Exception("gone"))).startswith("The task database is not reachable")
    assert explain(KeyError("x")).startswith(UNEXPECTED)


def test_a_turn_cut_short_says_what_its_tools_had_done():
    try:
        try:
            raise ExceptionGroup("tool session", [ModelUnavailable("The Gemini model is unavailable (HTTP 503).")])
        except ExceptionGroup as group:
            raise TurnInterrupted("The Gemini model is unavailable (HTTP 503).", ["add task “milk”"]) from group
    except TurnInterrupted as interrupted:
        text = explain(interrupted)

    assert text == (
        "The AI model is not available right now: The Gemini model is unavailable (HTTP 503). Your tasks are safe; "
        "please try again in a moment. Before it stopped I had already done this, and I remember it: add task “milk”."
    )


def test_a_declined_message_is_said_as_it_is_and_advice_is_not_repeated():
    assert explain(ModelDeclined("Gemini would not answer this message.")) == "Gemini would not answer this message."
    assert explain(ModelUnavailable("Busy; try again in 26 seconds.")).endswith(
        "try again in 26 seconds. Your tasks are safe."
    )
