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
import functools
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from ..auth.credentials import Credentials
from ..auth.login import LoginGate
from ..config import Config
from ..errors import StoreError
from ..extract.page import Extractor
from ..extract.parse_pool import ParsePool
from ..fetch import Fetcher
from ..frontier.scheduler import Frontier
from ..frontier.skips import Scope
from ..records import Discovered
from ..robots.origins import RobotsRules, rules_from_status
from ..sitemaps.entries import configured_sitemaps
from ..storage import ResumeState, Storage, open_store
from ..text.pool import TextPool, TextStage, require_extractor
from ..urls import host_key, normalize
from .lag import LoopLag
from .progress import Progress, Reporter
from .workers import BIG_ROBOTS, ExtractedIn, Extraction, Worker
from .writer import Writer

logger = logging.getLogger(__name__)

GRACE_SECONDS = 5.0  # how long in-flight requests may finish after a stop is asked for
RunOutcome = Literal["finished", "limit", "interrupted"]


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
            credentials = Credentials(self.config.auth)
            fetcher = await stack.enter_async_context(Fetcher(self.config, credentials))
            parse_pool = await stack.enter_async_context(ParsePool())
            resume = await store.start_run(
                self._seeds(), self.config.crawl.max_depth, self.config.lease, self._recrawl
            )
            if self._recrawl:
                logger.info("recrawl: %s", _pass_news(resume))
            ended = "interrupted"  # what `runs` records if this run is cancelled
            login = LoginGate(credentials, retries=self.config.fetch.retries)
            try:
                frontier = await self._crawl(store, fetcher, login, parse_pool, text_pool, resume)
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
        login: LoginGate,
        parse_pool: ParsePool,
        text_pool: TextPool,
        resume: ResumeState,
    ) -> Frontier:
        writer: Writer
        texts: TextStage

        def commit_now() -> None:  # the frontier waits for what the text stage and writer hold
            texts.hurry()
            writer.commit_now()

        frontier = Frontier(
            store,
            self.config,
            resume,
            emit=lambda item: writer.put(item),
            commit_now=commit_now,
            parse_robots=functools.partial(_parse_robots, parse_pool),
            lease=self.config.lease,
            lag=self._lag.so_far,
        )
        writer = Writer(store, frontier.committed, frontier.host_records, may_linger=frontier.alone)
        self._frontier = frontier
        if self._stop_requested.is_set():
            frontier.stop()
        await frontier.load()
        extractor = Extractor(self.config, Scope.of(self.config))
        extracted_in = self._extracted_in
        texts = TextStage(text_pool, writer.put, may_linger=frontier.alone)
        extraction = Extraction(extractor, texts.put, self.config.crawl.concurrency, extracted_in)
        worker = Worker(self.config, frontier, fetcher, login, extraction, parse_pool, extracted_in)
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
