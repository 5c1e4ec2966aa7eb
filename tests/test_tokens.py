"""Personal tokens people can manage: listed by prefix, revoked, expiring; every server honours a change in a second."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from mcp_server.accounts import (
    LIFETIME_MOST,
    LIFETIME_UNITS,
    add_user,
    create_token,
    find_user,
    list_tokens,
    parse_lifetime,
    revoke_token,
    use_token,
)
from mcp_server.db import create_db_engine, unit_of_work
from mcp_server.errors import InvalidField
from mcp_server.migrate import upgrade
from mcp_server.models import User, utcnow
from tests.conftest import ADMIN_URL
from tests.processes import free_port, serving, taskflow_env, wait_until
from tests.test_cli import taskflow

# How long a server may keep honouring a token after it is revoked or expires.
HONOURED_AT_MOST = 1.0


@given(amount=st.integers(min_value=1, max_value=999_999), unit=st.sampled_from(sorted(LIFETIME_UNITS)))
def test_a_lifetime_is_hours_days_or_weeks_up_to_a_limit(amount, unit):
    lifetime = amount * LIFETIME_UNITS[unit]
    if lifetime <= LIFETIME_MOST:
        assert parse_lifetime(f"{amount}{unit}") == lifetime
        assert parse_lifetime(f" {amount}{unit.upper()} ") == lifetime
    else:
        with pytest.raises(InvalidField, match="^expires: .* is out of range; give from 1h to 3660d$"):
            parse_lifetime(f"{amount}{unit}")


@given(text=st.text(max_size=30))
def test_any_other_lifetime_is_refused_naming_the_field(text):
    if re.fullmatch(r"\s*0*[1-9]\d{0,5}\s*[hdw]\s*", text.lower(), flags=re.ASCII):
        return  # a valid lifetime: the test above
    with pytest.raises(InvalidField, match="^expires: "):
        parse_lifetime(text)


def make_token(engine, *, expires_at: datetime | None = None) -> tuple[User, str]:
    """A new user of its own, and a token of theirs."""
    with unit_of_work(engine) as session:
        owner = add_user(session, name=f"kim-{uuid.uuid4().hex[:8]}", timezone="Europe/Lisbon")
        return owner, create_token(session, user_id=owner.id, expires_at=expires_at)


def test_the_last_use_is_written_at_most_once_a_minute(engine):
    owner, token = make_token(engine)
    start = utcnow()
    for seconds, recorded in [(0, 0), (1, 0), (59, 0), (60, 60), (61, 60), (119, 60), (125, 125)]:
        with unit_of_work(engine) as session:
            assert use_token(session, token, now=start + timedelta(seconds=seconds)).user.id == owner.id
        with unit_of_work(engine) as session:
            (row,) = list_tokens(session, owner.id)
        assert row.last_used_at == start + timedelta(seconds=recorded)


def test_an_expired_token_has_no_owner(engine):
    expires_at = utcnow() + timedelta(hours=1)
    owner, token = make_token(engine, expires_at=expires_at)
    with unit_of_work(engine) as session:
        assert use_token(session, token, now=expires_at - timedelta(microseconds=1)).user.id == owner.id
        assert use_token(session, token, now=expires_at) is None


# The `taskflow token` commands, as people run them, on both databases.


@pytest.fixture
def env(db_url, tmp_path) -> dict[str, str]:
    return taskflow_env(db_url, HOME=str(tmp_path))


@pytest.fixture
def person(engine) -> str:
    with unit_of_work(engine) as session:
        return add_user(session, name=f"kim-{uuid.uuid4().hex[:8]}", timezone="Europe/Lisbon").name


def tokens_of(name: str, env: dict[str, str]) -> list[dict]:
    done = taskflow("token", "list", "--user", name, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow
def test_token_list_tells_tokens_apart_by_a_prefix_never_the_token(env, person):
    laptop = taskflow("token", "create", "--user", person, "--name", "laptop", "--expires", "30d", env=env)
    ci = taskflow("token", "create", "--user", person, "--name", "ci", env=env)
    laptop_secret, ci_secret = laptop.stdout.strip(), ci.stdout.strip()
    created = utcnow()

    listed = tokens_of(person, env)
    assert [(t["name"], t["prefix"]) for t in listed] == [("laptop", laptop_secret[:8]), ("ci", ci_secret[:8])]
    expires = datetime.fromisoformat(listed[0]["expires_at"])
    assert abs(expires - (created + timedelta(days=30))) < timedelta(minutes=5)
    assert listed[1]["expires_at"] is None
    assert [t["last_used_at"] for t in listed] == [None, None]

    table = taskflow("token", "list", "--user", person, env=env).stdout
    header, *rows = table.splitlines()
    assert header.split() == ["id", "name", "prefix", "created", "last", "used", "expires"]
    assert rows[0].split()[:3] == [str(listed[0]["id"]), "laptop", f"{laptop_secret[:8]}…"]
    for secret in (laptop_secret, ci_secret):
        assert secret[:9] not in table + json.dumps(listed)


@pytest.mark.slow
def test_token_revoke_removes_only_that_token(engine, env):
    owner, _ = make_token(engine)
    with unit_of_work(engine) as session:
        create_token(session, user_id=owner.id, name="ci")
        first, kept = list_tokens(session, owner.id)
    done = taskflow("token", "revoke", str(first.id), env=env)
    assert (done.returncode, done.stdout) == (0, f"revoked token {first.id} (default)\n")
    with unit_of_work(engine) as session:
        assert [token.id for token in list_tokens(session, owner.id)] == [kept.id]


@pytest.mark.slow
@pytest.mark.parametrize("unknown", ["revoked", 2**31, 2**70])
def test_token_revoke_refuses_an_unknown_id_in_one_line(engine, env, unknown):
    owner, _ = make_token(engine)
    with unit_of_work(engine) as session:
        (token,) = list_tokens(session, owner.id)
        if unknown == "revoked":
            unknown = revoke_token(session, token.id).id
    done = taskflow("token", "revoke", str(unknown), env=env)
    message = f"taskflow: no token {unknown}; `taskflow token list --user NAME` shows a user's tokens\n"
    assert (done.returncode, done.stdout, done.stderr) == (1, "", message)
    with unit_of_work(engine) as session:
        assert len(list_tokens(session, owner.id)) == (0 if unknown == token.id else 1)


USAGE = "use a number of hours, days or weeks: 12h, 30d, 1w"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("lifetime", "message"),
    [
        ("3x", f"expires: '3x' is not a lifetime; {USAGE}"),
        ("1.5d", f"expires: '1.5d' is not a lifetime; {USAGE}"),
        ("0h", "expires: '0h' is out of range; give from 1h to 3660d"),
        ("600w", "expires: '600w' is out of range; give from 1h to 3660d"),
    ],
)
def test_a_bad_lifetime_is_one_line_and_makes_no_token(engine, env, person, lifetime, message):
    done = taskflow("token", "create", "--user", person, "--expires", lifetime, env=env)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", f"taskflow: {message}\n")
    with unit_of_work(engine) as session:
        assert list_tokens(session, find_user(session, person).id) == []


# A running `taskflow serve mcp` honours revocation and expiry within a second and survives a database outage.


@dataclass
class Server:
    url: str
    env: dict[str, str]
    database_url: str


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def server(request, make_pg_database, tmp_path_factory) -> Iterator[Server]:
    """A server on a database of its own, so its event services touch no other test's data."""
    home = tmp_path_factory.mktemp("server")
    url = make_pg_database() if request.param == "postgresql" else f"sqlite:///{home / 'taskflow.db'}"
    engine = create_db_engine(url)
    upgrade(engine)
    engine.dispose()
    port = free_port()
    env = taskflow_env(url, HOME=str(home))
    with serving(["serve", "mcp", "--port", str(port)], env, f"http://127.0.0.1:{port}/healthz", timeout=90):
        yield Server(url=f"http://127.0.0.1:{port}/mcp", env=env, database_url=url)


