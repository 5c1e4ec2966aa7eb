"""Whom the agent's tools act for: each chat user, through a view of the shared runtime that names them."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from pydantic import SecretStr
from sqlmodel import Session

from chat_ui.state import ChatState, ToolToken
from mcp_server.accounts import UnknownUser, actor_for, create_token, delete_expired_tokens, delete_token, find_user
from mcp_server.models import utcnow
from mcp_server.runtime import Runtime
from mcp_server.service import Actor

TOKEN_LABEL = "chat"
# The chat's tokens expire, so a chat process that never stops cleanly leaves a live token for this long at most;
# one with less than half its life left is replaced before a turn, so no turn starts on a token about to expire.
TOKEN_LIFETIME = timedelta(hours=12)


def acting_as(chat: ChatState, name: str) -> tuple[Runtime, Actor]:
    """The runtime the agent's tools act through for this user, and the user.

    In process the tools act for whoever the turn names, so the shared runtime serves everyone. Over HTTP they act
    as the owner of the MCP token, so each person gets a view of the shared runtime carrying their own token.
    """
    runtime = chat.runtime
    with runtime.unit_of_work() as session:
        user = find_user(session, name)
        if user is None:
            raise UnknownUser(name)
        actor = actor_for(user)
        if not runtime.settings.mcp_url:
            return runtime, actor  # the in-process tools act for whoever the turn names
        now = utcnow()
        token = chat.tool_tokens.get(name)
        if token is None or token.expires_at - now < TOKEN_LIFETIME / 2:
            chat.tool_tokens[name] = _new_token(session, actor.user_id, now)  # only its hash is stored
    update = {"user": user.name, "mcp_token": SecretStr(chat.tool_tokens[name].secret)}
    return dataclasses.replace(runtime, settings=runtime.settings.model_copy(update=update)), actor


def release_tokens(chat: ChatState) -> None:
    """Delete the tokens this chat process made (it is stopping): none of them outlives it."""
    if not chat.tool_tokens:
        return
    with chat.runtime.unit_of_work() as session:
        for token in chat.tool_tokens.values():
            delete_token(session, token.secret)
    chat.tool_tokens.clear()


def _new_token(session: Session, user_id: int, now: datetime) -> ToolToken:
    # Tokens of earlier chat processes that ended without deleting theirs go once they expire.
    delete_expired_tokens(session, user_id=user_id, name=TOKEN_LABEL, now=now)
    expires_at = now + TOKEN_LIFETIME
    return ToolToken(create_token(session, user_id=user_id, name=TOKEN_LABEL, expires_at=expires_at), expires_at)
