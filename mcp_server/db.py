"""Database engines and units of work for PostgreSQL (production) and SQLite (embedded default)."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import URL, make_url
from sqlmodel import Session

from mcp_server import telemetry


def normalise_url(raw: str) -> URL:
    """Accept database URLs as hosting providers hand them out and pick our drivers."""
    url = make_url(raw.replace("postgres://", "postgresql://", 1) if raw.startswith("postgres://") else raw)
    if url.get_backend_name() == "postgresql":
        return url.set(drivername="postgresql+psycopg")
    return url


# Seconds to wait for a PostgreSQL connection: a database that does not answer fails a request, not hangs it.
CONNECT_TIMEOUT = 5
# Seconds a unit of work waits for SQLite's write lock before it fails with "database is locked".
BUSY_TIMEOUT = 30


def create_db_engine(raw_url: str) -> Engine:
    """An engine that survives dropped connections and commits durably.

    Its errors never quote SQL parameters: those are the person's data, and errors end up in logs.
    """
    url = normalise_url(raw_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    return _postgres_engine(url)


def _postgres_engine(url: URL) -> Engine:
    from psycopg import OperationalError, pq  # loaded only by engines that use it

    # No server-side prepared statements: transaction-mode poolers (Neon's, Supabase's) cannot keep them, and
    # their generic plans misjudge search filters (a tag plus a text query took 100x longer once prepared).
    engine = create_engine(
        url,
        pool_recycle=300,
        hide_parameters=True,
        connect_args={"prepare_threshold": None, "connect_timeout": CONNECT_TIMEOUT},
    )

    @event.listens_for(engine, "connect")
    def _utc(dbapi_connection: Any, _record: Any) -> None:
        # Moments are read back in the session's time zone and then converted to UTC (models.UTCDateTime). In UTC
        # already, the driver reads them at half the cost it pays for a named zone (a server's default 'Etc/UTC'
        # is one). Every value carries its offset, so the zone changes no moment and no query depends on it.
        dbapi_connection.pgconn.exec_(b"SET TIME ZONE 'UTC'")

    @event.listens_for(engine, "checkout")
    def _begin_or_replace(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # The transaction begins as the connection is handed out, and that BEGIN is the liveness check: the first
        # request after a database restart or a killed backend gets a fresh connection (the pool replaces every
        # connection older than the dead one) instead of failing. The driver would send this BEGIN before the
        # first statement anyway, so the check costs no round trip of its own, as a ping before it would. The
        # engine never sets autocommit or an isolation level, which the driver cannot change inside a transaction.
        try:
            begun = dbapi_connection.pgconn.exec_(b"BEGIN").status == pq.ExecStatus.COMMAND_OK
        except OperationalError:  # the connection was already known to be closed
            begun = False
        if not begun:
            raise exc.InvalidatePoolError("a pooled connection could not begin a transaction")

    return engine


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, hide_parameters=True, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT}
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy own transactions; WAL lets readers run beside the writer; FULL fsyncs each commit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        # Take the write lock up front so concurrent writers queue on busy_timeout instead of failing mid-way.
        # Straight to the driver: it returns nothing, so SQLAlchemy's result handling would be wasted on it.
        connection.connection.driver_connection.execute("BEGIN IMMEDIATE")

    _WRITER_TURNS[engine] = threading.RLock()
    return engine


def conflict_insert(dialect_name: str) -> Callable[..., Any]:
    """The dialect's INSERT, which takes ON CONFLICT clauses; PostgreSQL's module is loaded only by an engine that
    uses it, so commands on SQLite never import it."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert

        return insert
    from sqlalchemy.dialects.sqlite import insert

    return insert


Waker = Callable[[set[str]], None]


@contextmanager
def unit_of_work(engine: Engine, wake: Waker | None = None) -> Iterator[Session]:
    """A session whose changes commit together when the block ends, or roll back on error.

    After a commit, `wake` gets the channels the work asked to signal (new events, moved reminders).
    """
    with telemetry.child_span("unit of work"), Session(engine, expire_on_commit=False) as session:
        with _writer_turn(engine), session.begin():
            yield session
        channels = session.info.get("wake")
        if wake is not None and channels:
            wake(channels)


# SQLite has one writer at a time, and every unit of work takes the write lock (BEGIN IMMEDIATE). Waiting on it in
# SQLite's busy handler means sleeping 1, 2, 5 ... 100 ms between tries, so under concurrent calls the lock sat free
# while its waiters slept (seconds at p99 with 8 HTTP clients). Threads of one process queue on this lock instead
# and get the database the moment it is released; other processes (`--workers`) still meet in busy_timeout.
_WRITER_TURNS: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()


@contextmanager
def _writer_turn(engine: Engine) -> Iterator[None]:
    """This thread's turn at the engine's write lock (SQLite only). A turn that does not come within BUSY_TIMEOUT
    goes ahead to SQLite's own wait, which then fails it as before: a wait on the queue never hangs for good."""
    turn = _WRITER_TURNS.get(engine)
    if turn is None:
        yield
        return
    taken = turn.acquire(timeout=BUSY_TIMEOUT)
    try:
        yield
    finally:
        if taken:
            turn.release()
