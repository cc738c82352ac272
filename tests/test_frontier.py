"""The frontier on a manual clock: which task goes out next, and exactly when.

A real SQLite store under it; no HTTP: each test answers the tasks itself, at times it picks,
and the clock only moves when the frontier waits. Every time asserted is exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from clocks import ManualClock
from conftest import ConfigFactory, rows

from crawler.config import Config
from crawler.fetch import Response
from crawler.frontier.hosts import PageTask, RobotsTask, Task
from crawler.frontier.scheduler import Frontier
from crawler.records import Discovered, Outcome, QueuedURL, RobotsRecord
from crawler.storage import Batch
from crawler.storage.sqlite import SQLiteStore
from crawler.urls import host_key, normalize

ROOT = Path(__file__).resolve().parent.parent
HOSTS = ("a.test", "b.test")
LEASE = 3600.0  # never lapses on the manual clock: the tests here are about pacing
NOT_FOUND = (404, b"")


class Run:
    """A frontier over a real store, with the writer's part played by the test: every outcome
    the frontier emits (a skipped URL) is committed at once, and so is every page answered."""

    def __init__(
        self, config: Config, frontier: Frontier, store: SQLiteStore, clock: ManualClock
    ) -> None:
        self.config = config
        self.frontier = frontier
        self.store = store
        self.clock = clock
        self.skipped: dict[str, str | None] = {}  # url: reason

    async def take(self) -> Task | None:
        async with asyncio.timeout(10):  # a hang is a failure, not a stuck suite
            return await self.frontier.next_task()

    async def take_page(self) -> PageTask:
        task = await self.take()
        assert isinstance(task, PageTask), task
        return task

    async def robots(self, status: int, body: bytes = b"", *, latency: float = 0.0) -> str:
        """Take the next task, a robots.txt, and answer it; returns its host."""
        task = await self.take()
        assert isinstance(task, RobotsTask), task
        self.clock.advance(latency)
        await self.frontier.robots_done(task, answer(task.url, status, self.clock, body))
        return task.slot.host

    async def page(
        self, status: int = 200, *, latency: float = 0.0, retry_after: float | None = None
    ) -> tuple[float, str]:
        """Take the next task, a page, answer it; returns when it started and its URL."""
        task = await self.take_page()
        started = self.clock.now()
        self.clock.advance(latency)
        response = answer(task.url.url, status, self.clock, retry_after=retry_after)
        if not self.frontier.page_done(task, response):
            await self.commit(Outcome(url=task.url, state="done"))
        return started, task.url.url

    async def commit(self, item: Outcome | RobotsRecord) -> None:
        if isinstance(item, RobotsRecord):
            await self.store.save(Batch(robots=[item]))
            return
        if item.state == "skipped":
            self.skipped[item.url.url] = item.reason
        await self.store.save(Batch(outcomes=[item]))
        self.frontier.committed([item])


def answer(
    url: str,
    status: int | None,
    clock: ManualClock,
    body: bytes = b"",
    retry_after: float | None = None,
) -> Response:
    return Response(
        url=url,
        status=status,
        content_type="text/plain",
        charset=None,
        location=None,
        retry_after=retry_after,
        robots_tags=(),
        body=body,
        truncated=False,
        elapsed_ms=0,
        answered_at=clock.now(),
        error=None if status else "connection failed",
    )


def seeds(*urls: str) -> list[Discovered]:
    found = []
    for text in urls:
        url = normalize(text)
        assert url is not None
        found.append(Discovered(str(url), host_key(url), 0, "queued"))
    return found


@contextlib.asynccontextmanager
async def frontier_run(
    make_config: ConfigFactory,
    urls: list[str],
    *,
    clock: ManualClock | None = None,
    store_class: type[SQLiteStore] = SQLiteStore,
    **sections: Any,
) -> AsyncIterator[Run]:
    config = make_config(urls, hosts=HOSTS, **sections)
    clock = clock or ManualClock()
    async with store_class.open(config.storage.path) as store:
        resume = await store.start_run(seeds(*urls), config.crawl.max_depth, LEASE)
        run: Run
        frontier = Frontier(
            store, config, resume, emit=lambda item: run.commit(item), clock=clock, lease=LEASE
        )
        run = Run(config, frontier, store, clock)
        await frontier.load()
        yield run


async def test_robots_txt_first_then_pages_one_delay_apart(make_config: ConfigFactory) -> None:
    urls = ["http://a.test/1", "http://a.test/2", "http://a.test/3"]
    async with frontier_run(make_config, urls, politeness={"delay": 1.0}) as run:
        t0 = run.clock.now()
        assert await run.robots(*NOT_FOUND, latency=0.25) == "a.test"
        # The delay counts from the request's start and again from its answer.
        assert await run.page(latency=0.5) == (t0 + 1.25, urls[0])
        assert await run.page() == (t0 + 2.75, urls[1])
        assert await run.page() == (t0 + 3.75, urls[2])
        assert await run.take() is None
        assert run.frontier.limit_reached is False


async def test_a_host_never_waits_on_another(make_config: ConfigFactory) -> None:
    """Hosts go out in the order their next request is allowed; a slow host holds no one up."""
    urls = [f"http://{host}/{n}" for n in range(3) for host in HOSTS]
    async with frontier_run(make_config, urls, politeness={"delay": 1.0}) as run:
        t0 = run.clock.now()
        assert await run.robots(200, b"User-agent: *\nCrawl-delay: 4\n") == "a.test"
        assert await run.robots(*NOT_FOUND) == "b.test"
        served = [await run.page() for _ in range(6)]
    assert served == [
        (t0 + 1, "http://b.test/0"),
        (t0 + 2, "http://b.test/1"),
        (t0 + 3, "http://b.test/2"),
        (t0 + 4, "http://a.test/0"),  # Crawl-delay 4, counted from the robots.txt answer
        (t0 + 8, "http://a.test/1"),
        (t0 + 12, "http://a.test/2"),
    ]


async def test_errors_back_off_and_a_retry_waits_for_it(make_config: ConfigFactory) -> None:
    urls = ["http://a.test/1", "http://a.test/2"]
    config: dict[str, Any] = {"politeness": {"delay": 0.1}, "fetch": {"retries": 2}}
    async with frontier_run(make_config, urls, **config) as run:
        t0 = run.clock.now()
        await run.robots(*NOT_FOUND)
        assert await run.page(500) == (t0 + 0.1, urls[0])  # back-off 0.5 from here
        assert await run.page(503) == (t0 + 0.6, urls[0])  # the retry; back-off 1.0
        # It starts under a back-off of 1.0 (booked then), which its success halves to 0.5.
        assert await run.page(200) == (t0 + 1.6, urls[0])
        assert await run.page(200) == (t0 + 2.6, urls[1])
        assert await run.take() is None
        [(errors, requests)] = await _hosts(run, "errors, requests")
    assert (errors, requests) == (2, 5)


async def test_retries_run_out_and_the_url_fails_for_good(make_config: ConfigFactory) -> None:
    async with frontier_run(make_config, ["http://a.test/1"], fetch={"retries": 1}) as run:
        await run.robots(*NOT_FOUND)
        task = await run.take_page()
        assert run.frontier.page_done(task, answer(task.url.url, None, run.clock)) is True
        task = await run.take_page()  # the same URL, once more
        assert task.url.attempts == 1
        assert run.frontier.page_done(task, answer(task.url.url, None, run.clock)) is False


async def test_retry_after_holds_the_host(make_config: ConfigFactory) -> None:
    urls = ["http://a.test/1", "http://a.test/2"]
    config: dict[str, Any] = {"politeness": {"delay": 1.0}, "fetch": {"retries": 1}}
    async with frontier_run(make_config, urls, **config) as run:
        t0 = run.clock.now()
        await run.robots(*NOT_FOUND)
        assert await run.page(429, latency=2.0, retry_after=30) == (t0 + 1, urls[0])
        # Held until 30 s after the answer arrived (t0 + 3), whatever the delay says.
        assert await run.page() == (t0 + 33, urls[0])
        [(until,)] = await _hosts(run, "retry_after_until")
    assert until is None  # over by the time the host's row was written


async def test_per_host_concurrency_is_a_ceiling(make_config: ConfigFactory) -> None:
    urls = [f"http://a.test/{n}" for n in range(3)]
    config: dict[str, Any] = {"politeness": {"delay": 0, "per_host_concurrency": 2}}
    async with frontier_run(make_config, urls, **config) as run:
        await run.robots(*NOT_FOUND)
        first, second = await run.take_page(), await run.take_page()
        third = asyncio.create_task(run.take())
        for _ in range(20):
            await asyncio.sleep(0)
        assert not third.done()  # two are open: the third waits however long it takes
        run.frontier.page_done(first, answer(first.url.url, 200, run.clock))
        task = await third
        assert isinstance(task, PageTask)
        assert task.url.url == urls[2]
        assert second.url.url == urls[1]


@pytest.mark.parametrize(
    ("robots", "reason"),
    [
        pytest.param((200, b"User-agent: *\nDisallow: /private\n"), "robots", id="disallowed"),
        pytest.param((200, b"User-agent: *\nCrawl-delay: 99\n"), "crawl-delay", id="crawl-delay"),
    ],
)
async def test_urls_robots_rule_out_are_skipped_not_requested(
    make_config: ConfigFactory, robots: tuple[int, bytes], reason: str
) -> None:
    urls = ["http://a.test/private/x", "http://a.test/open"]
    config: dict[str, Any] = {"politeness": {"max_crawl_delay": 10}}
    async with frontier_run(make_config, urls, **config) as run:
        await run.robots(*robots)
        if reason == "robots":
            assert (await run.page())[1] == urls[1]
        assert await run.take() is None
    expected = {urls[0]: reason} if reason == "robots" else dict.fromkeys(urls, reason)
    assert run.skipped == expected


async def test_unreachable_robots_txt_is_retried_then_skips_the_host(
    make_config: ConfigFactory,
) -> None:
    urls = ["http://a.test/1", "http://a.test/2"]
    async with frontier_run(make_config, urls, fetch={"retries": 2}) as run:
        for _ in range(3):  # one try, two retries, each answered 503
            await run.robots(503)
        assert await run.take() is None
    assert run.skipped == dict.fromkeys(urls, "robots-unreachable")


async def test_robots_txt_is_fetched_again_after_its_ttl(make_config: ConfigFactory) -> None:
    urls = ["http://a.test/1", "http://a.test/2"]
    config: dict[str, Any] = {"politeness": {"delay": 1.0, "robots_ttl": 60}}
    async with frontier_run(make_config, urls, **config) as run:
        t0 = run.clock.now()
        await run.robots(*NOT_FOUND)
        assert await run.page() == (t0 + 1, urls[0])
        run.clock.advance(60)
        task = await run.take()
        assert isinstance(task, RobotsTask)
        assert run.clock.now() == t0 + 61  # paced like any other request to the host


async def test_max_pages_stops_handing_out(make_config: ConfigFactory) -> None:
    urls = [f"http://a.test/{n}" for n in range(4)]
    async with frontier_run(make_config, urls, crawl={"max_pages": 2}) as run:
        await run.robots(*NOT_FOUND)
        await run.page()
        await run.page()
        assert await run.take() is None
        assert run.frontier.limit_reached
        assert run.frontier.pages_started == 2


async def test_a_resumed_crawl_waits_one_delay_before_each_host(
    make_config: ConfigFactory,
) -> None:
    urls = ["http://a.test/1", "http://a.test/2"]
    config: dict[str, Any] = {"politeness": {"delay": 2.0}}
    async with frontier_run(make_config, urls, **config) as run:
        await run.robots(*NOT_FOUND)
        await run.page()
    # The first run was "killed" here. The next one reuses the stored robots.txt answer, but
    # its first request waits a delay: the last run may have sent one just before it died.
    clock = ManualClock(start=5000.0)
    async with frontier_run(make_config, urls, clock=clock, **config) as run:
        assert await run.page() == (5002.0, urls[1])


async def _hosts(run: Run, columns: str) -> list[tuple[Any, ...]]:
    """The hosts table as the frontier left it, once its host records are saved."""
    await run.store.save(Batch(hosts=run.frontier.host_records()))
    return rows(run.config, f"SELECT {columns} FROM hosts")


async def test_a_task_whose_lease_ran_short_is_given_back(make_config: ConfigFactory) -> None:
    urls = ["http://a.test/1", "http://a.test/2"]
    async with frontier_run(make_config, urls) as run:
        await run.robots(*NOT_FOUND)
        task = await run.take_page()
        assert run.frontier.confirm(task)  # held for far longer than a request
        run.clock.advance(LEASE)  # stopped between taking it and sending it
        assert not run.frontier.confirm(task)
        assert (run.frontier.pages_started, task.slot.in_flight) == (0, 0)


class HeldBackReads(SQLiteStore):
    """A real store whose frontier reads answer only when the test lets them (once `hold` is
    set): what happened meanwhile is what the test is about."""

    hold: asyncio.Event | None = None
    read = asyncio.Event()

    async def next_queued(self, host: str, limit: int, taken: Any) -> list[QueuedURL]:
        rows = await super().next_queued(host, limit, taken)
        if self.hold is not None:
            self.read.set()
            await self.hold.wait()
        return rows


async def test_a_read_made_under_a_lost_claim_is_not_used(make_config: ConfigFactory) -> None:
    urls = ["http://a.test/1", "http://a.test/2", "http://a.test/3"]
    async with frontier_run(make_config, urls[:1], store_class=HeldBackReads) as run:
        store = run.store
        assert isinstance(store, HeldBackReads)
        await run.robots(*NOT_FOUND)
        page = await run.take_page()
        assert not run.frontier.page_done(page, answer(page.url.url, 200, run.clock))
        found = [Discovered(url, "a.test", 1, "queued") for url in urls[1:]]
        await run.commit(Outcome(url=page.url, state="done", discovered=found))
        store.hold, store.read = asyncio.Event(), asyncio.Event()
        taking = asyncio.create_task(run.take())  # the frontier reads /2 and /3 ...
        async with asyncio.timeout(10):
            await store.read.wait()  # ... and the answer is on its way, when:
        # the host is lost, claimed again, and /2 fetched and saved under the new claim (by
        # whoever held it in between: here, the test).
        book = run.frontier._book  # the race is inside the frontier
        book.drop("a.test")
        run.frontier._leases.forget({"a.test"})
        await store.release_hosts([r for r in run.frontier.host_records() if r.host == "a.test"])
        (record,) = await run.frontier._leases.claim(10)
        (second,) = [
            q for q in await SQLiteStore.next_queued(store, "a.test", 10, ()) if q.url == urls[1]
        ]
        second.claim = record.claim
        await store.save(Batch(outcomes=[Outcome(url=second, state="done")]))
        book.adopt(record)
        store.hold.set()

        task = await taking

    assert isinstance(task, PageTask)
    assert (task.url.url, task.url.claim) == (urls[2], record.claim)  # /2 is not fetched again


class LateReservations(SQLiteStore):
    """A real store that reserves pages of max_pages one at a time, and, once the test sets
    `hold`, answers only when the test lets it: the frontier's hosts change meanwhile."""

    hold: asyncio.Event | None = None
    asked = asyncio.Event()

    async def reserve_pages(self, wanted: int, max_pages: int) -> int:
        granted = await super().reserve_pages(1, max_pages)
        if self.hold is not None:
            self.asked.set()
            await self.hold.wait()
            self.hold = None
        return granted


