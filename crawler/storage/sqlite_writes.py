"""What the SQLite backend writes: each function here runs in the writer thread
(`sqlite_thread.WriterThread`) as one transaction, on its plain sqlite3 connection.

Times: POSIX seconds from `time.time()` for leases, ISO-8601 text (`utc_at`) for the rest.
"""

from __future__ import annotations

import sqlite3
import time
from collections import defaultdict
from collections.abc import Collection, Sequence

from ..records import Discovered, HostRecord, Outcome, PageRecord, utc_at
from .common import (
    HOST_COLUMNS,
    HOST_SELECT,
    MACHINE,
    PAGE_COLUMNS,
    PAGES_THIS_PASS,
    PASS_UNFINISHED,
    REQUEUE_FETCHED,
    Version,
    alternate_rows,
    batch_hosts,
    claimed,
    deeper_pages,
    discovered,
    held_part,
    host_params,
    lag_ms,
    latest,
    least_depths,
    page_params,
    pass_start,
    refound,
    reservation_counts,
    robots_row,
    sitemap_entry_rows,
    sitemap_records,
    taken_over,
    versions,
)
from .contract import Batch, PassStart
from .sqlite_thread import chunks, insert_rows, marks, transaction

# A URL found again by a shorter path takes the smaller depth; one skipped as too deep is revived.
_UPSERT_URLS = """
INSERT INTO urls (url, host, depth, state, reason, discovered_from, redirects, sitemap, lastmod)
VALUES {rows}
ON CONFLICT (url) DO UPDATE SET
    depth = excluded.depth,
    discovered_from = excluded.discovered_from,
    redirects = excluded.redirects,
    sitemap = excluded.sitemap,
    state = iif(urls.state = 'skipped' AND urls.reason = 'depth', excluded.state, urls.state),
    reason = iif(urls.state = 'skipped' AND urls.reason = 'depth', excluded.reason, urls.reason)
WHERE excluded.depth < urls.depth
"""

# Rule 5's nofollow, rule 16's text: the newest non-empty.
_INSERT_LINKS = """
INSERT INTO links (src_url, dst_url, nofollow, text) VALUES {rows}
ON CONFLICT DO UPDATE SET nofollow = min(nofollow, excluded.nofollow),
    text = iif(excluded.text <> '', excluded.text, coalesce(links.text, ''))
"""
_INSERT_ALTERNATES = "INSERT OR IGNORE INTO alternates (src_url, hreflang, dst_url) VALUES {rows}"
_INSERT_SITEMAP_ENTRIES = "INSERT OR IGNORE INTO sitemap_entries (sitemap, url) VALUES {rows}"

# A URL has one page row, its latest version (a recrawl fetches it again).
_UPSERT_PAGE = f"""
INSERT INTO pages ({", ".join(PAGE_COLUMNS)}) VALUES ({marks(len(PAGE_COLUMNS))})
ON CONFLICT (url) DO UPDATE SET {", ".join(f"{c} = excluded.{c}" for c in PAGE_COLUMNS[1:])}
"""
# Rule 15. The save keeps the index itself, a statement for a batch's pages before and after
# their upsert: the triggers, one FTS5 statement a row, flush the index's pending terms at
# each one (FTS5 syncs on every savepoint) and cost half as much again (bench/README.md).
# While WRITER_INDEXES is in `settings` (within the save's transaction, never committed) the
# triggers stand aside; for other connections (a user's UPDATE, DELETE) they work as before.
WRITER_INDEXES = "writer_indexes"
_UNINDEX = (
    "INSERT INTO pages_fts (pages_fts, rowid, title, text)"
    " SELECT 'delete', id, title, text FROM pages WHERE url IN ({marks})"
)
_INDEX = (
    "INSERT INTO pages_fts (rowid, title, text)"
    " SELECT id, title, text FROM pages WHERE url IN ({marks})"
)
# The last statement of a batch is padded with rows of NULLs (insert_rows), left out here.
_INSERT_FETCHES = "INSERT INTO fetches SELECT * FROM (VALUES {rows}) WHERE column1 IS NOT NULL"
_NO_FETCH = (None,) * 9

_ADD_HOSTS = "INSERT OR IGNORE INTO hosts (host) VALUES {rows}"

# A held host's state, saved (the owner and lease columns are the claims' business).
_SAVE_HOST = (
    f"UPDATE hosts SET {', '.join(f'{c} = ?' for c in HOST_COLUMNS[1:])} WHERE host = ?"
    " AND owner = ?"
)

_HOST_PAGES = PAGES_THIS_PASS.format(host="h.host", run="?")
_PASS_UNFINISHED = PASS_UNFINISHED.format(pass_="?")

