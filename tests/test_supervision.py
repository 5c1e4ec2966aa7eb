"""Background services through faults: capped backoff, one log line per transient failure, restarted after any."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.exc import OperationalError

from events.supervision import ServiceHealth, supervise

pytestmark = pytest.mark.anyio


def database_down() -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception("connection refused"))


async def test_a_failing_job_is_restarted_until_it_finishes_and_each_failure_is_one_line(caplog):
    health = ServiceHealth("relay", base=0.001, cap=0.004)
    failures = [database_down(), database_down(), RuntimeError("a bug")]
    seen: list[str] = []

    async def job() -> None:
        seen.append(health.state)
        if failures:
            raise failures.pop(0)

    with caplog.at_level(logging.WARNING, logger="events.supervision"):
        await supervise(health, job)
    assert len(seen) == 4  # three failures, then the run that finished
    assert seen[1:] == ["failing", "failing", "failing"]
    assert health.state == "stopped"
    records = [r for r in caplog.records if r.name == "events.supervision"]
    assert len(records) == 3
    assert [r.exc_info is not None for r in records] == [False, False, True]  # a traceback only for the bug
    assert "relay failed (OperationalError" in records[0].getMessage()


async def test_backoff_doubles_up_to_the_cap_and_a_success_resets_it(monkeypatch):
    slept: list[float] = []

    async def record_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr("events.supervision.anyio.sleep", record_sleep)
    health = ServiceHealth("scheduler", base=0.1, cap=0.5)
    for _ in range(5):
        await health.failed(database_down())
    assert slept == [0.1, 0.2, 0.4, 0.5, 0.5]
    assert not health.healthy
    health.succeeded()
    assert health.healthy
    await health.failed(database_down())
    assert slept[-1] == 0.1