@contextlib.asynccontextmanager
async def reservation_held(run: Run) -> AsyncIterator[asyncio.Task[Task | None]]:
    """A take started and stopped inside the store's page reservation; the body changes the
    host meanwhile, then the reservation answers and the take goes on."""
    store = run.store
    assert isinstance(store, LateReservations)
    store.hold, store.asked = asyncio.Event(), asyncio.Event()
    taking = asyncio.create_task(run.take())
    async with asyncio.timeout(10):
        await store.asked.wait()
    yield taking
    store.hold.set()


async def test_a_host_lost_while_the_page_budget_answers_is_read_anew(
    make_config: ConfigFactory,
) -> None:
    """The queue read before the budget's answer is gone after it: no pop from it."""
    urls = ["http://a.test/1", "http://a.test/2"]
    config: dict[str, Any] = {"crawl": {"max_pages": 10}}
    async with frontier_run(make_config, urls, store_class=LateReservations, **config) as run:
        await run.robots(*NOT_FOUND)
        await run.page()  # the one page reserved; the next take reserves again
        async with reservation_held(run) as taking:
            # The lease renewal finds the host lost; it is claimed again at once.
            frontier = run.frontier  # the race is inside the frontier
            frontier._book.drop("a.test")
            frontier._leases.forget({"a.test"})
            await run.store.release_hosts(frontier.host_records())
            (record,) = await frontier._leases.claim(10)
            frontier._book.adopt(record)
        task = await taking
    assert isinstance(task, PageTask)
    assert (task.url.url, task.url.claim) == (urls[1], record.claim)


