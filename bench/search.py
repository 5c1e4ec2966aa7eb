"""list_tasks search and filter latency for one user among ten, at 10k and 100k tasks, on PostgreSQL.

Times mcp_server.service.list_tasks inside mcp_server.db.unit_of_work (what a list_tasks tool call runs) on
generated tasks: titles and descriptions from a vocabulary of a few hundred words, tags, priorities, due dates
spread over a year, about 20% completed. Statements slower than the budget are shown with EXPLAIN ANALYZE.
Run from the repository root: python -m bench.search --help
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also runnable as `python bench/search.py`

import psycopg
from sqlalchemy import Engine, event

from bench.common import (
    ADMIN_URL,
    Stats,
    machine,
    server_version,
    stats,
    table,
    throwaway_database,
    time_calls,
    verdict,
)
from mcp_server import service
from mcp_server.accounts import actor_for, add_user
from mcp_server.db import create_db_engine, unit_of_work
from mcp_server.models import Priority
from mcp_server.service import Actor, TaskFilter


class Words:
    """A word list drawn from with weights 1/rank: the first words are common, the last ones rare."""

    def __init__(self, words: str) -> None:
        self.words = words.split()
        self.cum_weights = list(accumulate(1.0 / rank for rank in range(1, len(self.words) + 1)))

    def pick(self, rng: random.Random) -> str:
        """One word."""
        return rng.choices(self.words, cum_weights=self.cum_weights)[0]


VERBS = Words(
    "call email review prepare send book buy pay fix plan schedule update check write finish clean organise "
    "renew cancel confirm draft submit order pick return print sign read research compare ask remind follow "
    "arrange collect deliver file backup install test deploy refactor migrate document discuss present visit "
    "invite thank reply translate measure repair replace"
)
NOUNS = Words(
    "report invoice contract slides budget proposal flight hotel tickets groceries milk bread coffee dentist "
    "doctor appointment meeting agenda minutes newsletter blog post article podcast video photos album "
    "passport visa insurance taxes receipts rent mortgage car bike tyres oil filter boiler heating plumber "
    "electrician garden lawn fence roof windows curtains sofa table chairs desk laptop phone charger printer "
    "router backup server database release sprint roadmap ticket bug feature review interview candidate "
    "offer payroll expenses quarterly forecast inventory supplier customer client shipment package parcel "
    "gift birthday anniversary wedding party dinner lunch breakfast recipe vegetables fruit medicine "
    "prescription vaccine gym membership subscription library books course exam homework lecture thesis "
    "presentation workshop conference webinar training onboarding handbook policy audit licence permit"
)
PLACES = Words(
    "London Paris Berlin Madrid Lisbon Porto Barcelona Munich Dublin Amsterdam Brussels Vienna Prague Warsaw "
    "Rome Milan Athens Istanbul Cairo Nairobi Lagos Karachi Lahore Mumbai Delhi Dubai Singapore Tokyo Osaka "
    "Seoul Sydney Auckland Toronto Montreal Boston Chicago Denver Seattle Lima Bogota"
)
PEOPLE = Words(
    "Ana Bruno Carla Diego Elena Farid Grace Hugo Ines Jonas Keiko Luis Maria Nadia Omar Paula Quinn Rui "
    "Sara Tiago Uma Victor Wen Ximena Yusuf Zoe mum dad grandma landlord accountant manager team boss"
)
WORDS = Words(
    "urgent soon before after next week month today tomorrow weekend morning evening quick short long new old "
    "final draft second third important maybe remember please check again details notes list numbers "
    "figures copy scan online offline office home shop bank post station airport school hospital council "
    "project team family friends neighbours kids documents forms keys"
)
TAGS = Words(
    "work home errands finance health travel family urgent someday shopping admin reading learning garden "
    "car pets kids fitness friends bills projects ideas weekly calls email"
)
ZONES = ("Europe/Lisbon", "UTC", "America/New_York", "Asia/Karachi", "Europe/Berlin", "Asia/Tokyo")
COLUMNS = (
    "user_id",
    "title",
    "description",
    "status",
    "priority",
    "tags",
    "due_at",
    "due_date",
    "remind_at",
    "created_at",
    "updated_at",
    "completed_at",
)
CREATED_AT = COLUMNS.index("created_at")
COMMON_WORD = "call"
PREFIX = "lisb"
# Placeholders in the SQL that SQLAlchemy hands psycopg, and the LIMIT one at its end.
_PARAM = re.compile(r"%\((\w+)\)s")
_LIMIT = re.compile(r"LIMIT %\((\w+)\)s(::\w+)?\s*$")


@dataclass(frozen=True)
class Case:
    """One list_tasks request to time; `second_page` asks for the page after the first one."""

    name: str
    spec: TaskFilter
    second_page: bool = False


@dataclass(frozen=True)
class Result:
    """Timings of one case, how many tasks match it, and the SQL it ran: as sent, its values, and inlined."""

    case: Case
    stats: Stats
    matching: int
    returned: int
    sql: str
    params: dict[str, Any]
    literal: str


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="tasks of the measured user (default 10000,100000)")
    parser.add_argument("--users", type=int, default=10, help="users in the database (default 10)")
    parser.add_argument("--other-tasks", type=int, default=10_000, help="tasks of each other user (default 10000)")
    parser.add_argument("--runs", type=int, default=200, help="timed runs per query (default 200)")
    parser.add_argument(
        "--max-seconds", type=float, default=20.0, help="stop timing a query after this long (default 20)"
    )
    parser.add_argument("--warmup", type=int, default=10, help="untimed runs per query first (default 10)")
    parser.add_argument("--budget-ms", type=float, default=20.0, help="p99 goal at the largest size (default 20)")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE for every query")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the generated data (default 7)")
    return parser.parse_args()


class TaskMaker:
    """Generates realistic task rows for COPY."""

    def __init__(self, rng: random.Random, now: datetime) -> None:
        self.rng, self.now = rng, now

    def title(self) -> str:
        """A title such as 'book hotel in Lisbon' or 'call accountant about taxes'."""
        rng = self.rng
        verb, noun = VERBS.pick(rng), NOUNS.pick(rng)
        shape = rng.random()
        if shape < 0.35:
            return f"{verb} {noun}"
        if shape < 0.6:
            return f"{verb} {noun} in {PLACES.pick(rng)}"
        if shape < 0.85:
            return f"{verb} {PEOPLE.pick(rng)} about {noun}"
        return f"{verb} {WORDS.pick(rng)} {noun} for {PEOPLE.pick(rng)}"

    def description(self) -> str | None:
        """Half the tasks have notes of 5-40 words drawn from the whole vocabulary."""
        if self.rng.random() < 0.5:
            return None
        pools = (VERBS, NOUNS, PLACES, PEOPLE, WORDS, WORDS)
        words = [self.rng.choice(pools).pick(self.rng) for _ in range(self.rng.randint(5, 40))]
        return " ".join(words).capitalize() + "."

    def due(self, zone: ZoneInfo) -> tuple[datetime | None, date | None]:
        """15% without due; the rest from four months ago to eight months ahead, half of them all-day."""
        if self.rng.random() < 0.15:
            return None, None
        day = (self.now + timedelta(days=self.rng.uniform(-120, 245))).astimezone(zone).date()
        if self.rng.random() < 0.5:
            return datetime.combine(day, datetime.min.time(), tzinfo=zone), day
        moment = datetime.combine(day, datetime.min.time(), tzinfo=zone) + timedelta(minutes=self.rng.randint(0, 1439))
        return moment, None

    def row(self, user_id: int, zone: ZoneInfo) -> tuple[Any, ...]:
        """One tasks row in COLUMNS order."""
        created = self.now - timedelta(days=self.rng.uniform(0, 365))
        due_at, due_date = self.due(zone)
        done = self.rng.random() < 0.2
        completed = min(created + timedelta(hours=self.rng.uniform(1, 24 * 30)), self.now) if done else None
        remind = None
        if due_at is not None and due_date is None and due_at > self.now and self.rng.random() < 0.3:
            remind = due_at - timedelta(hours=1)
        tags = sorted({TAGS.pick(self.rng) for _ in range(self.rng.choice((0, 1, 1, 2, 2, 3)))})
        return (
            user_id,
            self.title(),
            self.description(),
            "completed" if done else "open",
            self.rng.choices((1, 2, 3), weights=(2, 5, 3))[0],
            json.dumps(tags),
            due_at,
            due_date,
            remind,
            created,
            completed or created,
            completed,
        )


def copy_tasks(url: str, maker: TaskMaker, counts: dict[Actor, int]) -> int:
    """COPY generated tasks of several users, interleaved in creation order as a live table fills up."""
    rows = [maker.row(actor.user_id, actor.zone) for actor, count in counts.items() for _ in range(count)]
    rows.sort(key=lambda row: row[CREATED_AT])
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        with cursor.copy(f"COPY tasks ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    return len(rows)


def vacuum_analyze(url: str) -> None:
    """VACUUM ANALYZE tasks, as autovacuum would have done by the time a real table got this big."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM (ANALYZE) tasks")


