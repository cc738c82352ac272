"""`crawler stats DB`: a human summary of a crawl database, and its per-host table (`--hosts`).

DB is an SQLite file's path or a PostgreSQL URL; either way the figures come from the read
contract (storage/read_contract.py: `counts`, `runs`, `passes`, `hosts`), all in one read-only
snapshot, so the numbers agree with each other even while a crawl is writing. Duration is the
sum over runs of `ended_at - started_at`; a run with no `ended_at` (still running, or killed)
counts up to the last page fetched in its span, if any.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

from ..storage import open_reader
from ..storage.read_contract import STATUS_CLASSES, URL_STATES, Host, Pass, Run
from .durations import crawl_duration
from .query import write_table
from .report import findings

__all__ = [
    "STATUS_CLASSES", "URL_STATES", "Pass", "Run", "Stats", "format_hosts", "format_pass",
    "format_stats", "read_pass", "read_stats",
]  # fmt: skip

SHOWN_RUNS = 10  # the newest runs listed; older ones are counted


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
    findings: dict[str, int] = field(default_factory=dict)  # what `crawler report` lists

    @property
    def pages_per_second(self) -> float | None:
        return self.pages / self.duration if self.duration > 0 else None


def read_stats(db: str | Path) -> Stats:
    """Read the summary of the crawl database `db`, a path or a PostgreSQL URL (UsageError if
    it is not one)."""
    with open_reader(db) as reader:
        counts = reader.counts()
        runs = tuple(reader.runs())
        passes = reader.passes()
        return Stats(
            path=reader.name,
            pages=counts.pages,
            status_classes=counts.status_classes,
            urls=sum(counts.url_states.values()),
            url_states=counts.url_states,
            skip_reasons=counts.skip_reasons,
            hosts=counts.hosts,
            bytes=counts.bytes,
            errors=counts.errors,
            duration=crawl_duration(reader, runs),
            runs=runs,
            passes=passes if len(passes) >= 2 else (),  # shown once there was a recrawl
            findings=findings(reader),
        )


def read_pass(db: str | Path, number: int) -> Pass:
    """What the fetches of pass `number` of the crawl database `db` found."""
    with open_reader(db) as reader:
        found = [p for p in reader.passes() if p.number == number]
    return found[0] if found else Pass(number, 0, 0, 0, 0, 0)


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
    if stats.findings:
        found = ", ".join(f"{what} {n}" for what, n in stats.findings.items())
        lines.append(f"  look at    {found} (crawler report lists them)")
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


_HOSTS_COLUMNS = (
    "host", "robots", "robots fetched", "delay", "crawl-delay", "requests", "errors",
    "min gap ms", "pages",
)  # fmt: skip


def format_hosts(db: str | Path) -> str:
    """The per-host table of the crawl database `db` (a path or a PostgreSQL URL), as text."""
    with open_reader(db) as reader:
        hosts = reader.hosts()  # most pages first, then by name
    out = io.StringIO()
    write_table(_HOSTS_COLUMNS, [_host_row(host) for host in hosts], out)
    out.write(f"({len(hosts)} host{'' if len(hosts) == 1 else 's'})\n")
    return out.getvalue()


def _host_row(h: Host) -> tuple[object, ...]:
    reason = f" ({h.delay_reason})" if h.delay_reason else ""
    delay = "" if h.delay is None else f"{h.delay:g} s{reason}"
    return (
        h.host, h.robots_status, h.robots_fetched_at, delay,
        None if h.crawl_delay is None else f"{h.crawl_delay:g} s",
        h.requests, h.errors, None if h.min_gap_ms is None else round(h.min_gap_ms), h.pages,
    )  # fmt: skip
