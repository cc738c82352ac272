"""The process that parses big pages, big robots.txt files and sitemaps, off the event loop;
and, with [fields], every HTML page, whose whole tree it builds within a memory cap
(html.parse_html_capped) and a time limit (a call's `time_limit`).

`ParsePool` drives one helper process (`python -m crawler.extract.parse_helper`), started on
first use. A request is a pickled (function, arguments), an answer the pickled result or the
exception it raised, each length-prefixed, over the helper's stdin and stdout; calls go one
at a time. A plain subprocess rather than multiprocessing: no resource tracker process beside
it (13 MB), and the helper imports only what unpickling the call needs.

Memory: parsing a page of megabytes takes tens of MB that the helper's heap keeps once freed
(Python's arenas and lexbor's blocks are rarely returned to the system). So after a call given
RECYCLE_BYTES or more the helper is let go, and the next call starts a fresh one
(bench/README.md, "Text on and off in a crawl", has the figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from .parse_helper import LENGTH, RAISED, READY

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
# A call given at least this many bytes (a page's body, a sitemap) ends the helper's life: its
# heap then holds tens of MB it would keep. Smaller calls (robots.txt files) reuse it.
RECYCLE_BYTES = 1_000_000
START_LIMIT = 60.0  # seconds the helper may take to start and say it is ready


class ParseProcessDied(Exception):
    """The helper process died while parsing (killed, out of memory), twice for one call."""


class ParseTimedOut(ParseProcessDied):
    """A call ran past its time limit: the helper was killed (and the call not run again)."""


class ParsePool:
    """One helper process for parsing big pages and big robots.txt files, started on first
    use, killed and reaped on exit (an async context manager).

    Fault handling: if the process dies (killed, out of memory), the call it was given is run
    once more in a fresh process; if that one dies too, the call is the cause and raises
    ParseProcessDied (the page's row gets the error). A call given a time limit that it runs
    past has the process killed and raises ParseTimedOut. Later calls get a fresh process.
    """

    def __init__(self) -> None:
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self._abandoned: list[asyncio.subprocess.Process] = []
        self.restarts = 0  # helpers that died
        self.recycled = 0  # helpers let go after a big call
        self.timeouts = 0  # helpers killed for a call past its time limit

    async def __aenter__(self) -> ParsePool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stop(kill=True)
        for process in self._abandoned:
            await process.wait()

    @property
    def pid(self) -> int | None:
        """The helper's process id, None when none is running."""
        return None if self._process is None else self._process.pid

    async def run(self, fn: Callable[..., _T], *args: Any, time_limit: float | None = None) -> _T:
        """fn(*args) in the process (fn and args pickled: a module-level function); raises
        what fn raised, ParseProcessDied, or ParseTimedOut after `time_limit` seconds."""
        big = sum(len(a) for a in args if isinstance(a, bytes | str)) >= RECYCLE_BYTES
        request = await _unblocked(big, pickle.dumps, (fn, args), pickle.HIGHEST_PROTOCOL)
        async with self._lock:
            try:
                answer = await self._timed_call(request, time_limit)
            except ParseTimedOut:
                raise
            except ParseProcessDied:
                logger.warning("the page-parsing process died; parsing the page in a new one")
                answer = await self._timed_call(request, time_limit)
            del request  # a page's body: not kept while the helper exits
            if big:
                await self._stop(kill=False)
                self.recycled += 1
        kind, payload = answer
        value = await _unblocked(len(payload) >= RECYCLE_BYTES, pickle.loads, payload)
        if kind == RAISED:
            raise value
        return value  # type: ignore[no-any-return]

    async def _timed_call(self, request: bytes, time_limit: float | None) -> tuple[bytes, bytes]:
        timeout = asyncio.timeout(time_limit)
        try:
            async with timeout:
                return await self._call(request)
        except TimeoutError:
            if not timeout.expired():
                raise
        # _call killed the helper as it was cancelled: reaped now, not at the crawl's end
        self.timeouts += 1
        while self._abandoned:
            await self._abandoned.pop().wait()
        raise ParseTimedOut(f"the page-parsing process took over {time_limit} s")

    async def _call(self, request: bytes) -> tuple[bytes, bytes]:
        process = await self._started()
        assert process.stdin is not None
        assert process.stdout is not None
        try:
            process.stdin.write(LENGTH.pack(len(request)))
            process.stdin.write(request)
            await process.stdin.drain()
            kind = await process.stdout.readexactly(1)
            (length,) = LENGTH.unpack(await process.stdout.readexactly(LENGTH.size))
            return kind, await process.stdout.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            code = await self._stop(kill=True)
            self.restarts += 1
            raise ParseProcessDied(f"the page-parsing process died (exit code {code})") from exc
        except BaseException:  # cancelled: its answer would be read as the next call's
            self._abandon()
            raise

    async def _started(self) -> asyncio.subprocess.Process:
        if self._process is not None:
            return self._process
        self._process = process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "crawler.extract.parse_helper",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert process.stdout is not None
        try:
            async with asyncio.timeout(START_LIMIT):
                ready = await process.stdout.read(1)
        except TimeoutError:
            ready = b""
        except BaseException:
            self._abandon()
            raise
        if ready != READY:
            code = await self._stop(kill=True)
            raise ParseProcessDied(f"the page-parsing process did not start (exit code {code})")
        return process

    def _abandon(self) -> None:
        """Kill the helper now, without waiting (a cancelled call): reaped on exit."""
        process, self._process = self._process, None
        if process is not None:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            self._abandoned.append(process)

    async def _stop(self, *, kill: bool) -> int | None:
        """End the helper: killed, or asked to (its stdin closed); its exit code."""
        process, self._process = self._process, None
        if process is None:
            return None
        if process.returncode is None:
            if kill:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            else:
                assert process.stdin is not None
                process.stdin.close()
        return await process.wait()


async def _unblocked(big: bool, fn: Callable[..., _T], *args: Any) -> _T:
    """fn(*args) in a thread when it handles megabytes (pickling a page's body), else here: a
    thread's hand-over costs more than pickling a page of tens of KB."""
    return await asyncio.to_thread(fn, *args) if big else fn(*args)
