"""What the person reads when a turn fails: which part is unavailable, in a sentence, never a traceback."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
from mcp import McpError
from sqlalchemy.exc import OperationalError

from agent.conversation import ModelDeclined, ModelUnavailable, TurnInterrupted
from mcp_server.errors import TaskError

SAFE = "Your tasks are safe."
TRY_AGAIN = "Your tasks are safe; please try again in a moment."
UNEXPECTED = "Something went wrong on my side"


def explain(error: BaseException, mcp_url: str | None = None) -> str:
    """A readable account of why a turn failed, from the most telling exception inside `error`, and of what the
    turn had done before it failed."""
    causes = list(_causes(error))
    done = " ".join(cause.summary for cause in causes if isinstance(cause, TurnInterrupted) and cause.summary)
    return f"{_why(causes, mcp_url)} {done}".strip()


def _why(causes: list[BaseException], mcp_url: str | None) -> str:
    service = f"The task service at {mcp_url}" if mcp_url else "The task service"
    for cause in causes:
        if isinstance(cause, ModelDeclined):
            return str(cause)
        if isinstance(cause, ModelUnavailable):  # its sentence may already say when to try again
            return (
                f"The AI model is not available right now: {cause} {SAFE if 'try again' in str(cause) else TRY_AGAIN}"
            )
    for cause in causes:
        if isinstance(cause, httpx.HTTPStatusError) and cause.response.status_code in (401, 403):
            return f"{service} refused the chat's token (TASKFLOW_MCP_TOKEN); ask whoever runs TaskFlow to fix it."
        if isinstance(cause, httpx.TransportError | ConnectionError | TimeoutError | McpError):
            return f"{service} is not answering, so I could not reach your tasks. {TRY_AGAIN}"
        if isinstance(cause, OperationalError):
            return f"The task database is not reachable right now. {TRY_AGAIN}"
        if isinstance(cause, TaskError):
            return str(cause)
    first = next((cause for cause in causes if not isinstance(cause, TurnInterrupted)), causes[0])
    return f"{UNEXPECTED} ({type(first).__name__}). {TRY_AGAIN}"


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error, what it groups (anyio task groups wrap transport failures) and what caused it, depth first."""
    seen: set[int] = set()
    stack = [error]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            stack.extend(reversed(current.exceptions))
        stack.extend(cause for cause in (current.__context__, current.__cause__) if cause is not None)
