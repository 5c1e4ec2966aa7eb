"""One turn of the chat: the person's words to the agent, acting as the current Chainlit session's user."""

from __future__ import annotations

import logging

import anyio
import chainlit as cl
from chainlit.context import context

from agent.session import chat_turn
from chat_ui import state
from chat_ui.failures import UNEXPECTED, explain
from chat_ui.identity import acting_as
from chat_ui.observer import ChainlitObserver

log = logging.getLogger(__name__)

NOTHING_SAID = "Type what you'd like to do, e.g. “add buy milk tomorrow at 5pm” or “what's due this week?”"


def session_user_name() -> str:
    """The name of the current Chainlit session's user."""
    user = context.session.user
    if user is None:  # auth is always on here (password or local header login), so Chainlit gives every session one
        raise RuntimeError("a chat session without a user")
    return user.identifier


async def answer(text: str) -> None:
    """Run the agent on `text` in this session's thread; the reply, steps or a readable error appear in the chat."""
    if not text.strip():  # the model has nothing to act on: say how to start instead of staying silent
        await cl.Message(content=NOTHING_SAID).send()
        return
    chat = state.current()
    observer = ChainlitObserver()
    try:
        name = session_user_name()
        runtime, actor = await anyio.to_thread.run_sync(acting_as, chat, name)
        reply = await chat_turn(
            runtime,
            actor=actor,
            user_name=name,
            text=text,
            thread=context.session.thread_id,
            model=chat.model,
            observer=observer,
        )
    except Exception as error:  # every failure becomes a sentence in the chat; a surprising one also a traceback
        explanation = explain(error, chat.runtime.settings.mcp_url)
        log.warning("chat turn failed: %s", explanation, exc_info=explanation.startswith(UNEXPECTED))
        await observer.fail(explanation)
        return
    await observer.finish(reply, chat.runtime.clock().astimezone(actor.zone))
