"""A time budget for a block running in a worker thread, kept even by code that loops without end in Python."""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


class OverBudget(Exception):
    """The block ran longer than its budget; whatever it did is rolled back by the caller's transaction."""

    def __init__(self, message: str = "ran longer than its time budget") -> None:
        super().__init__(message)


def _interrupt(thread_id: int, exception: type[BaseException] | None) -> None:
    """Raise `exception` in the thread at its next Python instruction (None withdraws one not yet raised)."""
    raised = ctypes.py_object(exception) if exception else None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), raised)


# How long a fired budget waits for its block to end before raising again: the exception can land where it is
# swallowed (a garbage-collector callback, a handler that catches Exception), and the block must still stop.
REFIRE_SECONDS = 0.05


@dataclass(eq=False)
class _Budget:
    thread_id: int
    deadline: float
    fired: bool = False


class _Watchdog:
    """One thread that raises OverBudget in whichever watched thread runs past its deadline.

    One for the process rather than a timer thread per block: a consumer handles thousands of events a second, and
    starting a thread for each cost more than handling most of them.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._watched: set[_Budget] = set()
        self._thread: threading.Thread | None = None
        self._wake_at: float | None = None  # when the thread looks next; None: not until woken

    def watch(self, budget: _Budget) -> None:
        with self._changed:
            self._watched.add(budget)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="time budgets", daemon=True)
                self._thread.start()
            if self._wake_at is None or budget.deadline < self._wake_at:  # else it looks in time anyway
                self._changed.notify()

    def unwatch(self, budget: _Budget) -> None:
        """Stop watching; a firing not yet raised is withdrawn (it would land in unrelated code after the block)."""
        with self._changed:
            self._watched.discard(budget)
            if budget.fired:
                _interrupt(budget.thread_id, None)

    def _run(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                for budget in [budget for budget in self._watched if budget.deadline <= now]:
                    budget.fired = True
                    budget.deadline = now + REFIRE_SECONDS
                    _interrupt(budget.thread_id, OverBudget)
                self._wake_at = min((budget.deadline for budget in self._watched), default=None)
                self._changed.wait(None if self._wake_at is None else self._wake_at - now)


_WATCHDOG = _Watchdog()


@contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Raise OverBudget in this thread once the block has run `seconds`.

    Threads cannot be killed, and a statement timeout does not reach code that spins in Python; an exception raised
    in the thread does, at its next bytecode. Time spent inside one C call (a database round trip) counts, but the
    exception waits until the call returns: statement and lock timeouts bound those. Until the block ends it is
    raised again every REFIRE_SECONDS, so code that swallows it is stopped all the same.
    """
    budget = _Budget(threading.get_ident(), time.monotonic() + seconds)
    _WATCHDOG.watch(budget)
    try:
        yield
    finally:
        _WATCHDOG.unwatch(budget)
    if budget.fired:
        raise OverBudget
