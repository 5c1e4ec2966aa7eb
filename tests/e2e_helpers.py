"""End-to-end helpers for the chat: a `taskflow` server process, and a headless Chromium driven by Playwright."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.processes import STOP_TIMEOUT, LaunchedProcess, launched

if TYPE_CHECKING:  # an optional test dependency: the fixture skips without it
    from playwright.sync_api import Browser, Page

# Debian's package (Playwright's own browser download is never used); another Chromium-based browser by path.
CHROMIUM = Path(os.environ.get("TASKFLOW_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENS = Path("/tmp/taskflow-screens")
START_TIMEOUT = 120.0  # importing Chainlit alone takes seconds, and a minute on a busy 2-core machine


@dataclass
class Server:
    """A running `taskflow` server process."""

    launched: LaunchedProcess
    url: str
    stopped_in: float | None = field(default=None)

    def stop(self) -> int:
        """Ctrl-C, as a person would stop it; its exit code (stopped_in: how long it took)."""
        started = time.monotonic()
        self.launched.process.send_signal(signal.SIGINT)
        code = self.launched.process.wait(timeout=STOP_TIMEOUT)
        self.stopped_in = time.monotonic() - started
        return code


@contextmanager
def running(args: list[str], env: dict[str, str], port: int, health: str = "/health") -> Iterator[Server]:
    """`taskflow ARGS` until the block ends, once `health` answers on `port`."""
    with launched(args, env, stop_signal=signal.SIGINT) as process:
        server = Server(process, f"http://127.0.0.1:{port}")
        process.wait_healthy(f"{server.url}{health}", START_TIMEOUT)
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium, shared by a module's tests (each test opens its own contexts)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"no browser at {CHROMIUM} (apt-get install chromium, or set TASKFLOW_TEST_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_chat(page: Page, url: str) -> None:
    """Load the chat and wait until it is ready."""
    page.goto(url)
    wait_ready(page)


def wait_ready(page: Page) -> None:
    """The chat is ready: its greeting (or a newcomer's starters) is shown and the input takes text."""
    page.wait_for_selector("#chat-input:not([disabled])")
    page.wait_for_selector("#starters, [data-step-type='assistant_message']")


def log_in(page: Page, url: str, name: str, password: str) -> None:
    """Sign in on the login page, then wait for the chat."""
    page.goto(url)
    page.fill("#email", name)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda address: "/login" not in address)
    wait_ready(page)


def say(page: Page, text: str) -> None:
    """Type a message and send it with the send button, once it is enabled."""
    page.fill("#chat-input", text)
    page.wait_for_selector("#chat-submit:not([disabled])")
    page.click("#chat-submit")


def screenshot(page: Page, name: str) -> Path:
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / name
    page.screenshot(path=str(path))
    return path


def clean_env(database_url: str, home: Path, **extra: str) -> dict[str, str]:
    """A TaskFlow process environment: this database and home, no inherited TASKFLOW_*, CHAINLIT_* or Dapr token."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TASKFLOW_", "CHAINLIT_", "GEMINI_", "GOOGLE_")) and key != "APP_API_TOKEN"
    }
    env.update(TASKFLOW_DATABASE_URL=database_url, TASKFLOW_TIMEZONE="Asia/Karachi", HOME=str(home), **extra)
    return env
