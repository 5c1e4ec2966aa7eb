"""Each chat user's turn acts as that user, whether the tools run in this process or behind an MCP server."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from agent.offline import OfflineModel
from agent.session import chat_turn
from chat_ui.identity import TOKEN_LABEL, TOKEN_LIFETIME, acting_as, release_tokens
from chat_ui.state import ChatState, ToolToken
from mcp_server import service
from mcp_server.accounts import UnknownUser, use_token
from mcp_server.config import Settings
from mcp_server.db import unit_of_work
from mcp_server.models import ApiToken, User, utcnow
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


TOOL_SERVER = "http://mcp-server:8000/mcp"


def token_of(runtime: Runtime) -> str:
    return runtime.settings.mcp_token.get_secret_value()


def live_chat_tokens(engine, user_id: int) -> list[str]:
    """Prefixes of the user's chat tokens that a server would accept now."""
    with unit_of_work(engine) as session:
        rows = session.scalars(select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.name == TOKEN_LABEL))
        return [row.prefix for row in rows if row.expires_at is None or row.expires_at > utcnow()]


async def test_two_chat_starts_leave_one_live_token_per_person(engine, db_url):
    kim = new_actor(engine)
    name = name_of(engine, kim.user_id)
    first = chat_state(engine, db_url, mcp_url=TOOL_SERVER)
    first_runtime, _ = acting_as(first, name)
    release_tokens(first)  # the first chat process stops
    with unit_of_work(engine) as session:
        assert use_token(session, token_of(first_runtime), now=utcnow()) is None
    second = chat_state(engine, db_url, mcp_url=TOOL_SERVER)
    second_runtime, _ = acting_as(second, name)
    assert len(live_chat_tokens(engine, kim.user_id)) == 1
    with unit_of_work(engine) as session:
        use = use_token(session, token_of(second_runtime), now=utcnow())
    assert use.user.id == kim.user_id
    assert utcnow() < use.expires_at <= utcnow() + TOKEN_LIFETIME


async def test_a_token_left_by_a_chat_that_never_stopped_expires_and_goes_when_the_next_one_is_made(engine, db_url):
    kim = new_actor(engine)
    name = name_of(engine, kim.user_id)
    crashed = chat_state(engine, db_url, mcp_url=TOOL_SERVER)
    acting_as(crashed, name)  # and never released
    with unit_of_work(engine) as session:  # its lifetime passes
        session.execute(
            update(ApiToken).where(ApiToken.user_id == kim.user_id).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    acting_as(chat_state(engine, db_url, mcp_url=TOOL_SERVER), name)
    with unit_of_work(engine) as session:
        assert len(list(session.scalars(select(ApiToken).where(ApiToken.user_id == kim.user_id)))) == 1


async def test_a_token_past_half_its_life_is_replaced_before_a_turn(engine, db_url):
    kim = new_actor(engine)
    name = name_of(engine, kim.user_id)
    chat = chat_state(engine, db_url, mcp_url=TOOL_SERVER)
    old = token_of(acting_as(chat, name)[0])
    chat.tool_tokens[name] = ToolToken(old, expires_at=utcnow() + TOKEN_LIFETIME / 2 - timedelta(minutes=1))
    new = token_of(acting_as(chat, name)[0])
    assert new != old
    assert token_of(acting_as(chat, name)[0]) == new  # kept while it has more than half its life
