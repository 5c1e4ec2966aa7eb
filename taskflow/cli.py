"""The `taskflow` command: the composition root that wires settings, storage and servers for each entry point."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from mcp_server import telemetry
from mcp_server.config import ConfigError, Settings, load_settings
from mcp_server.errors import InvalidField, TaskError

# Each command imports what it uses: the database layer alone costs more than the rest of a command's start-up, and
# `taskflow mcp` answers `initialize` before loading it.
if TYPE_CHECKING:
    from agent.conversation import Model
    from mcp_server.arguments import StrictToolServer
    from mcp_server.models import ApiToken, TaskPublic
    from mcp_server.runtime import Runtime
    from mcp_server.service import Actor

PORT = click.IntRange(1, 65535)
USER_OPTION = click.option("--user", "user_name", help="Act as this user (default: TASKFLOW_USER, the login name).")
PASSWORD_OPTION = click.option(
    "--password",
    "with_password",
    is_flag=True,
    help="Set a password for the chat's login: prompted for, or one line read from stdin when it is not a terminal.",
)
PASSWORD_STDIN_OPTION = click.option(
    "--password-stdin", is_flag=True, help="Set the chat password read as one line from stdin (for scripts)."
)


def _settings(user_name: str | None = None) -> Settings:
    settings = load_settings()
    telemetry.configure(settings)
    return settings.model_copy(update={"user": user_name}) if user_name else settings


def _runtime(user_name: str | None = None) -> Runtime:
    from mcp_server.runtime import Runtime

    return Runtime.start(_settings(user_name))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """TaskFlow: manage tasks by talking."""


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema up to date."""
    from mcp_server.db import create_db_engine
    from mcp_server.migrate import upgrade

    engine = create_db_engine(_settings().database_url)
    upgrade(engine)
    click.echo("database is up to date")


@cli.group()
def user() -> None:
    """People who use TaskFlow."""


@user.command("add")
@click.argument("name")
@click.option("--timezone", help="IANA time zone, e.g. Europe/Lisbon (default: TASKFLOW_TIMEZONE).")
@PASSWORD_OPTION
@PASSWORD_STDIN_OPTION
def user_add(name: str, timezone: str | None, with_password: bool, password_stdin: bool) -> None:
    """Create a user."""
    from mcp_server.accounts import add_user

    password_hash = _new_password_hash(with_password, password_stdin)
    runtime = _runtime()
    with runtime.unit_of_work() as session:
        created = add_user(session, name=name, timezone=timezone or runtime.settings.timezone)
        created.password_hash = password_hash
    click.echo(f"created user {created.name} ({created.timezone})" + (" with a password" if password_hash else ""))


@user.command("set")
@click.argument("name")
@click.option("--timezone", help="A new IANA time zone, e.g. Europe/Lisbon.")
@PASSWORD_OPTION
@PASSWORD_STDIN_OPTION
def user_set(name: str, timezone: str | None, with_password: bool, password_stdin: bool) -> None:
    """Change a user's time zone or chat password."""
    from mcp_server.accounts import check_zone, find_existing_user, update_user

    if timezone is None and not (with_password or password_stdin):
        raise TaskError("nothing to change; give --timezone, --password or --password-stdin")
    runtime = _runtime()
    with runtime.unit_of_work() as session:  # refuse an unknown user or zone before asking for a password
        find_existing_user(session, name)
    if timezone is not None:
        check_zone(timezone)
    password_hash = _new_password_hash(with_password, password_stdin)
    with runtime.unit_of_work() as session:
        changed = update_user(session, name, timezone=timezone, password_hash=password_hash)
    click.echo(f"updated user {changed.name} ({changed.timezone})" + (" with a new password" if password_hash else ""))


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of users.")
def user_list(as_json: bool) -> None:
    """List users: time zone, whether they have a chat password, how many tokens."""
    from mcp_server.accounts import list_users

    runtime = _runtime()
    with runtime.unit_of_work() as session:
        found = list_users(session)
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(summary) for summary in found], ensure_ascii=False, indent=2))
        return
    rows = [(u.name, u.timezone, "yes" if u.has_password else "no", str(u.tokens)) for u in found]
    click.echo(_table(("name", "timezone", "password", "tokens"), rows) if rows else "no users")


def _new_password_hash(with_password: bool, password_stdin: bool) -> str | None:
    from chat_ui.passwords import hash_password

    if password_stdin:
        return hash_password(_stdin_password())
    if with_password:
        if sys.stdin.isatty():
            return hash_password(click.prompt("Password", hide_input=True, confirmation_prompt=True))
        return hash_password(_stdin_password())
    return None


