"""Starting the chat: Chainlit's working directory and secrets, the app's state, the background work, uvicorn.

Chainlit reads its settings when it is first imported, from CHAINLIT_APP_ROOT (else the working directory), and
writes there too (translations, uploads). So nothing here imports Chainlit before `serve` has prepared that
directory: TaskFlow's data directory, holding a copy of the config.toml and chainlit.md shipped in this package.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import logging
import os
import secrets
import shutil
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

from fastapi import APIRouter, FastAPI
from platformdirs import user_data_dir

from chat_ui.origins import LOOPBACK_HOSTS, Site
from events.supervision import ServiceHealth, supervise
from mcp_server.config import ConfigError, Settings
from mcp_server.runtime import Runtime
from mcp_server.serving import BoundedServer, listening_socket, serve_on, server_config

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).parent
SHIPPED = (Path(".chainlit") / "config.toml", Path("chainlit.md"), Path("public"))  # settings, readme, logos
STOP_TIMEOUT = 3  # seconds for background work to finish on Ctrl-C

# Chainlit's English wording where it does not fit TaskFlow (people log in with their TaskFlow name).
WORDING = {
    ("auth", "login", "title"): "Sign in to TaskFlow",
    ("auth", "login", "form", "email", "label"): "Name",
    ("auth", "login", "form", "email", "placeholder"): "your TaskFlow user name",
    ("auth", "login", "form", "email", "required"): "your name is required",
    ("chat", "watermark"): "Each answer lists the steps it took: open one to see exactly what changed.",
}

Job = Callable[[], Awaitable[None]]


def needs_login(host: str) -> bool:
    """Anything listening beyond the loopback interface asks people to log in."""
    return host.strip("[]") not in LOOPBACK_HOSTS


def display_url(host: str, port: int) -> str:
    """Where to point a browser at a server bound to `host`."""
    shown = "localhost" if host in {"0.0.0.0", "::", ""} else (f"[{host}]" if ":" in host else host)
    return f"http://{shown}:{port}"


def serve(
    settings: Settings, *, host: str, port: int, embedded: bool, ready: Callable[[], None] = lambda: None
) -> None:
    """Run the chat until Ctrl-C; a configuration problem raises ConfigError before anything starts.

    `embedded` runs the relay, the reminder scheduler and the consumers in this process (`taskflow up`); without
    it, events arrive from Dapr at /events/notifications (`taskflow serve chat`). `ready` is called on start-up.
    """
    login = needs_login(host)
    if login and not os.environ.get("CHAINLIT_AUTH_SECRET"):
        raise ConfigError(
            f"CHAINLIT_AUTH_SECRET must be set to serve the chat on {host} (it signs login cookies); "
            "any long random string will do"
        )
    dapr_route = not embedded or settings.event_transport == "dapr"
    app_api_token = os.environ.get("APP_API_TOKEN") if dapr_route else None
    if dapr_route and not app_api_token:
        raise ConfigError(
            "APP_API_TOKEN must be set: Dapr sends it with every event (dapr-api-token), so nobody else can "
            "post reminders into the chat"
        )
    site = Site.of(settings.chat_public_url or display_url(host, port), port=port, local=not login)
    sock = listening_socket(host, port)  # bound before the announcement: a taken port fails first, in one line
    _prepare_chainlit(Path(user_data_dir("taskflow")) / "chat", local_login=not login)
    runtime = Runtime.start(settings)
    try:
        if not login:
            runtime.local_actor  # noqa: B018  (the local user exists before the first page load)
        app = _load_app(runtime, host=host, port=port, login=login, site=site)
        _attach_events(app, runtime, embedded=embedded, app_api_token=app_api_token, ready=ready)
    except BaseException:
        runtime.close()
        sock.close()
        raise
    # On Ctrl-C or SIGTERM uvicorn closes the connections, Chainlit's lifespan runs the shutdown hook
    # (BackgroundServices.stop) and then ends the process itself with os._exit(0); should anything hang on the way,
    # the server's deadline ends the process.
    asyncio.run(serve_on(BoundedServer(server_config(app, host, port)), sock))


def _prepare_chainlit(root: Path, *, local_login: bool) -> None:
    """Chainlit's working directory with TaskFlow's settings, and the environment Chainlit reads on import."""
    for relative in SHIPPED:  # copied on every start, so an upgrade brings its own
        source, target = PACKAGE_DIR / relative, root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copyfile(source, target)
    _write_wording(root / ".chainlit" / "translations" / "en-US.json")
    os.environ["CHAINLIT_APP_ROOT"] = str(root)
    # Chainlit would load a .env from whatever directory `taskflow` was started in; TaskFlow reads its environment.
    os.environ.setdefault("CHAINLIT_ENV_FILE", str(root / ".env"))
    if local_login and not os.environ.get("CHAINLIT_AUTH_SECRET"):
        # The local user's session cookie is signed too; a secret kept here keeps it valid across restarts.
        os.environ["CHAINLIT_AUTH_SECRET"] = _local_secret(root / ".auth-secret")
    logging.getLogger("chainlit").setLevel(logging.ERROR)  # it warns on every page load about translated readmes


def _write_wording(target: Path) -> None:
    """Chainlit's English translation with TaskFlow's wording; Chainlit adds the other languages itself."""
    spec = importlib.util.find_spec("chainlit")  # locates the package without importing (and configuring) it
    package = Path(spec.origin).parent  # type: ignore[union-attr,arg-type]
    strings = json.loads((package / "translations" / "en-US.json").read_text(encoding="utf-8"))
    for path, text in WORDING.items():
        node = strings
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = text
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(strings, ensure_ascii=False, indent=2), encoding="utf-8")


def _local_secret(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        secret = secrets.token_urlsafe(32)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secret)
        return secret


def _load_app(runtime: Runtime, *, host: str, port: int, login: bool, site: Site) -> FastAPI:
    """Configure the chat's state and load chat_ui.app into Chainlit; Chainlit's FastAPI app, behind `site`'s guard."""
    from chainlit.auth import ensure_jwt_secret
    from chainlit.config import config
    from chainlit.server import app

    from agent.session import model_for
    from chat_ui import feedback, notifications, state
    from chat_ui.open_chats import ChainlitOpenChats
    from chat_ui.origins import OriginGuard
    from chat_ui.requester import SignedInUser

    config.run.host, config.run.port, config.run.headless = host, port, True
    reminders = notifications.ReminderDelivery(runtime, ChainlitOpenChats())
    state.configure(state.ChatState(runtime, model_for(runtime.settings), login, reminders))
    importlib.import_module("chat_ui.app")
    ensure_jwt_secret()
    _mount_first(app, feedback.router)
    app.add_middleware(SignedInUser)
    app.add_middleware(OriginGuard, site=site)  # added last, so it runs first: before Chainlit sees anything
    return app


