"""What both backends share: the `hosts` row, which runs are gone, and the crawl rules they
apply in Python (storage/contract.py), written once so that SQLite and PostgreSQL agree.

Pure functions, no I/O (except `pid_alive`, one system call).
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from ..records import (
    AlternateRecord,
    Change,
    Discovered,
    HostRecord,
    LinkRecord,
    Outcome,
    PageRecord,
    RobotsRecord,
    SitemapRecord,
    utc_at,
)
from .contract import Batch, PassStart

CRAWL_TABLES = ("pages", "urls", "hosts", "runs")  # a database without them is not a crawl's

# The `hosts` columns a HostRecord carries, in its fields' order: HostRecord(*row).
HOST_COLUMNS = (
    "host",
    "delay",
    "delay_reason",
    "crawl_delay",
    "robots_status",
    "robots_fetched_at",
    "requests",
    "errors",
    "min_gap_ms",
    "retry_after_until",
    "backoff",
    "next_start_at",
)
# A host row that no run saved state for yet (a seed's, or a link's) has NULLs here.
_UNSAVED = {"delay": "0", "delay_reason": "''", "backoff": "0"}
HOST_SELECT = ", ".join(
    f"coalesce({c}, {_UNSAVED[c]})" if c in _UNSAVED else c for c in HOST_COLUMNS
)

MACHINE = socket.gethostname()

# Hosts with queued URLs: one probe of the urls frontier index per host, not a scan of urls.
HOSTS_WITH_WORK = (
    "SELECT count(*) FROM hosts h"
    " WHERE EXISTS (SELECT 1 FROM urls u WHERE u.host = h.host AND u.state = 'queued')"
)
ROBOTS_SELECT = "SELECT origin, host, status, body, error, fetched_at FROM robots"


def claimed(row: Sequence[Any], claim: int, pages: int) -> HostRecord:
    """A host's record from its HOST_SELECT row, under the claim just made of it, with the
    pages fetched from it so far (for max_pages_per_host, whichever run fetched them)."""
    return dataclasses.replace(HostRecord(*row), claim=claim, pages=pages)


def host_params(h: HostRecord) -> tuple[object, ...]:
    """A HostRecord as its row's values, in HOST_COLUMNS order."""
    return (
        h.host, h.delay, h.delay_reason, h.crawl_delay, h.robots_status, h.robots_fetched_at,
        h.requests, h.errors, h.min_gap_ms, h.retry_after_until, h.backoff, h.next_start_at,
    )  # fmt: skip


def held_part(batch: Batch, held: dict[str, int]) -> tuple[Batch, list[Outcome]]:
    """Rule 9: the part of `batch` the run may commit, and the outcomes it may not. `held`:
    the run's hosts, each with the claim it holds it under; an outcome commits only under the
    claim its URL was taken under (a host lost and claimed again leaves out what was under way
    before). Robots and host records of hosts not held are left out too."""
    kept = [o for o in batch.outcomes if held.get(o.url.host) == o.url.claim]
    lost = [o for o in batch.outcomes if held.get(o.url.host) != o.url.claim]
    robots = [r for r in batch.robots if r.host in held]
    hosts = [h for h in batch.hosts if h.host in held]
    return Batch(kept, robots, hosts), lost


def discovered(batch: Batch) -> list[Discovered]:
    """The URLs a batch found: its outcomes', and the sitemaps its robots.txt files name."""
    found = [d for o in batch.outcomes for d in o.discovered]
    found.extend(d for r in batch.robots for d in r.sitemaps)
    return found


def sitemap_records(outcomes: Iterable[Outcome]) -> list[SitemapRecord]:
    """The sitemap documents read, one per URL (the last), sorted by URL."""
    last = {o.sitemap.url: o.sitemap for o in outcomes if o.sitemap is not None}
    return [last[url] for url in sorted(last)]


PAGE_COLUMNS = (
    "url", "host", "status", "content_type", "title", "body", "bytes", "truncated", "depth",
    "fetched_at", "elapsed_ms", "error", "location", "etag", "last_modified", "sha256", "text",
    "request_head", "response_head", "canonical", "description", "h1", "robots", "fields",
)  # fmt: skip


def page_params(p: PageRecord) -> tuple[object, ...]:
    """A page's values in PAGE_COLUMNS order."""
    return (
        p.url, p.host, p.status, p.content_type, p.title, p.body, p.bytes, int(p.truncated),
        p.depth, p.fetched_at, p.elapsed_ms, p.error, p.location, p.etag, p.last_modified,
        p.sha256, p.text, p.request_head, p.response_head, p.canonical, p.description, p.h1,
        p.robots, p.fields,
    )  # fmt: skip