def _stdin_password() -> str:
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise InvalidField("password", "none on stdin; give it as one line")
    return password


@cli.group()
def token() -> None:
    """Personal API tokens for MCP clients over HTTP."""


@token.command("create")
@USER_OPTION
@click.option("--name", "label", default="default", show_default=True, help="A label to tell tokens apart.")
@click.option("--expires", "lifetime", help="Refuse the token after this long: 12h, 30d, 1w (default: never).")
def token_create(user_name: str | None, label: str, lifetime: str | None) -> None:
    """Create a token and print it once; only its hash is stored."""
    from mcp_server.accounts import create_token, parse_lifetime
    from mcp_server.models import utcnow

    expires_at = utcnow() + parse_lifetime(lifetime) if lifetime is not None else None
    runtime = _runtime()
    actor = _actor(runtime, user_name)
    with runtime.unit_of_work() as session:
        secret = create_token(session, user_id=actor.user_id, name=label, expires_at=expires_at)
    click.echo(secret)


@token.command("list")
@USER_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of tokens.")
def token_list(user_name: str | None, as_json: bool) -> None:
    """List a user's tokens by id, name and prefix (the tokens themselves are never stored)."""
    from mcp_server.accounts import list_tokens
    from mcp_server.models import utcnow

    runtime = _runtime()
    actor = _actor(runtime, user_name)
    with runtime.unit_of_work() as session:
        found = list_tokens(session, actor.user_id)
    now = utcnow()
    if as_json:
        click.echo(json.dumps([_token_json(t, actor) for t in found], ensure_ascii=False, indent=2))
        return
    header = ("id", "name", "prefix", "created", "last used", "expires")
    rows = [
        (
            str(t.id),
            t.name,
            f"{t.prefix}…" if t.prefix else "",
            _local(t.created_at, actor),
            _local(t.last_used_at, actor),
            _local(t.expires_at, actor) + (" (expired)" if t.expires_at and t.expires_at <= now else ""),
        )
        for t in found
    ]
    click.echo(_table(header, rows) if rows else "no tokens")


@token.command("revoke")
@click.argument("token_id", metavar="ID", type=int)
def token_revoke(token_id: int) -> None:
    """Revoke a token by id; every server refuses it within a second."""
    from mcp_server.accounts import revoke_token

    runtime = _runtime()
    with runtime.unit_of_work() as session:
        revoked = revoke_token(session, token_id)
    click.echo(f"revoked token {revoked.id} ({revoked.name})")


def _token_json(token: ApiToken, actor: Actor) -> dict[str, object]:
    def moment(value: datetime | None) -> str | None:
        return value.astimezone(actor.zone).isoformat() if value else None

    return {
        "id": token.id,
        "name": token.name,
        "prefix": token.prefix,
        "created_at": moment(token.created_at),
        "last_used_at": moment(token.last_used_at),
        "expires_at": moment(token.expires_at),
    }


def _local(value: datetime | None, actor: Actor) -> str:
    return value.astimezone(actor.zone).strftime("%Y-%m-%d %H:%M") if value else ""


