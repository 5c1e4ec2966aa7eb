"""Agent turn latency: one tool round through chat_turn, against a zero-latency Gemini stand-in and offline.

Each turn is agent.session.chat_turn: the thread loaded from memory, the in-memory MCP tool server, the agent loop,
the model asked twice (a tool call, then the answer) and the thread saved. The model is GeminiModel talking to
tests.fake_gemini (a scripted local stand-in of the Gemini REST API that answers at once), or the offline
interpreter. Commands alternate between adding a task and listing tasks; on PostgreSQL and on SQLite.
Run from the repository root: python -m bench.agent_turn --help
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import logging
import pstats
import re
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also runnable as `python bench/agent_turn.py`

from sqlmodel import Session

from agent.conversation import Model, ModelRequest, ToolCall, ToolResult
from agent.gemini import GeminiModel
from agent.offline import OfflineModel
from agent.session import chat_turn
from bench.common import (
    Stats,
    bench_runtime,
    database_line,
    describe,
    machine,
    stat_cells,
    stats,
    table,
    throwaway_database,
    verdict,
)
from mcp_server.migrate import ensure_schema
from mcp_server.runtime import Runtime
from tests import fake_gemini
from tests.fake_gemini import calls_chunk, function_call, get, last_parts, text_chunk

GOAL_OVERHEAD_MS = 20.0
ADD = re.compile(r"add (?P<title>.+?) tomorrow at 5pm high priority #errands")


def command(i: int) -> str:
    """The person's i-th message: adding a task and listing tasks, alternately."""
    return f"add buy milk {i} tomorrow at 5pm high priority #errands" if i % 2 == 0 else "show my tasks"


def script(body: dict[str, Any]) -> fake_gemini.Reply:
    """The stand-in's answers: the tool call the offline interpreter would make, then a short reply to its result."""
    parts = last_parts(body)
    answered = [get(part, "functionResponse") for part in parts if get(part, "functionResponse")]
    if answered:
        result = get(answered[0], "response").get("result", {})
        if "tasks" in result:
            return [text_chunk(f"You have {len(result['tasks'])} open tasks.", finish="STOP")]
        return [text_chunk(f"Added {result.get('title')} for {result.get('due')}.", finish="STOP")]
    added = ADD.fullmatch(parts[-1].get("text", ""))
    if added:
        arguments = {"title": added["title"], "priority": "high", "tags": ["errands"], "due": "tomorrow 5pm"}
        return [calls_chunk(function_call("add_task", arguments))]
    return [calls_chunk(function_call("list_tasks", {}))]


class _TimedHandler(fake_gemini._Handler):
    """The stand-in's request handler, noting how long it spends on each request (its own latency)."""

    server: StandIn

    def do_POST(self) -> None:
        """Answer as the stand-in does, timed."""
        started = time.perf_counter()
        try:
            super().do_POST()
        finally:
            self.server.busy.append(time.perf_counter() - started)


class StandIn(fake_gemini._Server):
    """The Gemini stand-in's HTTP server (as the test fixture starts it), with its handling times."""

    def __init__(self, fake: fake_gemini.FakeGemini) -> None:
        super().__init__(fake)
        self.RequestHandlerClass = _TimedHandler
        self.busy: list[float] = []


@contextmanager
def gemini_stand_in() -> Iterator[StandIn]:
    """The scripted stand-in on a free local port, served from a thread of this process."""
    with fake_gemini.serving(StandIn(fake_gemini.FakeGemini(script=script))) as server:
        yield server  # type: ignore[misc]


@dataclass
class TimedRuntime(Runtime):
    """The product's runtime, timing units of work on the main thread: chat_turn's memory load and save."""

    # The tool server runs its units of work in worker threads (anyio.to_thread), so those are not counted.
    memory: list[float] = field(default_factory=list)

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """Runtime.unit_of_work, timed (begin to commit) when on the main thread."""
        if threading.current_thread() is not threading.main_thread():
            with super().unit_of_work() as session:
                yield session
            return
        started = time.perf_counter()
        try:
            with super().unit_of_work() as session:
                yield session
        finally:
            self.memory.append(time.perf_counter() - started)


class TimedModel:
    """A model whose streams are timed from the request to the last part."""

    def __init__(self, model: Model) -> None:
        self._model = model
        self.seconds: list[float] = []

    async def stream(self, request: ModelRequest) -> AsyncIterator[str | ToolCall]:
        """The wrapped model's stream, timed."""
        started = time.perf_counter()
        try:
            async for part in self._model.stream(request):
                yield part
        finally:
            self.seconds.append(time.perf_counter() - started)


