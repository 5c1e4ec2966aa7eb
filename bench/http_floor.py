"""HTTP throughput against its floor: `taskflow serve mcp` add_task beside a bare FastMCP server with one trivial tool.

The floor is FastMCP at its fastest setting (stateless, JSON answers) serving `echo`; TaskFlow serves `add_task`
with a bearer token made by `taskflow token create`, on SQLite and on PostgreSQL. The load is the same for all:
concurrent clients, each a raw JSON-RPC `tools/call` POST loop over its own httpx connection (no MCP SDK on the
client side, so the client's own CPU use stays small on the shared cores). The targets take turns in alternating
rounds; each round is a fixed number of calls. With `serve mcp --workers`, also its scaling over worker counts.
Run from the repository root: python -m bench.http_floor --help
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also runnable as `python bench/http_floor.py`

import httpx

from bench.common import (
    LOADED_MACHINE_NOTE,
    database_line,
    describe,
    machine,
    process_cpu_seconds,
    stats,
    stop_process,
    table,
    taskflow_databases,
    verdict,
    wait_for_server,
)
from bench.tool_calls import add_args, cli, free_port, taskflow_command

GOAL_FLOOR_SHARE = 0.70
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
FLOOR = "bare FastMCP (echo)"


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--calls", type=int, default=400, help="calls per target and round (default 400)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds (default 4)")
    parser.add_argument("--workers", type=int, nargs="*", default=[2], help="worker counts for serve mcp scaling")
    parser.add_argument("--no-postgres", action="store_true", help="measure taskflow on SQLite only")
    parser.add_argument("--serve-floor", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the floor's process
    options = parser.parse_args()
    if min(options.clients, options.calls, options.rounds) < 1 or options.calls < options.clients:
        parser.error("--clients, --calls and --rounds must be at least 1, and --calls at least --clients")
    return options


def serve_floor(port: int) -> None:
    """The floor: a FastMCP server with one trivial tool, stateless with JSON answers, on uvicorn."""
    import uvicorn
    from mcp.server.fastmcp import FastMCP

    mcp = FastMCP("floor", stateless_http=True, json_response=True, log_level="WARNING")

    @mcp.tool()
    async def echo(text: str) -> str:
        """Return the text."""
        return text

    uvicorn.run(mcp.streamable_http_app(), host="127.0.0.1", port=port, log_level="warning")


@dataclass
class Target:
    """A running HTTP MCP server and the call the load makes on it."""

    name: str
    url: str
    pid: int
    tool: str
    arguments: Callable[[int], dict[str, Any]]
    headers: dict[str, str] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    cpu: float = 0.0

    def body(self, i: int) -> dict[str, Any]:
        """One tools/call request."""
        return {
            "jsonrpc": "2.0",
            "id": i,
            "method": "tools/call",
            "params": {"name": self.tool, "arguments": self.arguments(i)},
        }

    def row(self) -> list[object]:
        """Calls/s over all rounds, latency percentiles and server CPU per call."""
        s = stats(self.latencies)
        return [self.name, s.n, s.n / self.elapsed, s.p50, s.p99, s.max, self.cpu / s.n * 1000]


async def post(client: httpx.AsyncClient, target: Target, i: int) -> float:
    """One call; its latency in seconds. A JSON-RPC error or a tool error fails the benchmark."""
    started = time.perf_counter()
    response = await client.post(target.url, json=target.body(i), headers=target.headers)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    reply = response.json()
    if "error" in reply or reply.get("result", {}).get("isError"):
        raise RuntimeError(f"{target.name}: {target.tool} failed: {reply}")
    return elapsed


async def load(target: Target, clients: int, calls: int, record: bool = True) -> None:
    """`calls` calls spread over `clients` concurrent clients, each with its own connection."""

    async def one_client(k: int) -> list[float]:
        async with httpx.AsyncClient(headers=HEADERS, timeout=60) as client:
            return [await post(client, target, i) for i in range(k, calls, clients)]

    started, cpu = time.perf_counter(), process_cpu_seconds(target.pid)
    found = await asyncio.gather(*(one_client(k) for k in range(clients)))
    if record:
        target.elapsed += time.perf_counter() - started
        target.cpu += process_cpu_seconds(target.pid) - cpu
        target.latencies += [x for part in found for x in part]


def answers_ping(target: Target) -> Callable[[], bool]:
    """Whether the target's MCP endpoint answers a JSON-RPC ping now."""
    ping = {"jsonrpc": "2.0", "id": 0, "method": "ping"}

    def check() -> bool:
        try:
            return httpx.post(target.url, json=ping, headers={**HEADERS, **target.headers}, timeout=2).is_success
        except httpx.TransportError:
            return False

    return check


