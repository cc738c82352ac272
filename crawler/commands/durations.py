"""How long a crawl ran: its runs' spans added up, read from the runs and their pages."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..storage.read_contract import Reader, Run


def crawl_duration(db: Reader, runs: tuple[Run, ...]) -> float:
    """Seconds the runs crawled, added up (a run that never ended: up to its last page)."""
    total = 0.0
    for i, run in enumerate(runs):
        following = runs[i + 1].started_at if i + 1 < len(runs) else None
        end = run.ended_at
        if end is None:  # never ended: count up to its last page
            end = db.last_fetched_at(run.started_at, following)
        seconds = _seconds_between(run.started_at, end)
        total += max(seconds or 0.0, 0.0)
    return total


def _parse(stamp: str | None) -> datetime | None:
    if stamp is None:
        return None
    try:
        return datetime.fromisoformat(stamp)
    except ValueError:
        return None


def _seconds_between(start: str, end: str | None) -> float | None:
    a, b = _parse(start), _parse(end)
    if a is None or b is None or (a.tzinfo is None) != (b.tzinfo is None):
        return None
    return (b - a).total_seconds()
