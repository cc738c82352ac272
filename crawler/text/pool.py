"""Readable text for the pages' `text` column, extracted in helper processes.

Main-content extraction takes a few ms of CPU per page and can take far longer on a hostile
page (lexbor's tree builder is quadratic on deep nesting), so it runs in processes of its own
(crawler/text/worker.py), never in the event loop. Each page gets TIME_LIMIT seconds: a helper
that answers late is killed, the page keeps `text` NULL and the log says why. A helper that
dies is replaced for the next page.

`TextStage` sits between extraction and the writer: an outcome whose page wants text waits
there for it (so a page is committed with its text, in one transaction: a crawl killed at any
point has no page whose text was lost on the way). Pages go to a helper in batches of up to
BATCH, gathered for at most LINGER seconds: one write and one wake-up of the helper for several
pages: 12% less CPU a page on the PostgreSQL docs with text on, 7% on Django's
(bench/README.md). The helper still answers page by page, each within its time limit; the
pages behind one it did not answer go to its replacement. The stage holds at most two batches
per helper; when it is full, extraction waits, and the crawl goes at the pace text allows.

Resource handling: `TextPool` is an async context manager; on exit every helper is killed
and reaped.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from ..errors import ConfigError
from ..linger import linger
from ..records import Outcome
from .worker import READY, UNAVAILABLE, encode_request

logger = logging.getLogger(__name__)

TIME_LIMIT = 10.0  # seconds one page's text may take
START_LIMIT = 60.0  # seconds a helper may take to start (imports) and say it is ready
# Text is extracted from the first MAX_BYTES of a page (HTML parsers take a cut page as it
# is): a parse tree takes several times the page's size (the helper peaked at 78 MB with 2 MB
# on bench/traps.py's hostile pages), and pages of text this long are rare.
MAX_BYTES = 1_000_000
BATCH = 8  # pages sent to a helper at once, at most
LINGER = 0.005  # seconds a batch waits for more pages after its first, at most
BACKLOG_PER_HELPER = BATCH  # pages waiting per helper, at most (a batch more in flight)
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


Request = tuple[bytes, str | None]  # a page's body and its Content-Type charset
Answer = str | None | TextError  # its text, no text, or why it has none


class TextUnavailable(TextError):
    """The extractor cannot be imported in the helper (resiliparse missing or broken); the
    message is the import's error."""


class _Helper:
    """One helper process, started on first use."""

    def __init__(self) -> None:
        self._process: asyncio.subprocess.Process | None = None

    async def texts(self, requests: Sequence[Request], time_limit: float) -> list[Answer]:
        """The answers to `requests`, written to the helper at once, in their order: all of
        them, or those up to the first the helper did not answer in time or at all (a
        TextError; the process is stopped, the pages behind it were not answered)."""
        try:
            process = await self.started()
        except TextError as exc:  # the first page goes without text; the next tries again
            return [exc]
        assert process.stdin is not None
        assert process.stdout is not None
        # No drain: the batch is bounded (BATCH * MAX_BYTES), and the helper reads a page only
        # once it answered the one before, which nobody would read while waiting for a drain.
        process.stdin.write(b"".join(encode_request(body[:MAX_BYTES], cs) for body, cs in requests))
        answers: list[Answer] = []
        try:
            for _ in requests:
                async with asyncio.timeout(time_limit):
                    answers.append(await _answer(process.stdout))
        except TimeoutError:
            await self.stop()
            answers.append(TextError(f"cut off after {time_limit:g} s"))
        except (asyncio.IncompleteReadError, ConnectionError):
            code = await self.stop()
            answers.append(TextError(f"the text helper died (exit code {code})"))
        return answers

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


async def _answer(stdout: asyncio.StreamReader) -> Answer:
    kind = await stdout.readexactly(1)
    length = int.from_bytes(await stdout.readexactly(4), "big")
    payload = (await stdout.readexactly(length)).decode("utf-8")
    if kind == b"E":
        return TextError(payload)
    return payload if kind == b"T" else None


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
        (answer,) = await self.texts([(body, charset)])
        if isinstance(answer, TextError):
            raise answer
        return answer

    async def texts(self, requests: Sequence[Request]) -> list[Answer]:
        """The answer to each request, in order: its text (None: no text) or why there is
        none. Pages a helper left unanswered (it was killed over an earlier one) go to the
        next."""
        answers: list[Answer] = []
        while len(answers) < len(requests):
            helper = await self._idle.get()
            try:
                answers += await helper.texts(requests[len(answers) :], self._time_limit)
            finally:
                self._idle.put_nowait(helper)
        return answers


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
    """Gives the pages that want text their text, then hands their outcomes to `emit`.

    `may_linger` says whether a batch may wait for more pages (the writer's rule: not while
    other runs share the crawl); `hurry` ends the wait of the batch being gathered."""

    def __init__(
        self,
        pool: TextPool,
        emit: Callable[[Outcome], Awaitable[None]],
        may_linger: Callable[[], bool] = lambda: True,
        linger: float = LINGER,
    ) -> None:
        self._pool = pool
        self._emit = emit
        self._may_linger = may_linger
        self._linger = linger
        self._queue: asyncio.Queue[Outcome | None] = asyncio.Queue(pool.size * BACKLOG_PER_HELPER)
        self._hurry = asyncio.Event()  # a batch's worth waits, or somebody waits for the pages
        self.failures = 0
        self.batches = 0

    async def put(self, outcome: Outcome) -> None:
        """Hand an outcome over: straight on if its page wants no text, else into the queue
        (waiting while it is full)."""
        if outcome.text_from is None:
            await self._emit(outcome)
            return
        await self._queue.put(outcome)
        if self._queue.qsize() >= BATCH - 1:  # with the one being gathered, a whole batch
            self._hurry.set()

    def hurry(self) -> None:
        """Send the batch being gathered without waiting for more: somebody waits for it."""
        self._hurry.set()

    async def close(self) -> None:
        """Finish the outcomes handed over, then let `run` return."""
        for _ in range(self._pool.size):
            await self._queue.put(None)
        self._hurry.set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for n in range(self._pool.size):
                group.create_task(self._work(), name=f"text-{n}")

    async def _work(self) -> None:
        while batch := await self._next_batch():
            requests: list[Request] = []
            for outcome in batch:
                assert outcome.text_from is not None
                requests.append(outcome.text_from)
                outcome.text_from = None  # the body is not needed past here
            answers = await self._pool.texts(requests)
            self.batches += 1
            for outcome, answer in zip(batch, answers, strict=True):
                await self._emit(self._with_text(outcome, answer))

    async def _next_batch(self) -> list[Outcome]:
        """The next batch; empty when this task's end (a None) came first."""
        first = await self._queue.get()
        if first is None:
            return []
        await self._gather()
        batch = [first]
        while len(batch) < BATCH and not self._queue.empty():
            outcome = self._queue.get_nowait()
            if outcome is None:  # this task's end, or another's: after this batch
                self._queue.put_nowait(None)  # the place it took is free
                break
            batch.append(outcome)
        return batch

    async def _gather(self) -> None:
        """Wait up to the linger for a batch's worth of pages, unless hurried."""
        if not self._hurry.is_set() and self._may_linger() and self._linger > 0:
            await linger(self._hurry, self._linger)
        self._hurry.clear()

    def _with_text(self, outcome: Outcome, answer: Answer) -> Outcome:
        assert outcome.page is not None
        if isinstance(answer, TextError):
            self.failures += 1
            logger.warning("no text for %s: %s", outcome.page.url, answer)
            return outcome
        outcome.page = dataclasses.replace(outcome.page, text=answer)
        return outcome
