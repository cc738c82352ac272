"""The frontier: which URL goes out next, and when.

Queued URLs live in storage; the run works on the hosts it holds (`hosts`, `leases`: claimed
from storage, one owner per host across every process of the crawl), and per host only a small
window of queued URLs is held in memory. Held hosts with work sit in a heap keyed by the
monotonic time their next request may start (politeness), so a worker always takes the host
that is ready soonest and never waits on a host while another one could be served. Before the
first request to an origin, and after its rules expire, the host's next task is its
robots.txt (`robots_first`); URLs the rules forbid are skipped here (`skips`), never
requested. Pages count against the crawl's max_pages (`budget`). Every change to a Host is made
by its own methods (`hosts`, which also says which coroutines touch one and why no state read
before an await is acted on after it).

Concurrency: one worker at a time holds `_pick_lock` and waits for the earliest host; the others
queue on the lock. Counting: `_open` is the number of requests under way plus outcomes not yet
committed. When no held host has work and nothing is open, the run gives back its idle hosts
and claims more; the crawl is over when no host anywhere has queued URLs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
from collections.abc import Awaitable, Callable, Iterable

from ..config import DEFAULT_LEASE, Config
from ..fetch import Response
from ..records import HostRecord, Outcome, RobotsRecord
from ..robots.origins import RobotsParser, RobotsRules, parse_in_thread
from ..storage import ResumeState, Storage
from .budget import PageBudget
from .clock import Clock, SystemClock
from .hosts import Host, HostBook, PageTask, RobotsTask, Task
from .leases import Leases, renew_every
from .politeness import HostSlot
from .robots_first import RobotsFirst
from .skips import SkipRules

WINDOW = 64  # queued URLs of one host held in memory at most
POLL = 1.0  # seconds between looks for claimable hosts while other runs hold all the work


class Frontier:
    """Hands out tasks that politeness allows now; learns of new work from the writer."""

    def __init__(
        self,
        store: Storage,
        config: Config,
        resume: ResumeState,
        emit: Callable[[Outcome | RobotsRecord], Awaitable[None]],
        commit_now: Callable[[], None] = lambda: None,
        clock: Clock | None = None,
        parse_robots: RobotsParser | None = None,
        lease: float = DEFAULT_LEASE,
        lag: Callable[[], Awaitable[tuple[float, float] | None]] | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self._store = store
        self._config = config
        self._emit = emit
        self._commit_now = commit_now
        self._skips = SkipRules(config)
        self._heap: list[tuple[float, str]] = []
        self._changed: set[str] = set()  # hosts whose slot changed since host_records()
        self._robots = RobotsFirst(
            config,
            self._clock,
            parse_robots or parse_in_thread,
            self._skips.scope,
            host=lambda name: self._book.get(name),
            ready=self._schedule,
            changed=self._changed.add,
        )
        self._leases = Leases(
            store, self._clock, lease=lease, timeout=config.fetch.timeout, lag=lag
        )
        self._book = HostBook(
            store,
            config,
            self._clock,
            self._leases,
            other_runs=resume.resumed,
            restore_robots=self._robots.restore,
            ready=self._schedule,
            forget_robots=self._robots.forget,
        )
        self._hosts = self._book.hosts
        self._budget = PageBudget(store, config.crawl.max_pages)
        self._open = 0
        self._errors = 0
        self._pick_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self.stopped = False
        self.limit_reached = False
        self.pages_started = 0
        self._saved_robots = resume.robots
        self._tend_now = asyncio.Event()  # the leases need looking after before the next turn

    async def load(self) -> None:
        """Put the robots.txt rules of earlier runs back in force (big files parsed off the
        loop), and claim this run's first hosts."""
        await self._robots.restore(self._saved_robots)
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
                        self._commit_now()  # the work to come is in the writer's hands
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
                host.leave_heap()
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
        task.slot.unstart()
        self._give_back(task)
        return False

    def _give_back(self, task: Task) -> None:
        """A task taken whose request did not go out: its URL (or robots.txt) first in line."""
        self._open -= 1
        host = self._hosts[task.slot.host]
        if isinstance(task, PageTask):
            host.give_back(task.url)
            self.pages_started -= 1
            self._budget.give_back()
        elif host.held:
            host.add_robots_task(task, first=True)
        self._tend_now.set()
        self._schedule(host)
        self._wake.set()

    def page_again(self, task: PageTask, response: Response) -> None:
        """The page's turn went to another request of its host (the login), or its answer
        said the session expired: the request counts for pacing, and the page is first in
        line again, no attempt spent."""
        self._finish(task.slot, response)
        self._hosts[task.url.host].give_back(task.url)
        self.pages_started -= 1
        self._budget.give_back()
        self._open -= 1
        self._schedule(self._hosts[task.url.host])
        self._wake.set()

    def robots_rules(self, task: PageTask, url: str) -> RobotsRules | None:
        """The robots.txt rules in force for `url`, a URL of the task's host; None when its
        origin's rules are not known yet (then they are asked for, and the task, whose request
        did not go out, is given back to wait for them)."""
        host = self._hosts[task.url.host]
        rules = self._robots.rules_for(host, dataclasses.replace(task.url, url=url))
        if rules is None:
            task.slot.unstart()
            self._give_back(task)
        return rules

    def page_done(self, task: PageTask, response: Response) -> bool:
        """A page request ended. True when it is not final: it will be tried again (in this run,
        or, once a stop was asked for, in the next one), so there is no outcome to write."""
        self._finish(task.slot, response)
        host = self._hosts[task.url.host]
        retry = response.retryable and task.url.attempts < self._config.fetch.retries
        if retry:
            host.retry(task.url, now=not self.stopped)
            self.pages_started -= 1
            self._budget.give_back()
            self._open -= 1
        self._schedule(host)
        self._wake.set()
        return retry

    async def robots_done(self, task: RobotsTask, response: Response) -> None:
        """A robots.txt request ended: follow its redirect, retry it, or settle the rules."""
        self._finish(task.slot, response)
        self._open -= 1
        self._schedule(self._hosts[task.slot.host])
        self._wake.set()
        record = await self._robots.answered(task, response, may_retry=not self.stopped)
        self._wake.set()
        if record is not None:
            await self._emit(record)

    def committed(self, outcomes: Iterable[Outcome], lost: Iterable[Outcome] = ()) -> None:
        """The writer committed these outcomes (and left out `lost` ones, of hosts this run no
        longer holds): their URLs leave memory, new work is known."""
        with_work: set[str] = set()
        for outcome in outcomes:
            self._hosts[outcome.url.host].committed(outcome.url.id)
            self._open -= 1
            with_work.update(found.host for found in outcome.discovered if found.state == "queued")
        gone = set()
        for outcome in lost:
            host = self._hosts[outcome.url.host]
            host.left_out(outcome.url.id)  # its URL is still queued: a later refill loads it
            self._open -= 1
            if outcome.url.claim == host.claim:
                gone.add(outcome.url.host)  # lost now; else it was taken under a claim before
            else:
                self._schedule(host)
        if gone:
            self._leases.forget(gone)
            for name in gone:
                self._book.drop(name)
        for name in with_work:
            host = self._book.get(name)
            if host.held:
                host.more_queued()
                self._schedule(host)
            else:
                self._tend_now.set()  # new work on a host this run may claim
        self._wake.set()

    def alone(self) -> bool:
        """Whether this run crawls alone, as last counted: no other live run may be waiting for
        hosts it holds (the writer lingers only then: see engine/writer.py)."""
        return self._leases.live_runs <= 1

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
        while True:
            if not host.robots_tasks:
                if host.needs_refill():
                    await host.refill(self._store.next_queued, WINDOW)
                if host.head() is not None and not self._budget.available():
                    if not await self._budget.reserve():
                        self.limit_reached = True
                        self.stop()  # tasks under way finish; nothing new starts
                        return None
                    continue  # the host may have changed during the reservation: read it again
            taken = self._take_now(host)
            if not isinstance(taken, Outcome):
                return taken
            self._open += 1
            await self._emit(taken)

    def _take_now(self, host: Host) -> Task | Outcome | None:
        """The host's next task, or the outcome of skipping its head URL; None if there is
        none now. No await here: what is read of the host is what is taken."""
        now = self._clock.now()
        if not self._leases.can_start(host.name, now):
            # Its lease could lapse during the request: wait for the renewal.
            host.wait_for_lease(now + min(1.0, self._leases.lease / 10))
            self._tend_now.set()
            return None
        robots = host.next_robots_task()
        if robots is not None:
            return self._start(robots)
        queued = host.head()
        if queued is None:
            return None
        rules = self._robots.rules_for(host, queued)
        if rules is None:
            return None  # waiting for robots.txt; its answer reschedules the host
        reason = self._skips.at_dequeue(queued, host.pages, rules)
        host.take_head(fetched=reason is None)
        if reason is not None:
            return Outcome(url=queued, state="skipped", reason=reason)
        self._budget.spend()
        self.pages_started += 1
        return self._start(PageTask(queued, host.slot))

    def _start(self, task: Task) -> Task:
        task.slot.start(self._clock.now())
        self._changed.add(task.slot.host)
        self._open += 1
        return task

    def _finish(self, slot: HostSlot, response: Response) -> None:
        if slot.finish(response.status, response.retry_after, response.answered_at):
            self._errors += 1
        self._changed.add(slot.host)

    # -- the heap of hosts ------------------------------------------------------------------

    def _schedule(self, host: Host) -> None:
        """Put the host in the heap at its ready time if it has work and a free connection."""
        limit = self._config.politeness.per_host_concurrency
        if not host.has_work() or host.slot.in_flight >= limit:
            return
        ready_at = max(host.slot.ready_at(), host.lease_wait)
        if host.enter_heap(ready_at):
            heapq.heappush(self._heap, (ready_at, host.name))
            self._wake.set()

    def _peek(self) -> tuple[float, str] | None:
        """The earliest live heap entry (entries superseded by a reschedule are dropped)."""
        while self._heap:
            ready_at, name = self._heap[0]
            if self._hosts[name].scheduled_at == ready_at:
                return ready_at, name
            heapq.heappop(self._heap)
        return None
