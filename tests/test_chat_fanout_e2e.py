"""Reminders across chat replicas: two `taskflow serve chat` processes, each fed by its own Dapr sidecar stand-in.

A `taskflow worker` fires due reminders and publishes them to its sidecar stand-in; the broker's part is played
here as Kafka plays it with the components in components/: each chat replica's own consumer group delivers every
event to its replica (pubsub-chat-fanout.yaml), and the chat app's shared group delivers it to one of them again
(pubsub.yaml). The same person is logged in on both replicas, in headless Chromium.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from playwright.sync_api import Page
from sqlalchemy import Engine, select

from chat_ui.passwords import set_password
from mcp_server.accounts import actor_for, add_user, find_user
from mcp_server.chat_models import ChatReminder
from mcp_server.db import create_db_engine, unit_of_work
from mcp_server.event_catalog import NOTIFICATIONS
from mcp_server.models import utcnow
from mcp_server.service import TaskCreate, add_task
from tests.conftest import migrated
from tests.e2e_helpers import Server, browser, clean_env, log_in, running
from tests.fake_sidecar import Entry, FakeSidecar
from tests.processes import free_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]  # three processes start in the first test
__all__ = ["browser"]  # the fixture, imported to be found

SECRET = "a-long-random-secret-for-the-tests-only-0123456789"
APP_TOKEN = "dapr-app-token-for-the-tests"
PASSWORD = "correct horse battery staple"
REMINDER = "[data-step-type='assistant_message']:has-text('Reminder: {title}')"
QUIET = 4_000  # milliseconds a page is watched for a duplicate once everything has been delivered
LONG = 90_000  # a reminder fires, is published, fanned out and pushed: generous on a loaded 2-core machine


@dataclass
class Broker:
    """Kafka as the chat's two subscriptions see it: every replica's own group, then the app's shared group."""

    replicas: list[FakeSidecar]
    answers: list[tuple[str, str]] = field(default_factory=list)  # (user id, the app's answer) per delivery
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def published(self, entries: list[Entry]) -> None:
        """Called by the worker's sidecar; delivers on a thread of its own, as a broker does, later."""
        threading.Thread(target=self._deliver, args=(entries,), daemon=True).start()

    def _deliver(self, entries: list[Entry]) -> None:
        for entry in entries:
            if entry.topic != NOTIFICATIONS:
                continue
            event = entry.cloudevent
            # One delivery per replica's group, then the shared group's to whichever replica owns the partition.
            for sidecar in [*self.replicas, self.replicas[0]]:
                answer = sidecar.deliver(entry.topic, event)
                with self._lock:
                    self.answers.append((str(event["data"]["user_id"]), answer))

    def delivered_to(self, user_id: int) -> list[str]:
        with self._lock:
            return [answer for user, answer in self.answers if user == str(user_id)]


@dataclass
class Cluster:
    chats: list[Server]
    broker: Broker
    engine: Engine


@pytest.fixture(scope="module")
def cluster(make_pg_database, tmp_path_factory) -> Iterator[Cluster]:
    url = migrated(make_pg_database())
    engine = create_db_engine(url)
    with unit_of_work(engine) as session:
        for name in ("ann", "bob"):
            set_password(session, add_user(session, name=name, timezone="Europe/Lisbon"), PASSWORD)
    publisher = FakeSidecar()
    publisher.start()
    chat_sidecars = [FakeSidecar(app_api_token=APP_TOKEN) for _ in range(2)]
    broker = Broker(chat_sidecars)
    publisher.on_published = broker.published
    worker_port, ports = free_port(), [free_port(), free_port()]
    worker_env = clean_env(
        url,
        tmp_path_factory.mktemp("worker"),
        TASKFLOW_EVENT_TRANSPORT="dapr",
        DAPR_RUNTIME_HOST="127.0.0.1",
        DAPR_GRPC_PORT=str(publisher.grpc_port),
        DAPR_HTTP_PORT=str(publisher.http_port),
    )
    try:
        with (
            running(["worker", "--port", str(worker_port)], worker_env, worker_port, health="/healthz"),
            running(*chat(url, ports[0], chat_sidecars[0], tmp_path_factory)) as first,
            running(*chat(url, ports[1], chat_sidecars[1], tmp_path_factory)) as second,
        ):
            for sidecar, server in zip(chat_sidecars, (first, second), strict=True):
                sidecar.app_url = server.url
            yield Cluster([first, second], broker, engine)
    finally:
        for sidecar in (publisher, *chat_sidecars):
            sidecar.stop()
        engine.dispose()


