"""The conventions are written once: the document and Gemini's instructions carry every line the interpreter keeps."""

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agent.conventions import CONVENTIONS
from agent.conversation import TurnContext
from agent.gemini import system_instruction

DOC = Path(__file__).parents[1] / "docs" / "conventions.md"


@pytest.mark.parametrize("line", CONVENTIONS)
def test_each_convention_is_documented_and_told_to_gemini(line: str) -> None:
    context = TurnContext(user_name="Ana", zone=ZoneInfo("Europe/Lisbon"), now=datetime(2026, 11, 30, 9, tzinfo=UTC))
    assert f"- {line}" in DOC.read_text(encoding="utf-8").splitlines()
    assert f"- {line}" in system_instruction(context).splitlines()
