"""The engine: opens storage and the HTTP session, runs the workers and the writer, and ends
the crawl when the frontier is empty, a limit is reached, or it is asked to stop.

Resource handling: one AsyncExitStack owns the store, the fetcher and the parsing and text
helper processes; one TaskGroup owns the writer, the text stage, the workers and the progress
reporter, so no task outlives `Crawler.run`.
Error handling: a fault while fetching or extracting one page (an error response, a bug in
parsing, a parsing process that died twice) is logged with its traceback and becomes that page's
row, with `error` saying what happened, and the crawl goes on. An exception anywhere else (the
frontier, the writer, storage) is a bug or a storage failure: it cancels the whole group, and
committed rows are still safe on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from ..config import Config
from ..errors import StoreError
from ..extract.html import parse_html
from ..extract.page import Extractor
from ..extract.parse_pool import ParsePool
from ..fetch import Fetcher, Response
from ..frontier.hosts import PageTask, RobotsTask, Task
from ..frontier.scheduler import Frontier
from ..frontier.skips import Scope
from ..records import Discovered, Outcome
from ..robots.origins import MAX_ROBOTS_BYTES, RobotsRules, rules_from_status
from ..sitemaps.document import MAX_BYTES as SITEMAP_BYTES
from ..sitemaps.document import Sitemap, read_sitemap
from ..sitemaps.entries import configured_sitemaps, sitemap_outcome
from ..storage import ResumeState, Storage, open_store
from ..text.pool import TextPool, TextStage, require_extractor
from ..urls import host_key, normalize
from .lag import LoopLag
from .progress import Progress, Reporter
from .writer import Writer

logger = logging.getLogger(__name__)

GRACE_SECONDS = 5.0  # how long in-flight requests may finish after a stop is asked for
# Heavy pages are not extracted in the event loop, where they would stall every timer (30,000
# links: 0.3 s). Those over BIG_PAGE bytes are parsed in a separate process, because the regex
# pass and lexbor hold the GIL for as long as one call takes (80 ms for 5 MB); their links are
# resolved in a thread. Smaller pages with more than about MANY_LINKS links go to a thread as a
# whole: no call there holds the GIL for long, and starting the process costs 0.3 s of CPU.
BIG_PAGE = 1_000_000
MANY_LINKS = 2_000
# A robots.txt over this many bytes is parsed in that process too. In threads, a crawl of many
# hosts with 512 KiB files parses dozens at once, each holding the GIL: lag p99 60-250 ms
# (bench/robots.py), against 6-13 ms in the process.
BIG_ROBOTS = 32 * 1024

_T = TypeVar("_T")
RunOutcome = Literal["finished", "limit", "interrupted"]
# Where a page's links were extracted: in the event loop (in steps), in a thread, or parsed in
# the page-parsing process (and resolved in a thread).
ExtractedIn = Literal["loop", "thread", "process"]


@dataclass(frozen=True, slots=True)
class RunResult:
    outcome: RunOutcome
    pages: int  # pages fetched by this run
    seconds: float
    lag_p99: float = 0.0  # event-loop lag, seconds
    lag_max: float = 0.0
    extracted_in: dict[ExtractedIn, int] = field(default_factory=dict)  # pages by where
    pass_number: int = 1  # the pass this run worked on (a recrawl starts the next one)


class Crawler:
    """One crawl run over the database named by `config`; `run()` once, `stop()` any time."""

    def __init__(
        self, config: Config, *, reporter: Reporter | None = None, recrawl: bool = False
    ) -> None:
        self.config = config
        self._recrawl = recrawl  # start a new pass over the pages fetched before
        self._reporter = reporter
        self._stop_requested = asyncio.Event()
        self._stop_reason: RunOutcome = "interrupted"
        self._frontier: Frontier | None = None
        self._lag = LoopLag()
        self._extracted_in: Counter[ExtractedIn] = Counter()

    def stop(self, outcome: RunOutcome = "interrupted") -> None:
        """Stop taking URLs; in-flight requests get GRACE_SECONDS, then the writer flushes."""
        if not self._stop_requested.is_set():
            self._stop_reason = outcome
            self._stop_requested.set()
            if self._frontier is not None:
                self._frontier.stop()

    async def run(self) -> RunResult:
        started = time.monotonic()
        async with contextlib.AsyncExitStack() as stack:
            # First, before the database and any request: the text extractor can be imported.
            text_pool = await stack.enter_async_context(TextPool())
            if self.config.storage.store_text:
                await require_extractor(text_pool, self.config.source)
            store = await stack.enter_async_context(open_store(self.config))
            fetcher = await stack.enter_async_context(Fetcher(self.config))
            parse_pool = stack.enter_context(ParsePool())
            resume = await store.start_run(
                self._seeds(), self.config.crawl.max_depth, self.config.lease, self._recrawl
            )
            if self._recrawl:
                logger.info("recrawl: %s", _pass_news(resume))
            ended = "interrupted"  # what `runs` records if this run is cancelled
            try:
                frontier = await self._crawl(store, fetcher, parse_pool, text_pool, resume)
                outcome = self._outcome(frontier)
                ended = outcome
            except Exception:
                ended = "failed"
                raise
            finally:
                try:
                    measured = (self._lag.p99, self._lag.max) if self._lag.samples else None
                    await store.end_run(resume.run_id, ended, measured)
                except StoreError:
                    if ended != "failed":
                        raise
                    # The failure itself (say, a full disk) is the one line the user gets.
                    logger.debug("could not record the end of the run")
        seconds = time.monotonic() - started
        lag = self._lag
        logger.info("event-loop lag: p99 %.1f ms, max %.1f ms", lag.p99 * 1000, lag.max * 1000)
        return RunResult(
            outcome, frontier.pages_started, seconds, lag.p99, lag.max, dict(self._extracted_in),
            resume.pass_number,
        )  # fmt: skip

    async def _crawl(
        self,
        store: Storage,
        fetcher: Fetcher,
        parse_pool: ParsePool,
        text_pool: TextPool,
        resume: ResumeState,
    ) -> Frontier:
        writer: Writer
        frontier = Frontier(
            store,
            self.config,
            resume,
            emit=lambda item: writer.put(item),
            parse_robots=functools.partial(_parse_robots, parse_pool),
            lease=self.config.lease,
            lag=self._lag.so_far,
        )
        writer = Writer(store, frontier.committed, frontier.host_records)
        self._frontier = frontier
        if self._stop_requested.is_set():
            frontier.stop()
        await frontier.load()
        extractor = Extractor(self.config, Scope(self.config.crawl))
        extracted_in = self._extracted_in
        texts = TextStage(text_pool, writer.put)
        extraction = _Extraction(extractor, texts.put, self.config.crawl.concurrency, extracted_in)
        worker = _Worker(self.config, frontier, fetcher, extraction, parse_pool, extracted_in)
        progress = Progress(frontier, store, self._reporter)
        async with asyncio.TaskGroup() as group:
            group.create_task(writer.run(), name="writer")
            extracting = group.create_task(extraction.run(), name="extraction")
            texting = group.create_task(texts.run(), name="text")
            workers = [
                group.create_task(worker.run(), name=f"worker-{n}")
                for n in range(self.config.crawl.concurrency)
            ]
            helpers = [
                group.create_task(self._deadline(resume.started_at), name="deadline"),
                group.create_task(frontier.tend(), name="leases"),
                group.create_task(self._grace(workers), name="grace"),
                group.create_task(progress.run(), name="progress"),
                group.create_task(self._lag.run(), name="lag"),
            ]
            await asyncio.wait(workers)
            for helper in helpers:
                helper.cancel()
            await extraction.close()
            await extracting
            await texts.close()
            await texting
            await writer.close()
        await progress.final()
        return frontier

    def _outcome(self, frontier: Frontier) -> RunOutcome:
        if self._stop_requested.is_set():
            return self._stop_reason
        return "limit" if frontier.limit_reached else "finished"

    def _seeds(self) -> list[Discovered]:
        """The seeds, and the sitemaps of crawl.sitemaps."""
        seeds = []
        for seed in self.config.crawl.seeds:
            url = normalize(seed)
            if url is not None:
                seeds.append(Discovered(str(url), host_key(url), 0, "queued"))
        return seeds + configured_sitemaps(self.config.crawl.sitemaps)

    async def _deadline(self, started_at: float) -> None:
        """Stop the crawl when max_duration has passed since the crawl's runs began (all the
        processes' runs; `started_at` in POSIX seconds): a limit, exit 0."""
        if self.config.crawl.max_duration:
            await asyncio.sleep(max(0.0, started_at + self.config.crawl.max_duration - time.time()))
            logger.info("max_duration of %ss reached", self.config.crawl.max_duration)
            self.stop("limit")

    async def _grace(self, workers: list[asyncio.Task[None]]) -> None:
        """After a stop, give in-flight requests GRACE_SECONDS, then cancel what is left."""
        await self._stop_requested.wait()
        await asyncio.sleep(GRACE_SECONDS)
        for task in workers:
            task.cancel()