@cli.command()
@USER_OPTION
@click.option(
    "--status", type=click.Choice(["open", "completed", "all"]), default="open", show_default=True, help="Which tasks."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of tasks in the shared task shape.")
def tasks(user_name: str | None, status: str, as_json: bool) -> None:
    """List tasks."""
    runtime = _runtime()
    actor = _actor(runtime, user_name)
    found = list(_all_tasks(runtime, actor, status))
    if as_json:
        click.echo(json.dumps([task.model_dump(mode="json") for task in found], ensure_ascii=False, indent=2))
    else:
        click.echo(_task_table(found, runtime.clock()) if found else "no tasks")


@cli.command()
@USER_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON: undone, message, restored, removed.")
def undo(user_name: str | None, as_json: bool) -> None:
    """Undo your latest change of the last hour, made anywhere (again: the one before)."""
    from mcp_server.undo import undo_last_change

    runtime = _runtime()
    actor = _actor(runtime, user_name)
    with runtime.unit_of_work() as session:
        result = undo_last_change(session, actor=actor, now=runtime.clock())
    click.echo(result.model_dump_json(indent=2) if as_json else result.message)


def _actor(runtime: Runtime, user_name: str | None) -> Actor:
    """A named user must exist; the default local user is created on first use."""
    from mcp_server.accounts import actor_for, find_existing_user

    if not user_name:
        return runtime.local_actor
    with runtime.unit_of_work() as session:
        return actor_for(find_existing_user(session, user_name))


def _all_tasks(runtime: Runtime, actor: Actor, status: str) -> Iterator[TaskPublic]:
    from mcp_server import service

    cursor: str | None = None
    while True:
        spec = service.TaskFilter(status=status, limit=service.LIMIT_MAX, cursor=cursor)  # type: ignore[arg-type]
        with runtime.unit_of_work() as session:
            page = service.list_tasks(session, actor=actor, spec=spec, now=runtime.clock())
        yield from page.tasks
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _task_table(tasks: list[TaskPublic], now: datetime) -> str:
    from agent.render import is_overdue

    header = ("id", "status", "title", "due", "priority", "tags")
    rows = [
        (
            str(t.id),
            "overdue" if is_overdue(t.model_dump(mode="json"), now) else t.status.value,
            t.title + (" ↻" if t.recurrence else ""),
            _short_due(t.due),
            t.priority.value,
            " ".join(f"#{tag}" for tag in t.tags),
        )
        for t in tasks
    ]
    return _table(header, rows)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Columns line up in a terminal whatever the cells hold: widths are measured as displayed (emoji take two)."""
    widths = [max(_width(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell + " " * (width - _width(cell)) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


def _width(text: str) -> int:
    """Terminal columns `text` takes (wcwidth cannot measure control characters: then one column each)."""
    if text.isascii() and text.isprintable():  # one column a character: most tables never load wcwidth
        return len(text)
    from wcwidth import wcswidth

    measured = wcswidth(text)
    return measured if measured >= 0 else len(text)


def _short_due(due: str | None) -> str:
    """'2026-11-30T17:00:00+05:00' reads as '2026-11-30 17:00' in a table already in the person's zone."""
    if due is None:
        return ""
    return due[:16].replace("T", " ")


@cli.group("mcp", invoke_without_command=True)
@USER_OPTION
@click.pass_context
def mcp_stdio(context: click.Context, user_name: str | None) -> None:
    """Serve the task tools over stdio, for IDE and desktop assistants (`taskflow mcp config` shows how)."""
    if context.invoked_subcommand is not None:
        return
    import anyio

    from mcp_server.serving import run_until_signal
    from mcp_server.stdio_pipes import serve_stdio
    from mcp_server.tool_server import tool_server

    settings = _settings(user_name)  # a bad setting stops the server before it answers anything
    server = tool_server(settings)
    anyio.run(run_until_signal, partial(serve_stdio, server, partial(_add_task_tools, server, settings)))


def _add_task_tools(server: StrictToolServer, settings: Settings) -> None:
    """The stdio server's tools, on the database opened and the local user created before the first tool request."""
    from mcp_server.runtime import Runtime
    from mcp_server.tools import add_task_tools

    runtime = Runtime.start(settings)
    runtime.local_actor  # noqa: B018
    add_task_tools(server, runtime)


@mcp_stdio.command("config")
@click.option(
    "--client",
    type=click.Choice(["claude", "vscode", "cursor"]),
    default="claude",
    show_default=True,
    help="claude: claude_desktop_config.json; vscode: .vscode/mcp.json; cursor: .cursor/mcp.json.",
)
def mcp_config(client: str) -> None:
    """Print the client's configuration entry for this installation's stdio server."""
    entry: dict[str, object] = {"command": sys.executable, "args": ["-m", "taskflow.cli", "mcp"]}
    if executable := _taskflow_executable():
        entry = {"command": executable, "args": ["mcp"]}
    env = {name: os.environ[name] for name in ("TASKFLOW_DATABASE_URL", "TASKFLOW_USER") if os.environ.get(name)}
    if env:
        entry["env"] = env
    config = (
        {"servers": {"taskflow": {"type": "stdio", **entry}}}
        if client == "vscode"
        else {"mcpServers": {"taskflow": entry}}
    )
    click.echo(json.dumps(config, indent=2))


def _taskflow_executable() -> str | None:
    """The absolute path of the `taskflow` being run (a desktop app does not see a virtual environment's PATH)."""
    started = Path(sys.argv[0])
    if started.name == "taskflow" and started.is_file():
        return str(started.absolute())
    found = shutil.which("taskflow")
    return str(Path(found).absolute()) if found else None


@cli.command()
@click.argument("text", required=False)
@click.option("--thread", default="default", show_default=True, help="Conversation to continue.")
@USER_OPTION
@click.option("--offline", is_flag=True, help="Use the offline interpreter even when a Gemini key is set.")
def chat(text: str | None, thread: str, user_name: str | None, offline: bool) -> None:
    """Talk to the agent: one turn with TEXT, or an interactive prompt without it."""
    import anyio

    from agent.session import model_for

    if text is not None and not text.strip():
        raise click.BadParameter("say what to do, e.g. taskflow chat 'add buy milk tomorrow'", param_hint="TEXT")
    runtime = _runtime(user_name)
    model = model_for(runtime.settings, offline=offline)
    if text is not None:
        click.echo(anyio.run(_chat_and_deliver, runtime, model, text, thread))
        return
    while True:
        try:
            line = click.prompt("you", prompt_suffix="> ", default="", show_default=False).strip()
        except click.exceptions.Abort:  # end of input or Ctrl-C: a normal way to leave
            click.echo()
            return
        if line in {"exit", "quit"}:
            return
        if line:
            click.echo(anyio.run(_chat_and_deliver, runtime, model, line, thread))


async def _chat_and_deliver(runtime: Runtime, model: Model, text: str, thread: str) -> str:
    """One turn, then the events it caused are handled before the command exits (bounded wait)."""
    import anyio

    from agent.session import chat_turn
    from events.background import consumers_for
    from events.inprocess import InProcessTransport
    from events.relay import Relay

    actor = runtime.local_actor
    reply = await chat_turn(
        runtime,
        actor=actor,
        user_name=runtime.settings.user,
        text=text,
        thread=thread,
        model=model,
    )
    if runtime.settings.event_transport == "inprocess":
        with anyio.move_on_after(5):
            await Relay(runtime.engine, InProcessTransport(consumers_for(runtime))).drain()
    return reply


@cli.group()
def serve() -> None:
    """Run a service."""


@serve.command("mcp")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=PORT)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Processes serving the one port; each runs the event services too (safe: they claim work with locks).",
)
def serve_mcp(host: str, port: int, workers: int) -> None:
    """Serve the task tools over streamable HTTP at /mcp (bearer token required) with /healthz, /readyz, /metrics."""
    from chat_ui.launcher import display_url
    from mcp_server.serving import serve_http, serve_http_workers
    from taskflow.http_app import app_from_settings, create_http_app

    runtime = _runtime()  # brings the database schema up to date once, before any worker starts
    ready = _announce("TaskFlow MCP server", f"{display_url(host, port)}/mcp")
    if workers == 1:
        serve_http(create_http_app(runtime), host, port, ready=ready)
        return
    runtime.close()
    serve_http_workers(f"{app_from_settings.__module__}:{app_from_settings.__name__}", host, port, workers, ready)


