"""The frontier: which URL goes out next, and when.

Queued URLs live in storage; per host, only a small window of them is held in memory. Hosts
with work sit in a heap keyed by the monotonic time their next request may start (politeness),
so a worker always takes the host that is ready soonest and never waits on a host while another
one could be served. Before the first request to an origin, and after its rules expire, the
host's next task is its robots.txt; URLs the rules forbid are skipped here, never requested.

Concurrency: one worker at a time holds `_pick_lock` and waits for the earliest host; the others
queue on the lock. Counting: `_open` is the number of requests under way plus outcomes not yet
committed; when no host has work and nothing is open, storage is asked once more (the writer's
SQL can requeue URLs by itself) and the crawl is finished if nothing is queued there.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from yarl import URL

from .clock import Clock, SystemClock
from .config import Config
from .fetch import Response
from .politeness import HostSlot
from .records import HostRecord, Outcome, QueuedURL, RobotsRecord, utc_at
from .robots import (
    MAX_ROBOTS_REDIRECTS,
    RobotsBook,
    RobotsRules,
    redirect_target,
    robots_url,
    rules_from_status,
)
from .skips import SkipRules
from .storage import ResumeState, Storage
from .urls import host_key, origin

WINDOW = 64  # queued URLs of one host held in memory at most

# rules_from_status off the event loop: a 512 KiB robots.txt takes 20 ms or more to parse.
RobotsParser = Callable[[int | None, bytes | None, str, float], Awaitable[RobotsRules | None]]


async def parse_robots_in_thread(
    status: int | None, body: bytes | None, token: str, expires: float
) -> RobotsRules | None:
    """The default RobotsParser (the engine gives the frontier a better one, in a process)."""
    return await asyncio.to_thread(rules_from_status, status, body, token, expires)


@dataclass(slots=True)
class PageTask:
    url: QueuedURL
    slot: HostSlot


@dataclass(slots=True)
class RobotsTask:
    origin: str
    url: str  # robots.txt, or where a redirect of it pointed
    slot: HostSlot
    hops: int = 0
    attempts: int = 0


Task = PageTask | RobotsTask


@dataclass(slots=True)
class _Host:
    """A host's in-memory share of the frontier."""

    slot: HostSlot
    urls: deque[QueuedURL] = field(default_factory=deque)
    robots_tasks: deque[RobotsTask] = field(default_factory=deque)
    taken: set[int] = field(default_factory=set)  # ids handed out or loaded, not yet committed
    # Ids committed while a refill was reading: its snapshot may still show them queued.
    committed_during_refill: set[int] | None = None
    maybe_more: bool = True  # storage may hold queued URLs not loaded yet
    pages: int = 0  # pages fetched from this host, earlier runs included
    scheduled_at: float | None = None  # its key in the heap, None when not in it
    awaiting_robots: bool = False  # its next URL waits for an origin's robots.txt

    def has_work(self) -> bool:
        if self.robots_tasks:
            return True
        return not self.awaiting_robots and bool(self.urls or self.maybe_more)