def make_users(engine: Engine, count: int) -> list[Actor]:
    """`count` users through the account service; the first is the one measured."""
    with unit_of_work(engine) as session:
        return [actor_for(add_user(session, name=f"bench-{n}", timezone=ZONES[n % len(ZONES)])) for n in range(count)]


def cases(today: date) -> list[Case]:
    """The list_tasks requests a chat agent makes most, in the measured user's zone."""
    return [
        Case("open, sorted by due", TaskFilter()),
        Case(f"query '{COMMON_WORD}' (common word)", TaskFilter(query=COMMON_WORD)),
        Case(f"query '{PREFIX}' (prefix)", TaskFilter(query=PREFIX)),
        Case(f"query '{COMMON_WORD}' + tag 'work'", TaskFilter(query=COMMON_WORD, tags=["work"])),
        Case("priority high, sorted by priority", TaskFilter(priority=Priority.high, sort_by="priority")),
        Case("overdue", TaskFilter(overdue=True)),
        Case("due in the next 7 days", TaskFilter(due_after=today, due_before=today + timedelta(days=6))),
        Case("open, sorted by due, 2nd page (cursor)", TaskFilter(), second_page=True),
    ]


def list_once(engine: Engine, actor: Actor, spec: TaskFilter, now: datetime) -> service.TaskPage:
    """One list_tasks call in its own unit of work, as the tool runs it."""
    with unit_of_work(engine) as session:
        return service.list_tasks(session, actor=actor, spec=spec, now=now)