@contextmanager
def started(target: Target, command: list[str], env: dict[str, str]) -> Iterator[Target]:
    """Run the server's command until the block ends; the target carries its process id once it answers."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            target.pid = process.pid
            wait_for_server(answers_ping(target), process, log, target.name)
            yield target
        finally:
            stop_process(process)


def floor_target(stack: ExitStack) -> Target:
    """The bare FastMCP server, started from this file."""
    port = free_port()
    target = Target(FLOOR, f"http://127.0.0.1:{port}/mcp", 0, "echo", lambda i: {"text": f"hello {i}"})
    command = [sys.executable, str(Path(__file__).resolve()), "--serve-floor", str(port)]
    return stack.enter_context(started(target, command, dict(os.environ)))


def taskflow_target(stack: ExitStack, name: str, url: str, extra: list[str] | None = None) -> Target:
    """`taskflow serve mcp` on the database at `url`, with a user and a token made by the CLI."""
    env = {**os.environ, "TASKFLOW_DATABASE_URL": url}
    user = f"bench-{uuid.uuid4().hex[:8]}"  # a fresh user per server, so tokens and tasks never mix
    cli(env, "user", "add", user, "--timezone", "UTC")
    token = cli(env, "token", "create", "--user", user).strip()
    port = free_port()
    headers = {"Authorization": f"Bearer {token}"}
    target = Target(name, f"http://127.0.0.1:{port}/mcp", 0, "add_task", add_args, headers)
    command = [taskflow_command(), "serve", "mcp", "--host", "127.0.0.1", "--port", str(port), *(extra or [])]
    return stack.enter_context(started(target, command, env))


def uvicorn_stack() -> str:
    """What uvicorn's "auto" settings pick on this machine, for the floor and `serve mcp` alike."""
    import uvicorn

    parser = "httptools" if importlib.util.find_spec("httptools") else "h11 (httptools not installed)"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio (uvloop not installed)"
    return f"both on uvicorn {uvicorn.__version__} with its automatic choices: HTTP parser {parser}, event loop {loop}"


def supports_workers() -> bool:
    """Whether `taskflow serve mcp` has a --workers option."""
    done = subprocess.run([taskflow_command(), "serve", "mcp", "--help"], capture_output=True, text=True, timeout=60)
    return "--workers" in done.stdout


async def alternate(targets: list[Target], options: argparse.Namespace) -> None:
    """A warm-up round, then the measured rounds, each target in turn."""
    for target in targets:
        await load(target, options.clients, max(options.clients, options.calls // 4), record=False)
    for _ in range(options.rounds):
        for target in targets:
            await load(target, options.clients, options.calls)


def report(targets: list[Target], options: argparse.Namespace) -> None:
    """The table and the floor ratios."""
    headers = ["target", "calls", "calls/s", "p50 ms", "p99 ms", "max ms", "server CPU ms/call"]
    print(table(headers, [target.row() for target in targets]))
    floor = next(t for t in targets if t.name == FLOOR)
    floor_rate = len(floor.latencies) / floor.elapsed
    for target in targets:
        if target is not floor:
            share = len(target.latencies) / target.elapsed / floor_rate
            print(
                f"{target.name} / floor calls/s = {share:.2f}  goal >= {GOAL_FLOOR_SHARE:.2f}: "
                f"{verdict(share >= GOAL_FLOOR_SHARE)}"
            )
            cpu_share = (floor.cpu / len(floor.latencies)) / (target.cpu / len(target.latencies))
            print(f"  floor / {target.name} server CPU per call = {cpu_share:.2f} (steadier on a busy machine)")


def scaling(url: str, options: argparse.Namespace) -> None:
    """`serve mcp --workers N` on one database, alternated with one worker; or why it is skipped."""
    if not supports_workers():
        print("\n--workers scaling: SKIPPED: `taskflow serve mcp` has no --workers option")
        return
    with ExitStack() as stack:
        targets = [
            taskflow_target(stack, f"serve mcp --workers {n}", url, ["--workers", str(n)])
            for n in sorted({1, *options.workers})
        ]
        asyncio.run(alternate(targets, options))
    print(f"\n--workers scaling ({options.clients} clients, same database):")
    base = len(targets[0].latencies) / targets[0].elapsed
    rows = [[*t.row()[:6], len(t.latencies) / t.elapsed / base] for t in targets]
    print(table(["target", "calls", "calls/s", "p50 ms", "p99 ms", "max ms", "x 1 worker"], rows))


def run(options: argparse.Namespace) -> None:
    """Start the floor and TaskFlow, load them in turns, report; then --workers scaling."""
    with taskflow_databases(not options.no_postgres) as databases:
        urls = {f"taskflow {kind} add_task": url for kind, url in databases.items()}
        setup = [
            ("floor", "FastMCP(stateless_http=True, json_response=True), one async tool echo(text), uvicorn"),
            ("taskflow", f"`{taskflow_command()} serve mcp`, bearer token from `taskflow token create`, add_task"),
            ("servers", uvicorn_stack()),
            (
                "load",
                f"{options.clients} concurrent clients, raw httpx JSON-RPC tools/call POSTs (no MCP SDK), "
                f"{options.calls} calls per target per round, {options.rounds} alternating rounds after one "
                "warm-up round",
            ),
        ]
        if len(urls) > 1:
            setup.append(("postgresql", database_line(urls["taskflow postgresql add_task"])))
        setup.append(("machine", f"{machine()}; clients and servers share the cores"))
        print(describe("http_floor: streamable HTTP throughput against a bare FastMCP server", setup))
        print(LOADED_MACHINE_NOTE + "\n", flush=True)
        with ExitStack() as stack:
            targets = [floor_target(stack)] + [taskflow_target(stack, name, url) for name, url in urls.items()]
            asyncio.run(alternate(targets, options))
        report(targets, options)
        scaling(next(iter(urls.values())) if len(urls) == 1 else urls["taskflow postgresql add_task"], options)
    print(f"\nmachine at the end: {machine()}")


def main() -> None:
    """Entry point."""
    options = parse_args()
    if options.serve_floor:
        serve_floor(options.serve_floor)
    else:
        run(options)


if __name__ == "__main__":
    main()
