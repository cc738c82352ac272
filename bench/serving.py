"""What the benchmarks share: a free loopback port, and an aiohttp app served in its own
process (so the crawler under test does not share its CPU or event loop with the site)."""

from __future__ import annotations

import asyncio
import signal
import socket
import time

from aiohttp import web


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def serve_until_terminated(app: web.Application, port: int) -> None:
    """Serve `app` on 127.0.0.1:`port` until SIGTERM (run it in a multiprocessing.Process)."""

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(main())


def wait_for(port: int, timeout: float = 30) -> None:
    """Return once something accepts connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"the test site did not start on port {port}")
