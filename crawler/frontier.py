"""The frontier: which URL goes out next, and when.

Queued URLs live in storage; the run works on the hosts it holds (`leases`: claimed from
storage, one owner per host across every process of the crawl), and per host only a small
window of queued URLs is held in memory. Held hosts with work sit in a heap keyed by the
monotonic time their next request may start (politeness), so a worker always takes the host
that is ready soonest and never waits on a host while another one could be served. Before the
first request to an origin, and after its rules expire, the host's next task is its
robots.txt; URLs the rules forbid are skipped here (`skips`), never requested.

Concurrency: one worker at a time holds `_pick_lock` and waits for the earliest host; the others
queue on the lock. Counting: `_open` is the number of requests under way plus outcomes not yet
committed. When no held host has work and nothing is open, the run gives back its idle hosts
and claims more; the crawl is over when no host anywhere has queued URLs.
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
from .leases import Leases, renew_every
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
PAGES_PER_RESERVATION = 8  # pages of max_pages reserved from storage at a time
POLL = 1.0  # seconds between looks for claimable hosts while other runs hold all the work

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
    held: bool = False  # this run holds the host's lease
    claim: int = 0  # under which claim of the host (storage checks it when saving)
    lease_wait: float = 0.0  # monotonic time before which its lease is too short for a request

    def has_work(self) -> bool:
        if not self.held:
            return False
        if self.robots_tasks:
            return True
        return not self.awaiting_robots and bool(self.urls or self.maybe_more)

    def quiet(self) -> bool:
        """Held, with nothing under way: no request open, no outcome waiting to be committed
        (a save checks the lease), no robots.txt pending. Such a host can be given back."""
        pending = len(self.taken) > len(self.urls)  # ids loaded but not handed out: not pending
        return (
            self.held
            and self.slot.in_flight == 0
            and not pending
            and not self.robots_tasks
            and not self.awaiting_robots
        )


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
        lease: float = 60.0,
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
        self._leases = Leases(store, self._clock, lease=lease, timeout=config.fetch.timeout)
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
        self._other_runs = resume.resumed  # runs before or beside this one worked on the crawl
        self._tend_now = asyncio.Event()  # the leases need looking after before the next turn

    async def load(self) -> None:
        """Put the robots.txt rules of earlier runs back in force (big files parsed off the
        loop), and claim this run's first hosts."""
        await self._restore_robots(self._saved_robots)
        self._saved_robots = []
        await self._claim()

    async def tend(self) -> None:
        """Look after the run's hosts until cancelled (a task of the engine's TaskGroup):
        renew their leases, give back idle ones, claim a fair share more."""
        every = renew_every(self._leases.lease, self._config.fetch.timeout)
        while True:
            await self._clock.wait(self._tend_now, every)
            self._tend_now.clear()
            for name in await self._leases.renew():
                self._drop(name)
            target = await self._leases.fair_share(await self._store.hosts_with_work())
            await self._release_idle(target)
            if not self.stopped:
                await self._claim(target)
            self._wake.set()

    async def _claim(self, target: int | None = None) -> int:
        """Claim hosts up to the run's fair share (`target`, if known); returns how many."""
        if target is None:
            target = await self._leases.fair_share(await self._store.hosts_with_work())
        records = await self._leases.claim(target - len(self._leases))
        if not records:
            return 0
        fresh = [r.host for r in records if r.robots_fetched_at is not None]
        await self._restore_robots(await self._store.robots_of(fresh) if fresh else [])
        for record in records:
            self._adopt(record)
        return len(records)

    def _adopt(self, record: HostRecord) -> None:
        """A host claimed: pace it from its saved state, and wait one delay if another run may
        have requested it (and died, or lost it, just after a request that no row records)."""
        host = self._host(record.host)
        slot = host.slot
        now = self._clock.now()
        slot.restore(record, now, self._clock.wall())
        if self._other_runs or record.requests:
            slot.next_start = max(slot.next_start, now + slot.effective_delay)
        host.held, host.maybe_more, host.lease_wait = True, True, 0.0
        host.claim = record.claim
        host.pages = record.pages  # every run's, for max_pages_per_host
        self._schedule(host)

    def _drop(self, name: str) -> None:
        """A host this run no longer holds: nothing more goes out to it from here."""
        host = self._hosts.get(name)
        if host is not None:
            host.held, host.maybe_more = False, False
            host.taken.difference_update(q.id for q in host.urls)
            host.urls.clear()  # they stay queued in storage, for the host's next owner
            host.robots_tasks.clear()
            host.scheduled_at = None

    async def _release_idle(self, target: int | None = None) -> None:
        """Give back the hosts with no work here, and quiet ones past `target` hosts (the fair
        share, once other runs joined): another run, or a later claim of this one, takes them
        when they have queued URLs."""
        quiet = [host for host in self._hosts.values() if host.quiet()]
        give = [host for host in quiet if not host.has_work()]
        if target is not None and len(self._leases) - len(give) > target:
            busy = [host for host in quiet if host.has_work()]
            give += busy[: len(self._leases) - len(give) - target]
        if not give:
            return
        now, wall = self._clock.now(), self._clock.wall()
        for host in give:
            self._drop(host.slot.host)
        await self._leases.release([host.slot.record(now, wall) for host in give])

    async def _nothing_held(self) -> bool:
        """No held host has work and nothing is open: give back, claim again; True when the
        crawl is over (no host anywhere has queued URLs)."""
        await self._release_idle()
        if self.stopped or await self._claim():
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
                self._drop(name)
        for name in with_work:
            host = self._host(name)
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

    async def _take(self, host: _Host) -> Task | None:
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
        for queued in loaded:
            queued.claim = host.claim
        host.urls.extend(loaded)
        host.taken.update(q.id for q in loaded)

    # -- robots.txt -------------------------------------------------------------------------

    def _add_robots_task(self, key: str, url: str, *, hops: int = 0, attempts: int = 0) -> None:
        target = self._host(host_key(URL(url)))
        if not target.held:
            # A redirect to a host this run does not hold: the hop goes out on the origin's
            # host and its pacing (a host named only by a robots redirect has no URLs to claim).
            target = self._host(host_key(URL(key)))
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
            host = _Host(slot, maybe_more=False)
            self._hosts[name] = host
        return host

    def _schedule(self, host: _Host) -> None:
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