def _pass_news(resume: ResumeState) -> str:
    """What a recrawl's start did with the passes (storage contract, rule 14), for the user."""
    if resume.pass_start == "started":
        return f"starting pass {resume.pass_number}"
    if resume.pass_start == "joined":
        return f"joining pass {resume.pass_number} (another run is crawling it)"
    return f"continuing pass {resume.pass_number} (interrupted)"


async def _parse_robots(
    pool: ParsePool, status: int | None, body: bytes | None, token: str, expires: float
) -> RobotsRules | None:
    """The frontier's robots.txt parser: small files at once, big ones in the parse process."""
    if body is None or len(body) <= BIG_ROBOTS:
        return rules_from_status(status, body, token, expires)
    return await pool.run(rules_from_status, status, body, token, expires)


class _Worker:
    """The loop each worker coroutine runs: take a task, fetch, hand the response on."""

    def __init__(
        self,
        config: Config,
        frontier: Frontier,
        fetcher: Fetcher,
        extraction: _Extraction,
        parse_pool: ParsePool,
        extracted_in: Counter[ExtractedIn],
    ):
        self._frontier = frontier
        self._extracted_in = extracted_in
        self._fetcher = fetcher
        self._extraction = extraction
        self._extractor = extraction.extractor
        self._parse_pool = parse_pool
        self._token = config.politeness.robots_token
        self._fields = config.fields
        self._max_bytes = config.fetch.max_bytes
        self._store_body = config.storage.store_body

    async def run(self) -> None:
        while (task := await self._frontier.next_task()) is not None:
            if not self._frontier.confirm(task):
                continue  # its host's lease ran short (the process was stopped?): given back
            if isinstance(task, RobotsTask):
                response = await self._fetcher.get(
                    task.url, max_bytes=MAX_ROBOTS_BYTES, before_send=self._still_held(task)
                )
                if response.sent:
                    await self._frontier.robots_done(task, response)
            else:
                await self._page(task)

    def _still_held(self, task: Task) -> Callable[[], bool]:
        """The check once the request's connection is ready: the frontier's confirm, asked
        again as late as can be (it gives the task back if the lease ran short meanwhile)."""
        return lambda: self._frontier.confirm(task)

    async def _sitemap(self, task: PageTask) -> None:
        max_bytes = max(self._max_bytes, SITEMAP_BYTES)  # sitemaps.org allows 50 MB
        response = await self._fetcher.get(
            task.url.url, max_bytes=max_bytes, etag=task.url.etag,
            last_modified=task.url.last_modified, before_send=self._still_held(task),
        )  # fmt: skip
        if not response.sent or self._frontier.page_done(task, response):
            return  # retried later, when politeness allows
        try:
            outcome = await sitemap_outcome(task.url, response, self._extractor, self._read)
        except Exception as exc:
            outcome = _failed_outcome(self._extractor, task, response, exc)
        await self._extraction.emit(outcome)

    async def _read(self, body: bytes) -> Sitemap:
        """A sitemap parsed in a thread, or in the parse process if it is big or compressed
        (a few MB of gzip can be 50 MB of XML)."""
        if len(body) <= BIG_ROBOTS and not body.startswith(b"\x1f\x8b"):
            return await asyncio.to_thread(read_sitemap, body)
        return await self._parse_pool.run(read_sitemap, body)

    async def _page(self, task: PageTask) -> None:
        if task.url.sitemap is not None:
            await self._sitemap(task)
            return
        response = await self._fetcher.get(
            task.url.url, max_bytes=self._max_bytes, read_body=self._store_body,
            etag=task.url.etag, last_modified=task.url.last_modified,
            before_send=self._still_held(task),
        )  # fmt: skip
        if not response.sent or self._frontier.page_done(task, response):
            return  # retried later, when politeness allows
        body = response.body
        if len(body) <= BIG_PAGE and body.count(b"<a ") + body.count(b"<A ") <= MANY_LINKS:
            await self._extraction.put(task, response)
            return
        try:
            if len(body) <= BIG_PAGE:
                self._extracted_in["thread"] += 1
                outcome = await asyncio.to_thread(self._extractor.extract, task.url, response)
            else:
                self._extracted_in["process"] += 1
                parsed = None
                if self._extractor.parses(response):
                    parsed = await self._parse_pool.run(
                        parse_html, body, response.charset, self._token, self._fields
                    )
                outcome = await asyncio.to_thread(
                    self._extractor.outcome, task.url, response, parsed
                )
        except Exception as exc:
            outcome = _failed_outcome(self._extractor, task, response, exc)
        await self._extraction.emit(outcome)


