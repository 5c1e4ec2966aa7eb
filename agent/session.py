"""One chat turn end to end: the thread from memory, the tools over MCP, the model, and the thread saved again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.memory import create_connected_server_and_client_session

from agent.conversation import Model, ModelUnavailable, TurnContext, TurnInterrupted
from agent.loop import ToolBox, Turn, TurnObserver
from agent.memory import load_thread, save_messages
from agent.offline import OfflineModel
from mcp_server.config import Settings
from mcp_server.runtime import Runtime
from mcp_server.service import Actor
from mcp_server.tools import ACTING_AS, in_process_server


def model_for(settings: Settings, *, offline: bool = False) -> Model:
    """Gemini when a key is configured, else (or when asked) the offline interpreter."""
    if offline or settings.gemini_api_key is None:
        return OfflineModel()
    from agent.gemini import GeminiModel

    return GeminiModel(
        api_key=settings.gemini_api_key.get_secret_value(),
        model=settings.gemini_model,
        base_url=settings.gemini_base_url,
        first_byte_timeout=settings.gemini_first_byte_timeout,
        chunk_timeout=settings.gemini_chunk_timeout,
    )


@asynccontextmanager
async def tool_session(runtime: Runtime, actor: Actor) -> AsyncIterator[ToolBox]:
    """The task tools: in memory against this process's server acting for `actor`, or over streamable HTTP to
    TASKFLOW_MCP_URL, where the token decides."""
    settings = runtime.settings
    if not settings.mcp_url:
        acting = ACTING_AS.set(actor)  # the in-memory server's tasks start in this context, so they act for actor
        try:
            async with create_connected_server_and_client_session(in_process_server(runtime)) as session:
                yield ToolBox(session)
        finally:
            ACTING_AS.reset(acting)
        return
    token = settings.mcp_token.get_secret_value() if settings.mcp_token else ""
    async with (
        httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        streamable_http_client(settings.mcp_url, http_client=http) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield ToolBox(session)


async def chat_turn(
    runtime: Runtime,
    *,
    actor: Actor,
    user_name: str,
    text: str,
    thread: str,
    model: Model,
    observer: TurnObserver | None = None,
) -> str:
    """Say `text` in `thread`; return the agent's answer. The thread keeps the turn for the next one.

    A turn that fails after its tools ran is kept too, so the model learns what they did and asking again does not
    repeat it; the failure then arrives as TurnInterrupted, saying what was done."""
    with runtime.unit_of_work() as session:
        history = load_thread(session, user_id=actor.user_id, key=thread)
    context = TurnContext(user_name=user_name, zone=actor.zone, now=runtime.clock().astimezone(actor.zone))
    turn = Turn(text)
    try:
        async with tool_session(runtime, actor) as tools:
            await turn.play(model, tools, history, context, observer)
    except BaseException as error:  # cancelled too: what the tools did stays done
        if not turn.acted:
            raise
        reason = _why_it_stopped(error)
        with runtime.unit_of_work() as session:
            save_messages(session, user_id=actor.user_id, key=thread, messages=turn.kept(reason))
        if isinstance(error, Exception):
            raise TurnInterrupted(reason, turn.changes()) from error
        raise
    with runtime.unit_of_work() as session:
        save_messages(session, user_id=actor.user_id, key=thread, messages=turn.messages)
    return turn.messages[-1].text


def _why_it_stopped(error: BaseException) -> str:
    """Why a turn ended early, in a sentence kept with it in the thread."""
    cause = _innermost(error)
    if isinstance(cause, ModelUnavailable):
        return str(cause)
    if not isinstance(cause, Exception):
        return "The turn was stopped."
    return f"The turn failed ({type(cause).__name__})."


def _innermost(error: BaseException) -> BaseException:
    """The first failure inside the task groups (the tool session's) that wrap it."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error