INDEX_LINKS_DST = "CREATE INDEX IF NOT EXISTS links_dst ON links (dst_url)"


def start_run(
    db: sqlite3.Connection,
    seeds: Sequence[Discovered],
    max_depth: int,
    lease: float,
    pid: int,
    new_pass: bool,
) -> tuple[int, bool, int, PassStart]:
    """A new run's id, whether earlier runs wrote this database, the run's pass and what it
    did with it (rule 14)."""
    now = time.time()
    with transaction(db):
        earlier = db.execute("SELECT 1 FROM runs LIMIT 1").fetchone() is not None
        # The store's file lock proves that no other process crawls this file: every run left
        # 'running' is gone. Its hosts free up at once, and their next claimer waits one delay.
        db.execute("UPDATE hosts SET lease_until = 0 WHERE owner IS NOT NULL")
        db.execute("UPDATE runs SET outcome = 'crashed', reserved = 0 WHERE outcome = 'running'")
        pass_number = int(db.execute("SELECT coalesce(max(pass), 1) FROM runs").fetchone()[0])
        unfinished = bool(db.execute(_PASS_UNFINISHED, (pass_number,)).fetchone()[0])
        started = pass_start(new_pass, earlier, live=False, unfinished=unfinished)
        if earlier and started == "started":
            pass_number += 1
            db.execute(REQUEUE_FETCHED)
        cursor = db.execute(
            "INSERT INTO runs (started_at, seeds, machine, pid, renewed_at, lease, pass)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (utc_at(now), " ".join(s.url for s in seeds), MACHINE, pid, utc_at(now), lease,
             pass_number),
        )  # fmt: skip
        db.execute(
            "INSERT OR REPLACE INTO settings (key, value) VALUES ('max_depth', ?)", (max_depth,)
        )
        _add_hosts(db, {s.host for s in seeds})
        relax(db, upsert_urls(db, seeds), max_depth)
        # Kept up link by link, this index (who links to a URL) was half of what the writer
        # did: every new link lands on a random page of it. end_run builds it in one pass.
        db.execute("DROP INDEX IF EXISTS links_dst")
    return cursor.lastrowid or 0, earlier, pass_number, started


def end_run(
    db: sqlite3.Connection, run_id: int, outcome: str, lag: tuple[float, float] | None
) -> None:
    p99, worst = lag_ms(lag)
    if outcome != "failed":  # after a failure (a full disk, say) only the rows below
        db.execute(INDEX_LINKS_DST)
    with transaction(db):
        db.execute("UPDATE hosts SET owner = NULL, lease_until = NULL WHERE owner = ?", (run_id,))
        db.execute(
            "UPDATE runs SET ended_at = ?, outcome = ?, lag_p99_ms = ?, lag_max_ms = ?,"
            " reserved = 0 WHERE id = ?",
            (utc_at(time.time()), outcome, p99, worst, run_id),
        )


def save(
    db: sqlite3.Connection, batch: Batch, run_id: int, max_depth: int, pass_number: int
) -> list[Outcome]:
    """Commit what of `batch` the run's hosts allow; returns the outcomes left out (rule 9)."""
    now = time.time()
    with transaction(db):
        names = batch_hosts(batch)
        batch, lost = held_part(batch, _held(db, names, run_id, now))
        outcomes = batch.outcomes
        pages = [o.page for o in outcomes if o.page is not None]
        stored = _stored_versions(db, pages) if pass_number > 1 else {}
        written, fetches = versions(pages, stored, pass_number)
        _upsert_pages(db, written)
        insert_rows(db, _INSERT_FETCHES, fetches, pad=_NO_FETCH)
        # In order, repeats and all: the upsert applies rules 5 and 16 row by row.
        insert_rows(db, _INSERT_LINKS, [link for o in outcomes for link in o.links])
        insert_rows(db, _INSERT_ALTERNATES, alternate_rows(outcomes))
        found = discovered(batch)
        _add_hosts(db, {d.host for d in found})
        dropped = upsert_urls(db, found)
        _keep_lastmods(db, found)
        final = latest(outcomes)
        dropped += deeper_pages(final, _set_states(db, final))
        relax(db, dropped, max_depth)
        if batch.robots:
            db.executemany(
                "INSERT OR REPLACE INTO robots (origin, host, status, body, error, fetched_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [robots_row(r) for r in batch.robots],
            )
        read = sitemap_records(outcomes)
        sitemaps = [(s.url, s.kind, s.entries, s.left_out) for s in read]
        db.executemany("INSERT OR REPLACE INTO sitemaps VALUES (?, ?, ?, ?)", sitemaps)
        insert_rows(db, _INSERT_SITEMAP_ENTRIES, sitemap_entry_rows(read))
        db.executemany(_SAVE_HOST, [(*host_params(h)[1:], h.host, run_id) for h in batch.hosts])
        if pages:
            db.execute(
                "UPDATE runs SET pages = pages + ?, reserved = max(reserved - ?, 0) WHERE id = ?",
                (len(pages), len(pages), run_id),
            )
    return lost


