"""The chat trusts only its own origin and keeps people apart: real `taskflow` processes, driven through Chromium.

An attacker's page is served from another port of the same host (same site, other origin) and opened in a browser
where a person is logged in: the browser sends the login cookie along, so only the chat's own checks stand between
that page and the person's chat.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import Engine, select

from chat_ui.passwords import set_password
from mcp_server.accounts import add_user, find_user
from mcp_server.chat_models import ChatStep, ChatThread
from mcp_server.db import create_db_engine, unit_of_work
from mcp_server.migrate import upgrade
from tests.e2e_helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Server,
    browser,
    clean_env,
    log_in,
    open_chat,
    running,
    say,
)
from tests.processes import free_port, wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow
__all__ = ["browser"]  # the fixture, imported to be found

SECRET = "a-long-random-secret-for-the-tests-only-0123456789"
PASSWORD = "correct horse battery staple"
REPLY = "[data-step-type='assistant_message']"
FOREIGN_HOST = "evil.example"

# What an attacker's page does with a logged-in browser: open the chat's socket, finish the Socket.IO handshake
# (the person's session), and ask for their threads. The same script runs on the chat's own page as the control.
PROBE = """
async function probe([chat, threadId]) {
  const result = {opened: false, connected: false, frames: [], threads: null};
  await new Promise((resolve) => {
    const socket = new WebSocket(chat.replace("http", "ws") + "/ws/socket.io/?EIO=4&transport=websocket");
    const done = () => { clearTimeout(timer); socket.close(); resolve(); };
    const timer = setTimeout(done, 15000);
    socket.onopen = () => { result.opened = true; };
    socket.onclose = done;
    socket.onmessage = (event) => {
      result.frames.push(event.data);
      if (event.data.startsWith("0")) {  // Engine.IO open: connect to the default namespace as the chat does
        const session = Math.random().toString(36).slice(2);
        socket.send("40" + JSON.stringify({clientType: "webapp", sessionId: session, threadId, userEnv: "{}"}));
      } else if (event.data.startsWith("40")) {
        result.connected = true;
        done();
      } else if (event.data.startsWith("44")) {
        done();
      }
    };
  });
  try {
    const response = await fetch(chat + "/project/threads", {
      method: "POST", credentials: "include", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({pagination: {first: 20}, filter: {}}),
    });
    result.threads = {status: response.status, body: await response.text()};
  } catch (error) {
    result.threads = "blocked";
  }
  return result;
}
"""


def tell(page: Page, text: str, answer: str) -> None:
    """Say `text` and wait for the reply containing `answer`."""
    say(page, text)
    page.locator(REPLY, has_text=answer).wait_for()


@pytest.fixture(scope="module")
def chat(make_pg_database, tmp_path_factory) -> Iterator[tuple[Server, Engine]]:
    """`taskflow up` listening beyond localhost (so with login), with alice and bob."""
    url = make_pg_database()
    env = clean_env(url, tmp_path_factory.mktemp("home"), CHAINLIT_AUTH_SECRET=SECRET)
    engine = create_db_engine(url)
    upgrade(engine)
    with unit_of_work(engine) as session:
        for name in ("alice", "bob"):
            set_password(session, add_user(session, name=name, timezone="Europe/Lisbon"), PASSWORD)
    port = free_port()
    with running(["up", "--host", "0.0.0.0", "--port", str(port)], env, port) as server:
        yield server, engine
    engine.dispose()


@contextmanager
def attacker_site() -> Iterator[str]:
    """A page holding PROBE, served from another port of 127.0.0.1."""
    page = f"<!doctype html><title>elsewhere</title><script>{PROBE}</script>".encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def logged_in(browser: Browser, server: Server, name: str) -> Page:
    page = browser.new_context().new_page()
    log_in(page, server.url, name, PASSWORD)
    return page


def cookies_of(page: Page) -> dict[str, str]:
    return {cookie["name"]: cookie["value"] for cookie in page.context.cookies()}


def thread_of(engine: Engine, name: str) -> ChatThread | None:
    with unit_of_work(engine) as session:
        user_id = find_user(session, name).id
        return session.scalar(select(ChatThread).where(ChatThread.user_id == user_id))


def steps_in(engine: Engine, thread_id: str) -> list[dict[str, Any]]:
    with unit_of_work(engine) as session:
        return [row.payload for row in session.scalars(select(ChatStep).where(ChatStep.thread_id == thread_id))]


def test_a_page_from_another_origin_cannot_use_a_logged_in_persons_chat(chat, browser):
    server, _ = chat
    alice = logged_in(browser, server, "alice")
    tell(alice, "add buy milk tomorrow", "Added: buy milk")

    alice.add_script_tag(content=PROBE)  # the control: the same script from the chat's own page works
    own = alice.evaluate("probe", [server.url, ""])
    assert (own["opened"], own["connected"], own["threads"]["status"]) == (True, True, 200)
    assert "buy milk" in own["threads"]["body"]

    with attacker_site() as elsewhere:
        attacker = alice.context.new_page()  # the same browser: alice's cookie goes along to 127.0.0.1
        attacker.goto(elsewhere)
        stolen = attacker.evaluate("probe", [server.url, ""])
        origin = elsewhere.rstrip("/")
    assert stolen == {"opened": False, "connected": False, "frames": [], "threads": "blocked"}

    # What the browser hid from the page, the server refused too: with alice's cookie and the page's Origin.
    cookies, handshake = cookies_of(alice), "/ws/socket.io/?EIO=4&transport=polling"
    for headers in ({"Origin": origin}, {"Origin": "null"}, {"Origin": "http://127.0.0.1.evil.example"}):
        listing = httpx.post(
            f"{server.url}/project/threads",
            json={"pagination": {"first": 20}, "filter": {}},
            headers=headers,
            cookies=cookies,
        )
        assert (listing.status_code, listing.text) == (403, "cross-origin request refused")
        assert httpx.get(server.url + handshake, headers=headers, cookies=cookies).status_code == 403
    unnamed = httpx.get(server.url + handshake, cookies=cookies)  # a browser always names the origin of a socket
    assert (unnamed.status_code, unnamed.text) == (403, "a socket handshake must name its origin")
    forged = httpx.post(
        f"{server.url}/project/threads",
        json={"pagination": {"first": 20}, "filter": {}},
        headers={"Referer": f"{origin}/page"},
        cookies=cookies,
    )
    assert forged.status_code == 403  # no Origin, but a Referer from elsewhere
    alice.context.close()


@pytest.fixture(scope="module")
def rebinding_browser(browser) -> Iterator[Browser]:
    """Chromium where evil.example resolves to 127.0.0.1, as DNS rebinding makes it."""
    rebound = browser.browser_type.launch(
        executable_path=str(CHROMIUM),
        args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {FOREIGN_HOST} 127.0.0.1"],
    )
    yield rebound
    rebound.close()


def assert_foreign_host_refused(browser: Browser, server: Server) -> None:
    port = server.url.rsplit(":", 1)[1]
    page = browser.new_context().new_page()
    for path in ("/", "/login", "/auth/config", "/project/settings"):
        response = page.goto(f"http://{FOREIGN_HOST}:{port}{path}")
        assert response is not None
        assert (response.status, page.inner_text("body")) == (400, "unknown host"), path
    page.context.close()
    rebound = {"Host": f"{FOREIGN_HOST}:{port}"}
    login = httpx.post(f"{server.url}/login", data={"username": "alice", "password": PASSWORD}, headers=rebound)
    assert login.status_code == 400
    assert "set-cookie" not in login.headers
    assert httpx.get(f"{server.url}/ws/socket.io/?EIO=4&transport=polling", headers=rebound).status_code == 400
    assert httpx.get(f"{server.url}/health").status_code == 200  # probes ask by address: the same fixed answer


def test_a_foreign_host_is_refused_with_login(chat, rebinding_browser):
    server, _ = chat
    assert_foreign_host_refused(rebinding_browser, server)
    page = rebinding_browser.new_context().new_page()
    log_in(page, server.url, "alice", PASSWORD)  # the chat's own addresses still work in the same browser
    page.context.close()


def test_a_foreign_host_is_refused_without_login(tmp_path, rebinding_browser):
    env = clean_env(f"sqlite:///{tmp_path / 'taskflow.db'}", tmp_path, TASKFLOW_USER="sam")
    port = free_port()
    with running(["up", "--port", str(port)], env, port) as server:
        assert_foreign_host_refused(rebinding_browser, server)
        page = rebinding_browser.new_context().new_page()
        open_chat(page, f"http://localhost:{port}")  # every loopback form of the local chat is its own
        page.context.close()


@pytest.fixture
def alice_and_bob(chat, browser) -> Iterator[tuple[Page, Page]]:
    """Alice and Bob, each logged in in a browser of their own."""
    server, _ = chat
    alice, bob = logged_in(browser, server, "alice"), logged_in(browser, server, "bob")
    yield alice, bob
    alice.context.close()
    bob.context.close()


def test_feedback_on_another_persons_answer_is_refused(chat, alice_and_bob):
    _, engine = chat
    alice, bob = alice_and_bob
    tell(bob, "add call the plumber on friday", "Added: call the plumber")
    tell(alice, "add water the ferns tomorrow", "Added: water the ferns")

    def answer_of(name: str) -> str | None:
        thread = thread_of(engine, name)
        found = [s for s in steps_in(engine, thread.id) if s.get("type") == "assistant_message"] if thread else []
        return found[0]["id"] if found else None

    bobs = wait_until(lambda: answer_of("bob"))
    alices = wait_until(lambda: answer_of("alice"))
    rate = "([method, id, value]) => fetch('/feedback', {method, headers: {'Content-Type': 'application/json'}, body: JSON.stringify(method === 'PUT' ? {feedback: {forId: id, value}, sessionId: 'x'} : {feedbackId: id})}).then(async (r) => [r.status, await r.text()])"  # noqa: E501
    assert bob.evaluate(rate, ["PUT", bobs, 1])[0] == 200  # bob rates his own answer
    foreign = [alice.evaluate(rate, [method, bobs, 0]) for method in ("PUT", "DELETE")]
    unknown = [alice.evaluate(rate, [method, "no-such-message", 0]) for method in ("PUT", "DELETE")]
    assert foreign == unknown == [[404, '{"detail":"no message of yours has this id"}']] * 2
    assert alice.evaluate(rate, ["PUT", alices, 0])[0] == 200  # her own answer takes her feedback
    by_id = {step["id"]: step for step in steps_in(engine, thread_of(engine, "bob").id)}
    assert by_id[bobs]["feedback"]["value"] == 1  # bob's rating is untouched


def test_one_person_cannot_list_open_or_resume_anothers_thread(chat, alice_and_bob):
    server, engine = chat
    alice, bob = alice_and_bob
    tell(alice, "add renew the passport next week", "Added: renew the passport")
    thread = wait_until(lambda: thread_of(engine, "alice"))
    tell(bob, "add feed the cat tonight", "Added: feed the cat")
    bob.get_by_role("button", name="add feed the cat tonight").wait_for()  # his own thread is listed first…
    assert bob.get_by_role("button", name="add renew the passport next week").count() == 0  # …hers never
    listing = bob.evaluate(
        "() => fetch('/project/threads', {method: 'POST', headers: {'Content-Type': 'application/json'}, "
        "body: JSON.stringify({pagination: {first: 50}, filter: {}})}).then((r) => r.json())"
    )
    assert thread.id not in {item["id"] for item in listing["data"]}
    opened = bob.evaluate(f"() => fetch('/project/thread/{thread.id}').then(async (r) => [r.status, await r.text()])")
    assert opened[0] == 404
    assert "passport" not in opened[1]

    bob.goto(f"{server.url}/thread/{thread.id}")  # resuming her thread: nothing of hers shows, nothing he says sticks
    bob.wait_for_selector("#chat-input:not([disabled])")
    tell(bob, "add sweep the floor", "Added: sweep the floor")
    assert bob.get_by_text("renew the passport").count() == 0
    bob.add_script_tag(content=PROBE)
    resumed = bob.evaluate("probe", [server.url, thread.id])
    assert "passport" not in json.dumps(resumed)
    with unit_of_work(engine) as session:
        kept = session.get(ChatThread, thread.id)
        assert kept.user_id == find_user(session, "alice").id
    assert "sweep the floor" not in json.dumps(steps_in(engine, thread.id))


def test_a_reminder_reaches_only_its_owner(alice_and_bob):
    alice, bob = alice_and_bob
    tell(alice, "remind me to alice-ping in 5 seconds", "Added: alice-ping")
    tell(bob, "remind me to bob-ping in 6 seconds", "Added: bob-ping")
    tell(alice, "remind me to alice-pong in 8 seconds", "Added: alice-pong")
    # Each waits (bounded) for a reminder of their own due after the other's: by then the other's was delivered, so
    # a copy sent to the wrong person would already show.
    bob.locator(REPLY, has_text="Reminder: bob-ping").wait_for(timeout=60_000)
    assert bob.locator(REPLY, has_text="Reminder: alice-ping").count() == 0
    alice.locator(REPLY, has_text="Reminder: alice-pong").wait_for(timeout=60_000)
    assert alice.locator(REPLY, has_text="Reminder: alice-ping").count() == 1
    assert alice.locator(REPLY, has_text="Reminder: bob-ping").count() == 0
