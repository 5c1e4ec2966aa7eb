"""Tool-call latency and throughput: add_task and list_tasks over streamable HTTP and in memory, on PostgreSQL.

Also times the raw durable round trip (psycopg INSERT + COMMIT, one connection) as the floor to compare with.
Run from the repository root: python -m bench.tool_calls --help
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also runnable as `python bench/tool_calls.py`

import httpx
import psycopg
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.memory import create_connected_server_and_client_session

from bench.common import Stats, machine, server_version, stats, table, throwaway_database, time_calls, verdict
from mcp_server.config import Settings
from mcp_server.db import create_db_engine
from mcp_server.runtime import Runtime
from mcp_server.tools import create_mcp_server

GOAL_RATIO = 2.0
GOAL_CALLS_PER_SECOND = 300.0
LIST_LIMIT = 20
Args = Callable[[int], dict[str, Any]]


@dataclass(frozen=True)
class Measurement:
    """One measured series: per-call latencies, the wall time they took, and CPU seconds spent meanwhile."""

    setup: str
    tool: str
    clients: int
    latencies: list[float]
    elapsed: float
    bench_cpu: float
    server_cpu: float | None = None

    @property
    def stats(self) -> Stats:
        """Latency percentiles of the series."""
        return stats(self.latencies)

    @property
    def calls_per_second(self) -> float:
        """Completed calls per second of wall time (all clients together)."""
        return len(self.latencies) / self.elapsed

    def row(self) -> list[object]:
        """The report row for this series."""
        s = self.stats
        server = "" if self.server_cpu is None else self.server_cpu / s.n * 1000
        bench = self.bench_cpu / s.n * 1000
        return [self.setup, self.tool, self.clients, s.n, self.calls_per_second, s.p50, s.p99, s.max, server, bench]


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=400, help="measured calls per series (default 400)")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured calls per tool first (default 50)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients (default 8)")
    return parser.parse_args()


def add_args(i: int) -> dict[str, Any]:
    """Arguments of a typical add_task call: a title, priority, tag and a due moment next week."""
    due = (datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M")
    return {"title": f"bench task {i} call the plumber", "priority": "high", "tags": ["bench"], "due": due}


def list_args(_i: int) -> dict[str, Any]:
    """Arguments of list_tasks: the first page of open tasks, sorted by due."""
    return {"limit": LIST_LIMIT}


TOOLS: dict[str, Args] = {"add_task": add_args, "list_tasks": list_args}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raw_insert(url: str, iterations: int, warmup: int) -> Measurement:
    """Single-row INSERT + COMMIT into a scratch table on one psycopg connection."""
    with psycopg.connect(url) as connection:
        connection.execute(
            "CREATE TABLE bench_scratch (id bigserial PRIMARY KEY, title text NOT NULL, "
            "created_at timestamptz NOT NULL DEFAULT now())"
        )
        connection.commit()

        def insert() -> None:
            connection.execute("INSERT INTO bench_scratch (title) VALUES (%s)", ("bench task call the plumber",))
            connection.commit()

        time_calls(insert, warmup)
        started, cpu = time.perf_counter(), time.process_time()
        latencies = time_calls(insert, iterations)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Measurement("psycopg raw", "INSERT+COMMIT", 1, latencies, elapsed, cpu)


async def call(session: ClientSession, tool: str, arguments: dict[str, Any]) -> None:
    """Call a tool and fail loudly if it reports an error."""
    result = await session.call_tool(tool, arguments)
    if result.isError:
        raise RuntimeError(f"{tool} failed: {result.content}")


async def timed_calls(session: ClientSession, tool: str, calls: range) -> list[float]:
    """Call a tool once per number in `calls`, back to back, returning each latency in seconds."""
    latencies: list[float] = []
    for i in calls:
        started = time.perf_counter()
        await call(session, tool, TOOLS[tool](i))
        latencies.append(time.perf_counter() - started)
    return latencies


async def measure(
    setup: str, sessions: list[ClientSession], tool: str, iterations: int, pid: int | None
) -> Measurement:
    """Split `iterations` calls over the sessions, run them concurrently, and time the whole."""
    shares = [range(k, iterations, len(sessions)) for k in range(len(sessions))]
    server_cpu = (lambda: cpu_seconds(pid)) if pid else (lambda: 0.0)
    started, bench_cpu, server_before = time.perf_counter(), time.process_time(), server_cpu()
    results = await asyncio.gather(*(timed_calls(s, tool, share) for s, share in zip(sessions, shares, strict=True)))
    elapsed, bench_cpu = time.perf_counter() - started, time.process_time() - bench_cpu
    latencies = [x for part in results for x in part]
    server = server_cpu() - server_before if pid else None
    return Measurement(setup, tool, len(sessions), latencies, elapsed, bench_cpu, server)


async def warm_up(sessions: list[ClientSession], calls: int) -> None:
    """Unmeasured calls of every tool on every session (connections, caches, prepared statements)."""
    for tool in TOOLS:
        await asyncio.gather(*(timed_calls(s, tool, range(-calls, 0)) for s in sessions))


async def in_memory(url: str, iterations: int, warmup: int) -> list[Measurement]:
    """Sequential calls from one client to the tool server in the same process (no HTTP, no auth)."""
    settings = Settings(database_url=url, timezone="UTC", user="bench-mem")
    runtime = Runtime(settings=settings, engine=create_db_engine(url))
    try:
        async with create_connected_server_and_client_session(create_mcp_server(runtime)) as session:
            await session.initialize()
            await warm_up([session], warmup)
            return [await measure("memory", [session], tool, iterations, None) for tool in TOOLS]
    finally:
        runtime.close()


def taskflow_command() -> str:
    """The installed `taskflow` console script, next to this interpreter if not on PATH."""
    return shutil.which("taskflow") or str(Path(sys.executable).with_name("taskflow"))


def cli(env: dict[str, str], *args: str) -> str:
    """Run `taskflow ARGS` and return its standard output."""
    done = subprocess.run([taskflow_command(), *args], env=env, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"taskflow {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_healthy(base: str, server: subprocess.Popen[bytes], log: IO[bytes], timeout: float = 30.0) -> None:
    """Poll GET /healthz until it answers 200; fail with the server's output if it dies or never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            break
        try:
            if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    log.seek(0)
    raise RuntimeError(f"the MCP server did not become healthy:\n{log.read().decode(errors='replace')}")


