"""Whom the agent's tools act for: each chat user, through a view of the shared runtime that names them."""

from __future__ import annotations

import dataclasses

from pydantic import SecretStr

from chat_ui.state import ChatState
from mcp_server.accounts import UnknownUser, actor_for, create_token, find_user
from mcp_server.runtime import Runtime
from mcp_server.service import Actor

TOKEN_LABEL = "chat"


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
        if name not in chat.tool_tokens:  # minted once per user and process; only its hash is stored
            chat.tool_tokens[name] = create_token(session, user_id=actor.user_id, name=TOKEN_LABEL)
    update = {"user": user.name, "mcp_token": SecretStr(chat.tool_tokens[name])}
    return dataclasses.replace(runtime, settings=runtime.settings.model_copy(update=update)), actor
