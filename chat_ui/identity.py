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

    The tools act as the runtime's local user (in memory) or as the owner of its MCP token (over HTTP), so each
    person gets a view of the shared runtime naming them: the same engine and signals, their name, their token.
    """
    runtime = chat.runtime
    with runtime.unit_of_work() as session:
        user = find_user(session, name)
        if user is None:
            raise UnknownUser(name)
        actor = actor_for(user)
        update: dict[str, object] = {"user": user.name}
        if runtime.settings.mcp_url:
            if name not in chat.tool_tokens:  # minted once per user and process; only its hash is stored
                chat.tool_tokens[name] = create_token(session, user_id=actor.user_id, name=TOKEN_LABEL)
            update["mcp_token"] = SecretStr(chat.tool_tokens[name])
    return dataclasses.replace(runtime, settings=runtime.settings.model_copy(update=update)), actor