@serve.command("chat")
@click.option("--host", default="127.0.0.1", show_default=True, help="Anything but localhost requires login.")
@click.option("--port", default=8000, show_default=True, type=PORT)
def serve_chat(host: str, port: int) -> None:
    """Serve the chat alone: tools at TASKFLOW_MCP_URL, reminders from Dapr at /events/notifications."""
    from chat_ui.launcher import display_url, serve

    serve(_settings(), host=host, port=port, embedded=False, ready=_announce("TaskFlow chat", display_url(host, port)))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Anything but localhost requires login.")
@click.option("--port", default=8000, show_default=True, type=PORT)
def up(host: str, port: int) -> None:
    """Run TaskFlow in one process: the chat, the task tools, reminders and events (Ctrl-C stops it)."""
    from chat_ui.launcher import display_url, serve

    serve(_settings(), host=host, port=port, embedded=True, ready=_announce("TaskFlow", display_url(host, port)))


def _announce(what: str, url: str) -> Callable[[], None]:
    return lambda: click.echo(f"{what} on {url} (Ctrl-C stops it)", err=True)


@cli.group()
def events() -> None:
    """Event delivery: the dead letters consumers gave up on, and their replay."""


@events.command("dead-letters")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array with each event in full.")
def events_dead_letters(as_json: bool) -> None:
    """List the events a consumer gave up on, oldest first."""
    from events.dead_letters import dead_letters, describe

    letters = dead_letters(_runtime().engine)
    if as_json:
        shown = [
            letter.model_dump(mode="json", exclude={"envelope"}) | {"event": letter.cloudevent()} for letter in letters
        ]
        click.echo(json.dumps(shown, ensure_ascii=False, indent=2))
    else:
        click.echo("\n".join(describe(letter) for letter in letters) if letters else "no dead letters")