def link_rows(outcomes: Iterable[Outcome]) -> list[LinkRecord]:
    """Rule 5 and 16 inside one batch: one row per (src_url, dst_url), sorted, nofollow only if
    every sighting was, the last non-empty text."""
    rows: dict[tuple[str, str], tuple[bool, str]] = {}
    for o in outcomes:
        for src, dst, nofollow, text in o.links:
            seen = rows.get((src, dst))
            if seen is not None:
                nofollow, text = nofollow and seen[0], text or seen[1]
            rows[src, dst] = (nofollow, text)
    return [(src, dst, nofollow, text) for (src, dst), (nofollow, text) in sorted(rows.items())]


def alternate_rows(outcomes: Iterable[Outcome]) -> list[AlternateRecord]:
    """Rule 16: the batch's distinct alternates, sorted (the order writers lock rows in)."""
    return sorted({row for o in outcomes for row in o.alternates})


def sitemap_entry_rows(sitemaps: Iterable[SitemapRecord]) -> list[tuple[str, str]]:
    """Rule 16: (sitemap, url) for each page the sitemaps read list in scope, sorted."""
    return sorted({(s.url, url) for s in sitemaps for url in s.listed})


# Rule 14: a new pass queues every URL fetched before (sitemaps too: they are read again).
REQUEUE_FETCHED = (
    "UPDATE urls SET state = 'queued', reason = NULL WHERE state IN ('done', 'failed')"
)
# Rule 14: whether the current pass (`{pass_}`, a parameter) is unfinished: URLs are still
# queued and none of its runs ended 'finished' (the frontier ran dry) or 'limit' (max_pages,
# max_duration); every run of it was interrupted, failed or crashed.
PASS_UNFINISHED = (
    "SELECT EXISTS (SELECT 1 FROM urls WHERE state = 'queued')"
    " AND NOT EXISTS (SELECT 1 FROM runs WHERE pass = {pass_}"
    " AND outcome IN ('finished', 'limit'))"
)
# The pages of the host `{host}` (a column) fetched in the pass of the run `{run}` (a
# parameter): max_pages_per_host is a pass's budget.
PAGES_THIS_PASS = (
    "SELECT count(*) FROM fetches f WHERE f.host = {host}"
    " AND f.pass = (SELECT pass FROM runs WHERE id = {run})"
)

Version = tuple[int | None, str | None]  # a stored page's status and sha256


def pass_start(new_pass: bool, earlier: bool, live: bool, unfinished: bool) -> PassStart:
    """Rule 14: what a starting run does with the passes. A new pass only when asked for, after
    earlier runs, with no live run on the current pass and the current pass complete."""
    if not earlier:
        return "started"  # the first run of the crawl: pass 1
    if live:
        return "joined"
    if unfinished or not new_pass:
        return "continued"
    return "started"


def versions(
    pages: Sequence[PageRecord], stored: dict[str, Version], pass_number: int
) -> tuple[list[PageRecord], list[tuple[object, ...]]]:
    """Rule 14: the pages a save writes (each URL's latest version) and its `fetches` rows.
    `stored`: the version each URL had before the save (none in pass 1), kept up to date."""
    written: list[PageRecord] = []
    fetches: list[tuple[object, ...]] = []
    for page in pages:
        before = stored.get(page.url)
        fetches.append((
            page.url, pass_number, page.fetched_at, page.status, page.etag, page.last_modified,
            page.sha256, change_of(before, page), page.host,
        ))  # fmt: skip
        if before is None or page.status not in (None, 304):
            written.append(page)
            stored[page.url] = (page.status, page.sha256)
    return written, fetches


def change_of(before: Version | None, page: PageRecord) -> Change | None:
    """What a fetch found against the version stored before: None when it got no answer."""
    if before is None:
        return "new"
    status, sha256 = before
    if page.status is None:
        return None
    if page.status == 304:
        return "unchanged"
    if page.status in (404, 410) and status is not None and 200 <= status < 300:
        return "gone"
    same = page.status == status and page.sha256 is not None and page.sha256 == sha256
    return "unchanged" if same else "changed"


def robots_row(r: RobotsRecord) -> tuple[object, ...]:
    return (r.origin, r.host, r.status, r.body, r.error, r.fetched_at)


