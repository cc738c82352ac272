"""The hosts a run knows: each one's in-memory share of the frontier (`Host`), and the book of
which of them the run holds (`HostBook`): claimed from storage up to a fair share, paced from
their saved state when claimed, given back when idle or past the share, dropped when lost.

Ownership: a Host's fields are changed only by its own methods, here; the scheduler, the book
and the robots.txt logic call them and read the rest. (Its `HostSlot`, the pacing, is changed
only by the slot's methods.)

Concurrency: every coroutine runs on one event loop, so a method that does not await runs
whole. These coroutines touch a Host: a worker choosing a task (`Frontier.next_task`, one
worker at a time under its pick lock), a worker whose request ended or was called off
(`page_done`, `robots_done`, `confirm`), the writer after a commit (`committed`), and the
book's claims and releases (the tending task, `Frontier.tend`: a host lost, given back or
claimed again; and the picking worker when no held host has work). Any of them may run while
another awaits, so the rule is: no state read before an await is acted on after it. The
picking worker does its awaits first (a refill, a reservation of the page budget) and then
reads the host and takes from it with no await between (`Frontier._take_now`);
`Host.refill`, the one method here that awaits, throws its read away if the host was lost or
claimed again meanwhile and leaves out the ids committed meanwhile; the book drops the hosts
it gives back before it awaits their release.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..config import Config
from ..records import HostRecord, QueuedURL, RobotsRecord
from ..robots.origins import RobotsFetch
from ..storage import Storage
from .clock import Clock
from .leases import Leases
from .politeness import HostSlot

# Storage's read of a host's queued URLs: (host, at most, ids to leave out) -> the next ones.
ReadQueued = Callable[[str, int, set[int]], Awaitable[list[QueuedURL]]]


@dataclass(slots=True)
class PageTask:
    url: QueuedURL
    slot: HostSlot


@dataclass(slots=True)
class RobotsTask:
    fetch: RobotsFetch
    slot: HostSlot  # the pacing it goes out on

    @property
    def url(self) -> str:
        return self.fetch.url


Task = PageTask | RobotsTask


@dataclass(slots=True)
class Host:
    """A host's in-memory share of the frontier; its fields change only by its methods."""

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

    @property
    def name(self) -> str:
        return self.slot.host

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

    # -- the queue ----------------------------------------------------------------------------

    def head(self) -> QueuedURL | None:
        """The URL whose turn is next, if one is loaded (and the host held)."""
        return self.urls[0] if self.held and self.urls else None

    def needs_refill(self) -> bool:
        return self.held and not self.urls and self.maybe_more

    async def refill(self, read: ReadQueued, window: int) -> None:
        """Load up to `window` more queued URLs. The one method that awaits: its read is used
        only if the host is still held under the same claim, less the ids committed meanwhile."""
        claim = self.claim
        self.committed_during_refill = set()
        try:
            loaded = await read(self.name, window, set(self.taken))
            done = self.committed_during_refill
        finally:
            self.committed_during_refill = None
        if not self.held or self.claim != claim:
            return  # the host was lost (and maybe claimed again) meanwhile: this read is stale
        self.maybe_more = len(loaded) == window
        loaded = [q for q in loaded if q.id not in done]
        for queued in loaded:
            queued.claim = claim
        self.urls.extend(loaded)
        self.taken.update(q.id for q in loaded)

    def take_head(self, *, fetched: bool) -> QueuedURL:
        """The head URL leaves the queue: to be fetched (a page counted), or skipped."""
        queued = self.urls.popleft()
        if fetched:
            self.pages += 1
        return queued

    def give_back(self, queued: QueuedURL) -> None:
        """A page taken but not requested: first in line again (if the host is still held)."""
        self.pages -= 1
        if self.held:
            self.urls.appendleft(queued)
        else:
            self.taken.discard(queued.id)

    def retry(self, queued: QueuedURL, *, now: bool) -> None:
        """A page to be tried again: first in line if `now` (and held), else it stays queued in
        storage, and taken here so that this run leaves it alone."""
        self.pages -= 1
        queued.attempts += 1
        if now and self.held:
            self.urls.appendleft(queued)

    def committed(self, url_id: int) -> None:
        """An outcome of the URL is saved: it leaves memory."""
        self.taken.discard(url_id)
        if self.committed_during_refill is not None:
            self.committed_during_refill.add(url_id)

    def left_out(self, url_id: int) -> None:
        """An outcome of the URL was not saved (the host was lost): it is queued still."""
        self.taken.discard(url_id)
        if self.held:
            self.maybe_more = True

    def more_queued(self) -> None:
        """Storage may hold URLs of this host that are not loaded yet."""
        if self.held:
            self.maybe_more = True

    # -- robots.txt, the lease, the heap ------------------------------------------------------

    def add_robots_task(self, task: RobotsTask, *, first: bool = False) -> None:
        if first:
            self.robots_tasks.appendleft(task)
        else:
            self.robots_tasks.append(task)

    def next_robots_task(self) -> RobotsTask | None:
        return self.robots_tasks.popleft() if self.robots_tasks else None

    def wait_for_robots(self, waiting: bool = True) -> None:
        self.awaiting_robots = waiting

    def wait_for_lease(self, until: float) -> None:
        self.lease_wait = until

    def enter_heap(self, ready_at: float) -> bool:
        """Whether an entry at `ready_at` is to be pushed: not when one at or before it is in."""
        if self.scheduled_at is not None and self.scheduled_at <= ready_at:
            return False
        self.scheduled_at = ready_at
        return True

    def leave_heap(self) -> None:
        self.scheduled_at = None

    # -- claimed, lost ------------------------------------------------------------------------

    def adopt(self, record: HostRecord, now: float, wall: float, *, wait_a_delay: bool) -> None:
        """Claimed: paced from its saved state (a delay from now if `wait_a_delay`)."""
        self.slot.restore(record, now, wall)
        if wait_a_delay:
            self.slot.wait_a_delay(now)
        self.held, self.maybe_more, self.lease_wait = True, True, 0.0
        # URLs loaded under an earlier claim (a refill that ended after the host was lost)
        # would be taken under that claim, and their outcomes left out: load them anew.
        self.taken.difference_update(q.id for q in self.urls)
        self.urls.clear()
        self.claim = record.claim
        self.pages = record.pages  # every run's, for max_pages_per_host

    def drop(self) -> None:
        """No longer held: nothing more goes out to it from here."""
        self.held, self.maybe_more = False, False
        self.taken.difference_update(q.id for q in self.urls)
        self.urls.clear()  # they stay queued in storage, for the host's next owner
        self.robots_tasks.clear()
        self.awaiting_robots = False
        self.scheduled_at = None


