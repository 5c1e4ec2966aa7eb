"""The chat end to end: real `taskflow` processes, driven through headless Chromium as people use them."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import Engine, select

from agent.memory import load_thread
from chat_ui.launcher import STOP_TIMEOUT as BACKGROUND_STOP
from chat_ui.passwords import set_password
from mcp_server.accounts import actor_for, add_user, find_user, list_tokens
from mcp_server.chat_models import ChatReminder
from mcp_server.db import create_db_engine, unit_of_work
from mcp_server.event_catalog import SOURCE, EventType
from mcp_server.models import utcnow
from mcp_server.service import TaskCreate, add_task
from mcp_server.serving import GRACE
from tests.e2e_helpers import Server, browser, clean_env, log_in, open_chat, running, say, screenshot
from tests.fake_gemini import error
from tests.processes import free_port, wait_until

pytestmark = pytest.mark.slow
__all__ = ["browser"]  # the fixture, imported to be found

# Ctrl-C gives open requests GRACE seconds and background work BACKGROUND_STOP more; then the interpreter exits,
# which on a machine busy with browsers and other tests takes a few seconds of its own.
STOP_BOUND = GRACE + BACKGROUND_STOP + 5
SECRET = "a-long-random-secret-for-the-tests-only-0123456789"
PASSWORD = "correct horse battery staple"
REPLY = "[data-step-type='assistant_message']"
# The chat's page never sends a blank message (its send button stays off), so this sends one over the chat's own
# socket from the page, as any Socket.IO client can: connect as the page does, send, collect frames until done.
SEND_OVER_SOCKET = """
async ([chat, text]) => {
  const frames = [];
  const id = () => crypto.randomUUID();  // Chainlit's ids are UUIDs
  await new Promise((resolve) => {
    const socket = new WebSocket(chat.replace("http", "ws") + "/ws/socket.io/?EIO=4&transport=websocket");
    const done = () => { clearTimeout(timer); socket.close(); resolve(); };
    const timer = setTimeout(done, 60000);
    socket.onmessage = (event) => {
      frames.push(event.data);
      if (event.data === "2") {
        socket.send("3");  // Engine.IO's ping, answered
      } else if (event.data.startsWith("0")) {
        socket.send("40" + JSON.stringify({clientType: "webapp", sessionId: id(), threadId: "", userEnv: "{}"}));
      } else if (event.data.startsWith("40")) {
        const message = {id: id(), threadId: "", name: "sam", type: "user_message", output: text,
                         createdAt: new Date().toISOString()};
        socket.send("42" + JSON.stringify(["client_message", {message, fileReferences: []}]));
      } else if (event.data.includes('"task_end"')) {
        done();
      }
    };
  });
  return frames;
}
"""


def taskflow(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["taskflow", *args], env=env, input=stdin, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def login_server(make_pg_database, tmp_path_factory) -> Iterator[tuple[Server, dict[str, str], Engine]]:
    """`taskflow up` listening beyond localhost (so with login) on PostgreSQL; each test has users of its own."""
    url = make_pg_database()
    env = clean_env(url, tmp_path_factory.mktemp("home"), CHAINLIT_AUTH_SECRET=SECRET)
    assert taskflow("db", "upgrade", env=env).returncode == 0
    added = taskflow("user", "add", "kim", "--timezone", "Europe/Lisbon", "--password", env=env, stdin=PASSWORD)
    assert added.returncode == 0, added.stderr
    engine = create_db_engine(url)
    with unit_of_work(engine) as session:  # the others straight into the database: quicker than more processes
        for name in ("ann", "bob", "lee"):
            set_password(session, add_user(session, name=name, timezone="Europe/Lisbon"), PASSWORD)
    port = free_port()
    with running(["up", "--host", "0.0.0.0", "--port", str(port)], env, port) as server:
        yield server, env, engine
    engine.dispose()


def test_logged_in_a_person_adds_a_task_and_sees_the_step(login_server, browser):
    server, env, _ = login_server
    assert httpx.get(f"{server.url}/auth/config").json().items() >= {"passwordAuth": True, "headerAuth": False}.items()
    refused = httpx.post(f"{server.url}/login", data={"username": "kim", "password": "wrong horse"})
    assert refused.status_code == 401
    page = browser.new_context().new_page()
    log_in(page, server.url, "kim", PASSWORD)
    assert page.locator("#starters").is_visible()  # a newcomer is greeted by the starters
    say(page, "add buy milk tomorrow at 5pm high priority")
    page.wait_for_selector("[data-step-type='tool'] #step-add_task")
    page.locator(REPLY, has_text="Added: buy milk").wait_for()
    page.context.close()

    tasks = json.loads(taskflow("tasks", "--json", "--user", "kim", env=env).stdout)
    tomorrow = datetime.now(ZoneInfo("Europe/Lisbon")).date() + timedelta(days=1)
    assert [(t["title"], t["priority"], t["due"][:16]) for t in tasks] == [
        ("buy milk", "high", f"{tomorrow.isoformat()}T17:00")
    ]


def test_a_due_reminder_shows_in_every_open_chat_of_its_user_only(login_server, browser):
    server, _, _ = login_server
    ann = browser.new_context(viewport={"width": 1280, "height": 1100})
    first, second = ann.new_page(), ann.new_page()
    log_in(first, server.url, "ann", PASSWORD)
    open_chat(second, server.url)
    bob = browser.new_context().new_page()
    log_in(bob, server.url, "bob", PASSWORD)

    say(first, "remind me to stretch in 3 seconds")
    first.locator(REPLY, has_text="Added: stretch").wait_for()
    say(bob, "remind me to blink in 4 seconds")
    bob.locator(REPLY, has_text="Added: blink").wait_for()
    for page in (first, second):  # nobody types: the reminder arrives by itself
        page.locator(REPLY, has_text="Reminder: stretch").wait_for(timeout=30_000)
    bob.locator(REPLY, has_text="Reminder: blink").wait_for(timeout=30_000)  # his own, due after hers
    assert bob.locator(REPLY, has_text="Reminder: stretch").count() == 0

    say(first, "show my tasks")
    first.locator(REPLY, has_text="1 task").locator("table").wait_for()
    screenshot(first, "chat-with-tasks-and-reminder.png")
    ann.close()
    bob.context.close()


def test_a_reminder_due_while_no_chat_is_open_shows_in_the_next_one(login_server, browser):
    server, _, engine = login_server
    with unit_of_work(engine) as session:
        actor = actor_for(find_user(session, "lee"))
        now = utcnow()
        add_task(
            session, actor=actor, data=TaskCreate(title="drink water", remind_at=now + timedelta(seconds=1)), now=now
        )

    def kept() -> ChatReminder | None:
        with unit_of_work(engine) as session:
            return session.scalar(select(ChatReminder).where(ChatReminder.user_id == actor.user_id))

    assert wait_until(kept).delivered_at is None  # fired, and nobody to show it to
    context = browser.new_context()
    page = context.new_page()
    log_in(page, server.url, "lee", PASSWORD)
    page.locator(REPLY, has_text="Reminder: drink water").wait_for()
    wait_until(lambda: getattr(kept(), "delivered_at", None))

    again = context.new_page()  # a second chat later: already shown, so not again
    open_chat(again, server.url)
    again.locator(REPLY, has_text="Welcome back, lee").wait_for()
    assert again.locator(REPLY, has_text="Reminder").count() == 0
    context.close()


def test_the_reminder_route_takes_only_events_with_the_app_api_token(tmp_path):
    database = f"sqlite:///{tmp_path / 'taskflow.db'}"
    env = clean_env(database, tmp_path, APP_API_TOKEN="dapr-app-token", TASKFLOW_USER="sam")
    port = free_port()
    with running(["serve", "chat", "--port", str(port)], env, port) as server:
        engine = create_db_engine(database)
        with unit_of_work(engine) as session:
            user_id = find_user(session, "sam").id
        data = {"task_id": 1, "title": "stretch", "due": None, "remind_at": "2026-11-29T10:00:00+05:00"}
        event = {
            "specversion": "1.0",
            "id": uuid.uuid4().hex,
            "source": SOURCE,
            "type": EventType.reminder_due.value,
            "data": data | {"user_id": user_id},
        }
        route = f"{server.url}/events/notifications"
        assert httpx.post(route, json=event).status_code == 401
        assert httpx.post(route, json=event, headers={"dapr-api-token": "guess"}).status_code == 401
        for _ in range(2):  # Dapr redelivers: the same event is kept once
            accepted = httpx.post(route, json=event, headers={"dapr-api-token": "dapr-app-token"})
            assert (accepted.status_code, accepted.json()) == (200, {"status": "SUCCESS"})
        with unit_of_work(engine) as session:
            kept = list(session.scalars(select(ChatReminder).where(ChatReminder.user_id == user_id)))
        engine.dispose()
    assert [(row.payload["title"], row.delivered_at) for row in kept] == [("stretch", None)]


def test_up_serves_the_chat_says_when_the_model_is_down_and_stops_on_ctrl_c(tmp_path, browser, fake_gemini):
    fake_gemini.script = lambda body: error(
        400, "API key not valid. Please pass a valid API key.", reason="API_KEY_INVALID"
    )
    env = clean_env(
        f"sqlite:///{tmp_path / 'taskflow.db'}",
        tmp_path,
        TASKFLOW_USER="sam",
        GEMINI_API_KEY="not-a-real-key",
        TASKFLOW_GEMINI_BASE_URL=fake_gemini.url,
    )
    port = free_port()
    with running(["up", "--port", str(port)], env, port) as server:
        home = httpx.get(server.url)
        assert home.status_code == 200
        assert "<title>TaskFlow</title>" in home.text
        auth = httpx.get(f"{server.url}/auth/config").json()
        assert auth.items() >= {"headerAuth": True, "passwordAuth": False}.items()
        page = browser.new_context().new_page()
        open_chat(page, server.url)  # no login screen for the local user
        say(page, "what's due today?")
        page.locator(REPLY, has_text="The AI model is not available right now").wait_for()
        assert server.stop() == 0  # Chainlit ends the process with exit code 0 after its shutdown hooks
        assert server.stopped_in is not None
        assert server.stopped_in < STOP_BOUND
        page.context.close()


def test_a_blank_message_gets_a_hint_on_what_to_type_and_never_reaches_the_model(tmp_path, browser, fake_gemini):
    env = clean_env(
        f"sqlite:///{tmp_path / 'taskflow.db'}",
        tmp_path,
        TASKFLOW_USER="sam",
        GEMINI_API_KEY="a-key-for-the-stand-in",
        TASKFLOW_GEMINI_BASE_URL=fake_gemini.url,
    )
    port = free_port()
    with running(["up", "--port", str(port)], env, port) as server:
        page = browser.new_context().new_page()
        open_chat(page, server.url)
        for blank in ("   ", "", "\n\n", " \t\n "):
            frames = page.evaluate(SEND_OVER_SOCKET, [server.url, blank])
            assert any('"task_end"' in frame for frame in frames), (blank, frames[-3:])  # the turn ran to its end
            assert any("Type what you'd like to do" in frame for frame in frames), (blank, frames[-3:])
        page.context.close()
    assert fake_gemini.requests == []


def test_two_starts_of_the_chat_leave_no_two_live_tool_tokens(tmp_path, browser):
    database = f"sqlite:///{tmp_path / 'taskflow.db'}"
    # A tool server nobody answers at: the turn fails, but only after the chat made sam's token for it.
    env = clean_env(database, tmp_path, TASKFLOW_USER="sam", TASKFLOW_MCP_URL=f"http://127.0.0.1:{free_port()}/mcp")
    engine = create_db_engine(database)

    def live_tokens() -> int:
        with unit_of_work(engine) as session:
            tokens = list_tokens(session, find_user(session, "sam").id)
            return sum(token.expires_at is not None and token.expires_at > utcnow() for token in tokens)

    for _ in range(2):
        port = free_port()
        with running(["up", "--port", str(port)], env, port) as server:
            page = browser.new_context().new_page()
            open_chat(page, server.url)
            frames = page.evaluate(SEND_OVER_SOCKET, [server.url, "what's due today?"])
            assert any('"task_end"' in frame for frame in frames), frames[-3:]
            assert live_tokens() == 1
            page.context.close()
            assert server.stop() == 0
        assert live_tokens() == 0  # deleted on stop
    with unit_of_work(engine) as session:
        assert list_tokens(session, find_user(session, "sam").id) == []
    engine.dispose()


def test_a_thread_resumes_with_its_history_after_a_restart(tmp_path, browser):
    database = f"sqlite:///{tmp_path / 'taskflow.db'}"
    env = clean_env(database, tmp_path, TASKFLOW_USER="sam")
    context = browser.new_context()
    page = context.new_page()
    port = free_port()
    with running(["up", "--port", str(port)], env, port) as server:
        open_chat(page, server.url)
        say(page, "add call mom on friday")
        page.locator(REPLY, has_text="Added: call mom").wait_for()
        page.wait_for_url("**/thread/*")
        thread_id = page.url.rsplit("/", 1)[1]
        assert server.stop() == 0

    port = free_port()
    with running(["up", "--port", str(port)], env, port) as server:
        page.goto(f"{server.url}/thread/{thread_id}")  # the login cookie outlives the restart
        page.locator(REPLY, has_text="Added: call mom").wait_for()
        assert page.get_by_role("main").get_by_text("add call mom on friday").is_visible()
        assert page.get_by_role("button", name="add call mom on friday").is_visible()  # the sidebar's thread list
        say(page, "what's due on friday?")
        page.locator(REPLY, has_text="1 task").wait_for()
    engine = create_db_engine(database)
    with unit_of_work(engine) as session:
        sam = find_user(session, "sam")
        said = [m.text for m in load_thread(session, user_id=sam.id, key=thread_id) if m.role == "user"]
    engine.dispose()
    context.close()
    assert said == ["add call mom on friday", "what's due on friday?"]