def batch_hosts(batch: Batch) -> set[str]:
    """Every host a batch writes for: its outcomes', robots' and host records'."""
    names = {o.url.host for o in batch.outcomes}
    names.update(r.host for r in batch.robots)
    names.update(h.host for h in batch.hosts)
    return names


def latest(outcomes: Iterable[Outcome]) -> list[Outcome]:
    """Rule 4: the last outcome of each URL, in id order (the order rows are locked in)."""
    last = {o.url.id: o for o in outcomes}
    return [last[key] for key in sorted(last)]


def deeper_pages(outcomes: Iterable[Outcome], depths: dict[int, int]) -> list[tuple[str, int]]:
    """Rule 3, where a URL's depth dropped while its page was being fetched: the pages just
    saved deeper than their URL (`depths`: URL id to its depth now), with the URL's depth."""
    return [
        (o.page.url, depths[o.url.id])
        for o in outcomes
        if o.page is not None and o.url.id in depths and depths[o.url.id] < o.page.depth
    ]


def least_depths(pairs: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """(url, depth) pairs, one per URL, its least depth, sorted by URL."""
    least: dict[str, int] = {}
    for url, depth in pairs:
        least[url] = min(depth, least.get(url, depth))
    return sorted(least.items())


def refound(targets: Iterable[tuple[str, str, int, str, int]], max_depth: int) -> list[Discovered]:
    """Rule 3: the targets (url, host, redirects, page url, page depth) of followed links of a
    page whose depth dropped, found again at its depth + 1, to go through the same upsert as
    any URL found (so rules 1 and 2 apply)."""
    found = []
    for url, host, redirects, source, depth in targets:
        near = depth + 1 <= max_depth
        state, reason = ("queued", None) if near else ("skipped", "depth")
        found.append(Discovered(url, host, depth + 1, state, reason, source, redirects))  # type: ignore[arg-type]
    return found


def shallowest(found: Iterable[Discovered]) -> list[Discovered]:
    """Rule 1 inside one batch: per URL the first row of the least depth, sorted by URL.

    One statement may not update a row twice in PostgreSQL, and writers that lock rows in one
    order (the URL's) cannot deadlock on them."""
    best: dict[str, Discovered] = {}
    for row in found:
        seen = best.get(row.url)
        if seen is None or row.depth < seen.depth:
            best[row.url] = row
    return [best[url] for url in sorted(best)]


def taken_over(record: HostRecord, owner: int | None, run_id: int, now: float) -> HostRecord:
    """Rule 10: a host claimed from another run that still held it (it died or stalled, maybe
    just after a request) waits one delay from now; its saved next start may be later."""
    if owner is None or owner == run_id:
        return record
    delay = max(record.delay, record.crawl_delay or 0.0, record.backoff)
    wait_until = utc_at(now + delay)
    if record.next_start_at is not None and record.next_start_at >= wait_until:
        return record  # the same format throughout: text order is time order
    return dataclasses.replace(record, next_start_at=wait_until)


def run_is_gone(run: Sequence[Any], now: float) -> bool:
    """Rule 12: whether the process of a run left 'running' is gone: on this machine, its pid
    is dead; on any, it has not renewed its lease for `lease` seconds. `run`: its row's
    (id, machine, pid, renewed_at, lease, ...); `now`: POSIX seconds."""
    machine, pid, renewed_at, lease = run[1:5]
    if machine == MACHINE and pid is not None and not pid_alive(pid):
        return True
    if renewed_at is None or lease is None:
        return True  # written by a crawler from before leases: it is not running now
    renewed = datetime.fromisoformat(renewed_at).timestamp()
    return bool(renewed + lease < now)


def reservation_counts(run: Sequence[Any], now: float) -> bool:
    """Rule 11: whether a running run's reserved pages still count against the crawl's budget.
    On this machine, while its process lives: a process stalled past its lease (a busy
    machine, SIGSTOP) may still spend them when it wakes, on hosts nobody took meanwhile. On
    another machine, until it is gone by rule 12 (nothing better can be known from here)."""
    machine, pid = run[1:3]
    if machine == MACHINE and pid is not None:
        return pid_alive(pid)
    return not run_is_gone(run, now)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def lag_ms(lag: tuple[float, float] | None) -> tuple[float | None, float | None]:
    """A run's event-loop lag (p99, max, seconds) as `runs` keeps it: milliseconds, 0.1 ms."""
    if lag is None:
        return None, None
    p99, worst = lag
    return round(p99 * 1000, 1), round(worst * 1000, 1)