class ToolClock:
    """A turn observer timing each tool call from tool_started to tool_finished."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._started: dict[str, float] = {}

    async def text(self, delta: str) -> None:
        """Streamed text: nothing to time."""

    async def tool_started(self, call: ToolCall) -> None:
        """A tool call begins."""
        self._started[call.id] = time.perf_counter()

    async def tool_finished(self, call: ToolCall, result: ToolResult) -> None:
        """A tool call ends; fail loudly on a tool error, which would make the figures meaningless."""
        self.seconds.append(time.perf_counter() - self._started.pop(call.id))
        if result.is_error:
            raise RuntimeError(f"{call.name} failed: {result.content}")


@dataclass(frozen=True)
class Turn:
    """One turn's wall time and the parts of it spent elsewhere or measured apart, in seconds."""

    total: float
    tools: float
    model: float
    stand_in: float
    memory: float
    cpu: float  # CPU time of the event loop's thread: the agent's own work, whatever else the machine runs

    @property
    def overhead(self) -> float:
        """The agent's own time: the turn minus the tools and minus the stand-in's own handling."""
        return self.total - self.tools - self.stand_in


@dataclass(frozen=True)
class Series:
    """The measured turns of one setup."""

    model: str
    database: str
    turns: list[Turn]

    def rows(self) -> list[list[object]]:
        """Report rows: the whole turn, the agent's overhead, and its parts."""
        parts = [
            ("turn (chat_turn)", [t.total for t in self.turns]),
            ("agent overhead", [t.overhead for t in self.turns]),
            ("  memory load+save", [t.memory for t in self.turns]),
            ("  model client", [t.model - t.stand_in for t in self.turns]),
            ("  rest", [t.overhead - t.memory - (t.model - t.stand_in) for t in self.turns]),
            ("agent CPU (loop thread)", [t.cpu for t in self.turns]),
            ("tool calls", [t.tools for t in self.turns]),
            ("stand-in", [t.stand_in for t in self.turns]),
        ]
        return [
            [self.model, self.database, name, *stat_cells(stats(seconds)), stats(seconds).mean]
            for name, seconds in parts
        ]


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=150, help="measured turns per setup (default 150)")
    parser.add_argument("--warmup", type=int, default=15, help="unmeasured turns per setup first (default 15)")
    parser.add_argument(
        "--turns-per-thread",
        type=int,
        default=10,
        help="turns in one conversation thread before a new one (default 10)",
    )
    parser.add_argument(
        "--profile", type=int, default=0, help="also cProfile this many Gemini turns on PostgreSQL (default 0: no)"
    )
    return parser.parse_args()


@dataclass(frozen=True)
class Meters:
    """The growing records (seconds each) of memory units of work, model streams and stand-in requests."""

    memory: list[float]
    model: list[float]
    stand_in: list[float]

    def marks(self) -> tuple[int, ...]:
        """Where each record ends now."""
        return tuple(len(record) for record in vars(self).values())

    def since(self, marks: tuple[int, ...]) -> list[list[float]]:
        """What each record gained after `marks`."""
        return [record[mark:] for record, mark in zip(vars(self).values(), marks, strict=True)]


async def turn(runtime: TimedRuntime, model: Model, meters: Meters, i: int, per_thread: int) -> Turn:
    """One chat turn, with its parts measured."""
    actor = runtime.local_actor  # created (in a unit of work of its own) before the first turn is timed
    clock = ToolClock()
    marks = meters.marks()
    started, cpu = time.perf_counter(), time.thread_time()
    await chat_turn(
        runtime,
        actor=actor,
        user_name="Amina",
        text=command(i),
        thread=f"bench-{i // per_thread}",
        model=model,
        observer=clock,
    )
    total, cpu = time.perf_counter() - started, time.thread_time() - cpu
    memory, streams, stand_in = meters.since(marks)
    if len(memory) != 2 or len(clock.seconds) != 1:
        raise RuntimeError(f"expected one load, one save and one tool call; saw {len(memory)} and {len(clock.seconds)}")
    return Turn(total, sum(clock.seconds), sum(streams), sum(stand_in), sum(memory), cpu)


async def series(
    options: argparse.Namespace, runtime: TimedRuntime, model: Model, stand_in: StandIn | None, labels: tuple[str, str]
) -> Series:
    """Warm-up turns, then the measured ones, on one runtime and model."""
    timed = TimedModel(model)
    meters = Meters(runtime.memory, timed.seconds, stand_in.busy if stand_in else [])
    for i in range(options.warmup):  # the first turn also builds the runtime's tool server, once
        await turn(runtime, timed, meters, -1 - i, options.turns_per_thread)
    turns = [await turn(runtime, timed, meters, i, options.turns_per_thread) for i in range(options.turns)]
    return Series(*labels, turns)


