"""Keeping background services alive through database and network faults: capped backoff, one log line a failure.

A service reports each round it completes (`succeeded`) and each failure (`failed`, which waits out the backoff);
readiness reads the same state, so a service that cannot reach the database shows as failing, not as running.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable

import anyio
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)


def transient_errors() -> tuple[type[BaseException], ...]:
    """Faults of the database or the network that a later attempt may not meet: logged as one line, never a
    traceback. psycopg's own count only once it is loaded (nothing else raises them), so SQLite never imports it."""
    psycopg = sys.modules.get("psycopg")
    return (SQLAlchemyError, OSError) if psycopg is None else (SQLAlchemyError, psycopg.Error, OSError)


class ServiceHealth:
    """One background service's state and its retry schedule: base * 2^(failures-1) seconds, at most cap."""

    def __init__(self, name: str, base: float = 0.1, cap: float = 2.0) -> None:
        self.name = name
        self._base = base
        self.cap = cap
        self.failures = 0  # consecutive, since the last round that succeeded
        self.started = False
        self.stopped = False
        self._last_error: type[Exception] | None = None

    @property
    def state(self) -> str:
        if self.stopped:
            return "stopped"
        if not self.started:
            return "starting"
        return "failing" if self.failures else "running"

    @property
    def healthy(self) -> bool:
        return self.state == "running"

    def succeeded(self) -> None:
        self.started = True
        self.failures = 0
        self._last_error = None

    async def failed(self, error: Exception) -> None:
        """Log the failure (a traceback only for an unexpected kind, not again while it repeats); sleep the backoff."""
        self.started = True
        self.failures += 1
        delay = min(self.cap, self._base * 2 ** (self.failures - 1))
        summary = str(error).strip().splitlines()[0] if str(error).strip() else ""
        repeated, self._last_error = self._last_error is type(error), type(error)
        if isinstance(error, transient_errors()) or repeated:
            log.warning("%s failed (%s: %s); retrying in %.1f s", self.name, type(error).__name__, summary, delay)
        else:
            log.exception("%s failed unexpectedly; retrying in %.1f s", self.name, delay, exc_info=error)
        await anyio.sleep(delay)


async def supervise(health: ServiceHealth, job: Callable[[], Awaitable[None]]) -> None:
    """Run `job` until it returns, starting it again after each failure: a fault never ends the service.

    A job that reports its rounds keeps `health` current itself; for one that does not, running counts as healthy.
    """
    health.started = True
    try:
        while True:
            began = anyio.current_time()
            try:
                await job()
                return
            except Exception as error:
                if anyio.current_time() - began > health.cap:
                    health.succeeded()  # it ran a while: a new fault, whose backoff starts afresh
                await health.failed(error)
    finally:
        health.stopped = True
