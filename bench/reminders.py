"""Reminder lateness: reminders due over a short window, fired by the real scheduler and delivered in process.

Reminders are added through the service, each in runtime.unit_of_work() (whose commit wakes the scheduler): some
before the event services start, the rest while they run, a few seconds before their time. The event services are
the worker's own (events.background.EventServices: relay, reminder scheduler, PostgreSQL LISTEN) with the
in-process transport, where a recording consumer on the notifications topic notes when each reminder.due arrives.
Run from the repository root: python -m bench.reminders --help
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also runnable as `python bench/reminders.py`

import anyio
from sqlalchemy import select
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
from events.background import EventServices, consumers_for
from events.inprocess import InProcessTransport
from events.relay import Transport
from mcp_server import service
from mcp_server.event_catalog import NOTIFICATIONS, EventType
from mcp_server.event_models import OutboxEvent
from mcp_server.models import utcnow
from mcp_server.runtime import Runtime
from mcp_server.service import Actor, TaskCreate

GOAL_P99_SECONDS = 1.0
SETTLE_SECONDS = 2.0  # services keep running this long after the last arrival, for late duplicates


@dataclass(frozen=True)
class Plan:
    """One reminder to add: whose, when it is due, and when to add it (ahead: before the services start)."""

    number: int
    actor: Actor
    remind_at: datetime
    ahead: bool
    add_at: datetime


@dataclass(frozen=True)
class Added:
    """A reminder as added: its task, when it is due, and which path it took."""

    task_id: int
    remind_at: datetime
    ahead: bool


@dataclass(frozen=True)
class Outcome:
    """What became of one reminder: when its event(s) were written and when they arrived (UTC)."""

    added: Added
    fired: list[datetime]
    delivered: list[datetime]


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reminders", type=int, default=1_000, help="reminders in all (default 1000)")
    parser.add_argument("--window", type=float, default=30.0, help="seconds the reminders are due over (default 30)")
    parser.add_argument("--users", type=int, default=20, help="users the reminders belong to (default 20)")
    parser.add_argument("--ahead", type=float, default=0.5, help="share added before the services start (default 0.5)")
    parser.add_argument(
        "--lead-in",
        type=float,
        default=15.0,
        help="seconds from the plan to the window's start; the ahead share is added meanwhile (default 15)",
    )
    parser.add_argument(
        "--notice",
        default="0.5,5",
        help="live reminders are added MIN,MAX seconds (uniform) before they are due (default 0.5,5)",
    )
    parser.add_argument("--even", action="store_true", help="space the due times evenly instead of at random")
    parser.add_argument("--grace", type=float, default=5.0, help="wait this long after the window (default 5)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    return parser.parse_args()


def plan(options: argparse.Namespace, actors: list[Actor], start: datetime) -> list[Plan]:
    """Due times over the window (random or even), owners round-robin, the first share added ahead."""
    rng = random.Random(options.seed)
    low, high = (float(x) for x in options.notice.split(","))
    n = options.reminders
    offsets = (
        [options.window * (i + 0.5) / n for i in range(n)]
        if options.even
        else [rng.random() * options.window for _ in range(n)]
    )
    ahead = set(rng.sample(range(n), round(n * options.ahead)))
    plans = []
    for i, offset in enumerate(offsets):
        remind_at = start + timedelta(seconds=offset)
        add_at = start if i in ahead else remind_at - timedelta(seconds=rng.uniform(low, high))
        plans.append(Plan(i, actors[i % len(actors)], remind_at, i in ahead, add_at))
    return plans


def add(runtime: Runtime, planned: Plan) -> Added:
    """Add the reminder as the add_task tool does: one service call in a unit of work that wakes the scheduler."""
    data = TaskCreate(title=f"call the dentist #{planned.number}", tags=["bench"], remind_at=planned.remind_at)
    with runtime.unit_of_work() as session:
        task = service.add_task(session, actor=planned.actor, data=data, now=runtime.clock())
        return Added(task.id or 0, planned.remind_at, planned.ahead)


async def add_live(runtime: Runtime, plans: list[Plan]) -> list[Added]:
    """Add each live reminder at its moment, off the event loop as a tool call would; late adds are skipped."""
    added = []
    for planned in sorted(plans, key=lambda p: p.add_at):
        await anyio.sleep(max(0.0, (planned.add_at - utcnow()).total_seconds()))
        if planned.remind_at > utcnow():
            added.append(await anyio.to_thread.run_sync(add, runtime, planned))
    return added


async def observe(
    runtime: Runtime, plans: list[Plan], options: argparse.Namespace
) -> tuple[list[Added], RecordingConsumer]:
    """Add the ahead share, start the event services, add the rest as planned, wait for the reminders to arrive."""
    recorder = RecordingConsumer()
    consumers = consumers_for(runtime)
    recorder.subscribe(consumers, (NOTIFICATIONS,))
    added = [add(runtime, planned) for planned in plans if planned.ahead]
    first_due = min(planned.remind_at for planned in plans)
    if utcnow() > first_due - timedelta(seconds=1):
        raise SystemExit(f"adding {len(added)} reminders ahead took too long; give a longer --lead-in")
    end = max(planned.remind_at for planned in plans) + timedelta(seconds=options.grace)
    async with anyio.create_task_group() as group:
        # cast: InProcessTransport.topics is a read-only property, the Transport protocol declares an attribute
        transport = cast(Transport, InProcessTransport(consumers))
        group.start_soon(EventServices(runtime, transport).run)
        added += await add_live(runtime, [planned for planned in plans if not planned.ahead])
        while utcnow() < end:
            if len({arrival.data.get("task_id") for arrival in recorder.arrivals}) >= len(added):
                # Every reminder has arrived: watch a little longer for duplicates, not the whole grace period.
                end = min(end, utcnow() + timedelta(seconds=SETTLE_SECONDS))
            await anyio.sleep(0.1)
        group.cancel_scope.cancel()
    return added, recorder


def outcomes(runtime: Runtime, added: list[Added], recorder: RecordingConsumer) -> list[Outcome]:
    """Each reminder's reminder.due outbox rows (their created_at) and deliveries."""
    fired: dict[int, list[datetime]] = {}
    with runtime.unit_of_work() as session:
        rows = session.scalars(select(OutboxEvent).where(col(OutboxEvent.type) == EventType.reminder_due.value))
        for row in rows:
            fired.setdefault(int(row.data["task_id"]), []).append(row.created_at)
    delivered: dict[int, list[datetime]] = {}
    for arrival in recorder.arrivals:
        delivered.setdefault(int(arrival.data["task_id"]), []).append(arrival.at)
    return [Outcome(a, sorted(fired.get(a.task_id, [])), sorted(delivered.get(a.task_id, []))) for a in added]


