"""A time budget for a block running in a worker thread, kept even by code that loops without end in Python."""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class OverBudget(Exception):
    """The block ran longer than its budget; whatever it did is rolled back by the caller's transaction."""

    def __init__(self, message: str = "ran longer than its time budget") -> None:
        super().__init__(message)


def _interrupt(thread_id: int, exception: type[BaseException] | None) -> None:
    """Raise `exception` in the thread at its next Python instruction (None withdraws one not yet raised)."""
    raised = ctypes.py_object(exception) if exception else None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), raised)


@contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Raise OverBudget in this thread once the block has run `seconds`.

    Threads cannot be killed, and a statement timeout does not reach code that spins in Python; an exception raised
    in the thread does, at its next bytecode. Time spent inside one C call (a database round trip) counts, but the
    exception waits until the call returns: statement and lock timeouts bound those.
    """
    thread_id = threading.get_ident()
    guard = threading.Lock()
    running, fired = True, False

    def expire() -> None:
        nonlocal fired
        with guard:
            if running:
                fired = True
                _interrupt(thread_id, OverBudget)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        with guard:
            running = False
            if fired:
                _interrupt(thread_id, None)  # not raised yet: it would land in unrelated code after the block
    if fired:
        raise OverBudget
