"""Stdio tool calls beside a peer: `taskflow mcp` (SQLite and PostgreSQL) and `@allpepper/task-orchestrator` on bun.

Every server is driven by the same bare JSON-RPC client over buffered pipes (no SDK), one request at a time, so the
round trip is mostly the server's own work: `ping` (the protocol floor), adding a task, and listing 20 tasks. The
servers take turns in alternating rounds, so load on the machine hits them alike. Then the same calls go through the
official Python client (`mcp.ClientSession.call_tool`) against `taskflow mcp`, as Python agents make them, beside the
floor of that client: the same session against a bare FastMCP tool with a tiny result.

The peer is installed with npm into a scratch folder when asked (--install); without npm or the packages it is
skipped, saying why. Run from the repository root: python -m bench.peers --help
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also runnable as `python bench/peers.py`

import jsonschema
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from pydantic import BaseModel
from referencing import Registry

from bench.common import (
    LOADED_MACHINE_NOTE,
    RpcError,
    StdioRpc,
    checkout_env,
    database_line,
    describe,
    machine,
    process_cpu_seconds,
    stats,
    stdio_server,
    table,
    taskflow_databases,
    taskflow_module_command,
    verdict,
)
from mcp_server.result_schemas import client_schema

ORCHESTRATOR = "@allpepper/task-orchestrator@3.3.3"
BUN = "bun@1.4.5"
DEFAULT_SCRATCH = Path(tempfile.gettempdir()) / "taskflow-bench-peers"
LIST_LIMIT = 20
GOAL_PEER_RATIO = 2.0
GOAL_POSTGRES_RATIO = 1.5
GOAL_SDK_ADD_MS = 3.0
GOAL_SDK_LIST_MS = 5.0
CALLS = ("ping", "add", f"list {LIST_LIMIT}")
FLOOR = "bare FastMCP"
# A series through ClientSession: its name, and the tool and arguments of its i-th call.
SdkSeries = list[tuple[str, Callable[[int], tuple[str, dict[str, Any]]]]]


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--install", action="store_true", help=f"npm-install {ORCHESTRATOR} and {BUN} first")
    parser.add_argument("--scratch", type=Path, default=DEFAULT_SCRATCH, help=f"npm folder (default {DEFAULT_SCRATCH})")
    parser.add_argument("--iterations", type=int, default=300, help="measured calls per server and call (default 300)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds the iterations are split into")
    parser.add_argument("--warmup", type=int, default=30, help="unmeasured calls of each kind first (default 30)")
    parser.add_argument("--sdk-iterations", type=int, default=150, help="calls per series through ClientSession")
    parser.add_argument("--no-postgres", action="store_true", help="measure taskflow on SQLite only")
    parser.add_argument("--serve-floor", action="store_true", help=argparse.SUPPRESS)  # the floor's process
    options = parser.parse_args()
    if options.iterations < options.rounds or options.rounds < 1 or options.warmup < LIST_LIMIT:
        parser.error(f"--iterations must be at least --rounds (>= 1); --warmup at least {LIST_LIMIT} (tasks to list)")
    return options


def due_next_week() -> str:
    """A due moment a week from now, as taskflow's add_task takes it."""
    return (datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M")


@dataclass
class Server:
    """A stdio MCP server under measurement and how to make each kind of call on it."""

    name: str
    rpc: StdioRpc
    add: Callable[[int], tuple[str, dict[str, Any]]]
    list: tuple[str, dict[str, Any]]

    # The peer reports failures as {"success": false} in its text rather than with isError.
    succeeded: Callable[[dict[str, Any]], bool] = lambda _result: True  # noqa: E731

    def call(self, kind: str, i: int) -> None:
        """Make one call of this kind (ping, add or list); a failed tool call raises RpcError."""
        if kind == "ping":
            self.rpc.request("ping")
            return
        name, arguments = self.add(i) if kind == "add" else self.list
        result = self.rpc.call_tool(name, arguments)
        if not self.succeeded(result):
            raise RpcError(f"{self.name}: {name} failed: {result.get('content')}")


def taskflow_server(name: str, rpc: StdioRpc) -> Server:
    """`taskflow mcp`: add_task with a priority, a tag and a due date; list_tasks' first page of 20."""
    tools = {tool["name"] for tool in rpc.request("tools/list")["tools"]}
    missing = {"add_task", "list_tasks"} - tools
    if missing:
        raise SystemExit(f"taskflow mcp does not offer {sorted(missing)}")

    def add(i: int) -> tuple[str, dict[str, Any]]:
        return "add_task", {
            "title": f"bench task {i} call the plumber",
            "priority": "high",
            "tags": ["bench"],
            "due": due_next_week(),
        }

    return Server(name, rpc, add, ("list_tasks", {"limit": LIST_LIMIT}))


def _operations(tool: dict[str, Any]) -> tuple[set[str], set[str], dict[str, Any]]:
    properties = tool.get("inputSchema", {}).get("properties", {})
    operations = set(properties.get("operation", {}).get("enum", []))
    kinds = set(properties.get("containerType", {}).get("enum", []))
    return operations, kinds, properties


def orchestrator_server(rpc: StdioRpc) -> Server:
    """The peer, its tool names found with tools/list: the tool that creates tasks and the one that searches them."""
    tools = rpc.request("tools/list")["tools"]
    create = search = None
    properties: dict[str, Any] = {}
    for tool in tools:
        operations, kinds, props = _operations(tool)
        if "task" in kinds and "create" in operations and "title" in props:
            create, properties = tool["name"], props
        if "task" in kinds and "search" in operations and "limit" in props:
            search = tool["name"]
    if create is None or search is None:
        names = ", ".join(tool["name"] for tool in tools)
        raise LookupError(f"no task create/search tools among the peer's tools ({names})")
    print(f"peer tools found with tools/list: add = {create}(operation=create), list = {search}(operation=search)")

    def add(i: int) -> tuple[str, dict[str, Any]]:
        arguments = {
            "operation": "create",
            "containerType": "task",
            "title": f"bench task {i} call the plumber",
            "priority": "HIGH",
            "tags": "bench",
        }
        # Required on create although the schema does not mark them so.
        if "summary" in properties:
            arguments["summary"] = "call the plumber about the leak"
        if "complexity" in properties:
            arguments["complexity"] = 3
        return create, arguments

    listing = (search, {"operation": "search", "containerType": "task", "limit": LIST_LIMIT})
    return Server("orchestrator (bun)", rpc, add, listing, succeeded=peer_succeeded)


def peer_succeeded(result: dict[str, Any]) -> bool:
    """The peer's answer says success: true (its text content is a JSON envelope)."""
    text = next((part.get("text", "") for part in result.get("content", []) if part.get("type") == "text"), "")
    try:
        return bool(json.loads(text).get("success"))
    except (ValueError, AttributeError):
        return False


@dataclass(frozen=True)
class Peer:
    """The installed peer: how to start it and what it is."""

    command: list[str]
    versions: str
    durability: str


def npm_install(scratch: Path) -> str | None:
    """Install the peer and bun with npm into the scratch folder; why not, or None when done."""
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not on PATH"
    scratch.mkdir(parents=True, exist_ok=True)
    print(f"installing {ORCHESTRATOR} and {BUN} with npm into {scratch} ...", flush=True)
    command = [npm, "install", "--prefix", str(scratch), "--no-audit", "--no-fund", ORCHESTRATOR, BUN]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        return "npm install did not finish within 15 minutes"
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return f"npm install failed: {lines[-1] if lines else f'exit {done.returncode}'}"
    return None


def find_peer(scratch: Path) -> Peer | str:
    """The installed peer in the scratch folder, or why it cannot run."""
    modules = scratch / "node_modules"
    package = modules / "@allpepper" / "task-orchestrator"
    server = package / "src" / "server.ts"
    bun = next((p for p in (modules / "bun/bin/bun.exe", modules / "@oven/bun-linux-x64/bin/bun") if p.exists()), None)
    if not server.exists() or bun is None:
        return f"{ORCHESTRATOR} and {BUN} are not installed in {scratch} (run with --install)"
    try:
        bun_version = subprocess.run([str(bun), "--version"], capture_output=True, text=True, timeout=30).stdout
    except OSError as error:
        return f"bun does not run: {error}"
    version = json.loads((package / "package.json").read_text())["version"]
    client = package / "src" / "db" / "client.ts"
    pragma = re.search(r"PRAGMA synchronous\s*=\s*(\w+)", client.read_text()) if client.exists() else None
    durability = f"SQLite WAL, synchronous={pragma.group(1)}" if pragma else "SQLite (synchronous level not found)"
    return Peer(
        [str(bun), str(server), "--stdio"], f"task-orchestrator {version} on bun {bun_version.strip()}", durability
    )


# Latencies and server CPU seconds by (server, call).
Measured = dict[tuple[str, str], tuple[list[float], float]]


def measure(servers: list[Server], options: argparse.Namespace) -> Measured:
    """Warm every server up, then alternate rounds over servers and calls; latencies and server CPU per series."""
    for server in servers:
        for i in range(options.warmup):
            for kind in CALLS:
                server.call(kind, -1 - i)
    found: Measured = defaultdict(lambda: ([], 0.0))
    per_round = options.iterations // options.rounds
    for round_number in range(options.rounds):
        for server in servers:
            for kind in CALLS:
                latencies, cpu = found[(server.name, kind)]
                before = process_cpu_seconds(server.rpc.pid)
                for i in range(per_round):
                    started = time.perf_counter()
                    server.call(kind, round_number * per_round + i)
                    latencies.append(time.perf_counter() - started)
                found[(server.name, kind)] = (latencies, cpu + process_cpu_seconds(server.rpc.pid) - before)
    return found


def durable_commit_ms(folder: Path, commits: int = 200) -> float:
    """p50 of one small INSERT and COMMIT with plain sqlite3 on WAL and synchronous=FULL, in the folder taskflow's
    database is in: one fsync on this disk, the least any durable add can cost here."""
    connection = sqlite3.connect(folder / "durable-floor.db", isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, title TEXT)")
        latencies = []
        for n in range(commits):
            started = time.perf_counter()
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO t (title) VALUES (?)", (f"task {n}",))
            connection.execute("COMMIT")
            latencies.append(time.perf_counter() - started)
        return stats(latencies).p50
    finally:
        connection.close()


def report_raw(servers: list[Server], found: Measured, floor_ms: float) -> None:
    """The raw-client table and the goal lines on it, beside the durable commit floor."""
    rows = []
    for server in servers:
        for kind in CALLS:
            latencies, cpu = found[(server.name, kind)]
            s = stats(latencies)
            rows.append([server.name, kind, s.n, s.p50, s.p99, s.max, cpu / s.n * 1000])
    print(table(["server", "call", "calls", "p50 ms", "p99 ms", "max ms", "server CPU ms/call"], rows))
    p50 = {key: stats(latencies).p50 for key, (latencies, _) in found.items()}
    cpu = {key: seconds / len(latencies) * 1000 for key, (latencies, seconds) in found.items()}
    names = [server.name for server in servers]
    sqlite, peer = "taskflow sqlite", "orchestrator (bun)"
    print()
    if peer in names:
        for kind in CALLS:
            ratio = p50[(sqlite, kind)] / p50[(peer, kind)]
            goal = "" if kind == "ping" else f"  goal <= {GOAL_PEER_RATIO:g}x: {verdict(ratio <= GOAL_PEER_RATIO)}"
            print(
                f"{kind:8} p50 taskflow sqlite / orchestrator = {p50[(sqlite, kind)]:.2f} / "
                f"{p50[(peer, kind)]:.2f} ms = {ratio:.1f}x{goal}"
            )
        print(
            "server CPU per call, taskflow sqlite / orchestrator (steadier than latency on a busy machine): "
            + ", ".join(f"{kind} {cpu[(sqlite, kind)] / cpu[(peer, kind)]:.1f}x" for kind in CALLS)
        )
        add = p50[(peer, "add")]
        print(
            f"durable commit floor (plain sqlite3, WAL, synchronous=FULL: one fsync) p50 {floor_ms:.2f} ms = "
            f"{floor_ms / add:.1f}x the orchestrator's whole add, which does not fsync its commits; taskflow's add "
            f"beyond that floor = {max(p50[(sqlite, 'add')] - floor_ms, 0) / add:.1f}x the orchestrator's add"
        )
    if "taskflow postgresql" in names:
        for kind in CALLS[1:]:
            ratio = p50[("taskflow postgresql", kind)] / p50[(sqlite, kind)]
            print(
                f"{kind:8} p50 taskflow postgresql / sqlite = {ratio:.2f}x  "
                f"goal <= {GOAL_POSTGRES_RATIO:g}x: {verdict(ratio <= GOAL_POSTGRES_RATIO)}"
            )


class FloorResult(BaseModel):
    ok: bool


def serve_floor() -> None:
    """The floor: a bare FastMCP stdio server with a tool whose tiny structured result has its output schema restated
    as draft-07 (as taskflow's are: the cheapest for the client to check), and a tool that returns text only."""
    from mcp.server.fastmcp import FastMCP

    mcp = FastMCP("floor", log_level="WARNING")

    @mcp.tool(structured_output=True)
    def tiny() -> FloorResult:
        """A tiny structured result."""
        return FloorResult(ok=True)

    @mcp.tool(structured_output=False)
    def text() -> str:
        """Text only: no output schema, so nothing for the client to check."""
        return "ok"

    tool = mcp._tool_manager.get_tool("tiny")
    assert tool is not None
    assert tool.fn_metadata.output_schema is not None
    tool.fn_metadata.output_schema = client_schema(tool.fn_metadata.output_schema)
    mcp.run("stdio")


def taskflow_sdk_series() -> SdkSeries:
    """add_task, list 20 and list 200."""
    return [
        (
            "add",
            lambda i: (
                "add_task",
                {"title": f"sdk task {i}", "priority": "high", "tags": ["bench"], "due": due_next_week()},
            ),
        ),
        (f"list {LIST_LIMIT}", lambda _i: ("list_tasks", {"limit": LIST_LIMIT})),
        ("list 200", lambda _i: ("list_tasks", {"limit": 200})),
    ]


async def sdk_series(
    name: str,
    parameters: StdioServerParameters,
    series: SdkSeries,
    options: argparse.Namespace,
    errlog: IO[str],
) -> list[list[object]]:
    """Each series through ClientSession.call_tool against a stdio server, with where each call's time goes: the
    server's CPU, and the caller's CPU split into schema validation and the rest of the SDK."""
    rows: list[list[object]] = []
    async with stdio_client(parameters, errlog=errlog) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        server = newest_child_pid()
        schemas = {tool.name: tool.outputSchema for tool in (await session.list_tools()).tools}
        for kind, arguments in series:
            latencies = []
            for i in range(-options.warmup, options.sdk_iterations):
                if i == 0:
                    client_cpu, server_cpu = time.process_time(), process_cpu_seconds(server)
                started = time.perf_counter()
                tool, values = arguments(i)
                result = await session.call_tool(tool, values)
                if result.isError:
                    raise RuntimeError(f"{kind} failed: {result.content}")
                if i >= 0:
                    latencies.append(time.perf_counter() - started)
            client_ms = (time.process_time() - client_cpu) / len(latencies) * 1000
            server_ms = (process_cpu_seconds(server) - server_cpu) / len(latencies) * 1000
            validation_ms = validation_cpu_ms(schemas.get(tool), result.structuredContent)
            s = stats(latencies)
            rows.append([name, kind, s.n, s.p50, s.p99, server_ms, client_ms - validation_ms, validation_ms])
    return rows


def newest_child_pid() -> int:
    """The process this one started last: the server stdio_client has just spawned."""
    children = [
        int(pid) for task in Path("/proc/self/task").iterdir() for pid in (task / "children").read_text().split()
    ]
    return max(children, key=lambda pid: int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]))


