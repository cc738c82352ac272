"""A forward HTTP proxy on loopback that logs what passes: absolute-form requests
("GET http://host:port/path HTTP/1.1") are sent on to the origin, CONNECT opens a tunnel.
Every host name resolves to 127.0.0.1. `async with forward_proxy() as proxy:` gives its
`port` and `log` of (method, target) in arrival order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from yarl import URL


@dataclass
class Proxy:
    port: int = 0
    log: list[tuple[str, str]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def forward_proxy() -> AsyncIterator[Proxy]:
    proxy = Proxy()
    serving: set[asyncio.Task[None]] = set()  # a connection's task, until it ends

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        serving.add(task)
        task.add_done_callback(serving.discard)
        async with _closing(writer):
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            proxy.log.append((method, target))
            if method == "CONNECT":
                port = int(target.rsplit(":", 1)[1])
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await _pipe_both(reader, writer, up_reader, up_writer)
                return
            url = URL(target)
            rest = head.split(b"\r\n", 1)[1]
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", url.port)
            first = f"{method} {url.raw_path_qs} HTTP/1.1\r\n".encode("latin-1")
            # One request per connection: the origin closes after answering.
            rest = b"Connection: close\r\n" + rest.replace(b"Connection: keep-alive\r\n", b"")
            up_writer.write(first + rest)
            await _pipe_both(reader, writer, up_reader, up_writer)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    proxy.port = server.sockets[0].getsockname()[1]
    async with server:
        try:
            yield proxy
        finally:
            # A connection the client left open waits for its next request: end it here,
            # not when the loop closes (a pending task, destroyed).
            for task in list(serving):
                task.cancel()
            await asyncio.gather(*serving, return_exceptions=True)


async def _pipe_both(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    async with _closing(up_writer):
        ahead = asyncio.create_task(_pipe(reader, up_writer))
        try:
            await _pipe(up_reader, writer)
        finally:
            ahead.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ahead  # ended here, not left to the garbage collector


@contextlib.asynccontextmanager
async def _closing(writer: asyncio.StreamWriter) -> AsyncIterator[None]:
    """The connection closed on the way out, and waited for (else a ResourceWarning when a
    later test's garbage collection finds it still closing)."""
    try:
        yield
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