class HostBook:
    """The run's hosts by name, and which of them it holds (storage contract, rules 8-10)."""

    def __init__(
        self,
        store: Storage,
        config: Config,
        clock: Clock,
        leases: Leases,
        *,
        other_runs: bool,
        restore_robots: Callable[[list[RobotsRecord]], Awaitable[None]],
        ready: Callable[[Host], None],
        forget_robots: Callable[[str], None],
    ) -> None:
        self.hosts: dict[str, Host] = {}
        self.leases = leases
        self._store = store
        self._config = config
        self._clock = clock
        self._other_runs = other_runs  # runs before or beside this one worked on the crawl
        self._restore_robots = restore_robots
        self._ready = ready  # schedules a host that may have work
        self._forget_robots = forget_robots

    async def tend(self, *, claim: bool) -> None:
        """Renew the leases (dropping hosts lost), give back what is idle or past the fair
        share, and (if `claim`) claim up to it."""
        for name in await self.leases.renew():
            self.drop(name)
        target = await self.leases.fair_share(await self._store.hosts_with_work())
        await self.release_idle(target)
        if claim:
            await self.claim(target)

    def get(self, name: str) -> Host:
        """The host named so (known from now on, held or not)."""
        host = self.hosts.get(name)
        if host is None:
            slot = HostSlot(name, delay=self._config.politeness.delay)
            host = Host(slot, maybe_more=False)
            self.hosts[name] = host
        return host

    async def claim(self, target: int | None = None) -> int:
        """Claim hosts up to the run's fair share (`target`, if known); returns how many."""
        if target is None:
            target = await self.leases.fair_share(await self._store.hosts_with_work())
        records = await self.leases.claim(target - len(self.leases))
        if not records:
            return 0
        fresh = [r.host for r in records if r.robots_fetched_at is not None]
        await self._restore_robots(await self._store.robots_of(fresh) if fresh else [])
        for record in records:
            self.adopt(record)
        return len(records)

    def adopt(self, record: HostRecord) -> None:
        """A host claimed: pace it from its saved state, and wait one delay if another run may
        have requested it (and died, or lost it, just after a request that no row records)."""
        host = self.get(record.host)
        wait = self._other_runs or record.requests > 0
        host.adopt(record, self._clock.now(), self._clock.wall(), wait_a_delay=wait)
        self._ready(host)

    def drop(self, name: str) -> None:
        """A host this run no longer holds: nothing more goes out to it from here."""
        host = self.hosts.get(name)
        if host is not None:
            host.drop()
            self._forget_robots(name)

    async def release_idle(self, target: int | None = None) -> None:
        """Give back the hosts with no work here, and quiet ones past `target` hosts (the fair
        share, once other runs joined): another run, or a later claim of this one, takes them
        when they have queued URLs."""
        quiet = [host for host in self.hosts.values() if host.quiet()]
        give = [host for host in quiet if not host.has_work()]
        if target is not None and len(self.leases) - len(give) > target:
            busy = [host for host in quiet if host.has_work()]
            give += busy[: len(self.leases) - len(give) - target]
        if not give:
            return
        now, wall = self._clock.now(), self._clock.wall()
        for host in give:
            self.drop(host.name)
        await self.leases.release([host.slot.record(now, wall) for host in give])
