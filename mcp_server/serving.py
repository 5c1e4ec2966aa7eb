"""Running TaskFlow's HTTP servers and worker so that a stop request always ends the process in bounded time.

SIGTERM or Ctrl-C asks for a graceful stop: open requests get GRACE seconds, then background work is cancelled.
A request handler stuck in the database (a thread waiting on a lock) cannot be cancelled, so each stop request
also arms a deadline after which the process exits regardless.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

import anyio
import uvicorn
from starlette.types import ASGIApp
from uvicorn.supervisors.multiprocess import Multiprocess

from mcp_server import telemetry
from mcp_server.config import ConfigError

log = logging.getLogger(__name__)

GRACE = 3.0  # seconds open connections get to finish after a stop request
DEADLINE = 8.0  # seconds after a stop request when the process exits whatever still runs
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def exit_by_deadline(seconds: float = DEADLINE) -> None:
    """Arm a daemon timer that ends the process should an orderly stop still be running after `seconds`."""
    timer = threading.Timer(seconds, _exit_now, args=(seconds,))
    timer.daemon = True
    timer.start()


def _exit_now(seconds: float) -> None:
    log.warning("stopping took longer than %g s (work stuck in the database?); exiting now", seconds)
    logging.shutdown()
    os._exit(1)


class BoundedServer(uvicorn.Server):
    """uvicorn's server, whose stop is bounded by DEADLINE."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        exit_by_deadline()
        super().handle_exit(sig, frame)


def server_config(app: ASGIApp | str, host: str, port: int, **options: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        log_config=telemetry.uvicorn_log_config(),
        timeout_graceful_shutdown=GRACE,
        **options,
    )


def listening_socket(host: str, port: int) -> socket.socket:
    """The server's socket, bound before anything announces the address: a taken port fails here, in one sentence."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, protocol)
    except OSError as error:
        raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no conflict
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    return sock


async def serve_on(server: uvicorn.Server, sock: socket.socket) -> None:
    """Run `server` on the socket already bound for it."""
    with sock:
        await server.serve(sockets=[sock])


def serve_http(app: ASGIApp, host: str, port: int, ready: Callable[[], None] = lambda: None) -> None:
    """Bind, call `ready`, and serve `app` until SIGTERM or Ctrl-C."""
    sock = listening_socket(host, port)
    ready()
    asyncio.run(serve_on(BoundedServer(server_config(app, host, port)), sock))


class BoundedWorkers(Multiprocess):
    """uvicorn's worker processes, whose stop is bounded by DEADLINE: a worker still running then is killed."""

    def join_all(self) -> None:
        deadline = time.monotonic() + DEADLINE
        for worker in self.processes:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.exitcode is None:
                log.warning("worker %s took longer than %g s to stop; killing it", worker.pid, DEADLINE)
                worker.kill()
                worker.join()


def serve_http_workers(factory: str, host: str, port: int, workers: int, ready: Callable[[], None]) -> None:
    """Bind once, then run `workers` processes that accept on the one socket, each building its own app (and
    database connections) by calling `factory`, an import string; SIGTERM or Ctrl-C stops them all."""
    sock = listening_socket(host, port)
    ready()
    with sock:
        BoundedWorkers(server_config(factory, host, port, factory=True, workers=workers), sockets=[sock]).run()


async def run_until_stopped(job: Callable[[], Awaitable[None]]) -> None:
    """Run `job` until SIGTERM or Ctrl-C (a process without an HTTP server); the stop is bounded by DEADLINE."""
    async with anyio.create_task_group() as group:
        with anyio.open_signal_receiver(*STOP_SIGNALS) as received:
            group.start_soon(job)
            async for _ in received:
                exit_by_deadline()
                group.cancel_scope.cancel()
                return


async def run_until_signal(job: Callable[[], Awaitable[None]]) -> None:
    """Run `job` until it ends, or end the process at once on SIGTERM or Ctrl-C.

    For the stdio server: when its stdin is not a pipe, it is read by a thread that no cancellation reaches, so an
    orderly stop would wait for the client's next line. What was committed is durable; a call in flight gets no answer.
    """
    async with anyio.create_task_group() as group:
        with anyio.open_signal_receiver(*STOP_SIGNALS) as received:
            group.start_soon(_cancel_when_done, job, group.cancel_scope)
            async for _ in received:
                logging.shutdown()
                os._exit(0)


async def _cancel_when_done(job: Callable[[], Awaitable[None]], scope: anyio.CancelScope) -> None:
    await job()
    scope.cancel()  # the job ended (end of input): stop listening for signals
