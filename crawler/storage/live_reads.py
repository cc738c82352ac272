"""The read contract's live view (read_contract.py, rules 17-20), in SQL both dialects run alike.

`LiveReads` is a part of `portable_reads.PortableReads`: it uses the same primitives (`_all`,
`columns`) and one more that each backend gives, `_now` (the database's clock, POSIX seconds).
Whether a run is live is decided in Python, by the write contract's own test (`run_is_gone`),
so that the live view and the crawl agree on it.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from datetime import datetime

from ..records import utc_at
from .common import run_is_gone
from .read_contract import Counts, CrawlState, HeldHost, Live, LiveRun, Row, Span

# What run_is_gone reads first (id, machine, pid, renewed_at, lease), then what rule 17 shows.
_RUN_COLUMNS = (
    "id", "machine", "pid", "renewed_at", "lease", "outcome", "started_at", "pages", "pass",
    "lag_p99_ms", "lag_max_ms",
)  # fmt: skip
HELD_HOSTS = """
SELECT h.host, h.owner, h.delay, h.delay_reason, coalesce(h.requests, 0), coalesce(h.errors, 0),
       (SELECT count(*) FROM pages AS p WHERE p.host = h.host)
FROM hosts AS h WHERE h.owner IS NOT NULL AND h.lease_until > ?1
"""
# ?1: how many characters of fetched_at name a span (_PREFIX); ?2: the first span's start.
SPAN_COUNTS = (
    "SELECT substr(fetched_at, 1, ?1) AS span, count(*) FROM pages"
    " WHERE fetched_at >= ?2 GROUP BY span"
)
LAST_FETCH = "SELECT max(fetched_at) FROM pages"
# A span's length in seconds: how much of '2026-11-25T00:00:42.250Z' names it.
_PREFIX = {1: 19, 10: 18, 60: 16}
_ENDED = ("finished", "limit")


class LiveReads:
    """Rules 20-23 over the primitives of PortableReads."""

    @abstractmethod
    def _all(self, sql: str, params: Sequence[object] = ()) -> list[Row]: ...

    @abstractmethod
    def columns(self, table: str) -> list[str]: ...

    @abstractmethod
    def counts(self) -> Counts: ...

    @abstractmethod
    def _now(self) -> float:
        """The database's clock, POSIX seconds."""

    def live_runs(self) -> list[LiveRun]:
        return _live(self._runs(), self._now())

    def held_hosts(self) -> list[HeldHost]:
        return self._held(self._now(), {run.id for run in self.live_runs()})

    def timeline(self, bucket: int, buckets: int) -> list[Span]:
        now = self._now()
        running = bool(_live(self._runs(), now))
        return self._spans(self._timeline_end(now, running), bucket, buckets)

    def live(self, bucket: int = 10, buckets: int = 60) -> Live:
        now = self._now()
        runs = self._runs()
        live = _live(runs, now)
        counts = self.counts()
        return Live(
            now=utc_at(now),
            state=_state(runs, live, counts),
            counts=counts,
            runs=tuple(live),
            hosts=tuple(self._held(now, {run.id for run in live})),
            bucket=bucket,
            timeline=tuple(self._spans(self._timeline_end(now, bool(live)), bucket, buckets)),
        )

    def _runs(self) -> list[Row]:
        have = set(self.columns("runs"))
        names = [f'"{c}"' if c in have else f'NULL AS "{c}"' for c in _RUN_COLUMNS]
        return self._all(f"SELECT {', '.join(names)} FROM runs ORDER BY id")

    def _held(self, now: float, live: set[int]) -> list[HeldHost]:
        if not live or "owner" not in self.columns("hosts"):
            return []
        rows = self._all(HELD_HOSTS, (now,))
        return sorted((HeldHost(*row) for row in rows if row[1] in live), key=lambda h: h.host)

    def _timeline_end(self, now: float, running: bool) -> float:
        """Now while a run is live; else the last page's fetch (now if there is none)."""
        if running:
            return now
        ((last,),) = self._all(LAST_FETCH)
        return now if last is None else _seconds(last)

    def _spans(self, end: float, bucket: int, buckets: int) -> list[Span]:
        if bucket not in _PREFIX:
            raise ValueError(f"a timeline span lasts {sorted(_PREFIX)} seconds, not {bucket}")
        prefix = _PREFIX[bucket]
        last = math.floor(end / bucket) * bucket
        starts = [utc_at(last - n * bucket) for n in range(buckets - 1, -1, -1)]
        counts: dict[str, int] = dict(self._all(SPAN_COUNTS, (prefix, starts[0])))
        return [Span(start, int(counts.get(start[:prefix], 0))) for start in starts]


def _live(runs: list[Row], now: float) -> list[LiveRun]:
    return [
        LiveRun(row[0], row[1], row[2], row[6], row[3], int(row[7] or 0), int(row[8] or 1),
                row[9], row[10])
        for row in runs
        if row[5] == "running" and not run_is_gone(row, now)
    ]  # fmt: skip


def _state(runs: list[Row], live: list[LiveRun], counts: Counts) -> CrawlState:
    if live:
        return "running"
    if not runs:
        return "empty"
    queued = counts.url_states.get("queued", 0)
    return "finished" if not queued or runs[-1][5] in _ENDED else "stopped"


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()
