"""Wake-ups for the relay and the scheduler: a commit in any thread of this process sets their asyncio events."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager


class Signals:
    """Thread-safe fan-out from `notify(channels)` to the async waiters of those channels."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = defaultdict(set)

    def notify(self, channels: Iterable[str]) -> None:
        with self._lock:
            targets = [waiter for channel in channels for waiter in self._waiters.get(channel, ())]
        for loop, event in targets:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    @contextmanager
    def listening(self, channel: str) -> Iterator[asyncio.Event]:
        """An event set on every notify of `channel` while the block runs; the waiter clears it."""
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters[channel].add(waiter)
        try:
            yield waiter[1]
        finally:
            with self._lock:
                self._waiters[channel].discard(waiter)
