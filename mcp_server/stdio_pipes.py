"""MCP over stdio read and written on the event loop itself.

The SDK's stdio transport reads and writes through `anyio.wrap_file`: every line in and every line out costs a hop
to a worker thread and back. When standard input and output are pipes (as MCP clients start servers) they can be
watched by the event loop instead; the messages and their framing (one JSON-RPC message per line, UTF-8) are the
same. Anything else (a file of requests, /dev/null, a terminal) is read and written in a worker thread, through the
same pump: tool calls answered directly, unreadable requests answered, calls under way answered when input ends.

What the server needs before its first tool request (its tools, and the database they use) can be prepared in a
worker thread while `initialize` is answered: MCP clients bound the wait for that answer, and loading the database
layer costs as much as the rest of start-up. Every other message waits, in order, until the preparation is done; a
preparation that fails ends the server with its error.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import stat
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from functools import partial

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp import types
from mcp.shared.message import SessionMessage

from mcp_server.arguments import StrictToolServer
from mcp_server.direct_calls import DirectToolCalls, Write, allowed_id

CHUNK = 1 << 16
UNREADABLE = {
    "code": types.INVALID_REQUEST,
    "message": 'Invalid Request: a request needs "jsonrpc": "2.0", a method name and params that are an object',
}

Streams = tuple[MemoryObjectReceiveStream[SessionMessage | Exception], MemoryObjectSendStream[SessionMessage]]


async def serve_stdio(server: StrictToolServer, prepare: Callable[[], object]) -> None:
    """Serve `server` to the client on standard input and output until the input ends; `prepare` runs in a worker
    thread meanwhile, and only `initialize` is answered before it returns."""
    lowlevel = server._mcp_server  # FastMCP's own run_stdio_async does the same with the SDK's transport
    async with stdio_streams(server, prepare) as (read_stream, write_stream):
        await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())


@asynccontextmanager
async def stdio_streams(server: StrictToolServer, prepare: Callable[[], object]) -> AsyncIterator[Streams]:
    """The session's message streams over this process's stdin and stdout; tool calls `server` answers itself
    (see direct_calls) bypass them."""
    # Duplicates, because a pipe transport closes what it was given; stdin and stdout stay open for the process.
    reading = os.fdopen(os.dup(sys.stdin.fileno()), "rb", buffering=0)
    writing = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    if not (_pollable(reading) and _pollable(writing)):
        # A regular file, /dev/null or a terminal, which epoll cannot watch: blocking reads and writes in a worker
        # thread, as the SDK's own transport does for everything.
        with reading, writing:
            source, sink = anyio.wrap_file(reading), anyio.wrap_file(writing)
            async with _pumped(partial(source.read, CHUNK), sink.write, server, prepare) as streams:
                yield streams
        return
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=CHUNK, loop=loop)
    incoming, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader, loop=loop), reading)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, writing)
    writer = asyncio.StreamWriter(transport, protocol, None, loop)

    async def write(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    try:
        async with _pumped(partial(reader.read, CHUNK), write, server, prepare) as streams:
            yield streams
    finally:
        incoming.close()
        transport.close()
        # The pipes were made non-blocking for the loop; whoever shares them (a shell) expects blocking ones.
        for fd in (sys.stdin.fileno(), sys.stdout.fileno()):
            with suppress(OSError):
                os.set_blocking(fd, True)


def _pollable(file: io.FileIO) -> bool:
    """Whether the event loop can watch the file: a pipe or a socket."""
    mode = os.fstat(file.fileno()).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


@asynccontextmanager
async def _pumped(
    read: Callable[[], Awaitable[bytes]], write: Write, server: StrictToolServer, prepare: Callable[[], object]
) -> AsyncIterator[Streams]:
    """Lines from `read` (which returns b"" at the end) to the session or the direct calls; their answers to `write`."""
    incoming_writer, incoming = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    outgoing, outgoing_reader = anyio.create_memory_object_stream[SessionMessage](0)

    async def hand_on(line: bytes) -> None:
        message = _parsed(line)
        if isinstance(message, Exception) and (request_id := _request_id(line)) is not None:
            # JSON-RPC answers a request it cannot read; the SDK's session would only log it, leaving the client
            # waiting for an answer that never comes.
            answer = {"jsonrpc": "2.0", "id": request_id, "error": UNREADABLE}
            await write(json.dumps(answer, separators=(",", ":")).encode() + b"\n")
        else:
            await incoming_writer.send(message)

    prepared = anyio.Event()

    async def take(line: bytes, direct: DirectToolCalls) -> None:
        if not line.strip():  # blank lines (a trailing newline, say) carry no message
            return
        if not (prepared.is_set() or _is_initialize(line)):
            await prepared.wait()
        if not direct.take(line):
            await hand_on(line)

    async def read_lines(direct: DirectToolCalls) -> None:
        async with incoming_writer:
            pending = b""
            while chunk := await read():
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    await take(line, direct)
            await take(pending, direct)

    async def prepare_server() -> None:
        await anyio.to_thread.run_sync(prepare)
        prepared.set()

    async def write_lines() -> None:
        async with outgoing_reader:
            async for session_message in outgoing_reader:
                text = session_message.message.model_dump_json(by_alias=True, exclude_none=True)
                await write(text.encode() + b"\n")

    # The group also runs the direct calls: when the input ends, calls under way still get their answers.
    async with anyio.create_task_group() as group:
        group.start_soon(prepare_server)
        group.start_soon(read_lines, DirectToolCalls(server, group, write))
        group.start_soon(write_lines)
        yield incoming, outgoing  # the session closes both when the input ends; then the pumps end too


def _is_initialize(line: bytes) -> bool:
    """Whether the line is an `initialize` request, which the server answers before it is prepared."""
    if b"initialize" not in line:  # the check most lines end at
        return False
    try:
        message = json.loads(line)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("method") == "initialize"


def _request_id(line: bytes) -> int | str | None:
    """The id of what looks like a request, if it has one MCP allows (a string or an integer)."""
    try:
        message = json.loads(line.decode("utf-8", errors="replace"))
    except ValueError:
        return None
    return allowed_id(message.get("id")) if isinstance(message, dict) and "method" in message else None


def _parsed(line: bytes) -> SessionMessage | Exception:
    """One line as the SDK's transport reads it: invalid UTF-8 replaced, a malformed message handed on as its error."""
    try:
        return SessionMessage(types.JSONRPCMessage.model_validate_json(line.decode("utf-8", errors="replace")))
    except Exception as error:
        return error