@contextmanager
def captured_sql(engine: Engine) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """The SQL and parameters that the engine sends to the driver inside the block."""
    found: list[tuple[str, dict[str, Any]]] = []

    def grab(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        found.append((statement, dict(parameters or {})))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", grab)


def describe(engine: Engine, sql: str, params: dict[str, Any]) -> tuple[int, str]:
    """How many tasks the statement matches without its LIMIT, and the statement with its values inlined."""
    limit = _LIMIT.search(sql)
    unlimited = {**params, limit.group(1): None} if limit else params  # LIMIT NULL is no limit
    with engine.connect() as connection:
        matching = connection.exec_driver_sql(f"SELECT count(*) FROM ({sql}) AS found", unlimited).scalar_one()
        driver = connection.connection.driver_connection
        literal = psycopg.ClientCursor(driver).mogrify(sql, params)  # type: ignore[arg-type]
    return int(matching), literal


def measure(engine: Engine, actor: Actor, case: Case, now: datetime, options: argparse.Namespace) -> Result:
    """Warm up, capture the statement, then time `--runs` calls of one case (fewer if over --max-seconds)."""
    spec = case.spec
    if case.second_page:
        first = list_once(engine, actor, spec, now)
        spec = spec.model_copy(update={"cursor": first.next_cursor})
    with captured_sql(engine) as statements:
        page = list_once(engine, actor, spec, now)
    sql, params = next(found for found in reversed(statements) if found[0].lstrip().startswith("SELECT tasks."))
    matching, literal = describe(engine, sql, params)
    time_calls(lambda: list_once(engine, actor, spec, now), options.warmup)
    timings = stats(time_calls(lambda: list_once(engine, actor, spec, now), options.runs, options.max_seconds))
    return Result(case, timings, matching, len(page.tasks), sql, params, literal)


def explain(url: str, sql: str, params: dict[str, Any], *, generic: bool) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) text: the plan for these values, or the generic plan of a prepared statement.

    The engine's psycopg connections prepare a statement after 5 executions, and PostgreSQL may then switch
    to a generic plan (one made without the values), so the generic plan is what a busy server runs.
    """
    names = list(dict.fromkeys(_PARAM.findall(sql)))
    positional = _PARAM.sub(lambda match: f"${names.index(match.group(1)) + 1}", sql)
    with psycopg.connect(url) as connection:
        values = ", ".join(psycopg.ClientCursor(connection).mogrify("%s", [params[name]]) for name in names)
        connection.execute(f"SET plan_cache_mode = {'force_generic_plan' if generic else 'force_custom_plan'}")
        connection.execute(f"PREPARE bench_query AS {positional}")
        rows = connection.execute(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_query({values})").fetchall()
        connection.rollback()
    return "\n".join(f"    {row[0]}" for row in rows)


def print_results(size: int, results: list[Result]) -> None:
    """One table of timings for one size."""
    rows = [[r.case.name, r.matching, r.returned, r.stats.n, r.stats.p50, r.stats.p99, r.stats.max] for r in results]
    print(f"{size:,} tasks for the measured user:")
    print(table(["query", "matching", "returned", "runs", "p50 ms", "p99 ms", "max ms"], rows))


def print_plans(url: str, size: int, results: list[Result], budget: float, every: bool) -> None:
    """Both plans (for the values, and generic) of the queries over budget, or of all with --explain."""
    for result in results:
        if every or result.stats.p99 > budget:
            print(f"\nEXPLAIN ANALYZE at {size:,}: {result.case.name} (p99 {result.stats.p99:.1f} ms)")
            print(result.literal)
            print("  plan for these values (the first 5 executions on a connection):")
            print(explain(url, result.sql, result.params, generic=False))
            print("  generic plan (what PostgreSQL may settle on once psycopg has prepared the statement):")
            print(explain(url, result.sql, result.params, generic=True))


def measure_size(options: argparse.Namespace, size: int, maker: TaskMaker) -> list[Result]:
    """A fresh database with the measured user at `size` tasks among the others; time every case there."""
    with throwaway_database() as url:
        engine = create_db_engine(url)
        try:
            actors = make_users(engine, options.users)
            started = time.perf_counter()
            counts = dict.fromkeys(actors[1:], options.other_tasks) | {actors[0]: size}
            rows = copy_tasks(url, maker, counts)
            vacuum_analyze(url)
            print(f"\n{url.rsplit('/', 1)[1]}: loaded {rows:,} tasks in {time.perf_counter() - started:.1f} s")
            today = maker.now.astimezone(actors[0].zone).date()
            results = [measure(engine, actors[0], case, maker.now, options) for case in cases(today)]
            print_results(size, results)
            print_plans(url, size, results, options.budget_ms, options.explain)
            return results
        finally:
            engine.dispose()


def run(options: argparse.Namespace) -> None:
    """Measure every size in its own throwaway database and say whether the goal holds at the largest."""
    sizes = sorted(int(size) for size in options.sizes.split(","))
    maker = TaskMaker(random.Random(options.seed), datetime.now(UTC))
    print(header(options, sizes), flush=True)
    results = [measure_size(options, size, maker) for size in sizes]
    print(f"\nmachine at the end: {machine()}")
    slow = [r.case.name for r in results[-1] if r.stats.p99 > options.budget_ms]
    print(
        f"goal: p99 <= {options.budget_ms:g} ms for every query at {sizes[-1]:,} tasks: {verdict(not slow)}"
        + (f" (over: {', '.join(slow)})" if slow else "")
    )


def header(options: argparse.Namespace, sizes: list[int]) -> str:
    """What is measured, on what."""
    return "\n".join(
        [
            "search: list_tasks latency (service.list_tasks in a unit of work, as the tool runs it; no MCP or HTTP)",
            f"  database: {server_version(ADMIN_URL)} at 127.0.0.1, a fresh migrated database per size",
            f"  machine:  {machine()} at start",
            f"  rows:     the measured user ({ZONES[0]}) with {' or '.join(f'{s:,}' for s in sizes)} tasks, "
            f"{options.users - 1} other users with {options.other_tasks:,} each; all users' tasks interleaved "
            "in creation order, COPY, then VACUUM ANALYZE",
            "  data:     ~20% completed; priority high/medium/low 20/50/30%; 0-3 tags; 15% undated, the rest due "
            "from 4 months ago to 8 months ahead, half all-day",
            f"  runs:     {options.runs} timed per query (or as many as fit in {options.max_seconds:g} s) after "
            f"{options.warmup} warm-up runs; page size 50; goal p99 <= {options.budget_ms:g} ms at {sizes[-1]:,}",
        ]
    )


def main() -> None:
    """Entry point."""
    options = parse_args()
    if options.users < 1 or options.runs < 1:
        raise SystemExit("--users and --runs must be at least 1")
    run(options)


if __name__ == "__main__":
    main()