async def add_a_task(server: Server, token: str) -> bool:
    """A tool call through the real MCP client; whether it succeeded."""
    async with (
        httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        streamable_http_client(server.url, http_client=http) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        return not (await session.call_tool("add_task", {"title": "call the bank"})).isError


def ping(url: str, token: str) -> httpx.Response:
    """One JSON-RPC ping: its status says whether the token got past authentication."""
    headers = {"Accept": "application/json, text/event-stream", "Authorization": f"Bearer {token}"}
    return httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=headers, timeout=30)


def answers_from(moment: float, status: Callable[[], int], seconds: float) -> list[tuple[float, int]]:
    """(when each request started, in seconds after the monotonic `moment`, its status) until one started `seconds`
    or more after it: however late a busy machine gets here, the answers end with one from past the window."""
    answers = []
    while True:
        started = time.monotonic()
        answers.append((started - moment, status()))
        if started >= moment + seconds:
            return answers


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_revoked_token_is_refused_within_a_second_by_a_server_that_just_served_it(server):
    engine = create_db_engine(server.database_url)
    owner, secret = make_token(engine)
    engine.dispose()
    assert await add_a_task(server, secret)
    (listed,) = tokens_of(owner.name, server.env)
    assert listed["last_used_at"] is not None

    assert taskflow("token", "revoke", str(listed["id"]), env=server.env).returncode == 0
    revoked = time.monotonic()  # the revocation committed before the command exited
    answers = answers_from(revoked, lambda: ping(server.url, secret).status_code, HONOURED_AT_MOST + 1.5)
    late = [status for started, status in answers if started >= HONOURED_AT_MOST]
    assert late
    assert set(late) == {401}, answers


