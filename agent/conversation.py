"""The agent's vocabulary: messages of a conversation, tool calls and results, and the model seam."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field


class ToolCall(BaseModel):
    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    signature: str | None = None  # opaque data the model wants back with this call (Gemini's thought signature)


class ToolResult(BaseModel):
    call_id: str
    name: str
    content: Any  # the tool's structured result, or its error text
    is_error: bool = False


class Message(BaseModel):
    """One entry of a conversation: what the person said, what the model said or called, what the tools returned."""

    role: Literal["user", "model", "tool"]
    text: str = ""
    calls: list[ToolCall] = Field(default_factory=list)
    results: list[ToolResult] = Field(default_factory=list)


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the model sees it: the MCP tool's name, description and input schema."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class TurnContext:
    """Who is talking, and when and where they are."""

    user_name: str
    zone: ZoneInfo
    now: datetime  # aware, in `zone`


@dataclass(frozen=True)
class ModelRequest:
    history: list[Message]  # the conversation so far, ending with the person's message or tool results
    tools: list[ToolSpec]
    context: TurnContext


class ModelUnavailable(Exception):
    """The model could not answer (after retries); the message is fit to show the person."""


class Model(Protocol):
    """Gemini or the offline interpreter: given the conversation, stream text and/or ask for tool calls."""

    def stream(self, request: ModelRequest) -> AsyncIterator[str | ToolCall]: ...
