"""Command-line wall time: `taskflow tasks`, one offline `taskflow chat` turn, and `taskflow mcp` up to `initialize`.

Each command runs as a fresh process on a local SQLite database holding some tasks, several times, in turns with
`python -c pass` (the interpreter's own start-up, the anchor) and Taskwarrior's `task list` on as many tasks when
`task` is installed; the median of each is compared with the goals. `taskflow` runs this checkout's code with this
interpreter, as the console script does.
Run from the repository root: python -m bench.cli --help
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also runnable as `python bench/cli.py`

from bench.common import (
    LOADED_MACHINE_NOTE,
    StdioRpc,
    checkout_env,
    describe,
    machine,
    stdio_server,
    table,
    taskflow_module_command,
    verdict,
)

GOALS_MS = {"taskflow tasks": 300.0, "taskflow chat (offline turn)": 700.0, "taskflow mcp until initialize": 600.0}
ANCHOR = "python -c pass"
TASKWARRIOR = "task list (Taskwarrior)"


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="runs of each command; the median counts (default 7)")
    parser.add_argument("--tasks", type=int, default=30, help="open tasks in the database (default 30)")
    options = parser.parse_args()
    if options.runs < 1 or options.tasks < 0:
        parser.error("--runs must be at least 1 and --tasks at least 0")
    return options


def timed_run(command: list[str], env: dict[str, str]) -> float:
    """Wall seconds of a command from spawn to exit; it must succeed."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, timeout=120)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.decode(errors='replace').strip()}")
    return elapsed


def mcp_until_initialize(env: dict[str, str]) -> float:
    """Wall seconds from spawning `taskflow mcp` to its answer to `initialize`."""
    started = time.perf_counter()
    rpc = StdioRpc(taskflow_module_command("mcp"), env)
    try:
        rpc.initialize()
        return time.perf_counter() - started
    finally:
        rpc.close()


def seed_taskflow(env: dict[str, str], count: int) -> None:
    """`count` open tasks through the stdio tool server (which also creates the database and the user)."""
    with stdio_server(taskflow_module_command("mcp"), env) as rpc:
        for i in range(count):
            rpc.call_tool("add_task", {"title": f"task {i} call the plumber", "priority": "high", "tags": ["home"]})


def taskwarrior(folder: Path, count: int) -> tuple[list[str], dict[str, str]] | None:
    """`task list` on its own data folder holding `count` tasks, or None when Taskwarrior is not installed."""
    task = shutil.which("task")
    if task is None:
        return None
    taskrc = folder / "taskrc"
    taskrc.write_text(f"data.location={folder / 'task-data'}\nconfirmation=off\nverbose=nothing\n")
    env = {**os.environ, "TASKRC": str(taskrc)}
    for i in range(count):
        subprocess.run(
            [task, "add", f"task {i} call the plumber", "priority:H", "+home"],
            env=env,
            capture_output=True,
            check=True,
            timeout=60,
        )
    return [task, "list"], env


def run(options: argparse.Namespace) -> None:
    """Seed the databases, time every command in turns, report medians against the goals."""
    with tempfile.TemporaryDirectory(prefix="taskflow-bench-cli-") as folder:
        env = checkout_env(
            TASKFLOW_DATABASE_URL=f"sqlite:///{folder}/taskflow.db", TASKFLOW_USER="bench", TASKFLOW_TIMEZONE="UTC"
        )
        for key in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "TASKFLOW_GEMINI_API_KEY", "TASKFLOW_MCP_URL"):
            env.pop(key, None)
        # An installed package runs from bytecode (pip compiles it); without the cache each run would compile this
        # checkout's modules afresh. The unmeasured first pass below writes it.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        seed_taskflow(env, options.tasks)
        peer = taskwarrior(Path(folder), options.tasks)
        commands: dict[str, Callable[[], float]] = {
            ANCHOR: lambda: timed_run([sys.executable, "-c", "pass"], env),
            "taskflow tasks": lambda: timed_run(taskflow_module_command("tasks"), env),
            "taskflow chat (offline turn)": lambda: timed_run(
                taskflow_module_command("chat", "--offline", "add water the plants tomorrow at 9am"), env
            ),
            "taskflow mcp until initialize": lambda: mcp_until_initialize(env),
        }
        if peer is not None:
            commands[TASKWARRIOR] = lambda: timed_run(*peer)
        setup = [
            ("database", f"local SQLite with {options.tasks} open tasks (each chat run adds one more)"),
            ("taskflow", f"{sys.executable} -c 'from taskflow.cli import main; main()' (this checkout's code)"),
            ("peer", "Taskwarrior `task list` on as many tasks" if peer else "Taskwarrior not installed: skipped"),
            ("runs", f"{options.runs} of each command, in turns; the median counts"),
            ("machine", machine()),
        ]
        print(describe("cli: command-line wall time from spawn", setup))
        print(LOADED_MACHINE_NOTE + "\n", flush=True)
        for measure in commands.values():  # one unmeasured pass warms the file cache
            measure()
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(options.runs):
            for name, measure in commands.items():
                samples[name].append(measure() * 1000)
        report(samples)


def report(samples: dict[str, list[float]]) -> None:
    """Medians, their ratio to the anchor, and the goals."""
    median = {name: statistics.median(values) for name, values in samples.items()}
    anchor = median[ANCHOR]
    rows = []
    for name, values in samples.items():
        goal = GOALS_MS.get(name)
        rows.append(
            [
                name,
                median[name],
                min(values),
                median[name] / anchor,
                "" if goal is None else goal,
                "" if goal is None else median[name] / goal,
            ]
        )
    print(table(["command", "median ms", "min ms", "x python -c pass", "goal ms", "x goal"], rows))
    print()
    for name, goal in GOALS_MS.items():
        print(f"goal: {name} <= {goal:g} ms: {verdict(median[name] <= goal)} ({median[name]:.0f} ms)")
    if TASKWARRIOR in median:
        ratio = median["taskflow tasks"] / median[TASKWARRIOR]
        print(f"taskflow tasks / Taskwarrior task list = {ratio:.0f}x")
    print(f"\nmachine at the end: {machine()}")


def main() -> None:
    """Entry point."""
    run(parse_args())


if __name__ == "__main__":
    main()
