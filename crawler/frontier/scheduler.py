"""The frontier: which URL goes out next, and when.

Queued URLs live in storage; the run works on the hosts it holds (`hosts`, `leases`: claimed
from storage, one owner per host across every process of the crawl), and per host only a small
window of queued URLs is held in memory. Held hosts with work sit in a heap keyed by the
monotonic time their next request may start (politeness), so a worker always takes the host
that is ready soonest and never waits on a host while another one could be served. Before the
first request to an origin, and after its rules expire, the host's next task is its
robots.txt (`robots.RobotsLife`); URLs the rules forbid are skipped here (`skips`), never
requested.

Concurrency: one worker at a time holds `_pick_lock` and waits for the earliest host; the others
queue on the lock. Counting: `_open` is the number of requests under way plus outcomes not yet
committed. When no held host has work and nothing is open, the run gives back its idle hosts
and claims more; the crawl is over when no host anywhere has queued URLs.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Awaitable, Callable, Iterable

from yarl import URL

from ..config import DEFAULT_LEASE, Config
from ..fetch import Response
from ..records import HostRecord, Outcome, QueuedURL, RobotsRecord, utc_at
from ..robots.origins import RobotsFetch, RobotsLife, RobotsParser, RobotsRules, parse_in_thread
from ..sitemaps.entries import named_sitemaps
from ..storage import ResumeState, Storage
from ..urls import host_key, origin
from .clock import Clock, SystemClock
from .hosts import Host, HostBook, PageTask, RobotsTask, Task
from .leases import Leases, renew_every
from .politeness import HostSlot
from .skips import SkipRules

WINDOW = 64  # queued URLs of one host held in memory at most
PAGES_PER_RESERVATION = 8  # pages of max_pages reserved from storage at a time
POLL = 1.0  # seconds between looks for claimable hosts while other runs hold all the work


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
        lease: float = DEFAULT_LEASE,
    ) -> None:
        self._clock = clock or SystemClock()
        self._store = store
        self._config = config
        self._emit = emit
        self._token = config.politeness.robots_token
        self._skips = SkipRules(config)
        self._heap: list[tuple[float, str]] = []
        self._robots = RobotsLife(
            self._token,
            config.politeness.robots_ttl,
            config.fetch.retries,
            parse_robots or parse_in_thread,
        )
        self._leases = Leases(store, self._clock, lease=lease, timeout=config.fetch.timeout)
        self._book = HostBook(
            store,
            config,
            self._clock,
            self._leases,
            other_runs=resume.resumed,
            restore_robots=self._restore_robots,
            ready=self._schedule,
            forget_robots=self._robots.forget,
        )
        self._hosts = self._book.hosts
        self._granted = 0  # pages reserved from storage's global budget, not used yet
        self._open = 0
        self._errors = 0
        self._changed: set[str] = set()  # hosts whose slot changed since host_records()
        self._pick_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self.stopped = False
        self.limit_reached = False
        self.pages_started = 0
        self._started = self._clock.now()
        self._saved_robots = resume.robots
        self._tend_now = asyncio.Event()  # the leases need looking after before the next turn

    async def load(self) -> None:
        """Put the robots.txt rules of earlier runs back in force (big files parsed off the
        loop), and claim this run's first hosts."""
        await self._restore_robots(self._saved_robots)
        self._saved_robots = []
        await self._book.claim()

    async def tend(self) -> None:
        """Look after the run's hosts until cancelled (a task of the engine's TaskGroup):
        renew their leases, give back idle ones, claim a fair share more."""
        every = renew_every(self._leases.lease, self._config.fetch.timeout)
        while True:
            await self._clock.wait(self._tend_now, every)
            self._tend_now.clear()
            await self._book.tend(claim=not self.stopped)
            self._wake.set()

    async def _nothing_held(self) -> bool:
        """No held host has work and nothing is open: give back, claim again; True when the
        crawl is over (no host anywhere has queued URLs)."""
        await self._book.release_idle()
        if self.stopped or await self._book.claim():
            return False
        if not await self._store.hosts_with_work():
            return True
        await self._clock.wait(self._wake, POLL)  # other runs hold the work: they may die
        return False

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
                    if self._open:
                        await self._wake.wait()
                    elif await self._nothing_held():
                        break  # no work anywhere, nothing that could bring more: done
                    continue
                ready_at, name = head
                wait = ready_at - self._clock.now()
                if wait > 0:
                    await self._clock.wait(self._wake, wait)
                    continue
                heapq.heappop(self._heap)
                host = self._hosts[name]
                host.scheduled_at = None
                if max(host.slot.ready_at(), host.lease_wait) > self._clock.now():
                    self._schedule(host)  # its slot moved later (an answer, a Retry-After)
                    continue
                task = await self._take(host)
                self._schedule(host)
                if task is not None:
                    return task
        self._wake.set()  # let the next worker in line see the end too
        return None

    def confirm(self, task: Task) -> bool:
        """Just before its request goes out: whether the run still holds the task's host for
        longer than the request may take. A process stopped between taking a task and sending
        it may have lost the host meanwhile; then the task is given back, its URL still
        queued, and no request goes out."""
        if self._leases.can_start(task.slot.host, self._clock.now()):
            return True
        task.slot.in_flight -= 1
        task.slot.requests -= 1
        self._open -= 1
        host = self._hosts[task.slot.host]
        if isinstance(task, PageTask):
            host.pages -= 1
            self.pages_started -= 1
            self._granted += 1 if self._config.crawl.max_pages else 0
            if host.held:
                host.urls.appendleft(task.url)
            else:
                host.taken.discard(task.url.id)
        elif host.held:
            host.robots_tasks.appendleft(task)
        self._tend_now.set()
        self._schedule(host)
        self._wake.set()
        return False

    def page_done(self, task: PageTask, response: Response) -> bool:
        """A page request ended. True when it is not final: it will be tried again (in this run,
        or, once a stop was asked for, in the next one), so there is no outcome to write."""
        self._finish(task.slot, response)
        host = self._hosts[task.url.host]
        retry = response.retryable and task.url.attempts < self._config.fetch.retries
        if retry:
            host.pages -= 1
            self.pages_started -= 1
            self._granted += 1 if self._config.crawl.max_pages else 0
            self._open -= 1
            task.url.attempts += 1
            if not self.stopped and host.held:
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
        now = self._clock.now()
        step = await self._robots.answered(task.fetch, response, now, may_retry=not self.stopped)
        if isinstance(step, RobotsFetch):
            self._add_robots_task(step)
        else:
            await self._settle_robots(task.fetch.origin, step, response)

    def committed(self, outcomes: Iterable[Outcome], lost: Iterable[Outcome] = ()) -> None:
        """The writer committed these outcomes (and left out `lost` ones, of hosts this run no
        longer holds): their URLs leave memory, new work is known."""
        with_work: set[str] = set()
        for outcome in outcomes:
            host = self._hosts[outcome.url.host]
            host.taken.discard(outcome.url.id)
            if host.committed_during_refill is not None:
                host.committed_during_refill.add(outcome.url.id)
            self._open -= 1
            with_work.update(found.host for found in outcome.discovered if found.state == "queued")
        gone = set()
        for outcome in lost:
            host = self._hosts[outcome.url.host]
            host.taken.discard(outcome.url.id)
            self._open -= 1
            if outcome.url.claim == host.claim:
                gone.add(outcome.url.host)  # lost now; else it was taken under a claim before
            elif host.held:
                host.maybe_more = True  # its URL is still queued: load it again
                self._schedule(host)
        if gone:
            self._leases.forget(gone)
            for name in gone:
                self._book.drop(name)
        for name in with_work:
            host = self._book.get(name)
            if host.held:
                host.maybe_more = True
                self._schedule(host)
            else:
                self._tend_now.set()  # new work on a host this run may claim
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

    async def _take(self, host: Host) -> Task | None:
        """The host's next task, skipping URLs that robots or limits rule out; None if none."""
        now = self._clock.now()
        if not self._leases.can_start(host.slot.host, now):
            # Its lease could lapse during the request: wait for the renewal.
            host.lease_wait = now + min(1.0, self._leases.lease / 10)
            self._tend_now.set()
            return None
        if host.robots_tasks:
            return self._start(host.robots_tasks.popleft())
        while True:
            if not host.urls and host.maybe_more:
                await self._refill(host)
            if not host.urls or not host.held:
                return None
            queued = host.urls[0]
            rules = self._rules_for(host, queued)
            if rules is None:
                return None  # waiting for robots.txt; robots_done reschedules the host
            reason = self._skips.at_dequeue(queued, host.pages, rules)
            if reason is None and not await self._grant():
                self.limit_reached = True
                self.stop()  # tasks under way finish; nothing new starts
                return None
            host.urls.popleft()
            if reason is not None:
                self._open += 1
                await self._emit(Outcome(url=queued, state="skipped", reason=reason))
                continue
            host.pages += 1
            self.pages_started += 1
            return self._start(PageTask(queued, host.slot))

    async def _grant(self) -> bool:
        """One page of the crawl's global max_pages for this run; False when it is spent."""
        max_pages = self._config.crawl.max_pages
        if not max_pages:
            return True
        if not self._granted:
            self._granted = await self._store.reserve_pages(PAGES_PER_RESERVATION, max_pages)
        if not self._granted:
            return False
        self._granted -= 1
        return True

    def _rules_for(self, host: Host, queued: QueuedURL) -> RobotsRules | None:
        """The robots rules for the URL's origin, or None after asking for robots.txt."""
        if not self._config.politeness.obey_robots:
            return _ALLOW_ALL
        key = origin(URL(queued.url))
        rules = self._robots.rules(key, self._clock.now())
        if rules is not None:
            return rules
        fetch = self._robots.ask(key, host.slot.host)
        if fetch is not None:
            self._add_robots_task(fetch)
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

    async def _refill(self, host: Host) -> None:
        claim = host.claim
        host.committed_during_refill = set()
        try:
            loaded = await self._store.next_queued(host.slot.host, WINDOW, set(host.taken))
            done = host.committed_during_refill
        finally:
            host.committed_during_refill = None
        if not host.held or host.claim != claim:
            return  # the host was lost (and maybe claimed again) meanwhile: this read is stale
        host.maybe_more = len(loaded) == WINDOW
        loaded = [q for q in loaded if q.id not in done]
        for queued in loaded:
            queued.claim = claim
        host.urls.extend(loaded)
        host.taken.update(q.id for q in loaded)

    # -- robots.txt -------------------------------------------------------------------------

    def _add_robots_task(self, fetch: RobotsFetch) -> None:
        target = self._book.get(host_key(URL(fetch.url)))
        if not target.held:
            # A redirect to a host this run does not hold: the hop goes out on the origin's
            # host and its pacing (a host named only by a robots redirect has no URLs to claim).
            target = self._book.get(host_key(URL(fetch.origin)))
        target.robots_tasks.append(RobotsTask(fetch, target.slot))
        self._schedule(target)
        self._wake.set()

    async def _restore_robots(self, saved: list[RobotsRecord]) -> None:
        """Answers fetched before (an earlier run, another process) stay in force until
        robots_ttl after their fetch; their Crawl-delay too."""
        now, wall = self._clock.now(), self._clock.wall()
        for record, rules in await self._robots.restore(saved, now, wall):
            self._apply_crawl_delay(self._book.get(record.host).slot, rules, self._started)

    def _apply_crawl_delay(self, slot: HostSlot, rules: RobotsRules, answered_at: float) -> None:
        # Above max_crawl_delay the host's URLs are skipped (see SkipRules.at_dequeue), not slowed.
        delay = rules.crawl_delay
        if delay is not None and delay <= self._config.politeness.max_crawl_delay:
            slot.apply_crawl_delay(delay, answered_at)

    async def _settle_robots(self, key: str, rules: RobotsRules, response: Response) -> None:
        name = host_key(URL(key))
        slot = self._book.get(name).slot
        slot.robots_status = f"{rules.status} ({response.status or response.error})"
        slot.robots_fetched_at = utc_at(self._clock.wall())
        self._changed.add(name)
        self._apply_crawl_delay(slot, rules, response.answered_at)
        for waiting in self._robots.settle(key, rules):
            self._hosts[waiting].awaiting_robots = False
            self._schedule(self._hosts[waiting])
        self._wake.set()
        body = response.body if rules.status == "ok" else None
        named = named_sitemaps(key, rules, self._skips.scope, self._config.crawl.robots_sitemaps)
        await self._emit(
            RobotsRecord(
                key, name, response.status, body, response.error, slot.robots_fetched_at, named
            )
        )

    # -- the heap of hosts ------------------------------------------------------------------

    def _schedule(self, host: Host) -> None:
        """Put the host in the heap at its ready time if it has work and a free connection."""
        limit = self._config.politeness.per_host_concurrency
        if not host.has_work() or host.slot.in_flight >= limit:
            return
        ready_at = max(host.slot.ready_at(), host.lease_wait)
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