def lateness(found: list[Outcome], moment: str) -> list[float]:
    """Seconds from each reminder's time to its first event being fired or delivered (those that were)."""
    return [(getattr(o, moment)[0] - o.added.remind_at).total_seconds() for o in found if getattr(o, moment)]


def row(path: str, measure: str, seconds: list[float], planned: int) -> list[object]:
    """A report row: how many of the planned reminders got there, and their lateness."""
    if not seconds:
        return [path, measure, f"0 of {planned}", "", "", "", ""]
    s: Stats = stats(seconds)
    return [path, measure, f"{s.n:,} of {planned:,}", *stat_cells(s), min(seconds) * 1000]


def report(options: argparse.Namespace, plans: list[Plan], found: list[Outcome]) -> None:
    """The lateness table, duplicates and misses, and the goal."""
    rows = []
    for path, keep in (("ahead", True), ("live", False), ("all", None)):
        chosen = [o for o in found if keep is None or o.added.ahead is keep]
        planned = sum(1 for p in plans if keep is None or p.ahead is keep)
        rows.append(row(path, "fired", lateness(chosen, "fired"), planned))
        rows.append(row(path, "delivered", lateness(chosen, "delivered"), planned))
    relay_lag = [(o.delivered[0] - o.fired[0]).total_seconds() for o in found if o.fired and o.delivered]
    rows.append(row("all", "delivered - fired", relay_lag, len(plans)))
    print(table(["path", "lateness", "reminders", "p50 ms", "p99 ms", "max ms", "min ms"], rows))
    print(
        "fired = the reminder.due outbox row's created_at (written by the scheduler in the claiming transaction); "
        "delivered = wall clock when the recording consumer got the event; both minus remind_at"
    )
    twice = sum(1 for o in found if len(o.fired) > 1)
    delivered_twice = sum(1 for o in found if len(o.delivered) > 1)
    never = sum(1 for o in found if not o.fired)
    undelivered = sum(1 for o in found if not o.delivered)
    early = sum(1 for o in found if o.fired and o.fired[0] < o.added.remind_at)
    skipped = len(plans) - len(found)
    print(
        f"added {len(found):,} of {len(plans):,} planned ({skipped} skipped: their add came too late); "
        f"fired more than once: {twice}; delivered more than once: {delivered_twice}; "
        f"never fired: {never}; fired but never delivered: {undelivered - never}; fired early: {early}"
    )
    print(f"machine at the end: {machine()}\n")
    delivered = lateness(found, "delivered")
    p99 = stats(delivered).p99 / 1000 if delivered else float("inf")
    met = p99 <= GOAL_P99_SECONDS and not undelivered
    print(
        f"goal: delivered lateness p99 <= {GOAL_P99_SECONDS:g} s: {verdict(met)} "
        f"(p99 {p99 * 1000:,.0f} ms, {undelivered} undelivered)"
    )
    print(f"goal: no reminder fired more than once: {verdict(twice == 0)} ({twice})")
    print(f"goal: every reminder fired: {verdict(never == 0)} ({never} never fired)")


