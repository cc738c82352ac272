"""The hosts a run knows: each one's in-memory share of the frontier (`Host`), and the book of
which of them the run holds (`HostBook`): claimed from storage up to a fair share, paced from
their saved state when claimed, given back when idle or past the share, dropped when lost.
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
        slot = host.slot
        now = self._clock.now()
        slot.restore(record, now, self._clock.wall())
        if self._other_runs or record.requests:
            slot.next_start = max(slot.next_start, now + slot.effective_delay)
        host.held, host.maybe_more, host.lease_wait = True, True, 0.0
        # URLs loaded under an earlier claim (a refill that ended after the host was lost)
        # would be taken under that claim, and their outcomes left out: load them anew.
        host.taken.difference_update(q.id for q in host.urls)
        host.urls.clear()
        host.claim = record.claim
        host.pages = record.pages  # every run's, for max_pages_per_host
        self._ready(host)

    def drop(self, name: str) -> None:
        """A host this run no longer holds: nothing more goes out to it from here."""
        host = self.hosts.get(name)
        if host is not None:
            host.held, host.maybe_more = False, False
            host.taken.difference_update(q.id for q in host.urls)
            host.urls.clear()  # they stay queued in storage, for the host's next owner
            host.robots_tasks.clear()
            host.awaiting_robots = False
            host.scheduled_at = None
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
            self.drop(host.slot.host)
        await self.leases.release([host.slot.record(now, wall) for host in give])
