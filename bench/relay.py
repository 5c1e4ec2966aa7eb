"""Outbox relay throughput: events/s from the outbox to the stand-in Dapr sidecar and to in-process consumers.

The backlog is made by service calls (add, update, complete, delete, recurring tasks, reminders fired by the
scheduler) for several users; every measured run starts from the same backlog, reset in SQL. A run is the relay's
drain loop (publish_batch until it publishes nothing), each batch timed, on PostgreSQL.
Run from the repository root: python -m bench.relay --help
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also runnable as `python bench/relay.py`

import psycopg
from sqlalchemy import func, select
from sqlmodel import col

from bench.common import (
    RecordingConsumer,
    Stats,
    add_users,
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
from events.background import consumers_for
from events.inprocess import InProcessTransport
from events.relay import Outgoing, Relay, RelaySettings, Transport
from events.scheduler import ReminderScheduler
from mcp_server import service
from mcp_server.event_catalog import NOTIFICATIONS, TASK_EVENTS
from mcp_server.event_models import OutboxEvent
from mcp_server.models import Priority, Task
from mcp_server.runtime import Runtime
from mcp_server.service import Actor, TaskChanges, TaskCreate
from tests.fake_sidecar import FakeSidecar

GOAL_EVENTS_PER_SECOND = 2_000.0
PUBSUB = "taskflow-pubsub"
WARMUP_EVENTS = 200
TASKS_PER_TRANSACTION = 200
Setup = tuple[str, Transport, Callable[[], int]]  # a transport's name, itself, and its receiver's count so far
Sizes = list[tuple[int, int]]  # (batch size, backlog) of each run


class TimedRelay(Relay):
    """The product's relay, noting how long each claim and settle transaction takes."""

    def __init__(self, runtime: Runtime, transport: Transport, batch_size: int) -> None:
        super().__init__(runtime.engine, transport, runtime.signals, RelaySettings(batch_size=batch_size))
        self.claims: list[float] = []
        self.settles: list[float] = []

    def claim(self) -> list[Outgoing]:
        """Relay.claim, timed."""
        started = time.perf_counter()
        try:
            return super().claim()
        finally:
            self.claims.append(time.perf_counter() - started)

    def settle(self, claimed: Sequence[Outgoing], failed: set[int]) -> None:
        """Relay.settle, timed."""
        started = time.perf_counter()
        try:
            super().settle(claimed, failed)
        finally:
            self.settles.append(time.perf_counter() - started)


@dataclass(frozen=True)
class Backlog:
    """The prefilled outbox: its rows are ids up to `last_event`; tasks the consumers add come after `last_task`."""

    events: int
    last_event: int
    last_task: int
    by_type: dict[str, int]


@dataclass(frozen=True)
class Run:
    """One drain: events published, the wall time, each batch's duration, and what the receiver saw."""

    transport: str
    batch_size: int
    published: int
    elapsed: float
    batches: list[float]
    claims: list[float]
    settles: list[float]
    received: int
    left: int
    stopped: bool  # at the time budget, before the backlog was drained

    def row(self) -> list[object]:
        """The report row."""
        per_batch = stats(self.batches)
        mean = [sum(part) / len(part) * 1000 for part in (self.claims, self.settles)]
        publish = per_batch.mean - mean[0] - mean[1]  # what the batch spent outside its two transactions
        return [
            self.transport,
            self.batch_size,
            self.published,
            self.elapsed,
            self.published / self.elapsed,
            *stat_cells(per_batch),
            mean[0],
            publish,
            publish * len(self.batches) / self.published,
            mean[1],
            self.received,
            self.left,
        ]


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5_000, help="backlog per run at batch size >1 (default 5000)")
    parser.add_argument(
        "--small-batch-events",
        type=int,
        default=1_000,
        help="backlog per run at batch size 1, which is slow (default 1000)",
    )
    parser.add_argument("--batch-sizes", default="1,100", help="relay batch sizes, comma-separated (default 1,100)")
    parser.add_argument("--users", type=int, default=20, help="users the events belong to (default 20)")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="stop a drain after this long (default 30)")
    parser.add_argument(
        "--transports", default="dapr,inprocess", help="which transports to measure (default dapr,inprocess)"
    )
    return parser.parse_args()


