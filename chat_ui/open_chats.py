"""The chats open in this process right now, from Chainlit's session registry, and posting into them from outside."""

from __future__ import annotations

import asyncio
import logging

from chainlit.context import init_ws_context
from chainlit.message import Message
from chainlit.server import sio
from chainlit.session import WebsocketSession, ws_sessions_id

log = logging.getLogger(__name__)

NAMESPACE = "/"


class ChainlitOpenChats:
    """notifications.OpenChats over Chainlit's WebsocketSessions whose socket is connected."""

    def users(self) -> set[str]:
        """Names of users with a connected chat."""
        return {session.user.identifier for session in _connected()}  # type: ignore[union-attr]

    def chats_of(self, user_name: str) -> list[str]:
        """Ids of the user's connected chats."""
        return [session.id for session in _connected() if session.user.identifier == user_name]  # type: ignore[union-attr]

    async def post(self, chat_id: str, text: str) -> bool:
        """Post into one chat, if it is still there; whether it took it."""
        session = ws_sessions_id.get(chat_id)
        if session is None:
            return False
        # In a task of its own, so the post gets its own Chainlit context (the session it writes to).
        return await asyncio.create_task(_post(session, text))


def _connected() -> list[WebsocketSession]:
    """Sessions with a user and a live socket: a closed page's session lingers for a while to allow reconnects."""
    return [
        session
        for session in list(ws_sessions_id.values())
        if session.user is not None and sio.manager.is_connected(session.socket_id, NAMESPACE)
    ]


async def _post(session: WebsocketSession, text: str) -> bool:
    try:
        init_ws_context(session)
        await Message(content=text, metadata={"kind": "reminder"}).send()
    except Exception:  # one broken session must not keep the reminder from the others
        log.exception("posting a reminder into chat session %s failed", session.id)
        return False
    return True
