"""`crawler stats DB`: a human summary of a crawl database, and its per-host table (`--hosts`).

DB is an SQLite file's path or a PostgreSQL URL; either way the SQL goes through a `Reader`
(readers.py) and is written for both dialects (subqueries named, no SQLite-only functions);
text is ordered in Python, not by the database's collation, so both give the same text.
Everything is read in one read transaction on a read-only connection, so the numbers agree
with each other even while a crawl is writing. Duration is the sum over runs of
`ended_at - started_at`; a run with no `ended_at` (still running, or killed) counts up to the
last page fetched in its span, if any.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..storage.reads import CRAWL_TABLES, Reader, open_reader, require_tables, shown
from .query import write_table

STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")
_CLASS_ORDER = ("1xx", *STATUS_CLASSES, "other", "no response")
_ALWAYS_SHOWN = (*STATUS_CLASSES, "no response")  # 1xx and other only when present
URL_STATES = ("done", "failed", "queued", "skipped")
SHOWN_RUNS = 10  # the newest runs listed; older ones are counted


@dataclass(frozen=True, slots=True)
class Run:
    """One row of `runs`."""

    id: int
    started_at: str
    ended_at: str | None
    outcome: str
    pages: int


@dataclass(frozen=True, slots=True)
class Pass:
    """What the page fetches of one pass found (`fetches.change`)."""

    number: int
    new: int
    changed: int
    unchanged: int
    gone: int
    no_answer: int


@dataclass(frozen=True, slots=True)
class Stats:
    """What `crawler stats` reports about one database."""

    path: str
    pages: int
    status_classes: dict[str, int]  # "2xx".."5xx", "1xx", "other", "no response"
    urls: int
    url_states: dict[str, int]
    skip_reasons: dict[str, int]  # most frequent first
    hosts: int
    bytes: int
    errors: int
    duration: float  # seconds
    runs: tuple[Run, ...]
    passes: tuple[Pass, ...] = ()  # shown once there was a recrawl

    @property
    def pages_per_second(self) -> float | None:
        return self.pages / self.duration if self.duration > 0 else None


def read_stats(db: str | Path) -> Stats:
    """Read the summary of the crawl database `db`, a path or a PostgreSQL URL (UsageError if
    it is not one)."""
    with open_reader(db) as reader:
        require_tables(reader, CRAWL_TABLES)
        return _read(reader, shown(db))


def _read(db: Reader, name: str) -> Stats:
    found = dict(
        db.fetch_all(
            "SELECT CASE WHEN status IS NULL THEN 'no response'"
            " WHEN status BETWEEN 100 AND 599 THEN (status / 100) || 'xx' ELSE 'other' END AS c,"
            " count(*) FROM pages GROUP BY c"
        )
    )
    classes = {c: found.get(c, 0) for c in _CLASS_ORDER if c in found or c in _ALWAYS_SHOWN}
    states = dict.fromkeys(URL_STATES, 0)
    states.update(db.fetch_all("SELECT state, count(*) FROM urls GROUP BY state"))
    by_reason = db.fetch_all(
        "SELECT coalesce(reason, 'unknown') AS r, count(*) FROM urls"
        " WHERE state = 'skipped' GROUP BY r"
    )
    reasons = dict(sorted(by_reason, key=lambda row: (-row[1], row[0])))  # most first
    ((hosts,),) = db.fetch_all(
        "SELECT count(*) FROM (SELECT host FROM pages UNION SELECT host FROM hosts) AS names"
    )
    ((pages, size, errors),) = db.fetch_all(
        "SELECT count(*), coalesce(sum(bytes), 0), count(error) FROM pages"
    )
    runs = tuple(
        Run(*row)
        for row in db.fetch_all(
            "SELECT id, started_at, ended_at, outcome, pages FROM runs ORDER BY id"
        )
    )
    return Stats(
        path=name,
        pages=pages,
        status_classes=classes,
        urls=sum(states.values()),
        url_states=states,
        skip_reasons=reasons,
        hosts=hosts,
        bytes=size,
        errors=errors,
        duration=_duration(db, runs),
        runs=runs,
        passes=_passes(db, least=2),
    )


def read_pass(db: str | Path, number: int) -> Pass:
    """What the fetches of pass `number` of the crawl database `db` found."""
    with open_reader(db) as reader:
        found = [p for p in _passes(reader, least=1) if p.number == number]
    return found[0] if found else Pass(number, 0, 0, 0, 0, 0)


def _passes(db: Reader, least: int) -> tuple[Pass, ...]:
    """Every pass's counts, if there are `least` passes or more."""
    if "fetches" not in db.tables():  # a database no crawler of this version opened yet
        return ()
    counts: dict[int, dict[str | None, int]] = {}
    for number, change, n in db.fetch_all(
        "SELECT pass, change, count(*) FROM fetches GROUP BY pass, change"
    ):
        counts.setdefault(number, {})[change] = n
    if len(counts) < least:
        return ()
    return tuple(
        Pass(n, c.get("new", 0), c.get("changed", 0), c.get("unchanged", 0), c.get("gone", 0),
             c.get(None, 0))
        for n, c in sorted(counts.items())
    )  # fmt: skip