class _Extraction:
    """Extracts the pages workers hand over, in one task, at most one step of one page per turn
    of the event loop.

    Workers finish their fetches in bursts; if each parsed its own page, one turn of the loop
    would run a dozen parses back to back and every timer (politeness delays included) would
    fire that much late. Here the loop gets back control between any two pages, and within a
    page of many links between slices of them (`Extractor.extract_steps`).
    """

    def __init__(
        self,
        extractor: Extractor,
        emit: Callable[[Outcome], Awaitable[None]],
        backlog: int,
        extracted_in: Counter[ExtractedIn],
    ) -> None:
        self.extractor = extractor
        self.emit = emit  # on to the text stage and the writer
        self._extracted_in = extracted_in
        self._queue: asyncio.Queue[tuple[PageTask, Response] | None] = asyncio.Queue(backlog)

    async def put(self, task: PageTask, response: Response) -> None:
        await self._queue.put((task, response))

    async def close(self) -> None:
        """Extract what was handed over, then let `run` return."""
        await self._queue.put(None)

    async def run(self) -> None:
        while (item := await self._queue.get()) is not None:
            task, response = item
            self._extracted_in["loop"] += 1
            try:
                outcome = await self._extract(task, response)
            except Exception as exc:
                outcome = _failed_outcome(self.extractor, task, response, exc)
            await self.emit(outcome)
            await asyncio.sleep(0)

    async def _extract(self, task: PageTask, response: Response) -> Outcome:
        """Extract in steps, letting the loop run between them (a page of hundreds of new
        links takes milliseconds)."""
        steps = self.extractor.extract_steps(task.url, response)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            await asyncio.sleep(0)


def _failed_outcome(
    extractor: Extractor, task: PageTask, response: Response, exc: Exception
) -> Outcome:
    """A bug on one page must not stop the crawl: the page is stored with the error, logged."""
    logger.exception("extracting %s failed", task.url.url, exc_info=exc)
    failed = dataclasses.replace(response, body=b"", error=f"extract: {exc!r}")
    return extractor.outcome(task.url, failed, None)
