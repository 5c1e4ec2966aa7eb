"""When a turn fails, the chat says which part is unavailable in a sentence."""

from __future__ import annotations

import httpx
from sqlalchemy.exc import OperationalError

from agent.conversation import ModelUnavailable
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