def validation_cpu_ms(schema: dict[str, Any] | None, value: dict[str, Any] | None, runs: int = 50) -> float:
    """CPU per call of the check ClientSession makes on each result (mcp 1.x): `jsonschema.validate`, with a new
    validator and the schema itself checked against its meta-schema each time."""
    if schema is None or value is None:
        return 0.0
    started = time.process_time()
    for _ in range(runs):
        jsonschema.validate(value, schema, registry=Registry())
    return (time.process_time() - started) / runs * 1000


def report_sdk(rows: list[list[object]]) -> None:
    """The ClientSession table and its goals."""
    headers = ["server", "call", "calls", "p50 ms", "p99 ms", "server CPU ms", "SDK CPU ms", "schema check ms"]
    print(table(headers, rows))
    for row in rows:
        goal = {"add": GOAL_SDK_ADD_MS, f"list {LIST_LIMIT}": GOAL_SDK_LIST_MS}.get(str(row[1]))
        if goal is not None:
            p50 = float(row[3])  # type: ignore[arg-type]
            print(f"{row[0]} {row[1]} via ClientSession p50 {p50:.2f} ms, goal <= {goal:g} ms: {verdict(p50 <= goal)}")
    for name, kind, _calls, p50, _p99, _server, sdk, check in rows:
        if name == FLOOR:
            print(
                f"floor ({FLOOR} {kind}): p50 {p50:.2f} ms; the caller's CPU {sdk:.2f} ms + schema check {check:.2f} ms"
                " per call, the least a call through ClientSession costs here"
            )
    print(
        "(CPU per call: the server process; the calling process apart from the schema check; and the check itself,\n"
        " ClientSession's jsonschema.validate of each structured result against the tool's outputSchema, re-timed\n"
        " on the series' last result. The rest of the p50 is waiting: pipes, scheduling, the machine's other load.)"
    )