def _duration(db: Reader, runs: tuple[Run, ...]) -> float:
    total = 0.0
    for i, run in enumerate(runs):
        following = runs[i + 1] if i + 1 < len(runs) else None
        end = run.ended_at
        if end is None:  # never ended: count up to its last page
            sql = "SELECT max(fetched_at) FROM pages WHERE fetched_at >= ?1"
            if following is None:
                ((end,),) = db.fetch_all(sql, (run.started_at,))
            else:
                sql += " AND fetched_at < ?2"
                ((end,),) = db.fetch_all(sql, (run.started_at, following.started_at))
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


def format_stats(stats: Stats) -> str:
    """The summary as plain text, one fact a line."""
    classes = ", ".join(f"{name} {n}" for name, n in stats.status_classes.items())
    states = [f"{name} {n}" for name, n in stats.url_states.items()]
    if stats.skip_reasons:
        reasons = ", ".join(f"{r} {n}" for r, n in stats.skip_reasons.items())
        states[-1] += f": {reasons}"
    rate = stats.pages_per_second
    lines = [
        stats.path,
        f"  pages      {stats.pages}  ({classes})",
        f"  urls       {stats.urls}  ({', '.join(states)})",
        f"  hosts      {stats.hosts}",
        f"  bytes      {_size(stats.bytes)}",
        f"  errors     {stats.errors}",
        f"  duration   {_span(stats.duration)}"
        + (f"   {rate:.1f} pages/s" if rate is not None else ""),
    ]
    shown = stats.runs[-SHOWN_RUNS:]
    runs = [_run(run) for run in shown] or ["none"]
    if len(stats.runs) > len(shown):
        runs.insert(0, f"({len(stats.runs) - len(shown)} older runs not shown)")
    lines += [("  runs       " if i == 0 else " " * 13) + text for i, text in enumerate(runs)]
    passes = [f"{p.number}: {format_pass(p)}" for p in stats.passes]
    lines += [("  passes     " if i == 0 else " " * 13) + text for i, text in enumerate(passes)]
    return "\n".join(lines) + "\n"


def format_pass(p: Pass) -> str:
    """`N new, N changed, N unchanged, N gone` (and how many got no answer, if any)."""
    line = f"{p.new} new, {p.changed} changed, {p.unchanged} unchanged, {p.gone} gone"
    return line + (f", {p.no_answer} without an answer" if p.no_answer else "")


def _run(run: Run) -> str:
    start = run.started_at.replace("T", " ")[:19]
    end = (run.ended_at or "").replace("T", " ")[:19]
    if end[:10] == start[:10]:
        end = end[11:]  # same day: the time is enough
    return f"{run.id}: {start} → {end or '?'} {run.outcome}, {run.pages} pages"


def _size(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000 or unit == "TB":
            break
    return f"{value:.1f} {unit}  ({n} bytes)"


def _span(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min {secs:02d} s"


_HOSTS_SQL = """
WITH names AS (SELECT host FROM hosts UNION SELECT host FROM pages),
     fetched AS (SELECT host, count(*) AS n FROM pages GROUP BY host)
SELECT names.host, h.robots_status, h.robots_fetched_at, h.delay, h.delay_reason,
       h.crawl_delay, coalesce(h.requests, 0), coalesce(h.errors, 0), h.min_gap_ms,
       coalesce(fetched.n, 0) AS pages
FROM names LEFT JOIN hosts AS h ON h.host = names.host
LEFT JOIN fetched ON fetched.host = names.host
"""
_HOSTS_COLUMNS = (
    "host", "robots", "robots fetched", "delay", "crawl-delay", "requests", "errors",
    "min gap ms", "pages",
)  # fmt: skip


def format_hosts(db: str | Path) -> str:
    """The per-host table of the crawl database `db` (a path or a PostgreSQL URL), as text."""
    with open_reader(db) as reader:
        require_tables(reader, CRAWL_TABLES)
        rows = reader.fetch_all(_HOSTS_SQL)
    rows.sort(key=lambda row: (-row[-1], row[0]))  # most pages first, then by name
    out = io.StringIO()
    write_table(_HOSTS_COLUMNS, [_host_row(row) for row in rows], out)
    out.write(f"({len(rows)} host{'' if len(rows) == 1 else 's'})\n")
    return out.getvalue()


def _host_row(row: tuple[Any, ...]) -> tuple[object, ...]:
    host, robots, fetched, delay, reason, crawl_delay, requests, errors, gap, pages = row
    shown_delay = "" if delay is None else f"{delay:g} s" + (f" ({reason})" if reason else "")
    return (
        host, robots, fetched, shown_delay,
        None if crawl_delay is None else f"{crawl_delay:g} s",
        requests, errors, None if gap is None else round(gap), pages,
    )  # fmt: skip
