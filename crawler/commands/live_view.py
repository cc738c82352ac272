"""What `crawler serve` shows live (`/live.json`, the live page's data): storage's `live()`
(read rules 17-20) as plain JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..storage import Reader
from ..storage.read_contract import Live

POLL_SECONDS = 2  # how often the live page asks again
BUCKET = 10  # seconds a span of the pages-over-time chart lasts
BUCKETS = 60  # spans shown: the last ten minutes
RATE_WINDOW = 60.0  # seconds: pages/s counts the pages of the last minute (or since the start)
NO_RESPONSE = "none"  # the status class of a request that got no answer, as the report names it


def live_view(reader: Reader) -> dict[str, Any]:
    """The live figures of the crawl `reader` reads, in one snapshot."""
    live = reader.live(BUCKET, BUCKETS)
    counts = live.counts
    spans = live.timeline
    rate = _rate(live) if live.state == "running" else None  # no rate unless running
    return {
        "db": reader.name,
        "now": live.now,
        "state": live.state,
        "poll_s": POLL_SECONDS,
        "pages": counts.pages,
        "pages_per_s": rate,
        "queued": counts.url_states.get("queued", 0),
        "errors": counts.errors,
        "bytes": counts.bytes,
        "hosts": counts.hosts,
        "by_status": {_status_class(k): n for k, n in counts.status_classes.items()},
        "urls": counts.url_states,
        "skipped": counts.skip_reasons,
        "bucket_s": live.bucket,
        "timeline": [{"start": s.start, "pages": s.pages} for s in spans],
        "crawling": [
            {
                "host": h.host,
                "run": h.run_id,
                "delay": h.delay,
                "delay_reason": h.delay_reason,
                "requests": h.requests,
                "errors": h.errors,
                "pages": h.pages,
            }
            for h in live.hosts
        ],
        "processes": [
            {
                "run": r.id,
                "machine": r.machine,
                "pid": r.pid,
                "started_at": r.started_at,
                "renewed_at": r.renewed_at,
                "pages": r.pages,
                "pass": r.pass_number,
                "lag_p99_ms": r.lag_p99_ms,
                "lag_max_ms": r.lag_max_ms,
            }
            for r in live.runs
        ],
    }


def _rate(live: Live) -> float:
    """Pages a second over the last RATE_WINDOW seconds, or since the oldest live run began
    if that is later (the span under way counts, so a crawl's first seconds show a rate)."""
    now = _seconds(live.now)
    started = min((_seconds(run.started_at) for run in live.runs), default=now - RATE_WINDOW)
    since = max(now - RATE_WINDOW, started)
    pages = sum(s.pages for s in live.timeline if _seconds(s.start) + live.bucket > since)
    return pages / max(now - since, 1.0)


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def _status_class(name: str) -> str:
    return NO_RESPONSE if name == "no response" else name