@contextmanager
def http_server(url: str) -> Iterator[tuple[str, str, int]]:
    """A user and token made with the CLI, and `taskflow serve mcp` on a free port: (MCP URL, token, pid)."""
    env = {**os.environ, "TASKFLOW_DATABASE_URL": url}
    cli(env, "user", "add", "bench", "--timezone", "UTC")
    token = cli(env, "token", "create", "--user", "bench").strip()
    port = free_port()
    command = [taskflow_command(), "serve", "mcp", "--host", "127.0.0.1", "--port", str(port)]
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_healthy(f"http://127.0.0.1:{port}", server, log)
            yield f"http://127.0.0.1:{port}/mcp", token, server.pid
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@asynccontextmanager
async def http_sessions(mcp_url: str, token: str, count: int) -> AsyncIterator[list[ClientSession]]:
    """`count` initialised MCP client sessions, each with its own HTTP client (connection pool)."""
    async with AsyncExitStack() as stack:
        sessions: list[ClientSession] = []
        for _ in range(count):
            client = httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"})
            await stack.enter_async_context(client)
            read, write, _ = await stack.enter_async_context(streamable_http_client(mcp_url, http_client=client))
            session = await stack.enter_async_context(ClientSession(read, write))
            await session.initialize()
            sessions.append(session)
        yield sessions