def run(options: argparse.Namespace) -> None:
    """Install or find the peer, measure all servers side by side, then the Python client."""
    reason = npm_install(options.scratch) if options.install else None
    peer = find_peer(options.scratch) if reason is None else reason
    with taskflow_databases(not options.no_postgres) as databases, ExitStack() as stack:
        urls = {f"taskflow {kind}": url for kind, url in databases.items()}
        setup = [
            ("client", "raw JSON-RPC 2.0 over the child's stdin/stdout, one request at a time, no SDK"),
            (
                "calls",
                f"ping, add a task, list {LIST_LIMIT} tasks; {options.iterations} measured per server "
                f"and call in {options.rounds} alternating rounds, after {options.warmup} warm-up calls",
            ),
            ("taskflow", "`taskflow mcp` from this checkout's code; SQLite WAL synchronous=FULL"),
        ]
        if "taskflow postgresql" in urls:
            setup.append(("postgresql", database_line(urls["taskflow postgresql"])))
        setup.append(("peer", f"{peer.versions}; {peer.durability}" if isinstance(peer, Peer) else f"SKIPPED: {peer}"))
        setup.append(("machine", machine()))
        print(describe("peers: stdio MCP tool calls beside @allpepper/task-orchestrator", setup))
        print(LOADED_MACHINE_NOTE + "\n", flush=True)
        envs = {
            name: checkout_env(TASKFLOW_DATABASE_URL=url, TASKFLOW_USER="bench", TASKFLOW_TIMEZONE="UTC")
            for name, url in urls.items()
        }
        servers = [
            taskflow_server(name, stack.enter_context(stdio_server(taskflow_module_command("mcp"), env)))
            for name, env in envs.items()
        ]
        if isinstance(peer, Peer):
            home = stack.enter_context(tempfile.TemporaryDirectory(prefix="taskflow-bench-peer-"))
            try:
                rpc = stack.enter_context(stdio_server(peer.command, checkout_env(TASK_ORCHESTRATOR_HOME=home)))
                servers.append(orchestrator_server(rpc))
            except (RpcError, LookupError) as error:
                print(f"peer SKIPPED: it did not start as expected: {error}\n")
        found = measure(servers, options)
        report_raw(servers, found, durable_commit_ms(Path(urls["taskflow sqlite"].removeprefix("sqlite:///")).parent))
        stack.close()  # the raw servers exit before the Python client's servers start
        print(
            "\nThe same calls through the official Python client (mcp ClientSession.call_tool over stdio), "
            "on the databases filled above:\n",
            flush=True,
        )
        command = taskflow_module_command("mcp")
        floor = [sys.executable, str(Path(__file__).resolve()), "--serve-floor"]
        sdk_servers = [
            (name, StdioServerParameters(command=command[0], args=command[1:], env=env), taskflow_sdk_series())
            for name, env in envs.items()
        ]
        sdk_servers.append(
            (
                FLOOR,
                StdioServerParameters(command=floor[0], args=floor[1:], env=checkout_env()),
                [("text", lambda _i: ("text", {})), ("tiny", lambda _i: ("tiny", {}))],
            )
        )
        with tempfile.TemporaryFile("w+") as errlog:  # the servers' standard error, kept out of the report
            rows = [
                row
                for name, parameters, series in sdk_servers
                for row in asyncio.run(sdk_series(name, parameters, series, options, errlog))
            ]
        report_sdk(rows)
        print(f"\nmachine at the end: {machine()}")


def main() -> None:
    """Entry point."""
    options = parse_args()
    serve_floor() if options.serve_floor else run(options)


if __name__ == "__main__":
    main()
