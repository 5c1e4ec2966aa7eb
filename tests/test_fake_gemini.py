"""The Gemini stand-in refuses what the real API refuses, with the real status and message, over plain HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mcp_server.config import DEFAULT_GEMINI_MODEL
from tests.fake_gemini import RESPONSE_COUNT, FakeGemini, signature_bytes

SIGNED = "c2lnbmVk"


def post(fake: FakeGemini, body: dict[str, Any], model: str = DEFAULT_GEMINI_MODEL) -> httpx.Response:
    return httpx.post(f"{fake.url}/v1beta/models/{model}:generateContent", json=body, headers={"x-goog-api-key": "k"})


def said(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


def called(*names: str, signature: str | None = SIGNED) -> dict[str, Any]:
    """The model's step calling `names` in parallel, the first call signed as Gemini 3 signs it."""
    parts: list[dict[str, Any]] = [{"functionCall": {"name": name, "args": {}}} for name in names]
    if signature:
        parts[0]["thoughtSignature"] = signature
    return {"role": "model", "parts": parts}


def answered(*names: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"functionResponse": {"name": name, "response": {}}} for name in names]}


def refusal(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["status"], error["message"]


def test_a_signed_first_call_in_a_parallel_step_is_enough(fake_gemini):
    body = {"contents": [said("mark both done"), called("complete_task", "complete_task"), answered("a", "b")]}

    assert post(fake_gemini, body).status_code == 200


def test_an_unsigned_call_of_the_current_turn_is_refused_on_gemini_3(fake_gemini):
    body = {"contents": [said("mark it done"), called("complete_task", signature=None), answered("complete_task")]}

    status, name, message = refusal(post(fake_gemini, body))

    assert (status, name) == (400, "INVALID_ARGUMENT")
    assert message.startswith("Function call is missing a thought_signature in functionCall parts.")
    assert "`default_api:complete_task` , position 2." in message
    assert post(fake_gemini, body, model="gemini-2.5-flash").status_code == 200  # signatures became required in 3


def test_unsigned_calls_of_earlier_turns_are_accepted(fake_gemini):
    earlier = [said("mark it done"), called("complete_task", signature=None), answered("complete_task")]
    body = {"contents": [*earlier, {"role": "model", "parts": [{"text": "Done."}]}, said("thanks")]}

    assert post(fake_gemini, body).status_code == 200


def test_function_responses_must_answer_every_call_of_the_step_before(fake_gemini):
    too_few = {"contents": [said("both"), called("add_task", "add_task"), answered("add_task")]}
    unasked = {"contents": [said("hi"), answered("add_task")]}

    assert refusal(post(fake_gemini, too_few)) == (400, "INVALID_ARGUMENT", RESPONSE_COUNT)
    assert refusal(post(fake_gemini, unasked))[2].startswith("Please ensure that function response turn comes")


def test_an_unknown_model_is_not_found(fake_gemini):
    status, name, message = refusal(post(fake_gemini, {"contents": [said("hi")]}, model="gemini-9-ultra"))

    assert (status, name) == (404, "NOT_FOUND")
    assert message.startswith("models/gemini-9-ultra is not found for API version v1beta")


@pytest.mark.parametrize("name", ["1st_tool", "list tasks", "list/tasks", "x" * 65, ""])
def test_function_names_follow_the_apis_rules(fake_gemini, name):
    body = {"contents": [said("hi")], "tools": [{"functionDeclarations": [{"name": name, "description": "d"}]}]}

    status, _, message = refusal(post(fake_gemini, body))

    assert status == 400
    assert "function_declarations[0].name: Invalid function name" in message


def test_names_with_dots_colons_dashes_and_64_characters_are_fine(fake_gemini):
    names = ["_tool", "tasks.list", "mcp:list-tasks", "t" * 64]
    body = {"contents": [said("hi")], "tools": [{"functionDeclarations": [{"name": n} for n in names]}]}

    assert post(fake_gemini, body).status_code == 200


def test_a_signature_is_bytes_in_standard_or_url_safe_base64(fake_gemini):
    assert signature_bytes("+vv8/f7/+//+") == signature_bytes("-vv8_f7_-__-") == bytes.fromhex("fafbfcfdfefffbfffe")
    garbled = {"contents": [said("x"), called("add_task", signature="not base64!"), answered("add_task")]}

    status, _, message = refusal(post(fake_gemini, garbled))

    assert status == 400
    assert "Base64 decoding failed" in message