async def over_http(mcp_url: str, token: str, pid: int, options: argparse.Namespace) -> list[Measurement]:
    """Sequential calls from one client, then the same calls spread over concurrent clients."""
    async with http_sessions(mcp_url, token, 1) as (session,):
        await warm_up([session], options.warmup)
        found = [await measure("http", [session], tool, options.iterations, pid) for tool in TOOLS]
    async with http_sessions(mcp_url, token, options.clients) as sessions:
        await warm_up(sessions, max(1, options.warmup // options.clients))
        found += [await measure("http", sessions, tool, options.iterations, pid) for tool in TOOLS]
    return found


def count_tasks(url: str) -> int:
    """How many tasks the database holds (the list_tasks calls page over these)."""
    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT count(*) FROM tasks").fetchone()
    return int(row[0]) if row else 0


def report(options: argparse.Namespace, results: list[Measurement], tasks: int) -> None:
    """Print the figures and whether the product owner's goals hold."""
    headers = ["setup", "tool", "clients", "calls", "calls/s", "p50 ms", "p99 ms", "max ms", "server CPU", "bench CPU"]
    print(table(headers, [m.row() for m in results]))
    print(
        "CPU columns are CPU ms per call: server = the `taskflow serve mcp` process; bench = this process "
        "(the MCP clients; for memory also the tool server)."
    )
    print(f"tasks in the database at the end: {tasks:,}; machine at the end: {machine()}")
    raw = next(m for m in results if m.setup == "psycopg raw").stats
    add = {m.clients: m for m in results if m.setup == "http" and m.tool == "add_task"}
    ratio = add[1].stats.p50 / raw.p50
    print(f"\nHTTP add_task p50 / raw INSERT+COMMIT p50 = {add[1].stats.p50:.2f} / {raw.p50:.2f} ms = {ratio:.2f}x")
    print(f"goal: HTTP add_task p50 <= {GOAL_RATIO:g}x raw insert p50: {verdict(ratio <= GOAL_RATIO)}")
    best = max(m.calls_per_second for m in add.values())
    print(
        f"goal: HTTP add_task >= {GOAL_CALLS_PER_SECOND:g} calls/s: {verdict(best >= GOAL_CALLS_PER_SECOND)} "
        f"({add[1].calls_per_second:.0f}/s with 1 client, {add[options.clients].calls_per_second:.0f}/s "
        f"with {options.clients} clients)"
    )


def header(options: argparse.Namespace, url: str) -> str:
    """What is measured, on what."""
    return "\n".join(
        [
            "tool_calls: MCP tool-call latency and throughput",
            f"  database:  {server_version(url)} at 127.0.0.1, fresh migrated database {url.rsplit('/', 1)[1]}",
            f"  transport: streamable HTTP (`taskflow serve mcp`, bearer token; 1 and {options.clients} clients), "
            "in-memory MCP (client and server in this process)",
            f"  calls:     add_task, list_tasks(limit={LIST_LIMIT}); {options.iterations} measured per series, "
            f"after {options.warmup} warm-up calls per tool and session",
            "  floor:     psycopg single-row INSERT + COMMIT into a scratch table, one connection",
            f"  machine:   {machine()} at start; clients, server and PostgreSQL share it",
            "",
        ]
    )


async def run(options: argparse.Namespace) -> None:
    """Create the database, measure everything, report, and drop the database."""
    with throwaway_database() as url:
        print(header(options, url), flush=True)
        results = [raw_insert(url, options.iterations, options.warmup)]
        results += await in_memory(url, options.iterations, options.warmup)
        with http_server(url) as (mcp_url, token, pid):
            results += await over_http(mcp_url, token, pid, options)
        report(options, results, count_tasks(url))


def main() -> None:
    """Entry point."""
    # Before FastMCP configures logging at INFO: keep per-request log lines out of the figures.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    options = parse_args()
    if options.iterations < 1 or options.warmup < 0 or options.clients < 1:
        raise SystemExit("--iterations and --clients must be at least 1, --warmup at least 0")
    asyncio.run(run(options))


if __name__ == "__main__":
    main()
