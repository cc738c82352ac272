"""A big synthetic crawl database for `bench/report.py`, made directly in SQL.

The schema is the crawler's own: an empty file is opened once by `SQLiteStore.open` (which
creates and migrates it), then every table the report reads is filled by `INSERT … SELECT`
over a recursive counter, so no row passes through Python. Indexes are the crawler's too;
`links_dst` is built after the links, as the crawler's run end does (storage/sqlite_writes.py:
`start_run` drops it, `end_run` builds it in one pass).

The crawl it pretends to be: PAGES pages over HOSTS hosts (`http://siteNN.test/p/NNNNNNN.html`,
named so that text order is insertion order), fetched 20 a second by one finished run.
Decided per page by fixed hashes of its number, so every build is the same:
- status: 1.5% 404, 0.3% 500, 0.2% no answer (a timeout): 2% broken targets; 2% single 301s
  to the next page, a 3-hop chain (301, 301, 302) starting at every thousandth page, a 2-page
  loop every 100,000 pages; 5% of the rest `application/pdf`, the others `text/html`;
- titles: 1% missing, 3% shared by groups (997 texts), 2% over 60 characters; descriptions:
  5% missing, 5% shared (499 texts), 1% over 160; h1 = title;
- canonicals: half the pages name themselves, 4% the next page (some of those are redirects or
  404s: broken), 0.5% a URL never fetched; 1% `noindex`;
- bodies not stored, but a SHA-256 each: 2% of pages share one of 503 bodies;
- LINKS links from each 2xx HTML page, to pages of its own host but the last one (to any
  host), with anchor text; the first is `nofollow` on a tenth of the pages. Pages numbered
  …999 are linked from nowhere and listed by a sitemap: the orphans;
- one sitemap a host listing 90% of the pages (all 2xx but a few broken ones), 2% of pages
  with an hreflang alternate, half of them without the return link;
- `urls`: every page's URL (done or failed) plus one skipped URL per ten pages; `hosts`,
  `fetches` (one pass), `sitemaps`, `runs` as a finished crawl leaves them.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path

from crawler.storage.sqlite import SQLiteStore
from crawler.storage.sqlite_writes import INDEX_LINKS_DST

HOSTS = 50
START = "2026-12-01 00:00:00"  # the fake crawl's first fetch (julianday() reads it)
PAGE_SECONDS = 0.05  # between two fetches: 20 pages/s

# Per page i (1..N): its host h, URL and three hashes r, r2, r3 in 0..9999.
_NUMBERED = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :pages),
p AS (
    SELECT i, (i - 1) * :hosts / :pages AS h,
           (i * 2654435761) % 10000 AS r, (i * 40503 + 7) % 10000 AS r2,
           (i * 69069 + 1) % 10000 AS r3
    FROM n
)"""
URL = "printf('http://site%02d.test/p/%07d.html', {h}, {i})"
_NEXT = URL.format(h="((i) * :hosts / :pages)", i="i + 1")  # page i + 1's URL
_HOST = "printf('site%02d.test', h)"
_STATUS = """CASE
    WHEN i % 1000 IN (1, 2) OR i % 100000 IN (500, 501) THEN 301
    WHEN i % 1000 = 3 THEN 302
    WHEN i % 1000 = 999 THEN 200
    WHEN r < 150 THEN 404 WHEN r < 180 THEN 500 WHEN r < 200 THEN NULL
    WHEN r < 400 THEN 301 ELSE 200 END"""
_LOCATION = f"""CASE
    WHEN i % 100000 = 501 THEN {URL.format(h="h", i="i - 1")}
    WHEN i % 1000 IN (1, 2, 3) OR i % 100000 = 500 OR (r BETWEEN 200 AND 399) THEN {_NEXT}
    END"""
_TITLE = """CASE WHEN r2 < 100 THEN NULL
    WHEN r2 < 400 THEN 'Shared title ' || ((r * r3) % 997)
    WHEN r2 < 600 THEN printf('A very long title for page %d that goes on well past sixty', i)
    ELSE printf('Page %d of site %02d', i, h) END"""
