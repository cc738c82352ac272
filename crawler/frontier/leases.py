"""The hosts this run holds: claimed from storage for a lease, renewed, given back.

A run fetches a host's URLs, its robots.txt, retries and redirect hops only while it holds the
host (storage contract, rules 8-12): that is what keeps politeness global when many processes
on many machines share one crawl. Storage keeps the leases on the database's clock; here each
lease's end is kept on this process's monotonic clock, counted from just *before* the claim or
renewal was sent, so it is never later than the database's. A request starts only if the lease
outlasts its whole timeout (`can_start`).

Fair share: each run aims at holding `ceil(hosts with work / live runs)` hosts, so a run that
joins gets hosts as the others give back the ones they have no work for, and a dead run's hosts
are claimed by the live ones once its leases lapse.

Each renewal is also the run's heartbeat, and carries the event loop's lag so far (`lag`, the
engine's LoopLag), which storage writes into the run's row for `crawler serve` to show.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Collection, Sequence

from ..records import HostRecord
from ..storage import Storage
from .clock import Clock

logger = logging.getLogger(__name__)


def renew_every(lease: float, timeout: float) -> float:
    """Seconds between renewals: often enough that a request can always start (the lease left
    after a renewal outlasts a timeout), at most every lease / 3."""
    return max(0.05, min(lease / 3, (lease - timeout) / 3))


class Leases:
    """One run's leases on hosts, on a monotonic clock."""

    def __init__(
        self,
        store: Storage,
        clock: Clock,
        *,
        lease: float,
        timeout: float,
        lag: Callable[[], Awaitable[tuple[float, float] | None]] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._lag = lag  # the event loop's lag so far (p99, max, seconds), if measured
        self.lease = lease
        self._timeout = timeout
        self._ends: dict[str, float] = {}  # host: monotonic time its lease ends, at the latest
        self.live_runs = 1  # runs on the crawl (this one included), as last counted

    def __contains__(self, host: object) -> bool:
        return host in self._ends

    def __len__(self) -> int:
        return len(self._ends)

    @property
    def held(self) -> list[str]:
        return list(self._ends)

    def can_start(self, host: str, now: float) -> bool:
        """Whether a request to `host` may start now: held, for longer than a whole request."""
        end = self._ends.get(host)
        return end is not None and end - now > self._timeout

    async def claim(self, limit: int) -> list[HostRecord]:
        """Claim up to `limit` hosts with work and no live owner; their saved state."""
        if limit <= 0:
            return []
        sent = self._clock.now()
        records = await self._store.claim_hosts(limit)
        for record in records:
            self._ends[record.host] = sent + self.lease
        return records

    async def renew(self) -> set[str]:
        """Renew every lease (and the run's heartbeat); returns the hosts lost meanwhile."""
        lag = None if self._lag is None else await self._lag()
        sent = self._clock.now()  # after the lag's await: the lease counts from here
        asked = dict(self._ends)
        kept = await self._store.renew_hosts(list(asked), lag=lag)
        # While it was asked, a host may have been given back, or given back and claimed again
        # (a new lease): only those still as they were when asked are renewed, or lost.
        unchanged = [host for host, end in asked.items() if self._ends.get(host) == end]
        lost = {host for host in unchanged if host not in kept}
        for host in unchanged:
            if host in kept:
                self._ends[host] = sent + self.lease
            else:
                del self._ends[host]
        if lost:
            logger.warning("lost %d hosts (their lease lapsed): %s", len(lost), sorted(lost))
        return lost

    async def release(self, records: Sequence[HostRecord]) -> None:
        """Give hosts back, saving their state for whoever claims them next."""
        if not records:
            return
        for record in records:
            self._ends.pop(record.host, None)
        await self._store.release_hosts(records)

    def forget(self, hosts: Collection[str]) -> None:
        """Hosts storage says this run no longer holds (a save left their outcomes out)."""
        for host in hosts:
            self._ends.pop(host, None)

    async def fair_share(self, hosts_with_work: int) -> int:
        """How many hosts this run should hold: its share of the hosts with work."""
        self.live_runs = runs = max(1, await self._store.live_runs())
        return math.ceil(hosts_with_work / runs)
