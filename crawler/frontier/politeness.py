"""Per-host politeness state: when the next request may start, and how many may be open.

One `HostSlot` per host name (port ignored), on a monotonic clock that the caller reads and
passes in (`crawler.frontier.clock`), so that its arithmetic is tested exactly. The
effective delay is the largest of the configured delay, the robots Crawl-delay and the current
back-off; a Retry-After sets a time before which nothing goes to the host at all.

The delay is counted from a request's start and again from its answer (headers arrived, or the
failure): the server saw the request at some moment between the two, and only the later one
bounds it, so the gaps in the server's own log are never below the delay, whatever the latency.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..records import HostRecord, utc_at

MAX_BACKOFF = 60.0  # seconds: the most a host's delay grows after repeated errors
MIN_BACKOFF = 0.5  # seconds: the first step of back-off when the configured delay is smaller


@dataclass(slots=True)
class HostSlot:
    """One host's politeness state and counters."""

    host: str
    delay: float  # configured delay
    crawl_delay: float | None = None
    backoff: float = 0.0
    next_start: float = 0.0  # monotonic time the next request may start
    not_before: float = 0.0  # from Retry-After
    in_flight: int = 0
    last_start: float | None = None
    min_gap: float | None = None
    requests: int = 0
    errors: int = 0
    robots_status: str | None = None
    robots_fetched_at: str | None = None

    @property
    def effective_delay(self) -> float:
        return max(self.delay, self.crawl_delay or 0.0, self.backoff)

    @property
    def delay_reason(self) -> str:
        delay = self.effective_delay
        if self.backoff and delay == self.backoff:
            return "back-off"
        if self.crawl_delay is not None and delay == self.crawl_delay and delay > self.delay:
            return "crawl-delay"
        return "config"

    def apply_crawl_delay(self, delay: float, since: float) -> None:
        """A robots Crawl-delay is in force from `since` (monotonic): the robots.txt answer."""
        self.crawl_delay = delay
        self.next_start = max(self.next_start, since + self.effective_delay)

    def ready_at(self) -> float:
        """The monotonic time at which a request may start, if a connection is free."""
        return max(self.next_start, self.not_before)

    def start(self, now: float) -> None:
        """A request starts now: book the host until the effective delay has passed."""
        if self.last_start is not None:
            gap = now - self.last_start
            self.min_gap = gap if self.min_gap is None else min(self.min_gap, gap)
        self.last_start = now
        self.next_start = now + self.effective_delay
        self.in_flight += 1
        self.requests += 1

    def wait_a_delay(self, now: float) -> None:
        """Nothing starts before a delay from `now` (a request may have gone out unrecorded)."""
        self.next_start = max(self.next_start, now + self.effective_delay)

    def unstart(self) -> None:
        """A request booked by `start` did not go out after all (its delay still holds)."""
        self.in_flight -= 1
        self.requests -= 1

    def robots_answered(self, status: str, fetched_at: str) -> None:
        """The rules of robots.txt in force on this host, and when they were fetched."""
        self.robots_status = status
        self.robots_fetched_at = fetched_at

    def finish(self, status: int | None, retry_after: float | None, answered_at: float) -> bool:
        """A request was answered with `status` (None: no response) at `answered_at`.
        True when it counts as an error (no response, 429, 5xx)."""
        self.in_flight -= 1
        failed = status is None or status == 429 or status >= 500
        if failed:
            self.errors += 1
            self.backoff = min(MAX_BACKOFF, max(self.backoff * 2, self.delay, MIN_BACKOFF))
        elif self.backoff:
            # Recover gradually: halve the back-off after each success, drop it when small.
            self.backoff = self.backoff / 2 if self.backoff / 2 > self.delay else 0.0
        if retry_after is not None and status in (429, 503):
            self.not_before = max(self.not_before, answered_at + retry_after)
        self.next_start = max(self.next_start, answered_at + self.effective_delay)
        return failed

    def record(self, now: float, wall: float) -> HostRecord:
        """A snapshot at monotonic time `now`, which is `wall` in POSIX seconds: what another
        process needs to go on pacing the host where this one stopped."""
        hold = self.not_before - now
        ahead = self.next_start - now
        return HostRecord(
            host=self.host,
            delay=self.effective_delay,
            delay_reason=self.delay_reason,
            crawl_delay=self.crawl_delay,
            robots_status=self.robots_status,
            robots_fetched_at=self.robots_fetched_at,
            requests=self.requests,
            errors=self.errors,
            min_gap_ms=None if self.min_gap is None else round(self.min_gap * 1000, 1),
            retry_after_until=utc_at(wall + hold) if hold > 0 else None,
            backoff=self.backoff,
            next_start_at=utc_at(wall + ahead) if ahead > 0 else None,
        )

    def restore(self, saved: HostRecord, now: float, wall: float) -> None:
        """Go on from a saved snapshot (an earlier run's, or another process's): counters,
        back-off, Crawl-delay, a Retry-After that still holds and the earliest next start
        (at monotonic time `now`, which is `wall` in POSIX seconds)."""
        if saved.retry_after_until is not None:
            hold = datetime.fromisoformat(saved.retry_after_until).timestamp() - wall
            self.not_before = max(self.not_before, now + hold)
        if saved.next_start_at is not None:
            ahead = datetime.fromisoformat(saved.next_start_at).timestamp() - wall
            self.next_start = max(self.next_start, now + ahead)
        self.requests = saved.requests
        self.errors = saved.errors
        self.backoff = saved.backoff
        self.crawl_delay = saved.crawl_delay
        self.robots_status = saved.robots_status
        self.robots_fetched_at = saved.robots_fetched_at
        self.min_gap = None if saved.min_gap_ms is None else saved.min_gap_ms / 1000