def make_events(runtime: Runtime, actors: list[Actor], wanted: int) -> None:
    """Service calls, round-robin over the users, until the outbox holds `wanted` events; then fire the reminders."""
    # Per task: created; every 2nd updated; every 3rd completed (every 10th is recurring and completed, so the
    # recurrence consumer adds its next occurrence); every 20th deleted; every 8th has a reminder, fired by the
    # scheduler once all tasks exist (a reminder.due event on the notifications topic).
    count, k = 0, 0
    while count < wanted:
        with runtime.unit_of_work() as session:
            now = runtime.clock()
            for _ in range(TASKS_PER_TRANSACTION):
                actor = actors[k % len(actors)]
                data = TaskCreate(
                    title=f"call the plumber about the boiler {k}",
                    priority=Priority.high if k % 4 == 0 else Priority.medium,
                    tags=["home", "bench"],
                    due=now + timedelta(days=1 + k % 30),
                    recurrence="FREQ=DAILY" if k % 10 == 0 else None,
                    remind_at=now + timedelta(hours=1) if k % 8 == 0 else None,
                )
                task = service.add_task(session, actor=actor, data=data, now=now)
                task_id = task.id or 0
                if k % 2 == 0:
                    changes = TaskChanges(priority=Priority.low)
                    service.update_task(session, actor=actor, task_id=task_id, changes=changes, now=now)
                if k % 3 == 0 or k % 10 == 0:
                    service.complete_task(session, actor=actor, task_id=task_id, now=now)
                if k % 20 == 19:
                    service.delete_task(session, actor=actor, task_id=task_id, now=now)
                k += 1
            count = session.scalar(select(func.count()).select_from(OutboxEvent)) or 0
    later = runtime.clock() + timedelta(hours=2)
    scheduler = ReminderScheduler(runtime.engine, runtime.signals, clock=lambda: later)
    while scheduler.fire_due():
        pass


def backlog_of(runtime: Runtime) -> Backlog:
    """What the prefill made."""
    with runtime.unit_of_work() as session:
        grouped = select(col(OutboxEvent.type), func.count()).group_by(col(OutboxEvent.type))
        by_type: dict[str, int] = dict(session.execute(grouped).all())
        last_event = session.scalar(select(func.max(OutboxEvent.id))) or 0
        last_task = session.scalar(select(func.max(Task.id))) or 0
    short = {name.removeprefix("com.taskflow."): count for name, count in by_type.items()}
    return Backlog(sum(by_type.values()), last_event, last_task, short)


