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
    signature: str | None = None  # opaque data the model wants back with this text (Gemini's thought signature)


@dataclass(frozen=True)
class Signature:
    """Opaque data a model attaches to its reply text and wants back with it, sent after the text it belongs to."""

    value: str


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


class ModelDeclined(ModelUnavailable):
    """The model answered, but with nothing usable (a blocked message, an empty reply); the message says which."""


class TurnInterrupted(Exception):
    """A turn failed after its tools changed something; what they did is kept in the thread and said here."""

    def __init__(self, reason: str, changes: list[str]) -> None:
        self.reason = reason
        self.changes = changes
        super().__init__(f"{reason} {self.summary}".strip())

    @property
    def summary(self) -> str:
        """What was done before the failure, for the person; empty when nothing changed."""
        if not self.changes:
            return ""
        return f"Before it stopped I had already done this, and I remember it: {'; '.join(self.changes)}."


class Model(Protocol):
    """Gemini or the offline interpreter: given the conversation, stream text and/or ask for tool calls."""

    def stream(self, request: ModelRequest) -> AsyncIterator[str | ToolCall | Signature]: ...
