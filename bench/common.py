"""Shared benchmark helpers: a throwaway migrated PostgreSQL database, timing and report formatting."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import psycopg
from sqlmodel import Session

from events.consumers import Consumers, Event
from mcp_server.accounts import actor_for, add_user
from mcp_server.config import Settings
from mcp_server.db import create_db_engine
from mcp_server.migrate import upgrade
from mcp_server.models import utcnow
from mcp_server.runtime import Runtime
from mcp_server.service import Actor

# The server the benchmark databases are created on; override with TASKFLOW_BENCH_POSTGRES_URL.
ADMIN_URL = os.environ.get("TASKFLOW_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REPOSITORY = Path(__file__).resolve().parents[1]
LOADED_MACHINE_NOTE = (
    "The machine is shared with other work: absolute figures drift from run to run; "
    "rely on the ratios between series measured side by side in this run."
)


@dataclass(frozen=True)
class Stats:
    """Latency figures of one measured series, in milliseconds."""

    n: int
    p50: float
    p99: float
    max: float
    mean: float


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of the samples, nearest-rank."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def stats(seconds: Sequence[float]) -> Stats:
    """Summarise durations given in seconds as millisecond Stats."""
    ms = [s * 1000.0 for s in seconds]
    return Stats(n=len(ms), p50=percentile(ms, 50), p99=percentile(ms, 99), max=max(ms), mean=statistics.fmean(ms))


def time_calls(call: Callable[[], object], runs: int, max_seconds: float = math.inf) -> list[float]:
    """Run call `runs` times back to back (stopping early after max_seconds); each duration in seconds."""
    durations: list[float] = []
    deadline = time.perf_counter() + max_seconds
    for _ in range(runs):
        started = time.perf_counter()
        call()
        durations.append(time.perf_counter() - started)
        if started > deadline:
            break
    return durations


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain text table: first column left-aligned, the others right-aligned."""
    cells = [[_cell(value) for value in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        first = row[0].ljust(widths[0])
        return "  ".join([first, *(cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True))])

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def _cell(value: object) -> str:
    """A number with thousands separators (two decimals below 100), anything else as text."""
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def verdict(met: bool) -> str:
    """MET or NOT MET, for goal lines."""
    return "MET" if met else "NOT MET"


def machine() -> str:
    """CPU count and load average: other processes on the machine skew the figures."""
    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {one:.1f} (1 min) / {five:.1f} (5 min)"


def database_url(name: str, admin_url: str = ADMIN_URL) -> str:
    """The admin URL pointed at another database on the same server."""
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def server_version(url: str) -> str:
    """PostgreSQL's version string, short form (e.g. 'PostgreSQL 15.20')."""
    with psycopg.connect(url) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {row[0].split()[0] if row else '?'}"


@contextmanager
def throwaway_database(admin_url: str = ADMIN_URL) -> Iterator[str]:
    """A fresh database migrated to head; dropped (WITH FORCE) when the block ends, even on failure."""
    name = f"taskflow_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = database_url(name, admin_url)
        engine = create_db_engine(url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def describe(title: str, setup: Sequence[tuple[str, str]]) -> str:
    """A report header: the title, then one aligned `label: value` line per part of the setup, then a blank line."""
    width = max(len(label) for label, _ in setup) + 1
    return "\n".join([title, *(f"  {(label + ':').ljust(width)}  {value}" for label, value in setup), ""])


def database_line(url: str) -> str:
    """The measured PostgreSQL database: server version, host and the throwaway database's name."""
    return f"{server_version(url)} at 127.0.0.1, fresh migrated database {url.rsplit('/', 1)[1]}"


def stat_cells(s: Stats) -> list[float]:
    """p50, p99 and max of a series, for a table row."""
    return [s.p50, s.p99, s.max]


def bench_runtime(url: str, user: str = "bench", timezone: str = "UTC") -> Runtime:
    """A Runtime on the database at `url` (PostgreSQL or SQLite), as a process of the product holds one."""
    return Runtime(settings=Settings(database_url=url, timezone=timezone, user=user), engine=create_db_engine(url))


def add_users(runtime: Runtime, count: int, prefix: str = "bench") -> list[Actor]:
    """`count` new users in the runtime's time zone, created through the accounts service."""
    with runtime.unit_of_work() as session:
        users = [add_user(session, name=f"{prefix}-{n}", timezone=runtime.settings.timezone) for n in range(count)]
        return [actor_for(user) for user in users]


@dataclass(frozen=True)
class Arrival:
    """One event as a consumer received it, with the wall-clock moment (UTC) it arrived."""

    event_id: str
    type: str
    data: dict[str, Any]
    at: datetime


class RecordingConsumer:
    """A consumer of every event type on its topics that notes each arrival; its inbox entry is the real work."""

    def __init__(self, name: str = "bench-recorder") -> None:
        self.name = name
        self.arrivals: list[Arrival] = []
        self._lock = threading.Lock()

    def subscribe(self, consumers: Consumers, topics: Iterable[str]) -> None:
        """Receive every event of these topics (each handled once, through the inbox)."""
        for topic in topics:
            consumers.subscribe(topic, self.name, self.handle)

    def handle(self, _session: Session, event: Event) -> None:
        """Note the event and when it arrived."""
        arrival = Arrival(event.id, event.type, event.data, utcnow())
        with self._lock:
            self.arrivals.append(arrival)


def taskflow_module_command(*args: str) -> list[str]:
    """`taskflow ARGS` run with this interpreter as the console script does, on the code checkout_env() puts first."""
    return [sys.executable, "-c", "from taskflow.cli import main; main()", *args]


def checkout_env(**variables: str) -> dict[str, str]:
    """This process's environment with this checkout first on PYTHONPATH, plus the given variables."""
    path = os.pathsep.join(p for p in [str(REPOSITORY), os.environ.get("PYTHONPATH", "")] if p)
    return {**os.environ, "PYTHONPATH": path, **variables}


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RpcError(RuntimeError):
    """The server answered a request with a JSON-RPC error, or a tool call with isError."""


class StdioRpc:
    """A bare JSON-RPC 2.0 client over a child process's stdin/stdout: one request at a time, buffered pipes, no SDK.

    The child's standard error goes to a temporary file (read back when something fails), so it never blocks.
    """

    def __init__(self, command: Sequence[str], env: dict[str, str]) -> None:
        self._log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, env=env
        )
        self._ids = 0

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    def _send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a request and return its result, skipping notifications the server sends meanwhile."""
        assert self.process.stdout is not None
        self._ids += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self._ids, "method": method}
        if params is not None:
            message["params"] = params
        self._send(message)
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RpcError(f"{method}: the server closed its output\n{self.errors()}")
            reply = json.loads(line)
            if reply.get("id") == self._ids:
                break
        if "error" in reply:
            raise RpcError(f"{method}: {reply['error']}")
        return reply["result"]

    def initialize(self) -> dict[str, Any]:
        """The MCP handshake: initialize, then the initialized notification; the server's initialize result."""
        result = self.request(
            "initialize",
            {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}},
        )
        self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return result

    def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """tools/call; a result flagged isError raises RpcError."""
        result = self.request("tools/call", {"name": name, "arguments": arguments})
        if result.get("isError"):
            raise RpcError(f"{name} failed: {result.get('content')}")
        return result

    def errors(self) -> str:
        """What the server wrote to standard error so far."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def close(self) -> None:
        """Close stdin (the server's cue to exit), then wait; kill it if it lingers."""
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        self._log.close()


def wait_for_server(
    ready: Callable[[], bool], process: subprocess.Popen[bytes], log: IO[bytes], what: str, timeout: float = 60.0
) -> None:
    """Poll `ready` until it holds; fail with the server's output (its `log`) if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if ready():
            return
        time.sleep(0.2)
    log.seek(0)
    raise RuntimeError(f"{what} did not answer:\n{log.read().decode(errors='replace')}")


def stop_process(process: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    """Ask a server to stop (SIGTERM), and kill it if it has not exited within the timeout."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def taskflow_databases(with_postgres: bool) -> Iterator[dict[str, str]]:
    """Fresh databases by kind: "sqlite" (a file in a temporary folder) and, when asked, "postgresql" (migrated)."""
    with ExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="taskflow-bench-"))
        urls = {"sqlite": f"sqlite:///{folder}/taskflow.db"}
        if with_postgres:
            urls["postgresql"] = stack.enter_context(throwaway_database())
        yield urls


@contextmanager
def stdio_server(command: Sequence[str], env: dict[str, str]) -> Iterator[StdioRpc]:
    """A stdio MCP server process with an initialised raw client; stopped when the block ends."""
    client = StdioRpc(command, env)
    try:
        client.initialize()
        yield client
    finally:
        client.close()