def reset(url: str, backlog: Backlog, events: int) -> None:
    """The first `events` prefilled events unsent again, the rest sent; what earlier runs added gone; vacuumed."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("DELETE FROM inbox")
        connection.execute("DELETE FROM outbox WHERE id > %s", (backlog.last_event,))
        connection.execute("DELETE FROM tasks WHERE id > %s", (backlog.last_task,))
        connection.execute(
            "WITH kept AS (SELECT id FROM outbox ORDER BY id LIMIT %s) "
            "UPDATE outbox SET attempts = 0, available_at = created_at, "
            "sent_at = CASE WHEN id IN (SELECT id FROM kept) THEN NULL ELSE now() END",
            (events,),
        )
        connection.execute("VACUUM ANALYZE outbox, inbox, tasks")


async def drain(relay: TimedRelay, budget: float) -> tuple[int, float, list[float], bool]:
    """Relay.drain, each batch timed, stopping after `budget` seconds: (published, seconds, batches, stopped)."""
    published, batches = 0, list[float]()
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < budget:
        batch_started = time.perf_counter()
        count = await relay.publish_batch()
        if not count:
            return published, time.perf_counter() - started, batches, False
        batches.append(time.perf_counter() - batch_started)
        published += count
    return published, elapsed, batches, True


async def measure(
    url: str,
    runtime: Runtime,
    backlog: Backlog,
    setup: Setup,
    batch_size: int,
    events: int,
    budget: float,
) -> Run:
    """Warm up (connections, channel), then drain a backlog of `events`; setup = (name, transport, receiver count)."""
    name, transport, received = setup
    reset(url, backlog, min(WARMUP_EVENTS, events))
    await drain(TimedRelay(runtime, transport, batch_size), budget)
    reset(url, backlog, events)
    relay = TimedRelay(runtime, transport, batch_size)
    before = received()
    published, elapsed, batches, stopped = await drain(relay, budget)
    got, left = received() - before, relay.backlog().pending
    claims = relay.claims[: len(batches)]  # not the last one, which found nothing and ended the drain
    return Run(name, batch_size, published, elapsed, batches, claims, relay.settles, got, left, stopped)


def commit_floor(url: str, runs: int = 300) -> Stats:
    """One inbox row INSERT + COMMIT on one psycopg connection (after 30 unmeasured): what a consumer commit costs."""
    durations = []
    with psycopg.connect(url) as connection:
        for n in range(runs + 30):
            started = time.perf_counter()
            connection.execute(
                "INSERT INTO inbox (consumer, source, event_id, handled_at) VALUES ('floor', 'bench', %s, now())", (n,)
            )
            connection.commit()
            durations.append(time.perf_counter() - started)
        connection.execute("DELETE FROM inbox WHERE consumer = 'floor'")
        connection.commit()
    return stats(durations[30:])


def serve_sidecar(connection: Connection) -> None:
    """In a child process: run the stand-in sidecar, send its ports, answer "count" until told "stop"."""
    sidecar = FakeSidecar()
    sidecar.start()
    connection.send((sidecar.grpc_port, sidecar.http_port))
    while (request := connection.recv()) != "stop":
        connection.send(len(sidecar.published) if request == "count" else None)
    sidecar.stop()


@contextmanager
def sidecar_process() -> Iterator[Connection]:
    """The stand-in sidecar in its own process (as daprd is), with the SDK's DAPR_* settings pointing at it."""
    context = multiprocessing.get_context("spawn")  # gRPC's threads do not survive a fork
    ours, theirs = context.Pipe()
    child = context.Process(target=serve_sidecar, args=(theirs,), name="fake-sidecar", daemon=True)
    child.start()
    try:
        grpc_port, http_port = ours.recv()
        for name in ("DAPR_GRPC_ENDPOINT", "DAPR_HTTP_ENDPOINT", "DAPR_API_TOKEN"):
            os.environ.pop(name, None)
        os.environ.update(DAPR_RUNTIME_HOST="127.0.0.1", DAPR_GRPC_PORT=str(grpc_port), DAPR_HTTP_PORT=str(http_port))
        yield ours
    finally:
        if child.is_alive():
            ours.send("stop")
            child.join(timeout=10)
        if child.is_alive():
            child.kill()
            child.join()


def received_by(sidecar: Connection) -> int:
    """How many entries the sidecar has accepted so far."""
    sidecar.send("count")
    return int(sidecar.recv())


async def over_dapr(url: str, runtime: Runtime, backlog: Backlog, sizes: Sizes, budget: float) -> list[Run]:
    """The real DaprTransport to the stand-in sidecar over gRPC, one bulk request per topic per batch."""
    from events.dapr_transport import DaprTransport

    with sidecar_process() as sidecar:
        transport = DaprTransport(pubsub_name=PUBSUB)
        setup: Setup = ("dapr (gRPC)", transport, lambda: received_by(sidecar))
        try:
            return [await measure(url, runtime, backlog, setup, size, events, budget) for size, events in sizes]
        finally:
            await transport.aclose()


async def in_process(url: str, runtime: Runtime, backlog: Backlog, sizes: Sizes, budget: float) -> list[Run]:
    """InProcessTransport to the product's consumers (recurrence) plus a recording consumer of every event."""
    consumers = consumers_for(runtime)
    recorder = RecordingConsumer()
    recorder.subscribe(consumers, (TASK_EVENTS, NOTIFICATIONS))
    # cast: InProcessTransport.topics is a read-only property, the Transport protocol declares an attribute
    transport = cast(Transport, InProcessTransport(consumers))
    setup: Setup = ("in-process", transport, lambda: len(recorder.arrivals))
    return [await measure(url, runtime, backlog, setup, size, events, budget) for size, events in sizes]


