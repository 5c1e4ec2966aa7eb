"""Each chat user's turn acts as that user, whether the tools run in this process or behind an MCP server."""

from __future__ import annotations

import uuid

import pytest

from agent.offline import OfflineModel
from agent.session import chat_turn
from chat_ui.identity import acting_as
from chat_ui.state import ChatState
from mcp_server import service
from mcp_server.accounts import UnknownUser, use_token
from mcp_server.config import Settings
from mcp_server.db import unit_of_work
from mcp_server.models import User, utcnow
from mcp_server.runtime import Runtime
from mcp_server.service import TaskFilter
from tests.conftest import ZONE, new_actor

pytestmark = pytest.mark.anyio


def chat_state(engine, db_url: str, **settings: str) -> ChatState:
    configured = Settings(database_url=db_url, timezone=ZONE, user=f"local-{uuid.uuid4().hex[:8]}", **settings)
    return ChatState(Runtime(settings=configured, engine=engine), OfflineModel(), True, reminders=None)  # type: ignore[arg-type]


def name_of(engine, user_id: int) -> str:
    with unit_of_work(engine) as session:
        return session.get(User, user_id).name


async def test_the_in_process_tools_act_as_the_chat_user(engine, db_url):
    chat = chat_state(engine, db_url)
    kim = new_actor(engine)
    runtime, actor = acting_as(chat, name_of(engine, kim.user_id))
    assert actor == kim
    await chat_turn(runtime, actor=actor, user_name="kim", text="add buy milk", thread="t", model=OfflineModel())
    with unit_of_work(engine) as session:
        page = service.list_tasks(session, actor=kim, spec=TaskFilter(), now=runtime.clock())
    assert [task.title for task in page.tasks] == ["buy milk"]


async def test_over_http_each_user_presents_a_token_of_their_own(engine, db_url):
    chat = chat_state(engine, db_url, mcp_url="http://mcp-server:8000/mcp")
    kim, lee = new_actor(engine), new_actor(engine)
    kim_runtime, _ = acting_as(chat, name_of(engine, kim.user_id))
    lee_runtime, _ = acting_as(chat, name_of(engine, lee.user_id))
    again, _ = acting_as(chat, name_of(engine, kim.user_id))
    kim_token = kim_runtime.settings.mcp_token.get_secret_value()
    assert again.settings.mcp_token.get_secret_value() == kim_token
    with unit_of_work(engine) as session:
        assert use_token(session, kim_token, now=utcnow()).user.id == kim.user_id
        lee_token = lee_runtime.settings.mcp_token.get_secret_value()
        assert use_token(session, lee_token, now=utcnow()).user.id == lee.user_id


async def test_a_user_who_is_gone_is_refused(engine, db_url):
    with pytest.raises(UnknownUser):
        acting_as(chat_state(engine, db_url), "nobody-by-that-name")
