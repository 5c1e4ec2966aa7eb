"""The embedded transport: events go straight to this process's consumers, through the same idempotency check."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

import anyio

from events.consumers import Consumers, Outcome
from events.relay import Outgoing


class InProcessTransport:
    def __init__(self, consumers: Consumers) -> None:
        self._consumers = consumers

    @property
    def topics(self) -> frozenset[str]:
        """Only topics with a consumer here: others stay in the outbox for a process that has one."""
        return self._consumers.topics

    async def aclose(self) -> None:
        return None

    async def publish(self, events: Sequence[Outgoing]) -> set[int]:
        failed: set[int] = set()
        held_back: set[tuple[int, str]] = set()  # after a failure, a user's later events wait to keep their order
        for topic, run in groupby(events, key=lambda event: event.topic):
            batch = list(run)
            envelopes = [event.cloudevent for event in batch]
            outcomes = await anyio.to_thread.run_sync(self._consumers.deliver_many, topic, envelopes)
            for event, outcome in zip(batch, outcomes, strict=True):
                stream = (event.user_id, event.topic)
                if outcome is Outcome.retry or stream in held_back:
                    failed.add(event.id)
                    held_back.add(stream)
        return failed
