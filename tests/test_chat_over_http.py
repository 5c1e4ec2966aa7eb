"""The chat reaching its tools over HTTP (TASKFLOW_MCP_URL): `taskflow up` beside `taskflow serve mcp`, in Chromium."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from chat_ui.identity import TOKEN_LABEL
from chat_ui.passwords import set_password
from mcp_server.accounts import add_user, find_user
from mcp_server.db import create_db_engine, unit_of_work
from mcp_server.models import ApiToken
from tests.conftest import migrated
from tests.e2e_helpers import Server, browser, clean_env, log_in, running, say
from tests.processes import free_port, serving

pytestmark = pytest.mark.slow
__all__ = ["browser"]  # the fixture, imported to be found

SECRET = "a-long-random-secret-for-the-tests-only-0123456789"
PASSWORD = "correct horse battery staple"
REPLY = "[data-step-type='assistant_message']"


@pytest.fixture(scope="module")
def chat_over_http(make_pg_database, tmp_path_factory) -> Iterator[tuple[Server, dict[str, str], Engine]]:
    """The tool server and a chat with login that reaches it over HTTP, on one PostgreSQL database."""
    url = migrated(make_pg_database())
    engine = create_db_engine(url)
    with unit_of_work(engine) as session:
        for name in ("kim", "lee"):
            set_password(session, add_user(session, name=name, timezone="Europe/Lisbon"), PASSWORD)
    tools_port, chat_port = free_port(), free_port()
    tools = f"http://127.0.0.1:{tools_port}"
    env = clean_env(url, tmp_path_factory.mktemp("home"), CHAINLIT_AUTH_SECRET=SECRET, TASKFLOW_MCP_URL=f"{tools}/mcp")
    with (
        serving(["serve", "mcp", "--port", str(tools_port)], env, f"{tools}/healthz"),
        running(["up", "--host", "0.0.0.0", "--port", str(chat_port)], env, chat_port) as chat,
    ):
        yield chat, env, engine
    engine.dispose()


def chat_tokens(engine: Engine, name: str) -> list[ApiToken]:
    with unit_of_work(engine) as session:
        user_id = find_user(session, name).id
        statement = select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.name == TOKEN_LABEL)
        return list(session.scalars(statement))


def tasks_of(env: dict[str, str], name: str) -> list[str]:
    listed = subprocess.run(
        ["taskflow", "tasks", "--json", "--user", name], env=env, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    return [task["title"] for task in json.loads(listed.stdout)]


def test_each_persons_turn_goes_to_the_tool_server_with_their_own_token(chat_over_http, browser):
    server, env, engine = chat_over_http
    kim, lee = (browser.new_context().new_page() for _ in range(2))
    log_in(kim, server.url, "kim", PASSWORD)
    say(kim, "add buy milk tomorrow")
    kim.wait_for_selector("[data-step-type='tool'] #step-add_task")
    kim.locator(REPLY, has_text="Added: buy milk").wait_for()

    log_in(lee, server.url, "lee", PASSWORD)
    say(lee, "add call the bank")
    lee.locator(REPLY, has_text="Added: call the bank").wait_for()
    say(lee, "show my tasks")
    lee.locator(REPLY, has_text="1 task").wait_for()  # his own, not kim's
    assert lee.get_by_text("buy milk").count() == 0

    # Each person's calls went to the tool server under a token of their own, which the server saw in use.
    (kims,), (lees,) = chat_tokens(engine, "kim"), chat_tokens(engine, "lee")
    assert kims.last_used_at is not None
    assert lees.last_used_at is not None
    assert tasks_of(env, "kim") == ["buy milk"]
    assert tasks_of(env, "lee") == ["call the bank"]
    kim.context.close()
    lee.context.close()