@pytest.mark.slow
@pytest.mark.anyio
async def test_an_expired_token_is_refused_from_its_expiry_on(server):
    engine = create_db_engine(server.database_url)
    expires_at = utcnow() + timedelta(seconds=15)  # far enough for the first calls on a busy machine
    _, secret = make_token(engine, expires_at=expires_at)
    engine.dispose()
    assert await add_a_task(server, secret)
    assert ping(server.url, secret).status_code == 200  # remembered now, but never past the expiry

    expiry = time.monotonic() + (expires_at - utcnow()).total_seconds()
    answers = answers_from(expiry, lambda: ping(server.url, secret).status_code, 1.5)
    late = [status for started, status in answers if started >= 0.05]  # 0.05 s: two processes read the clock
    assert late
    assert set(late) == {401}, answers


@pytest.mark.slow
def test_a_database_outage_answers_503_with_retry_after_and_passes(make_pg_database, tmp_path):
    url = make_pg_database()
    database = url.rsplit("/", 1)[1]
    engine = create_db_engine(url)
    upgrade(engine)
    (_, served), (_, unseen) = make_token(engine), make_token(engine)
    engine.dispose()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    mcp_url = f"{base}/mcp"
    env = taskflow_env(url, HOME=str(tmp_path))
    with serving(["serve", "mcp", "--port", str(port)], env, f"{base}/healthz", timeout=90):
        assert ping(mcp_url, served).status_code == 200
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [database])
            try:
                refused = ping(mcp_url, unseen)
                assert (refused.status_code, refused.headers.get("Retry-After")) == (503, "5")
                assert refused.json()["error"] == "temporarily_unavailable"
                # The token served a moment ago is remembered for its second, then gets the same answer.
                outage = time.monotonic()
                answers = answers_from(outage, lambda: ping(mcp_url, served).status_code, HONOURED_AT_MOST + 1)
                assert {status for started, status in answers if started >= HONOURED_AT_MOST} == {503}, answers
            finally:
                admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        wait_until(lambda: ping(mcp_url, unseen).status_code == 200, 30, 0.2)  # back as soon as the database is