def _upsert_pages(db: sqlite3.Connection, written: Sequence[PageRecord]) -> None:
    """Each URL's versions stored in turn (the last one stays), and the index follows."""
    if not written:
        return
    urls = sorted({page.url for page in written})
    db.execute("INSERT INTO settings (key, value) VALUES (?, 1)", (WRITER_INDEXES,))
    for chunk in chunks(urls):
        db.execute(_UNINDEX.format(marks=marks(len(chunk))), chunk)
    db.executemany(_UPSERT_PAGE, [page_params(p) for p in written])
    for chunk in chunks(urls):
        db.execute(_INDEX.format(marks=marks(len(chunk))), chunk)
    db.execute("DELETE FROM settings WHERE key = ?", (WRITER_INDEXES,))


def upsert_urls(db: sqlite3.Connection, found: Sequence[Discovered]) -> list[tuple[str, int]]:
    """Rules 1 and 2 for URLs found (many rows a statement); returns the fetched URLs whose
    depth dropped, with their new depth.

    Which rows the upsert updated is told by counting, not by RETURNING, which would hand back
    a row for every URL inserted (7% more time for the upsert, holding the GIL): rows are never
    deleted from `urls` and ids grow, so the ids gained are the rows inserted, and the changes
    beyond them are updates, rare enough to look them up afterwards."""
    if not found:
        return []
    top = _top_url_id(db)
    before = db.total_changes
    insert_rows(db, _UPSERT_URLS, found)
    if db.total_changes - before == _top_url_id(db) - top:
        return []  # only new URLs: none was found again nearer
    dropped: list[tuple[str, int]] = []
    for chunk in chunks(sorted({d.url for d in found})):
        dropped += db.execute(
            "SELECT url, depth FROM urls WHERE id <= ? AND state IN ('done', 'failed')"
            f" AND url IN ({marks(len(chunk))})",
            (top, *chunk),
        ).fetchall()
    return dropped


def _keep_lastmods(db: sqlite3.Connection, found: Sequence[Discovered]) -> None:
    """A sitemap's <lastmod> for its entries, whichever way they were found first."""
    rows = [(d.lastmod, d.url, d.lastmod) for d in found if d.lastmod is not None]
    db.executemany("UPDATE urls SET lastmod = ? WHERE url = ? AND lastmod IS NOT ?", rows)


def relax(db: sqlite3.Connection, dropped: list[tuple[str, int]], max_depth: int) -> None:
    """Rule 3, as postgres_writes.relax does it: the pages of URLs whose depth dropped take
    the new depth; their followed links' targets are found again one deeper, which may drop
    more fetched URLs, and on until nothing drops (depths only go down: it ends)."""
    while dropped:
        lowered: list[tuple[str, int]] = []
        for url, depth in least_depths(dropped):
            lowered += db.execute(
                "UPDATE pages SET depth = ? WHERE url = ? AND depth > ? RETURNING url, depth",
                (depth, url, depth),
            ).fetchall()
        targets: list[tuple[str, str, int, str, int]] = []
        for url, depth in lowered:
            targets += db.execute(
                "SELECT u.url, u.host, u.redirects, l.src_url, ? FROM links l"
                " JOIN urls u ON u.url = l.dst_url"
                " WHERE l.src_url = ? AND l.nofollow = 0 AND u.depth > ?",
                (depth, url, depth + 1),
            ).fetchall()
        dropped = upsert_urls(db, refound(targets, max_depth))


def _set_states(db: sqlite3.Connection, outcomes: Sequence[Outcome]) -> dict[int, int]:
    """Each URL's state and reason (rule 4: `outcomes` holds the last of each); returns the
    depths of the URLs fetched (their ids to depths)."""
    by_state: dict[tuple[str, str | None], list[int]] = defaultdict(list)
    for o in outcomes:
        by_state[o.state, o.reason].append(o.url.id)
    depths: dict[int, int] = {}
    for (state, reason), ids in by_state.items():
        for chunk in chunks(ids):
            rows = db.execute(
                f"UPDATE urls SET state = ?, reason = ? WHERE id IN ({marks(len(chunk))})"
                " RETURNING id, depth",
                (state, reason, *chunk),
            ).fetchall()
            if state in ("done", "failed"):
                depths.update(rows)
    return depths


