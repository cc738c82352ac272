"""Readable text for the pages' `text` column, extracted in helper processes.

Main-content extraction takes a few ms of CPU per page and can take far longer on a hostile
page (lexbor's tree builder is quadratic on deep nesting), so it runs in processes of its own
(crawler/text/worker.py), never in the event loop. Each page gets TIME_LIMIT seconds: a helper
that answers late is killed, the page keeps `text` NULL and the log says why. A helper that
dies is replaced for the next page.

`TextStage` sits between extraction and the writer: an outcome whose page wants text waits
there for it (so a page is committed with its text, in one transaction: a crawl killed at any
point has no page whose text was lost on the way). The stage holds at most a few pages per
helper; when it is full, extraction waits, and the crawl goes at the pace text allows.

Resource handling: `TextPool` is an async context manager; on exit every helper is killed
and reaped.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from ..errors import ConfigError
from ..records import Outcome
from .worker import READY, UNAVAILABLE, encode_request

logger = logging.getLogger(__name__)

TIME_LIMIT = 10.0  # seconds one page's text may take
START_LIMIT = 60.0  # seconds a helper may take to start (imports) and say it is ready
# Text is extracted from the first MAX_BYTES of a page (HTML parsers take a cut page as it
# is): a parse tree takes several times the page's size (the helper peaked at 78 MB with 2 MB
# on bench/traps.py's hostile pages), and pages of text this long are rare.
MAX_BYTES = 1_000_000
BACKLOG_PER_HELPER = 4  # pages waiting for text per helper, at most
# What the helpers import (pyproject.toml's dependencies), as a pip command's arguments.
TEXT_PACKAGES = "'resiliparse>=0.15'"
HELPERS = 1  # per crawl process: see helper_count


def helper_count() -> int:
    """One helper per crawl process. Extraction (resiliparse) costs less CPU per page than the
    crawl's own process spends on it, so one helper keeps up with its crawl; `--processes N`
    (N crawls, one per core the user gives the crawl) then has N helpers, not N * (CPUs - 1),
    and the process tree's memory grows by one small helper per crawl (bench/README.md)."""
    return HELPERS


class TextError(Exception):
    """A page's text could not be had: too slow, the helper died, or extracting raised."""


class TextUnavailable(TextError):
    """The extractor cannot be imported in the helper (resiliparse missing or broken); the
    message is the import's error."""


class _Helper:
    """One helper process, started on first use."""

    def __init__(self) -> None:
        self._process: asyncio.subprocess.Process | None = None

    async def text(self, body: bytes, charset: str | None, time_limit: float) -> str | None:
        process = await self.started()
        assert process.stdin is not None
        assert process.stdout is not None
        try:
            async with asyncio.timeout(time_limit):
                process.stdin.write(encode_request(body[:MAX_BYTES], charset))
                await process.stdin.drain()
                kind = await process.stdout.readexactly(1)
                length = int.from_bytes(await process.stdout.readexactly(4), "big")
                payload = (await process.stdout.readexactly(length)).decode("utf-8")
        except TimeoutError:
            await self.stop()
            raise TextError(f"cut off after {time_limit:g} s") from None
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            code = await self.stop()
            raise TextError(f"the text helper died (exit code {code})") from exc
        if kind == b"E":
            raise TextError(payload)
        return payload if kind == b"T" else None

    async def started(self) -> asyncio.subprocess.Process:
        """The process, started if it is not running, once it said it is ready."""
        if self._process is not None:
            return self._process
        self._process = process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "crawler.text.worker",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert process.stdout is not None
        why = ""
        try:
            async with asyncio.timeout(START_LIMIT):
                ready = await process.stdout.read(1)
                if ready == UNAVAILABLE:
                    length = int.from_bytes(await process.stdout.readexactly(4), "big")
                    why = (await process.stdout.readexactly(length)).decode("utf-8")
        except (TimeoutError, asyncio.IncompleteReadError):
            ready = b""
        if ready != READY:
            code = await self.stop()
            if why:
                raise TextUnavailable(why)
            raise TextError(f"the text helper did not start (exit code {code})")
        return process

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def stop(self) -> int | None:
        """Kill the process (a later page starts a new one); its exit code."""
        process, self._process = self._process, None
        if process is None:
            return None
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        return await process.wait()