def header(options: argparse.Namespace, url: str, backlog: Backlog) -> str:
    """What is measured, on what."""
    mix = ", ".join(f"{name} {count:,}" for name, count in sorted(backlog.by_type.items(), key=lambda kv: -kv[1]))
    return describe(
        "relay: outbox relay throughput (events/s) and per-batch latency",
        [
            ("database", database_line(url)),
            ("backlog", f"{backlog.events:,} events made by service calls for {options.users} users ({mix})"),
            (
                "runs",
                f"batch size 1: first {options.small_batch_events:,} events; larger batches: first "
                f"{options.events:,}; each run after a {WARMUP_EVENTS}-event warm-up drain and a reset, and stopped "
                f"after {options.max_seconds:g} s if not drained by then",
            ),
            (
                "dapr",
                "events.dapr_transport.DaprTransport (SDK gRPC client, BulkPublishEvent per topic) to "
                "tests.fake_sidecar.FakeSidecar in a child process (records, answers at once)",
            ),
            (
                "in-process",
                "InProcessTransport(consumers_for(runtime)): the recurrence consumer (completed events; "
                "recurring ones add a task and a task.created event, relayed in the same drain) plus a recording "
                "consumer of every event; each consumer takes a batch's new events in one transaction (an inbox row "
                "each, one commit)",
            ),
            ("timed", "Relay.publish_batch in a loop until it publishes nothing (= Relay.drain)"),
            ("machine", f"{machine()} at start; relay, consumers, sidecar and PostgreSQL share it"),
        ],
    )


def report(runs: list[Run], floors: tuple[Stats, Stats], budget: float) -> None:
    """The figures, the durable-commit floor and the product owner's goal."""
    headers = [
        "transport",
        "batch",
        "events",
        "seconds",
        "events/s",
        "batch p50 ms",
        "batch p99 ms",
        "batch max ms",
        "claim ms",
        "publish ms",
        "per event",
        "settle ms",
        "received",
        "left",
    ]
    print(table(headers, [run.row() for run in runs]))
    print(
        "events = published in the drain (in-process: the backlog plus the task.created events the recurrence "
        "consumer added meanwhile); claim/publish/settle = mean ms per batch (claim and settle are the relay's two "
        "transactions; publish = the rest: the transport, and in-process the consumers' own transactions; per event = "
        "publish ms / events in the batch); "
        "received = distinct events the sidecar or the recording consumer got; left = unsent events after the drain"
    )
    for when, floor in zip(("before", "after"), floors, strict=True):
        print(
            f"floor {when} the runs: one inbox INSERT + COMMIT on one psycopg connection: p50 {floor.p50:.2f} ms, "
            f"p99 {floor.p99:.2f} ms -> at most {1000 / floor.p50:,.0f} consumer transactions/s in sequence"
        )
    print(f"machine at the end: {machine()}\n")
    for run in runs:
        if run.stopped:
            print(
                f"note: {run.transport} batch {run.batch_size} stopped at the {budget:g} s budget with {run.left:,} "
                "events unsent; its events/s is over the part drained"
            )
        elif run.left or run.received < run.published:
            print(f"WARNING: {run.transport} batch {run.batch_size}: {run.left} left, {run.received} received")
    local = {run.batch_size: run for run in runs if run.transport == "in-process"}
    for batch_size, run in sorted(local.items()):
        rate = run.published / run.elapsed
        print(
            f"goal: in-process >= {GOAL_EVENTS_PER_SECOND:,.0f} events/s at batch size {batch_size}: "
            f"{verdict(rate >= GOAL_EVENTS_PER_SECOND)} ({rate:,.0f}/s)"
        )


async def run(options: argparse.Namespace) -> None:
    """Create the database and the backlog, measure every transport and batch size, report, drop the database."""
    batch_sizes = [int(size) for size in options.batch_sizes.split(",")]
    sizes = [(size, options.small_batch_events if size == 1 else options.events) for size in batch_sizes]
    transports = set(options.transports.split(","))
    with throwaway_database() as url:
        runtime = bench_runtime(url)
        try:
            started = time.perf_counter()
            make_events(runtime, add_users(runtime, options.users), max(events for _, events in sizes))
            backlog = backlog_of(runtime)
            print(header(options, url, backlog))
            print(f"(backlog made in {time.perf_counter() - started:.1f} s)\n", flush=True)
            first_floor = commit_floor(url)
            runs: list[Run] = []
            if "dapr" in transports:
                runs += await over_dapr(url, runtime, backlog, sizes, options.max_seconds)
            if "inprocess" in transports:
                runs += await in_process(url, runtime, backlog, sizes, options.max_seconds)
            report(runs, (first_floor, commit_floor(url)), options.max_seconds)
        finally:
            runtime.close()


def main() -> None:
    """Entry point."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    options = parse_args()
    if options.events < 1 or options.small_batch_events < 1 or options.users < 1:
        raise SystemExit("--events, --small-batch-events and --users must be at least 1")
    asyncio.run(run(options))


if __name__ == "__main__":
    main()