_DESCRIPTION = """CASE WHEN r3 < 500 THEN NULL
    WHEN r3 < 1000 THEN 'Shared description ' || (i % 499)
    WHEN r3 < 1100 THEN 'A description far too long: ' || printf('%.*c', 150, 'x') || i
    ELSE printf('What page %d of site %02d is about, in one sentence.', i, h) END"""
_CANONICAL = f"""CASE WHEN r3 BETWEEN 9000 AND 9399 THEN {_NEXT}
    WHEN r3 BETWEEN 9400 AND 9449 THEN printf('http://site%02d.test/gone/%d', h, i)
    WHEN r3 < 5000 THEN {URL.format(h="h", i="i")} END"""
_SHA256 = "CASE WHEN r2 BETWEEN 600 AND 799 THEN 'd' || printf('%063d', i % 503)" \
    " ELSE printf('%064x', i) END"  # fmt: skip
_FETCHED_AT = f"strftime('%Y-%m-%dT%H:%M:%fZ', julianday('{START}') + i * {PAGE_SECONDS} / 86400.0)"
_ELAPSED = "CASE WHEN r % 97 = 0 THEN 1000 + r ELSE 15 + (r2 * r3) % 400 END"

PAGES_SQL = f"""{_NUMBERED},
s AS (SELECT *, {_STATUS} AS status FROM p)
INSERT INTO pages (id, url, host, status, content_type, title, bytes, truncated, depth,
                   fetched_at, elapsed_ms, error, location, sha256, canonical, description,
                   h1, robots)
SELECT i, {URL.format(h="h", i="i")}, {_HOST}, status,
       CASE WHEN r >= 9500 AND status = 200 THEN 'application/pdf' ELSE 'text/html' END,
       {_TITLE}, 4000 + r * 3, 0, length((r2 * r3) % 100000), {_FETCHED_AT},
       CASE WHEN status IS NULL THEN NULL ELSE {_ELAPSED} END,
       CASE WHEN status IS NULL THEN 'timeout' END,
       CASE WHEN status BETWEEN 300 AND 399 THEN {_LOCATION} END,
       CASE WHEN status IS NULL THEN NULL ELSE {_SHA256} END,
       {_CANONICAL}, {_DESCRIPTION}, {_TITLE},
       CASE WHEN r2 >= 9900 THEN 'noindex, follow' END
FROM s
"""

# Link k of 2xx HTML page i: a page of its own host (the last link: of any host), never an
# orphan (…999).
_TARGET = """CASE WHEN k = :links - 1 THEN (i * 31 + 1000003) % :pages + 1
    ELSE first + (i * 7919 + k * 104729 + k * k * 31) % size END"""
LINKS_SQL = f"""
WITH RECURSIVE ks(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM ks WHERE k < :links - 1),
src AS (
    SELECT id AS i, url, (id - 1) * :hosts / :pages AS h FROM pages
    WHERE status = 200 AND content_type = 'text/html'
),
hosts_span AS (
    SELECT h, min(i) AS first, max(i) - min(i) + 1 AS size FROM src GROUP BY h
),
raw AS (
    SELECT s.i, s.url, k, {_TARGET} AS j FROM src AS s JOIN hosts_span USING (h), ks
),
t AS (SELECT i, url, k, CASE WHEN j % 1000 = 999 THEN j - 1 ELSE j END AS j FROM raw)
INSERT OR IGNORE INTO links (src_url, dst_url, nofollow, text)
SELECT t.url, d.url, CASE WHEN k = 0 AND t.i % 10 = 0 THEN 1 ELSE 0 END,
       coalesce(d.title, 'read more')
FROM t JOIN pages AS d ON d.id = t.j
ORDER BY t.i, k
"""