class Frontier:
    """Hands out tasks that politeness allows now; learns of new work from the writer."""

    def __init__(
        self,
        store: Storage,
        config: Config,
        resume: ResumeState,
        emit: Callable[[Outcome | RobotsRecord], Awaitable[None]],
        clock: Clock | None = None,
        parse_robots: RobotsParser | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self._parse_robots = parse_robots or parse_robots_in_thread
        self._store = store
        self._config = config
        self._emit = emit
        self._token = config.politeness.robots_token
        self._skips = SkipRules(config)
        self._hosts: dict[str, _Host] = {}
        self._heap: list[tuple[float, str]] = []
        self._robots = RobotsBook()
        self._saved_hosts = {h.host: h for h in resume.hosts}
        self._pages_by_host = resume.pages_by_host
        self._pages_left = config.crawl.max_pages - resume.pages if config.crawl.max_pages else -1
        self._open = 0
        self._errors = 0
        self._changed: set[str] = set()  # hosts whose slot changed since host_records()
        self._pick_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self.stopped = False
        self.limit_reached = False
        self.pages_started = 0
        self._started = self._clock.now()
        self._resumed = resume.resumed
        self._saved_robots = resume.robots

    async def load(self) -> None:
        """Put the robots.txt rules of earlier runs back in force (parsed in a thread: there
        may be thousands of big files), and learn which hosts have queued URLs in storage."""
        await self._restore_robots(self._saved_robots)
        self._saved_robots = []
        await self._reload()

    async def _reload(self) -> bool:
        """Schedule every host storage holds queued URLs for; False if there are none."""
        if self._pages_left == 0:
            self.limit_reached = True
            return False
        names = await self._store.queued_hosts()
        for name in names:
            host = self._host(name)
            host.maybe_more = True
            self._schedule(host)
        return bool(names)

    def stop(self) -> None:
        """Hand out nothing more; tasks already out still finish."""
        self.stopped = True
        self._wake.set()

    async def next_task(self) -> Task | None:
        """The next task politeness allows, waiting for it; None when the crawl is over."""
        async with self._pick_lock:
            while not self.stopped:
                self._wake.clear()
                head = self._peek()
                if head is None:
                    if self._open == 0 and not await self._reload():
                        break  # nothing to do and nothing that could bring more: done
                    if self._open:
                        await self._wake.wait()
                    continue
                ready_at, name = head
                wait = ready_at - self._clock.now()
                if wait > 0:
                    await self._clock.wait(self._wake, wait)
                    continue
                heapq.heappop(self._heap)
                host = self._hosts[name]
                host.scheduled_at = None
                if host.slot.ready_at() > self._clock.now():
                    self._schedule(host)  # its slot moved later (an answer, a Retry-After)
                    continue
                task = await self._take(host)
                self._schedule(host)
                if task is not None:
                    return task
        self._wake.set()  # let the next worker in line see the end too
        return None

    def page_done(self, task: PageTask, response: Response) -> bool:
        """A page request ended. True when it is not final: it will be tried again (in this run,
        or, once a stop was asked for, in the next one), so there is no outcome to write."""
        self._finish(task.slot, response)
        host = self._hosts[task.url.host]
        retry = response.retryable and task.url.attempts < self._config.fetch.retries
        if retry:
            host.pages -= 1
            self.pages_started -= 1
            self._pages_left += 1 if self._pages_left >= 0 else 0
            self._open -= 1
            task.url.attempts += 1
            if not self.stopped:
                host.urls.appendleft(task.url)
            # else: it stays queued in storage (and taken here, so this run leaves it alone)
        self._schedule(host)
        self._wake.set()
        return retry

    async def robots_done(self, task: RobotsTask, response: Response) -> None:
        """A robots.txt request ended: follow its redirect, retry it, or settle the rules."""
        self._finish(task.slot, response)
        self._open -= 1
        self._schedule(self._hosts[task.slot.host])
        self._wake.set()
        target = redirect_target(response)
        if target is not None and task.hops < MAX_ROBOTS_REDIRECTS:
            self._add_robots_task(task.origin, target, hops=task.hops + 1)
            return
        ttl = self._config.politeness.robots_ttl
        expires = self._clock.now() + ttl
        rules = await self._parse_robots(response.status, response.body, self._token, expires)
        if rules is None and target is not None:
            rules = RobotsRules(status="allow-all", expires=expires)  # RFC 9309 2.3.1.2
        if rules is None and task.attempts < self._config.fetch.retries and not self.stopped:
            self._add_robots_task(task.origin, task.url, hops=task.hops, attempts=task.attempts + 1)
            return
        if rules is None:
            rules = RobotsRules(status="unreachable", expires=expires)
        await self._settle_robots(task.origin, rules, response)

    def committed(self, outcomes: Iterable[Outcome]) -> None:
        """The writer committed these outcomes: their URLs leave memory, new work is known."""
        with_work: set[str] = set()
        for outcome in outcomes:
            host = self._hosts[outcome.url.host]
            host.taken.discard(outcome.url.id)
            if host.committed_during_refill is not None:
                host.committed_during_refill.add(outcome.url.id)
            self._open -= 1
            with_work.update(found.host for found in outcome.discovered if found.state == "queued")
        for name in with_work:
            host = self._host(name)
            host.maybe_more = True
            self._schedule(host)
        self._wake.set()

    def counters(self) -> tuple[int, int]:
        """Errors so far and hosts seen, for the progress line."""
        return self._errors, len(self._hosts)

    def host_records(self) -> list[HostRecord]:
        """Snapshots of the hosts whose state changed since the last call."""
        now, wall = self._clock.now(), self._clock.wall()
        records = [self._hosts[name].slot.record(now, wall) for name in self._changed]
        self._changed.clear()
        return records

    # -- choosing a task --------------------------------------------------------------------

    async def _take(self, host: _Host) -> Task | None:
        """The host's next task, skipping URLs that robots or limits rule out; None if none."""
        if host.robots_tasks:
            return self._start(host.robots_tasks.popleft())
        while True:
            if not host.urls and host.maybe_more:
                await self._refill(host)
            if self._pages_left == 0:
                self.limit_reached = True
                self.stop()  # tasks under way finish; nothing new starts
                return None
            if not host.urls:
                return None
            queued = host.urls[0]
            rules = self._rules_for(host, queued)
            if rules is None:
                return None  # waiting for robots.txt; robots_done reschedules the host
            reason = self._skips.at_dequeue(queued, host.pages, rules)
            host.urls.popleft()
            if reason is not None:
                self._open += 1
                await self._emit(Outcome(url=queued, state="skipped", reason=reason))
                continue
            host.pages += 1
            self._pages_left -= 1 if self._pages_left > 0 else 0
            self.pages_started += 1
            return self._start(PageTask(queued, host.slot))

    def _rules_for(self, host: _Host, queued: QueuedURL) -> RobotsRules | None:
        """The robots rules for the URL's origin, or None after asking for robots.txt."""
        if not self._config.politeness.obey_robots:
            return _ALLOW_ALL
        key = origin(URL(queued.url))
        rules = self._robots.rules(key, self._clock.now())
        if rules is not None:
            return rules
        if self._robots.wait(key, host.slot.host):
            self._add_robots_task(key, robots_url(key))
        host.awaiting_robots = True
        return None

    def _start(self, task: Task) -> Task:
        task.slot.start(self._clock.now())
        self._changed.add(task.slot.host)
        self._open += 1
        return task

    def _finish(self, slot: HostSlot, response: Response) -> None:
        if slot.finish(response.status, response.retry_after, response.answered_at):
            self._errors += 1
        self._changed.add(slot.host)

    async def _refill(self, host: _Host) -> None:
        host.committed_during_refill = set()
        try:
            loaded = await self._store.next_queued(host.slot.host, WINDOW, set(host.taken))
            done = host.committed_during_refill
        finally:
            host.committed_during_refill = None
        host.maybe_more = len(loaded) == WINDOW
        loaded = [q for q in loaded if q.id not in done]
        host.urls.extend(loaded)
        host.taken.update(q.id for q in loaded)

    # -- robots.txt -------------------------------------------------------------------------

    def _add_robots_task(self, key: str, url: str, *, hops: int = 0, attempts: int = 0) -> None:
        target = self._host(host_key(URL(url)))
        target.robots_tasks.append(RobotsTask(key, url, target.slot, hops, attempts))
        self._schedule(target)
        self._wake.set()

    async def _restore_robots(self, saved: list[RobotsRecord]) -> None:
        """Rules fetched by an earlier run stay in force until robots_ttl after their fetch."""
        ttl = self._config.politeness.robots_ttl
        wall, now = self._clock.wall(), self._clock.now()
        fresh = []
        for record in saved:
            age = wall - datetime.fromisoformat(record.fetched_at).timestamp()
            if age < ttl:
                fresh.append((record, now + ttl - age))
        parsed = [
            await self._parse_robots(record.status, record.body, self._token, expires)
            for record, expires in fresh
        ]
        for (record, _), rules in zip(fresh, parsed, strict=True):
            if rules is not None:
                self._robots.settle(record.origin, rules)
                self._apply_crawl_delay(self._host(record.host).slot, rules, self._started)

    def _apply_crawl_delay(self, slot: HostSlot, rules: RobotsRules, answered_at: float) -> None:
        # Above max_crawl_delay the host's URLs are skipped (see SkipRules.at_dequeue), not slowed.
        delay = rules.crawl_delay
        if delay is not None and delay <= self._config.politeness.max_crawl_delay:
            slot.apply_crawl_delay(delay, answered_at)

    async def _settle_robots(self, key: str, rules: RobotsRules, response: Response) -> None:
        name = host_key(URL(key))
        slot = self._host(name).slot
        slot.robots_status = f"{rules.status} ({response.status or response.error})"
        slot.robots_fetched_at = utc_at(self._clock.wall())
        self._changed.add(name)
        self._apply_crawl_delay(slot, rules, response.answered_at)
        for waiting in self._robots.settle(key, rules):
            self._hosts[waiting].awaiting_robots = False
            self._schedule(self._hosts[waiting])
        self._wake.set()
        body = response.body if rules.status == "ok" else None
        await self._emit(
            RobotsRecord(key, name, response.status, body, response.error, slot.robots_fetched_at)
        )

    # -- the heap of hosts ------------------------------------------------------------------

    def _host(self, name: str) -> _Host:
        host = self._hosts.get(name)
        if host is None:
            slot = HostSlot(name, delay=self._config.politeness.delay)
            saved = self._saved_hosts.pop(name, None)
            if saved is not None:
                slot.restore(saved, self._clock.now(), self._clock.wall())
            if self._resumed:
                # The last run may have been killed just after a request here: wait one delay.
                slot.next_start = self._started + slot.effective_delay
            host = _Host(slot, maybe_more=False, pages=self._pages_by_host.get(name, 0))
            self._hosts[name] = host
        return host

    def _schedule(self, host: _Host) -> None:
        """Put the host in the heap at its ready time if it has work and a free connection."""
        limit = self._config.politeness.per_host_concurrency
        if not host.has_work() or host.slot.in_flight >= limit:
            return
        ready_at = host.slot.ready_at()
        if host.scheduled_at is not None and host.scheduled_at <= ready_at:
            return
        host.scheduled_at = ready_at
        heapq.heappush(self._heap, (ready_at, host.slot.host))
        self._wake.set()

    def _peek(self) -> tuple[float, str] | None:
        """The earliest live heap entry (entries superseded by a reschedule are dropped)."""
        while self._heap:
            ready_at, name = self._heap[0]
            if self._hosts[name].scheduled_at == ready_at:
                return ready_at, name
            heapq.heappop(self._heap)
        return None


_ALLOW_ALL = RobotsRules(status="allow-all")
