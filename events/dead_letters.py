"""Dead letters: the events a consumer gave up on, kept until `taskflow events retry` replays them."""

from __future__ import annotations

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from mcp_server.db import unit_of_work
from mcp_server.event_models import DeliveryFailure


def dead_letters(engine: Engine) -> list[DeliveryFailure]:
    """Every dead letter, oldest first (failures still being retried are not dead letters yet)."""
    with unit_of_work(engine) as session:
        given_up = DeliveryFailure.given_up_at.is_not(None)  # type: ignore[union-attr]
        return list(session.scalars(select(DeliveryFailure).where(given_up).order_by(DeliveryFailure.id)))


def count_dead_letters(session: Session) -> int:
    """How many events the consumers have given up on, for readiness and metrics."""
    return session.scalar(select(func.count()).where(DeliveryFailure.given_up_at.is_not(None))) or 0  # type: ignore[union-attr]


def describe(letter: DeliveryFailure) -> str:
    """Two lines for a person: which event and consumer, how often and when; then the last error."""
    return (
        f"{letter.id}  {letter.consumer} on {letter.topic}: {letter.cloudevent().get('type')} {letter.event_id}, "
        f"{letter.attempts} attempt(s) from {letter.first_attempt_at:%Y-%m-%d %H:%M:%S} "
        f"to {letter.last_attempt_at:%Y-%m-%d %H:%M:%S} UTC\n    {letter.error}"
    )
