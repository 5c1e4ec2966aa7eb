"""Database faults under a tool-call load, and what they did to the data: for the fault tests and bench/faults.py.

The load is the official `mcp` client over streamable HTTP with a token made by `taskflow token create`: each round
adds a task (its title unique, so each acknowledged one can be counted) and adds and completes a recurring task (whose
completion must give exactly one next occurrence, through the outbox, the relay and the recurrence consumer).
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import anyio
import httpx
import psycopg
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.processes import wait_until

CALL_TIMEOUT = 10.0  # seconds one tool call may take before the load counts it as failed
RECURRING_DUE = "2027-01-04T09:00"


def admin_url_for(database_url: str) -> str:
    return database_url.rsplit("/", 1)[0] + "/postgres"


class DatabaseFaults:
    """Faults of one database, caused from the server's side: every other connection killed, or none allowed."""

    def __init__(self, database_url: str) -> None:
        self.name = database_url.rsplit("/", 1)[1]
        self._admin = admin_url_for(database_url)

    def terminate(self) -> int:
        """pg_terminate_backend of every connection to the database; how many there were."""
        with psycopg.connect(self._admin, autocommit=True) as admin:
            rows = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.name,),
            ).fetchall()
        return len(rows)

    def allow_connections(self, allowed: bool) -> None:
        with psycopg.connect(self._admin, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS {str(allowed).lower()}')

    @contextmanager
    def refusing(self) -> Iterator[None]:
        """The database refuses new connections and has lost its current ones, until the block ends."""
        self.allow_connections(False)
        try:
            self.terminate()
            yield
        finally:
            self.allow_connections(True)


def cli(env: dict[str, str], *args: str) -> str:
    """`taskflow ARGS`; its standard output."""
    done = subprocess.run(["taskflow", *args], env=env, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"taskflow {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def user_with_token(env: dict[str, str]) -> str:
    """A new user in UTC and a token for them, both made with the command line."""
    name = f"load-{uuid.uuid4().hex[:8]}"
    cli(env, "user", "add", name, "--timezone", "UTC")
    return cli(env, "token", "create", "--user", name).strip()


@dataclass
class LoadRecord:
    """What the server acknowledged, and how many calls failed."""

    added: list[str] = field(default_factory=list)  # titles of acknowledged add_task calls
    completed: list[int] = field(default_factory=list)  # ids of acknowledged completions of a series' first task
    failures: int = 0


class ToolClient:
    """Tool calls, each over an MCP session of its own, as a client reconnecting after any failure would."""

    def __init__(self, mcp_url: str, token: str) -> None:
        self._url = mcp_url
        self._token = token

    async def call(self, tool: str, **arguments: object) -> dict | None:
        """The tool's structured result, or None when the call failed in any way (an error result or no answer)."""
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            with anyio.fail_after(CALL_TIMEOUT):
                async with (
                    httpx.AsyncClient(headers=headers, timeout=CALL_TIMEOUT) as http,
                    streamable_http_client(self._url, http_client=http) as (read, write, _),
                    ClientSession(read, write) as session,
                ):
                    await session.initialize()
                    result = await session.call_tool(tool, arguments)
        except Exception:  # a refused connection, an HTTP error, a closed stream or a timeout: a failed call
            return None
        return None if result.isError else result.structuredContent


async def run_load(mcp_url: str, token: str, record: LoadRecord, stop: anyio.Event, workers: int = 3) -> None:
    """Rounds of tool calls from `workers` concurrent clients until `stop` is set."""

    async def one_client() -> None:
        client = ToolClient(mcp_url, token)
        while not stop.is_set():
            await one_round(client)

    async def one_round(client: ToolClient) -> None:
        title = f"load {uuid.uuid4().hex}"
        if await client.call("add_task", title=title) is None:
            record.failures += 1
        else:
            record.added.append(title)
        first = await client.call("add_task", title=f"series {title}", due=RECURRING_DUE, recurrence="FREQ=DAILY")
        if first is None:
            record.failures += 1
            return
        if await client.call("complete_task", task_id=first["id"]) is None:
            record.failures += 1  # may have completed or not: not counted either way
        else:
            record.completed.append(first["id"])

    async with anyio.create_task_group() as group:
        for _ in range(workers):
            group.start_soon(one_client)


@dataclass(frozen=True)
class Recovery:
    seconds: float  # from the database coming back to the first successful tool call
    failed_calls: int  # calls that failed after the database came back


async def first_success(mcp_url: str, token: str, since: float) -> Recovery:
    """Tool calls back to back from `since` (time.monotonic), each on a new session, until one succeeds.

    Bound it with anyio.fail_after.
    """
    client = ToolClient(mcp_url, token)
    failed = 0
    while await client.call("list_tasks", limit=1) is None:
        failed += 1
        await anyio.sleep(0.05)
    return Recovery(time.monotonic() - since, failed)


@dataclass(frozen=True)
class Damage:
    lost: int  # acknowledged writes or event effects missing
    duplicated: int  # acknowledged writes or event effects present more than once


def wait_for_outbox(database_url: str, topic: str = "task-events", timeout: float = 90.0) -> None:
    """Until no event of `topic` is unsent (the relay has delivered every one), or TimeoutError after `timeout`."""

    def all_sent() -> bool:
        with psycopg.connect(database_url) as connection:
            row = connection.execute(
                "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND topic = %s", (topic,)
            ).fetchone()
        return row is not None and row[0] == 0

    wait_until(all_sent, timeout, interval=0.2)


def damage(database_url: str, record: LoadRecord) -> Damage:
    """Acknowledged tasks stored other than once, and completed series with other than one next occurrence."""
    with psycopg.connect(database_url) as connection:
        titles = dict(
            connection.execute(
                "SELECT title, count(*) FROM tasks WHERE title = ANY(%s) GROUP BY title", (record.added,)
            ).fetchall()
        )
        following = dict(
            connection.execute(
                "SELECT series_id, count(*) FROM tasks WHERE series_id = ANY(%s) AND id <> series_id "
                "GROUP BY series_id",
                (record.completed,),
            ).fetchall()
        )
    counts = [titles.get(title, 0) for title in record.added] + [following.get(i, 0) for i in record.completed]
    return Damage(lost=sum(1 for n in counts if n == 0), duplicated=sum(n - 1 for n in counts if n > 1))


async def load_through_faults(
    database_url: str, mcp_url: str, token: str, during_outage: Callable[[], Awaitable[None]] | None = None
) -> tuple[LoadRecord, Recovery]:
    """Under a tool-call load: every connection of the database killed five times, a second apart, then ten seconds
    in which it refuses connections (`during_outage` runs in the middle of those). What the load saw, and how the
    first tool calls after the database came back fared."""
    faults = DatabaseFaults(database_url)
    record, stop = LoadRecord(), anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(run_load, mcp_url, token, record, stop)
        for _ in range(5):
            await anyio.sleep(1.0)
            await anyio.to_thread.run_sync(faults.terminate)
        await anyio.sleep(1.0)
        with faults.refusing():
            await anyio.sleep(5)
            if during_outage is not None:
                await during_outage()
            await anyio.sleep(5)
        with anyio.fail_after(30):
            recovered = await first_success(mcp_url, token, since=time.monotonic())
        await anyio.sleep(1.0)  # the load runs on a little after recovery
        stop.set()
    return record, recovered
