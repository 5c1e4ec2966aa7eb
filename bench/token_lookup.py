"""Bearer token checks: what the database lookup behind DatabaseTokenVerifier costs, against a remembered answer.

Each check is DatabaseTokenVerifier.verify_token as the MCP server calls it (a worker thread, a pooled connection with
pre-ping, the indexed lookup of the token's digest joined to its user). "uncached" remembers nothing, so every call
asks the database; "remembered" is the answer kept within its second. On PostgreSQL and on SQLite.
Run from the repository root: python -m bench.token_lookup --help
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also runnable as `python bench/token_lookup.py`

import anyio

from bench.common import machine, stats, table, throwaway_database
from mcp_server.accounts import add_user, create_token
from mcp_server.db import create_db_engine, unit_of_work
from mcp_server.migrate import upgrade
from mcp_server.token_auth import DatabaseTokenVerifier


async def _series(verifier: DatabaseTokenVerifier, token: str, runs: int) -> list[float]:
    durations = []
    for _ in range(runs):
        started = time.perf_counter()
        assert await verifier.verify_token(token) is not None
        durations.append(time.perf_counter() - started)
    return durations


def measure(url: str, runs: int) -> list[tuple[str, float, float, float]]:
    engine = create_db_engine(url)
    upgrade(engine)
    with unit_of_work(engine) as session:
        owner = add_user(session, name=f"bench-{uuid.uuid4().hex[:8]}", timezone="UTC")
        token = create_token(session, user_id=owner.id)  # type: ignore[arg-type]
    rows = []
    for label, verifier in [
        ("uncached", DatabaseTokenVerifier(engine, remember_seconds=0)),
        ("remembered", DatabaseTokenVerifier(engine, remember_seconds=3600)),
    ]:
        anyio.run(_series, verifier, token, 20)  # warm the pool and the plan
        figures = stats(anyio.run(_series, verifier, token, runs))
        rows.append((label, figures.p50, figures.p99, figures.mean))
    engine.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2000, help="checks per series")
    runs = parser.parse_args().runs
    print(machine())  # noqa: T201
    rows = []
    with throwaway_database() as pg_url:
        rows += [("PostgreSQL", *row) for row in measure(pg_url, runs)]
    with tempfile.TemporaryDirectory() as directory:
        rows += [("SQLite", *row) for row in measure(f"sqlite:///{directory}/bench.db", runs)]
    print(table(["database", "check", "p50 ms", "p99 ms", "mean ms"], rows))  # noqa: T201


if __name__ == "__main__":
    main()
