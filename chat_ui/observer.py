"""A turn as the person watches it: the reply streams into a message, each tool call is a step."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import chainlit as cl
from chainlit.context import context
from chainlit.utils import utc_now

from agent.conversation import ToolCall, ToolResult
from chat_ui.render import reply_with_table

LIST_TOOL = "list_tasks"


class ChainlitObserver:
    """Implements agent.loop.TurnObserver for the current Chainlit session."""

    def __init__(self) -> None:
        self.reply = cl.Message(content="")
        self._steps: dict[str, cl.Step] = {}
        # The tasks of the last list_tasks call, while no other tool has been called since: the answer is about them.
        self._listed: list[dict[str, Any]] = []
        current = context.current_step
        self._parent = current.id if current else None

    async def text(self, delta: str) -> None:
        await self.reply.stream_token(delta)

    async def tool_started(self, call: ToolCall) -> None:
        if call.name != LIST_TOOL:
            self._listed = []
        step = cl.Step(name=call.name, type="tool", parent_id=self._parent, show_input="json")
        step.input = call.arguments
        step.start = utc_now()
        self._steps[call.id] = step
        await step.send()

    async def tool_finished(self, call: ToolCall, result: ToolResult) -> None:
        step = self._steps.pop(call.id)
        step.output = result.content
        step.is_error = result.is_error
        step.end = utc_now()
        await step.update()
        if call.name == LIST_TOOL and not result.is_error and isinstance(result.content, dict):
            self._listed = list(result.content.get("tasks") or [])

    async def finish(self, answer: str, now: datetime) -> None:
        """The final reply: the model's last answer, with the tasks it listed as a table."""
        self.reply.content = reply_with_table(answer or self.reply.content, self._listed, now)
        await self.reply.send()

    async def fail(self, explanation: str) -> None:
        """Close whatever was streamed, then say what went wrong."""
        if self.reply.content:
            await self.reply.send()
        await cl.ErrorMessage(content=explanation).send()