class TextPool:
    """Helper processes that extract text, `size` pages at a time."""

    def __init__(self, size: int | None = None, time_limit: float = TIME_LIMIT) -> None:
        self.size = size or helper_count()
        self._time_limit = time_limit
        self._helpers = [_Helper() for _ in range(self.size)]
        self._idle: asyncio.Queue[_Helper] = asyncio.Queue()
        for helper in self._helpers:
            self._idle.put_nowait(helper)

    async def __aenter__(self) -> TextPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for helper in self._helpers:
            await helper.stop()

    @property
    def pids(self) -> list[int]:
        """The helper processes running."""
        return [helper.pid for helper in self._helpers if helper.pid is not None]

    async def check(self) -> None:
        """Start a helper and wait until it is ready (the extractor imported): at the start of
        a crawl that stores text, before any request. Raises TextUnavailable if the extractor
        cannot be imported, TextError if the helper did not start."""
        helper = await self._idle.get()
        try:
            await helper.started()
        finally:
            self._idle.put_nowait(helper)

    async def text(self, body: bytes, charset: str | None) -> str | None:
        """The readable text of an HTML body; raises TextError."""
        helper = await self._idle.get()
        try:
            return await helper.text(body, charset, self._time_limit)
        finally:
            self._idle.put_nowait(helper)


async def require_extractor(pool: TextPool, config_file: Path) -> None:
    """storage.store_text needs resiliparse, imported in the helpers only: if it cannot be,
    ConfigError (exit 2, one line), to raise before the crawl's first request."""
    try:
        await pool.check()
    except TextUnavailable as exc:
        raise ConfigError(
            f"{config_file}: storage.store_text needs resiliparse, which cannot be"
            f" imported ({exc}). Install it: pip install {TEXT_PACKAGES}"
            " (or set store_text = false)"
        ) from exc
    except TextError as exc:  # a slow start, say: pages then go without text, each logged
        logger.warning("the text helper did not start: %s", exc)


class TextStage:
    """Gives the pages that want text their text, then hands their outcomes to `emit`."""

    def __init__(self, pool: TextPool, emit: Callable[[Outcome], Awaitable[None]]) -> None:
        self._pool = pool
        self._emit = emit
        self._queue: asyncio.Queue[Outcome | None] = asyncio.Queue(pool.size * BACKLOG_PER_HELPER)
        self.failures = 0

    async def put(self, outcome: Outcome) -> None:
        """Hand an outcome over: straight on if its page wants no text, else into the queue
        (waiting while it is full)."""
        if outcome.text_from is None:
            await self._emit(outcome)
        else:
            await self._queue.put(outcome)

    async def close(self) -> None:
        """Finish the outcomes handed over, then let `run` return."""
        for _ in range(self._pool.size):
            await self._queue.put(None)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for n in range(self._pool.size):
                group.create_task(self._work(), name=f"text-{n}")

    async def _work(self) -> None:
        while (outcome := await self._queue.get()) is not None:
            await self._emit(await self._with_text(outcome))

    async def _with_text(self, outcome: Outcome) -> Outcome:
        assert outcome.text_from is not None
        assert outcome.page is not None
        body, charset = outcome.text_from
        outcome.text_from = None  # the body is not needed past here
        try:
            text = await self._pool.text(body, charset)
        except TextError as exc:
            self.failures += 1
            logger.warning("no text for %s: %s", outcome.page.url, exc)
            return outcome
        outcome.page = dataclasses.replace(outcome.page, text=text)
        return outcome