URLS_SQL = """
INSERT INTO urls (url, host, depth, state, reason)
SELECT url, host, depth, CASE WHEN status IS NULL THEN 'failed' ELSE 'done' END, NULL
FROM pages ORDER BY id
"""
SKIPPED_SQL = f"""{_NUMBERED}
INSERT INTO urls (url, host, depth, state, reason)
SELECT printf('http://site%02d.test/x/%07d', h, i), {_HOST}, 3, 'skipped',
       CASE r % 3 WHEN 0 THEN 'robots' WHEN 1 THEN 'depth' ELSE 'exclude' END
FROM p WHERE i % 10 = 0
"""
HOSTS_SQL = """
INSERT INTO hosts (host, robots_status, robots_fetched_at, delay, delay_reason, requests,
                   errors, min_gap_ms)
SELECT host, 'allowed', min(fetched_at), 1.0, 'config', count(*) + 1,
       sum(status IS NULL), 1000.0
FROM pages GROUP BY host
"""
FETCHES_SQL = """
INSERT INTO fetches (url, pass, fetched_at, status, sha256, change, host)
SELECT url, 1, fetched_at, status, sha256, 'new', host FROM pages ORDER BY id
"""
ALTERNATES_SQL = """
INSERT OR IGNORE INTO alternates (src_url, hreflang, dst_url)
SELECT a.url, 'de', b.url FROM pages AS a JOIN pages AS b ON b.id = a.id + 1
WHERE (a.id * 69069 + 1) % 10000 < 200 AND a.status = 200
UNION ALL
SELECT b.url, 'en', a.url FROM pages AS a JOIN pages AS b ON b.id = a.id + 1
WHERE (a.id * 69069 + 1) % 10000 < 100 AND a.status = 200
"""
SITEMAPS_SQL = """
INSERT INTO sitemaps (url, kind, entries, left_out)
SELECT 'http://' || host || '/sitemap.xml', 'urlset', 0, NULL FROM hosts
"""
ENTRIES_SQL = """
INSERT INTO sitemap_entries (sitemap, url)
SELECT 'http://' || host || '/sitemap.xml', url FROM pages
WHERE id % 10 <> 0 AND (status = 200 OR (id * 2654435761) % 10000 < 20)
"""
ENTRY_COUNTS_SQL = """
UPDATE sitemaps SET entries = (SELECT count(*) FROM sitemap_entries AS e
                               WHERE e.sitemap = sitemaps.url)
"""
RUNS_SQL = """
INSERT INTO runs (started_at, ended_at, outcome, pages, seeds, machine, pid, lag_p99_ms,
                  lag_max_ms, pass)
SELECT min(fetched_at), max(fetched_at), 'finished', count(*), 'http://site00.test/', 'bench',
       1, 12.0, 30.0, 1
FROM pages
"""

STEPS = (
    ("pages", PAGES_SQL),
    ("urls", URLS_SQL),
    ("skipped urls", SKIPPED_SQL),
    ("links", LINKS_SQL),
    ("hosts", HOSTS_SQL),
    ("fetches", FETCHES_SQL),
    ("alternates", ALTERNATES_SQL),
    ("sitemaps", SITEMAPS_SQL),
    ("sitemap entries", ENTRIES_SQL),
    ("sitemap entry counts", ENTRY_COUNTS_SQL),
    ("runs", RUNS_SQL),
    ("links_dst index", INDEX_LINKS_DST),
)


async def _create(path: Path) -> None:
    async with SQLiteStore.open(path):
        pass


def build(path: Path, pages: int, links: int) -> None:
    """Write the synthetic crawl of `pages` pages and `links` links a page to `path` (a new
    file: built as `<path>.partial` and renamed once complete, so a cut build is not reused)."""
    partial = path.with_name(path.name + ".partial")
    for leftover in (partial, *(partial.with_name(partial.name + s) for s in ("-wal", "-shm"))):
        leftover.unlink(missing_ok=True)
    asyncio.run(_create(partial))
    partial.with_name(partial.name + ".lock").unlink(missing_ok=True)
    params = {"pages": pages, "hosts": HOSTS, "links": links}
    with contextlib.closing(sqlite3.connect(partial, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode = OFF")  # a cut build is thrown away anyway
        db.execute("PRAGMA synchronous = OFF")
        db.execute("PRAGMA cache_size = -1000000")  # 1 GB: the links' keys arrive in order
        db.execute("DROP INDEX IF EXISTS links_dst")  # as start_run does
        for name, sql in STEPS:
            started = time.monotonic()
            db.execute("BEGIN")
            db.execute(sql, params)
            db.execute("COMMIT")
            print(f"  {name}: {time.monotonic() - started:.1f} s", flush=True)
        db.execute("PRAGMA journal_mode = WAL")  # as the crawler leaves it
    partial.rename(path)