def claim_hosts(db: sqlite3.Connection, run_id: int, limit: int, lease: float) -> list[HostRecord]:
    """Rule 8: hosts with queued URLs and no live owner, soonest ready first."""
    now = time.time()
    with transaction(db):
        rows = db.execute(
            f"SELECT owner, claims + 1, ({_HOST_PAGES}), {HOST_SELECT} FROM hosts h"
            " WHERE (owner IS NULL OR lease_until IS NULL OR lease_until <= ?)"
            " AND EXISTS (SELECT 1 FROM urls WHERE host = h.host AND state = 'queued')"
            " ORDER BY next_start_at, host LIMIT ?",
            (run_id, now, limit),
        ).fetchall()
        for chunk in chunks([row[3] for row in rows]):  # (owner, claim, pages, host, ...)
            db.execute(
                "UPDATE hosts SET owner = ?, lease_until = ?, claims = claims + 1"
                f" WHERE host IN ({marks(len(chunk))})",
                (run_id, now + lease, *chunk),
            )
    return [taken_over(claimed(row[3:], row[1], row[2]), row[0], run_id, now) for row in rows]


def renew_hosts(
    db: sqlite3.Connection,
    run_id: int,
    hosts: Collection[str],
    lease: float,
    lag: tuple[float, float] | None = None,
) -> set[str]:
    now = time.time()
    held: set[str] = set()
    p99, worst = lag_ms(lag)
    with transaction(db):
        db.execute(
            "UPDATE runs SET renewed_at = ?, lag_p99_ms = coalesce(?, lag_p99_ms),"
            " lag_max_ms = coalesce(?, lag_max_ms) WHERE id = ?",
            (utc_at(now), p99, worst, run_id),
        )
        for chunk in chunks(sorted(hosts)):
            held.update(
                host
                for (host,) in db.execute(
                    "UPDATE hosts SET lease_until = ?"
                    f" WHERE owner = ? AND host IN ({marks(len(chunk))}) RETURNING host",
                    (now + lease, run_id, *chunk),
                )
            )
    return held


def release_hosts(db: sqlite3.Connection, run_id: int, records: Sequence[HostRecord]) -> None:
    with transaction(db):
        db.executemany(_SAVE_HOST, [(*host_params(h)[1:], h.host, run_id) for h in records])
        db.executemany(
            "UPDATE hosts SET owner = NULL, lease_until = NULL WHERE host = ? AND owner = ?",
            [(h.host, run_id) for h in records],
        )


def reserve_pages(db: sqlite3.Connection, run_id: int, wanted: int, max_pages: int) -> int:
    """Rule 11: grant what `max_pages` leaves after the pages fetched and those reserved by
    live runs."""
    now = time.time()
    with transaction(db):
        fetched = int(
            db.execute(
                "SELECT coalesce(sum(pages), 0) FROM runs"
                " WHERE pass = (SELECT pass FROM runs WHERE id = ?)",
                (run_id,),
            ).fetchone()[0]
        )
        running = db.execute(
            "SELECT id, machine, pid, renewed_at, lease, reserved FROM runs"
            " WHERE outcome = 'running' AND reserved > 0"
        ).fetchall()
        reserved: int = sum(
            row[5] for row in running if row[0] == run_id or reservation_counts(row, now)
        )
        granted = max(0, min(wanted, max_pages - fetched - reserved))
        db.execute("UPDATE runs SET reserved = reserved + ? WHERE id = ?", (granted, run_id))
    return granted


def _held(
    db: sqlite3.Connection, names: Collection[str], run_id: int, now: float
) -> dict[str, int]:
    """Rule 9: which of these hosts the run holds now, and under which claim."""
    held: dict[str, int] = {}
    for chunk in chunks(sorted(names)):
        held.update(
            db.execute(
                f"SELECT host, claims FROM hosts WHERE host IN ({marks(len(chunk))})"
                " AND owner = ? AND lease_until > ?",
                (*chunk, run_id, now),
            ).fetchall()
        )
    return held


def _add_hosts(db: sqlite3.Connection, names: Collection[str]) -> None:
    """Every host with URLs has a row (claims look there)."""
    insert_rows(db, _ADD_HOSTS, [(name,) for name in sorted(names)])


def _top_url_id(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT coalesce(max(id), 0) FROM urls").fetchone()[0])


def _stored_versions(db: sqlite3.Connection, pages: Sequence[PageRecord]) -> dict[str, Version]:
    """The status and hash of the version stored of each page's URL, if any."""
    stored: dict[str, Version] = {}
    for chunk in chunks(sorted({p.url for p in pages})):
        rows = db.execute(
            f"SELECT url, status, sha256 FROM pages WHERE url IN ({marks(len(chunk))})", chunk
        )
        stored.update((url, (status, sha256)) for url, status, sha256 in rows)
    return stored
