"""Time budgets stop code that spins in Python, and cost no thread per block."""

from __future__ import annotations

import threading
import time

import pytest

from events.budget import OverBudget, time_budget


def spin(seconds: float) -> None:
    with time_budget(seconds):
        while True:
            pass


def test_a_block_that_spins_is_stopped_and_one_that_ends_in_time_is_not():
    started = time.monotonic()
    with pytest.raises(OverBudget):
        spin(0.2)
    assert 0.2 <= time.monotonic() - started < 2
    with time_budget(0.2):
        time.sleep(0.01)
    time.sleep(0.3)  # a withdrawn budget raises nothing later


def test_budgets_of_many_blocks_start_no_thread_each():
    with time_budget(5):
        pass
    before = {thread.ident for thread in threading.enumerate()}
    for _ in range(200):
        with time_budget(5):
            pass
    assert {thread.ident for thread in threading.enumerate()} <= before


def swallow_twice(seconds: float) -> int:
    """Spin in a block that catches OverBudget twice, as code that catches Exception broadly would."""
    swallowed = 0
    with time_budget(seconds):
        while True:
            try:
                while True:
                    pass
            except OverBudget:
                swallowed += 1
                if swallowed == 3:
                    raise
    return swallowed


def test_a_block_that_swallows_the_exception_is_stopped_all_the_same():
    started = time.monotonic()
    with pytest.raises(OverBudget):
        swallow_twice(0.1)
    assert time.monotonic() - started < 2
    time.sleep(0.2)  # the budget ended with the block: nothing is raised after it