@events.command("retry")
@click.argument("letter_id", type=int, required=False)
@click.option("--all", "every", is_flag=True, help="Replay every dead letter, oldest first.")
def events_retry(letter_id: int | None, every: bool) -> None:
    """Hand dead letters to their consumers again (after a fix); each is handled at most once."""
    from chat_ui import notifications
    from events.background import consumers_for
    from events.consumers import Outcome
    from events.dead_letters import dead_letters

    if (letter_id is not None) == every:
        raise click.UsageError("give one dead letter's ID or --all")
    runtime = _runtime()
    consumers = consumers_for(runtime)
    notifications.subscribe(consumers)  # the chat's consumer records reminders its open chats pick up
    ids = [letter.id for letter in dead_letters(runtime.engine)] if every else [letter_id]
    failed = 0
    for replayed in ids:
        outcome = consumers.replay(replayed)  # type: ignore[arg-type]
        if outcome is Outcome.success:
            click.echo(f"{replayed}: handled")
        else:
            failed += 1
            click.echo(f"{replayed}: " + ("failed again; still a dead letter" if outcome else "no such dead letter"))
    if failed:
        raise click.ClickException(f"{failed} of {len(ids)} dead letter(s) not handled")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Where the health port listens.")
@click.option("--port", type=PORT, help="Serve health and /metrics on this port (default: TASKFLOW_HEALTH_PORT).")
def worker(host: str, port: int | None) -> None:
    """Run the event relay and the reminder scheduler (for deployments that run them apart)."""
    import anyio

    from events.background import EventServices, consumers_for, transport_for
    from events.health import worker_app
    from mcp_server.serving import run_until_stopped, serve_http

    runtime = _runtime()
    services = EventServices(runtime, transport_for(runtime, consumers_for(runtime)))
    port = port if port is not None else runtime.settings.health_port
    announce = partial(click.echo, f"TaskFlow worker: {runtime.settings.event_transport} transport", err=True)
    if port is None:
        announce()
        anyio.run(run_until_stopped, services.run)
    else:
        serve_http(worker_app(runtime.engine, services), host, port, ready=announce)


def _fail(message: str) -> NoReturn:
    click.echo(f"taskflow: {message}", err=True)
    sys.exit(1)


def main() -> None:
    """Entry point: expected failures end with one line on stderr, never a traceback."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        cli.main(standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _fail("stopped")
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except Exception as error:
        message = _expected_failure(_sole_failure(error))
        if message is None:  # a surprise, worth its traceback
            raise
        _fail(message)


def _sole_failure(error: BaseException) -> BaseException:
    """The one failure task groups wrapped (the stdio server prepares its tools in one), else the error itself."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


def _expected_failure(error: BaseException) -> str | None:
    """What went wrong and what to do, in one line, for a failure TaskFlow expects; None for any other."""
    if isinstance(error, ConfigError | TaskError) or _raised_by(error, "mcp_server.migrate", "SchemaOutdated"):
        return str(error)
    if _raised_by(error, "sqlalchemy.exc", "OperationalError"):
        return f"cannot use the database: {str(error.orig).strip().splitlines()[0]}"  # type: ignore[attr-defined]
    if _raised_by(error, "sqlalchemy.exc", "SQLAlchemyError"):
        return f"database error: {type(error).__name__}"
    if isinstance(error, OSError) and error.filename is not None:  # else not a file TaskFlow needs
        reason = "a file is in the way" if isinstance(error, (NotADirectoryError, FileExistsError)) else error.strerror
        return f"cannot use {error.filename}: {reason} (choose another TASKFLOW_DATABASE_URL or XDG_DATA_HOME)"
    if _raised_by(error, "agent.conversation", "ModelUnavailable", "TurnInterrupted"):  # the chat model
        return str(error)
    return None


def _raised_by(error: BaseException, module: str, *names: str) -> bool:
    """Whether `error` is one of these exceptions of `module`. A command that never loaded the module (most load
    neither the database layer nor the agent) cannot have raised them, so it is looked up, never imported here."""
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(error, tuple(getattr(loaded, name) for name in names))


if __name__ == "__main__":  # `python -m taskflow.cli`, for clients that cannot find the `taskflow` script
    main()