async def test_a_retry_put_back_while_the_page_budget_answers_goes_out_first(
    make_config: ConfigFactory,
) -> None:
    """The head of the queue changed during the budget's answer: each URL goes out once."""
    urls = [f"http://a.test/{n}" for n in range(3)]
    config: dict[str, Any] = {
        "crawl": {"max_pages": 10},
        "fetch": {"retries": 1},
        "politeness": {"delay": 0, "per_host_concurrency": 2},
    }
    async with frontier_run(make_config, urls, store_class=LateReservations, **config) as run:
        await run.robots(*NOT_FOUND)
        first = await run.take_page()
        async with reservation_held(run) as taking:
            assert run.frontier.page_done(first, answer(first.url.url, 503, run.clock))
        handed_out = []
        for n in range(3):
            task = await taking if n == 0 else await run.take()
            assert isinstance(task, PageTask)
            handed_out.append(task.url.url)
            assert not run.frontier.page_done(task, answer(task.url.url, 200, run.clock))
            await run.commit(Outcome(url=task.url, state="done"))
        assert handed_out == urls  # /0 again (its retry), then /1 and /2, once each
        assert await run.take() is None


def test_the_frontier_does_not_depend_on_the_extractor() -> None:
    """The pipeline's order holds in the imports: choosing URLs needs nothing that reads pages
    (asked of a fresh interpreter: this one has imported everything)."""
    code = "import sys, crawler.frontier.scheduler; print(*sorted(sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "crawler.frontier.scheduler" in loaded
    assert [m for m in loaded if m.startswith(("crawler.extract", "crawler.sitemaps"))] == []