async def profile(options: argparse.Namespace, runtime: TimedRuntime, model: Model, stand_in: StandIn) -> str:
    """cProfile of Gemini turns (this thread only: not the tools' worker threads, not the stand-in)."""
    meters = Meters(runtime.memory, [], stand_in.busy)
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(options.profile):
        await turn(runtime, model, meters, 10_000 + i, options.turns_per_thread)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
    return out.getvalue()


def runtime_on(url: str) -> TimedRuntime:
    """A timed runtime on this database (an embedded SQLite one brought up to the current schema)."""
    plain = bench_runtime(url, user="bench-agent")
    runtime = TimedRuntime(settings=plain.settings, engine=plain.engine)
    ensure_schema(runtime.engine)
    return runtime


@contextmanager
def sqlite_database() -> Iterator[str]:
    """A new SQLite database file in a temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="taskflow-bench-") as directory:
        yield f"sqlite:///{directory}/taskflow.db"


async def measure_all(options: argparse.Namespace, pg_url: str, sqlite_url: str) -> tuple[list[Series], str]:
    """Every model on every database; the profile if asked for."""
    found: list[Series] = []
    report = ""
    with gemini_stand_in() as stand_in:
        for database, url in (("PostgreSQL", pg_url), ("SQLite", sqlite_url)):
            runtime = runtime_on(url)
            gemini = GeminiModel(api_key="bench-key", base_url=stand_in.fake.url, retries=0)
            try:
                found.append(await series(options, runtime, gemini, stand_in, ("gemini stand-in", database)))
                found.append(await series(options, runtime, OfflineModel(), None, ("offline", database)))
                if options.profile and database == "PostgreSQL":
                    report = await profile(options, runtime, gemini, stand_in)
            finally:
                await gemini.aclose()
                runtime.close()
    return found, report


def header(options: argparse.Namespace, pg_url: str) -> str:
    """What is measured, on what."""
    return describe(
        "agent_turn: one chat turn with one tool round, and the agent's own overhead in it",
        [
            ("database", f"{database_line(pg_url)}; SQLite (WAL, synchronous=FULL) in a temporary directory"),
            (
                "turn",
                "agent.session.chat_turn: memory load, in-memory MCP tool server and session, agent loop "
                "(model -> tool -> model), memory save",
            ),
            (
                "models",
                "GeminiModel (google-genai, streaming, retries=0) -> tests.fake_gemini stand-in in a thread of "
                "this process, answering at once; OfflineModel (the interpreter)",
            ),
            (
                "commands",
                "alternately 'add buy milk N tomorrow at 5pm high priority #errands' (add_task) and 'show my tasks' "
                f"(list_tasks, up to 50 tasks); {options.turns} measured turns per setup after {options.warmup} "
                f"warm-up; a new thread every {options.turns_per_thread} turns",
            ),
            (
                "overhead",
                "turn - tool calls (observer tool_started..tool_finished) - stand-in (its handler's time per "
                "request); memory = chat_turn's two units of work; model client = model stream time - stand-in; "
                "rest = the in-memory "
                "MCP session set-up, the loop and everything else; agent CPU = CPU time of the event loop's thread "
                "(all of the above but the tools' worker threads and the stand-in's thread)",
            ),
            ("machine", f"{machine()} at start; agent, stand-in, tools and PostgreSQL share it"),
        ],
    )


def report(found: list[Series]) -> None:
    """The table and the goal lines."""
    headers = ["model", "database", "part", "p50 ms", "p99 ms", "max ms", "mean ms"]
    print(table(headers, [row for s in found for row in s.rows()]))
    print(f"machine at the end: {machine()}\n")
    for s in found:
        overhead: Stats = stats([t.overhead for t in s.turns])
        print(
            f"goal: agent overhead <= {GOAL_OVERHEAD_MS:g} ms per tool round, {s.model} on {s.database}: "
            f"p50 {verdict(overhead.p50 <= GOAL_OVERHEAD_MS)} ({overhead.p50:.1f} ms), "
            f"p99 {verdict(overhead.p99 <= GOAL_OVERHEAD_MS)} ({overhead.p99:.1f} ms)"
        )


async def run(options: argparse.Namespace) -> None:
    """Create the databases, measure, report, drop them."""
    with throwaway_database() as pg_url, sqlite_database() as sqlite_url:
        print(header(options, pg_url), flush=True)
        found, profiled = await measure_all(options, pg_url, sqlite_url)
        report(found)
        if profiled:
            print(f"\ncProfile of {options.profile} Gemini turns on PostgreSQL (event loop thread):\n{profiled}")


def main() -> None:
    """Entry point."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    options = parse_args()
    if options.turns < 1 or options.warmup < 0 or options.turns_per_thread < 1 or options.profile < 0:
        raise SystemExit("--turns and --turns-per-thread must be at least 1, --warmup and --profile at least 0")
    asyncio.run(run(options))


if __name__ == "__main__":
    main()