def header(options: argparse.Namespace, url: str) -> str:
    """What is measured, on what."""
    ahead = round(options.reminders * options.ahead)
    low, high = options.notice.split(",")
    spread = "evenly" if options.even else f"uniformly at random (seed {options.seed})"
    return describe(
        "reminders: lateness of due reminders, fired by the scheduler and delivered in process",
        [
            ("database", database_line(url)),
            (
                "reminders",
                f"{options.reminders:,} for {options.users} users, due {spread} over {options.window:g} s starting "
                f"{options.lead_in:g} s after planning; {ahead:,} added before the services start, "
                f"{options.reminders - ahead:,} while they run, each {low}-{high} s before it is due",
            ),
            ("adding", "mcp_server.service.add_task in runtime.unit_of_work() (one transaction per reminder)"),
            (
                "services",
                "events.background.EventServices: Relay (default settings, batch 100), ReminderScheduler "
                "(max_sleep 30 s on PostgreSQL), LISTEN forwarder; in-process transport, consumers_for(runtime) "
                f"plus a recording consumer on the notifications topic; kept running {SETTLE_SECONDS:g} s after the "
                f"last arrival (at most {options.grace:g} s after the last reminder's time)",
            ),
            ("machine", f"{machine()} at start; everything and PostgreSQL share it"),
        ],
    )


async def run(options: argparse.Namespace) -> None:
    """Create the database, plan and add the reminders while the services run, report, drop the database."""
    with throwaway_database() as url:
        print(header(options, url), flush=True)
        runtime = bench_runtime(url)
        try:
            actors = add_users(runtime, options.users)
            plans = plan(options, actors, utcnow() + timedelta(seconds=options.lead_in))
            started = time.perf_counter()
            added, recorder = await observe(runtime, plans, options)
            print(f"(observed for {time.perf_counter() - started:.1f} s)\n")
            report(options, plans, outcomes(runtime, added, recorder))
        finally:
            runtime.close()


def main() -> None:
    """Entry point."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    options = parse_args()
    if options.reminders < 1 or options.users < 1 or options.window <= 0 or not 0 <= options.ahead <= 1:
        raise SystemExit("--reminders and --users must be at least 1, --window positive, --ahead within 0..1")
    anyio.run(run, options)


if __name__ == "__main__":
    main()
