"""Reminder to chat: from a task's remind_at to the reminder visible in an open chat page, through `taskflow up`.

Starts `taskflow up` (embedded: SQLite, in-process relay, scheduler and consumers) as its own process, opens the
chat in headless Chromium (Debian's /usr/bin/chromium through Playwright), then adds reminders through the task
service, spaced apart a little into the future. A MutationObserver in the page stamps the moment each reminder's
message enters the page (Date.now()); Playwright's wait_for_selector waits for the last of them. Latency is that
stamp minus the task's remind_at: the scheduler's wake-up, the reminder.due event through the outbox and relay,
the chat's consumer, the delivery task, Socket.IO and the page's rendering. Both clocks are this machine's.
Run from the repository root: python -m bench.reminder_to_chat --help
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also runnable as `python bench/reminder_to_chat.py`

import httpx
from playwright.sync_api import sync_playwright

from bench.common import machine, stats, table, verdict
from mcp_server.config import Settings
from mcp_server.runtime import Runtime
from mcp_server.service import TaskCreate, add_task
from tests.e2e_helpers import CHROMIUM, CHROMIUM_ARGS

GOAL_P99_MS = 1000.0
USER = "bench"
# Stamps each reminder message the moment it is added to the page, keyed by its title.
STAMP_REMINDERS = """
window.reminderSeen = {};
new MutationObserver(() => {
  for (const node of document.querySelectorAll("[data-step-type='assistant_message']")) {
    const match = /Reminder: (bench reminder \\d+)/.exec(node.textContent);
    if (match && !(match[1] in window.reminderSeen)) window.reminderSeen[match[1]] = Date.now();
  }
}).observe(document, {childList: true, subtree: true, characterData: true});
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reminders", type=int, default=60, help="how many reminders (default 60)")
    parser.add_argument("--spacing", type=float, default=0.3, help="seconds between reminders (default 0.3)")
    parser.add_argument("--lead", type=float, default=3.0, help="seconds until the first is due (default 3)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="taskflow-bench-") as home:
        database_url = f"sqlite:///{Path(home) / 'taskflow.db'}"
        port = _free_port()
        server = _start(database_url, home, port)
        try:
            latencies, missing = _measure(database_url, port, args.reminders, args.spacing, args.lead)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=15)
    _report(latencies, missing, args)


def _measure(database_url: str, port: int, count: int, spacing: float, lead: float) -> tuple[list[float], int]:
    """Seconds from each remind_at to its message in the page; and how many never showed up."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.add_init_script(STAMP_REMINDERS)
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("#chat-input:not([disabled])")
        page.wait_for_selector("#starters")  # the chat session is open: reminders have somewhere to go
        due = _add_reminders(database_url, count, spacing, lead)
        last = f"bench reminder {count - 1:03d}"
        try:
            page.wait_for_selector(f"[data-step-type='assistant_message']:has-text('Reminder: {last}')", timeout=60_000)
        except Exception:  # reported as missing below
            pass
        seen: dict[str, float] = page.evaluate("window.reminderSeen")
        browser.close()
    latencies = [seen[title] / 1000 - moment.timestamp() for title, moment in due.items() if title in seen]
    return latencies, len(due) - len(latencies)


def _add_reminders(database_url: str, count: int, spacing: float, lead: float) -> dict[str, datetime]:
    """Tasks for the chat's user whose reminders fall due `spacing` seconds apart, the first in `lead` seconds."""
    runtime = Runtime.start(Settings(database_url=database_url, user=USER))
    actor = runtime.local_actor
    start = datetime.now(UTC) + timedelta(seconds=lead)
    due = {f"bench reminder {i:03d}": start + timedelta(seconds=i * spacing) for i in range(count)}
    with runtime.unit_of_work() as session:
        for title, moment in due.items():
            add_task(session, actor=actor, data=TaskCreate(title=title, remind_at=moment), now=datetime.now(UTC))
    runtime.close()
    return due


def _start(database_url: str, home: str, port: int) -> subprocess.Popen[bytes]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TASKFLOW_", "CHAINLIT_"))}
    env.update(HOME=home, TASKFLOW_DATABASE_URL=database_url, TASKFLOW_USER=USER, TASKFLOW_TIMEZONE="UTC")
    server = subprocess.Popen(["taskflow", "up", "--port", str(port)], env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("taskflow up did not start within 60 s")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _report(latencies: list[float], missing: int, args: argparse.Namespace) -> None:
    print("Reminder to chat: remind_at -> message in an open chat page (taskflow up, SQLite, headless Chromium)")
    print(f"{args.reminders} reminders {args.spacing:.1f} s apart, the first {args.lead:.0f} s ahead; {machine()}")
    if not latencies:
        print("no reminder reached the page")
        return
    figures = stats(latencies)
    print(
        table(
            ["series", "n", "p50 ms", "p99 ms", "max ms", "mean ms", "missing"],
            [["remind_at -> visible", figures.n, figures.p50, figures.p99, figures.max, figures.mean, missing]],
        )
    )
    met = missing == 0 and figures.p99 <= GOAL_P99_MS
    print(f"goal: p99 <= {GOAL_P99_MS:.0f} ms, none missing: {verdict(met)}")


if __name__ == "__main__":
    main()
