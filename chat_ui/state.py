"""What the running chat shares between Chainlit's callbacks: set once by the launcher, before the app loads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from agent.conversation import Model
from chat_ui.notifications import ReminderDelivery
from mcp_server.runtime import Runtime


@dataclass(frozen=True)
class ToolToken:
    """A personal token the chat made for someone, to call the tool server as them."""

    secret: str
    expires_at: datetime


@dataclass
class ChatState:
    runtime: Runtime
    model: Model
    login_required: bool  # else every visitor is the local user (only ever on a loopback address)
    reminders: ReminderDelivery
    # Per user, the personal token the agent presents to a remote tool server (TASKFLOW_MCP_URL) on their behalf.
    tool_tokens: dict[str, ToolToken] = field(default_factory=dict)


_current: ChatState | None = None


def configure(state: ChatState) -> None:
    """Set the chat's state (the launcher does, before Chainlit loads chat_ui.app)."""
    global _current
    _current = state


def current() -> ChatState:
    """The chat's state; an error when the chat was not started by the launcher."""
    if _current is None:
        raise RuntimeError("the chat is not configured; start it with `taskflow up` or `taskflow serve chat`")
    return _current