def chat(url: str, port: int, sidecar: FakeSidecar, tmp_path_factory) -> tuple[list[str], dict[str, str], int]:
    """`taskflow serve chat` as one replica of a deployment, next to its own sidecar."""
    sidecar.start()
    env = clean_env(
        url,
        tmp_path_factory.mktemp("chat"),
        CHAINLIT_AUTH_SECRET=SECRET,
        APP_API_TOKEN=APP_TOKEN,
        TASKFLOW_EVENT_TRANSPORT="dapr",
        DAPR_RUNTIME_HOST="127.0.0.1",
        DAPR_GRPC_PORT=str(sidecar.grpc_port),
        DAPR_HTTP_PORT=str(sidecar.http_port),
    )
    return ["serve", "chat", "--host", "0.0.0.0", "--port", str(port)], env, port


def remind(engine: Engine, name: str, title: str, seconds: float) -> int:
    """A task of `name`'s whose reminder becomes due in `seconds`; the user's id."""
    with unit_of_work(engine) as session:
        actor = actor_for(find_user(session, name))
        now = utcnow()
        add_task(
            session, actor=actor, data=TaskCreate(title=title, remind_at=now + timedelta(seconds=seconds)), now=now
        )
    return actor.user_id


def kept(engine: Engine, user_id: int) -> list[ChatReminder]:
    with unit_of_work(engine) as session:
        return list(session.scalars(select(ChatReminder).where(ChatReminder.user_id == user_id)))


def shown_once_and_no_more(page: Page, title: str) -> None:
    """The reminder appears in the page, and no second copy within the quiet period that follows."""
    reminders = page.locator(REMINDER.format(title=title))
    reminders.first.wait_for(timeout=LONG)
    page.wait_for_timeout(QUIET)
    assert reminders.count() == 1


def test_a_due_reminder_is_pushed_into_the_persons_chat_on_every_replica_once(cluster, browser):
    pages = []
    for server in cluster.chats:  # the same person, on each replica (as a load balancer may send two tabs)
        page = browser.new_context().new_page()
        log_in(page, server.url, "ann", PASSWORD)
        pages.append(page)
    user_id = remind(cluster.engine, "ann", "stretch", seconds=2)
    for page in pages:  # nobody types: it arrives by itself
        page.locator(REMINDER.format(title="stretch")).first.wait_for(timeout=LONG)
    wait_until(lambda: len(cluster.broker.delivered_to(user_id)) == 3, timeout=LONG / 1000)
    assert cluster.broker.delivered_to(user_id) == ["SUCCESS"] * 3  # two replicas' groups and the shared one
    for page in pages:
        shown_once_and_no_more(page, "stretch")
    (reminder,) = kept(cluster.engine, user_id)
    assert reminder.delivered_at is not None
    for page in pages:
        page.context.close()


def test_with_no_chat_open_anywhere_the_reminder_is_kept_once_and_shown_once_at_the_next_visit(cluster, browser):
    user_id = remind(cluster.engine, "bob", "drink water", seconds=1)
    wait_until(lambda: len(cluster.broker.delivered_to(user_id)) == 3, timeout=LONG / 1000)
    assert cluster.broker.delivered_to(user_id) == ["SUCCESS"] * 3
    assert [row.delivered_at for row in kept(cluster.engine, user_id)] == [None]  # one copy, waiting

    first = browser.new_context().new_page()
    log_in(first, cluster.chats[1].url, "bob", PASSWORD)
    shown_once_and_no_more(first, "drink water")
    wait_until(lambda: kept(cluster.engine, user_id)[0].delivered_at, timeout=LONG / 1000)

    later = browser.new_context().new_page()  # a visit on the other replica: shown already, so not again
    log_in(later, cluster.chats[0].url, "bob", PASSWORD)
    later.wait_for_timeout(QUIET)
    assert later.locator(REMINDER.format(title="drink water")).count() == 0
    assert first.locator(REMINDER.format(title="drink water")).count() == 1
    for page in (first, later):
        page.context.close()