def _attach_events(
    app: FastAPI, runtime: Runtime, *, embedded: bool, app_api_token: str | None, ready: Callable[[], None]
) -> None:
    """The notifications consumer, how events reach it (in-process relay or Dapr route), and the delivery task."""
    import chainlit as cl

    from chat_ui import notifications, state
    from events.background import EventServices, consumers_for, transport_for
    from events.consumers import Consumers
    from events.health import health_router

    # The chat consumes notifications only; `taskflow up` also runs the product's other consumers (recurrence).
    consumers = consumers_for(runtime) if embedded else Consumers(runtime.engine, runtime.signals.notify)
    notifications.subscribe(consumers)
    delivery = ServiceHealth("reminders to open chats")
    jobs: list[Job] = [partial(supervise, delivery, state.current().reminders.run)]
    if embedded:
        events = EventServices(runtime, transport_for(runtime, consumers))
        jobs.append(events.run)
        _mount_first(app, health_router(runtime.engine, [delivery, *events.health], events.relay.backlog))
    else:
        _mount_first(app, health_router(runtime.engine, [delivery]))
    if app_api_token:
        from events.subscriptions import subscription_router

        _mount_first(app, subscription_router(consumers, app_api_token=app_api_token))
    services = BackgroundServices(jobs, runtime, ready)
    cl.on_app_startup(services.start)
    cl.on_app_shutdown(services.stop)


def _mount_first(app: FastAPI, router: APIRouter) -> None:
    """Include the router ahead of Chainlit's routes: its catch-all GET would otherwise answer for ours."""
    before = len(app.router.routes)
    app.include_router(router)
    added = app.router.routes[before:]
    del app.router.routes[before:]
    app.router.routes[0:0] = added


class BackgroundServices:
    """Work that lives as long as the web app, on uvicorn's event loop: started and stopped by Chainlit's lifespan."""

    def __init__(self, jobs: list[Job], runtime: Runtime, ready: Callable[[], None]) -> None:
        self._jobs = jobs
        self._runtime = runtime
        self._ready = ready
        self._tasks: list[asyncio.Future[None]] = []

    async def start(self) -> None:
        """Start every job as a task on the running loop, then say the chat is ready."""
        for job in self._jobs:
            task = asyncio.ensure_future(job())
            task.add_done_callback(_report_crash)
            self._tasks.append(task)
        self._ready()

    async def stop(self) -> None:
        """Cancel the jobs, give them a moment to finish, and close the database."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT)
        self._runtime.close()


def _report_crash(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a background service of the chat stopped", exc_info=task.exception())
