"""The worker coroutines and the extraction task: a worker takes a task from the frontier,
fetches it and hands the response on; the one extraction task turns responses into outcomes
(links, page rows, sitemaps) for the text stage and the writer, one page per turn of the loop.

Error handling: a fault while fetching or extracting one page becomes that page's row (its
`error` says what happened) and the crawl goes on; see crawl.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Literal

from ..auth.login import LoginGate, take_login_turn
from ..config import Config
from ..extract.html import ParsedPage
from ..extract.packed import parse_html_flat_packed, parse_html_packed
from ..extract.page import Extractor
from ..extract.parse_pool import ParsePool, ParseProcessDied
from ..extract.steps import Steps, run_steps
from ..fetch import Fetcher, Response
from ..frontier.hosts import PageTask, RobotsTask, Task
from ..frontier.scheduler import Frontier
from ..heap import heap_trimmer
from ..records import Outcome
from ..robots.origins import MAX_ROBOTS_BYTES
from ..sitemaps.document import MAX_BYTES as SITEMAP_BYTES
from ..sitemaps.document import Sitemap, read_sitemap
from ..sitemaps.entries import sitemap_outcome

logger = logging.getLogger(__name__)

# Pages are extracted in the event loop, in steps (Extraction): the pre-pass pauses every 2,048
# tags, the walk of a big tree every NODES_PER_STEP nodes and the links every LINKS_PER_STEP,
# and lexbor builds a big tree in a thread (it lets the GIL go meanwhile). Not in a thread as a
# whole: the GIL passes back and forth at each of the loop's socket calls, 5 ms each time
# (Django's 12 pages of 250-590 KB in threads: lag p99 36-38 ms; in steps 12-27). Pages
# over BIG_PAGE are parsed in a separate process, which a crawl starts on its first such page:
# the tree and pieces of a page of megabytes stay out of the crawl's memory; their links are
# resolved in a thread, and then the heap is trimmed. With [fields], every HTML page is parsed
# there: its whole tree is built, and only in a process of its own can what that takes be
# capped (html.parse_html_capped).
BIG_PAGE = 1_000_000
# Seconds the parse process may take over one page's whole tree and [fields] (5 MB of dense
# markup and ten fields take about one). fields.tangled is an estimate: a page of 5 MB that
# nests 190,000 deep past it takes lexbor ~1 min, and would hold every page behind it.
WHOLE_TREE_SECONDS = 10.0
# A robots.txt over this many bytes is parsed in that process too. In threads, a crawl of many
# hosts with 512 KiB files parses dozens at once, each holding the GIL: lag p99 60-250 ms
# (bench/robots.py), against 6-13 ms in the process.
BIG_ROBOTS = 32 * 1024

# A page handed to the extraction task, with the steps that extract it.
_Extract = tuple[PageTask, Response, Steps[Outcome]]
# Where a page's links were extracted: in the event loop (in steps), or parsed in the
# page-parsing process (and resolved in a thread).
ExtractedIn = Literal["loop", "process"]


class Worker:
    """The loop each worker coroutine runs: take a task, fetch, hand the response on."""

    def __init__(
        self,
        config: Config,
        frontier: Frontier,
        fetcher: Fetcher,
        login: LoginGate,
        extraction: Extraction,
        parse_pool: ParsePool,
        extracted_in: Counter[ExtractedIn],
    ):
        self._frontier = frontier
        self._extracted_in = extracted_in
        self._fetcher = fetcher
        self._login = login
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
        still_held = self._still_held(task)
        if await take_login_turn(self._login, task, self._frontier, self._fetcher, still_held):
            return  # this turn of the host went to the login
        session = self._login.logins  # the session this request carries (see expired)
        response = await self._fetcher.get(
            task.url.url, max_bytes=self._max_bytes, read_body=self._store_body,
            etag=task.url.etag, last_modified=task.url.last_modified, before_send=still_held,
        )  # fmt: skip
        if response.sent and self._login.expired(task.url.url, response, session):
            self._frontier.page_again(task, response)  # after a new login, in a later turn
            return
        if not response.sent or self._frontier.page_done(task, response):
            return  # retried later, when politeness allows
        if len(response.body) > BIG_PAGE:
            await self._big_page(task, response)
        elif self._fields and self._extractor.parses(response):
            await self._fields_page(task, response)
        else:
            await self._extraction.put(task, response)

    async def _fields_page(self, task: PageTask, response: Response) -> None:
        """A page parsed whole for [fields], in the parse process; its links resolved by the
        extraction task."""
        self._extracted_in["process"] += 1
        try:
            parsed = await self._parsed_in_process(task, response)
        except Exception as exc:
            await self._extraction.emit(_failed_outcome(self._extractor, task, response, exc))
            return
        await self._extraction.put_parsed(task, response, parsed)

    async def _big_page(self, task: PageTask, response: Response) -> None:
        self._extracted_in["process"] += 1
        try:
            parsed = None
            if self._extractor.parses(response):
                parsed = await self._parsed_in_process(task, response)
            outcome = await asyncio.to_thread(self._extractor.outcome, task.url, response, parsed)
        except Exception as exc:
            outcome = _failed_outcome(self._extractor, task, response, exc)
        await self._extraction.emit(outcome)
        del response, parsed, outcome
        # What parsing and resolving a big page took is free now, much of it in the heap of the
        # thread that resolved its links, which no other work reuses soon.
        await asyncio.to_thread(heap_trimmer())

    async def _parsed_in_process(self, task: PageTask, response: Response) -> ParsedPage:
        """The page parsed in the parse process. With [fields], its whole tree is capped there
        (html.parse_html_capped) and its time limited (WHOLE_TREE_SECONDS): past it, the page
        is parsed flat, its fields null."""
        page = (response.body, response.charset, self._token, self._fields)
        if not self._fields:
            return await self._parse_pool.run(parse_html_packed, *page)
        try:
            return await self._parse_pool.run(
                parse_html_packed, *page, time_limit=WHOLE_TREE_SECONDS
            )
        except ParseProcessDied as exc:
            logger.warning("%s: %s building its whole tree; parsed flat", task.url.url, exc)
            return await self._parse_pool.run(parse_html_flat_packed, *page)


class Extraction:
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
        self._queue: asyncio.Queue[_Extract | None] = asyncio.Queue(backlog)

    async def put(self, task: PageTask, response: Response) -> None:
        """Parse the page here, then resolve its links."""
        self._extracted_in["loop"] += 1
        steps = self.extractor.extract_steps(task.url, response)
        await self._queue.put((task, response, steps))

    async def put_parsed(self, task: PageTask, response: Response, parsed: ParsedPage) -> None:
        """Resolve the links of a page parsed elsewhere (the parse process)."""
        steps = self.extractor.outcome_steps(task.url, response, parsed)
        await self._queue.put((task, response, steps))

    async def close(self) -> None:
        """Extract what was handed over, then let `run` return."""
        await self._queue.put(None)

    async def run(self) -> None:
        while (item := await self._queue.get()) is not None:
            task, response, steps = item
            try:
                # In steps, letting the loop run between them (a page of hundreds of new links
                # takes milliseconds) and while a big page's tree is built in a thread.
                outcome = await run_steps(steps)
            except Exception as exc:
                outcome = _failed_outcome(self.extractor, task, response, exc)
            await self.emit(outcome)
            await asyncio.sleep(0)


def _failed_outcome(
    extractor: Extractor, task: PageTask, response: Response, exc: Exception
) -> Outcome:
    """A bug on one page must not stop the crawl: the page is stored with the error, logged."""
    logger.exception("extracting %s failed", task.url.url, exc_info=exc)
    failed = dataclasses.replace(response, body=b"", error=f"extract: {exc!r}")
    return extractor.outcome(task.url, failed, None)
