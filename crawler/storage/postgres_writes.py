"""What the PostgreSQL backend writes in a save: each function takes an asyncpg connection in a
transaction, and sends each table's rows as arrays in one statement (`unnest`), sorted by the
rows' conflict key, so that writers lock rows in one order and a batch costs one round trip a
table, not one a row.

Times: `NOW` is the database's clock in POSIX seconds (leases), `NOW_ISO` the same as the
ISO-8601 text of every stored time: processes on several machines agree on one clock.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from ..records import Discovered, HostRecord, Outcome, PageRecord
from .common import (
    HOST_COLUMNS,
    PAGE_COLUMNS,
    Version,
    alternate_rows,
    batch_hosts,
    deeper_pages,
    discovered,
    held_part,
    host_params,
    latest,
    least_depths,
    link_rows,
    page_params,
    refound,
    robots_row,
    shallowest,
    sitemap_entry_rows,
    sitemap_records,
    versions,
)
from .contract import Batch

NOW = "extract(epoch FROM clock_timestamp())::float8"
NOW_ISO = """to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""

_PAGE_TYPES = ["text", "text", "int", "text", "text", "bytea", "int", "int", "int", "text", "int",
               "text", "text", "text", "text", "text", "text", "text", "text", "text", "text",
               "text", "text", "text"]  # fmt: skip
# A URL has one page row, its latest version (a recrawl fetches it again).
_UPSERT_PAGES = f"""
INSERT INTO pages ({", ".join(PAGE_COLUMNS)})
SELECT * FROM unnest({", ".join(f"${n}::{t}[]" for n, t in enumerate(_PAGE_TYPES, 1))})
ON CONFLICT ((md5(url)::uuid)) DO UPDATE
SET {", ".join(f"{c} = excluded.{c}" for c in PAGE_COLUMNS[1:])}
"""
_FETCH_TYPES = ["text", "int", "text", "int", "text", "text", "text", "text", "text"]
_INSERT_FETCHES = f"""
INSERT INTO fetches
SELECT * FROM unnest({", ".join(f"${n}::{t}[]" for n, t in enumerate(_FETCH_TYPES, 1))})
"""

# Rule 5's nofollow, rule 16's text (the newest non-empty); a row that would not change is
# left alone (not locked for the rest of the transaction).
_UPSERT_LINKS = """
INSERT INTO links (src_url, dst_url, nofollow, text)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[])
ON CONFLICT ((md5(src_url)::uuid), (md5(dst_url)::uuid)) DO UPDATE
SET nofollow = least(links.nofollow, excluded.nofollow),
    text = CASE WHEN excluded.text <> '' THEN excluded.text ELSE coalesce(links.text, '') END
WHERE excluded.nofollow < links.nofollow OR links.text IS NULL
   OR (excluded.text <> '' AND excluded.text <> links.text)
"""
_INSERT_ALTERNATES = """
INSERT INTO alternates (src_url, hreflang, dst_url)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
ON CONFLICT DO NOTHING
"""
_INSERT_SITEMAP_ENTRIES = """
INSERT INTO sitemap_entries (sitemap, url)
SELECT * FROM unnest($1::text[], $2::text[])
ON CONFLICT DO NOTHING
"""

# New URLs; those known already are left to _LOWER_URLS. Unlike one upsert, this locks no row
# that it does not change: a URL of another run's host, found again no nearer, stays free.
_INSERT_URLS = """
INSERT INTO urls (url, host, depth, state, reason, discovered_from, redirects, sitemap, lastmod)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[],
                     $7::int[], $8::int[], $9::text[])
ON CONFLICT ((md5(url)::uuid)) DO NOTHING
RETURNING url
"""

# A URL found again by a shorter path takes the smaller depth; one skipped as too deep is revived.
_LOWER_URLS = """
UPDATE urls SET
    depth = v.depth,
    discovered_from = v.discovered_from,
    redirects = v.redirects,
    sitemap = v.sitemap,
    state = CASE WHEN urls.state = 'skipped' AND urls.reason = 'depth' THEN v.state
                 ELSE urls.state END,
    reason = CASE WHEN urls.state = 'skipped' AND urls.reason = 'depth' THEN v.reason
                  ELSE urls.reason END
FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::int[], $7::int[])
     AS v (url, depth, state, reason, discovered_from, redirects, sitemap)
WHERE md5(urls.url)::uuid = md5(v.url)::uuid AND urls.url = v.url AND v.depth < urls.depth
RETURNING urls.url, urls.depth, urls.state
"""

_SET_STATES = """
UPDATE urls SET state = v.state, reason = v.reason
FROM unnest($1::bigint[], $2::text[], $3::text[]) AS v (id, state, reason)
WHERE urls.id = v.id
RETURNING urls.id, urls.depth, urls.state
"""

_LOWER_PAGES = """
UPDATE pages SET depth = v.depth
FROM unnest($1::text[], $2::int[]) AS v (url, depth)
WHERE md5(pages.url)::uuid = md5(v.url)::uuid AND pages.url = v.url AND pages.depth > v.depth
RETURNING pages.url, pages.depth
"""

_FOLLOWED_TARGETS = """
SELECT u.url, u.host, u.redirects, l.src_url, v.depth
FROM unnest($1::text[], $2::int[]) AS v (url, depth)
JOIN links l ON md5(l.src_url)::uuid = md5(v.url)::uuid AND l.src_url = v.url
JOIN urls u ON md5(u.url)::uuid = md5(l.dst_url)::uuid AND u.url = l.dst_url
WHERE l.nofollow = 0 AND u.depth > v.depth + 1
"""

_UPSERT_ROBOTS = """
INSERT INTO robots (origin, host, status, body, error, fetched_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bytea[], $5::text[], $6::text[])
ON CONFLICT (origin) DO UPDATE SET host = excluded.host, status = excluded.status,
    body = excluded.body, error = excluded.error, fetched_at = excluded.fetched_at
"""

# A sitemap's <lastmod> for its entries, whichever way they were found first.
_KEEP_LASTMODS = """
UPDATE urls SET lastmod = v.lastmod
FROM unnest($1::text[], $2::text[]) AS v (url, lastmod)
WHERE md5(urls.url)::uuid = md5(v.url)::uuid AND urls.url = v.url
  AND urls.lastmod IS DISTINCT FROM v.lastmod
"""

_UPSERT_SITEMAPS = """
INSERT INTO sitemaps (url, kind, entries, left_out)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[])
ON CONFLICT ((md5(url)::uuid)) DO UPDATE SET kind = excluded.kind, entries = excluded.entries,
    left_out = excluded.left_out
"""

_HOST_TYPES = ["text", "float8", "text", "float8", "text", "text", "int", "int", "float8", "text",
               "float8", "text"]  # fmt: skip
# Held hosts' state (the owner and lease columns are the claims' business).
SAVE_HOSTS = f"""
UPDATE hosts SET {", ".join(f"{c} = v.{c}" for c in HOST_COLUMNS[1:])}{{also}}
FROM unnest({", ".join(f"${n}::{t}[]" for n, t in enumerate(_HOST_TYPES, 2))})
     AS v ({", ".join(HOST_COLUMNS)})
WHERE hosts.host = v.host AND hosts.owner = $1
"""

_HELD = f"""
SELECT host, claims FROM hosts
WHERE host = ANY($1::text[]) AND owner = $2 AND lease_until > {NOW}
ORDER BY host FOR SHARE
"""


async def save(
    conn: Any,
    batch: Batch,
    run_id: int,
    max_depth: int,
    known_hosts: Collection[str],
    pass_number: int,
) -> tuple[list[Outcome], set[str]]:
    """Commit what of `batch` the run's hosts allow (rules 1-6, 9), in the transaction `conn`
    is in; returns the outcomes left out, and the hosts whose rows it added (`known_hosts`:
    hosts whose rows exist)."""
    names = sorted(batch_hosts(batch))
    # FOR SHARE: a claimer (SKIP LOCKED) cannot take these hosts before this commits.
    held = {row[0]: row[1] for row in await conn.fetch(_HELD, names, run_id)}
    batch, lost = held_part(batch, held)
    outcomes = batch.outcomes
    pages = sorted((o.page for o in outcomes if o.page is not None), key=lambda p: p.url)
    if pages:
        stored = await _stored_versions(conn, pages) if pass_number > 1 else {}
        written, fetches = versions(pages, stored, pass_number)
        latest_pages = {p.url: p for p in written}  # one statement may not update a row twice
        if latest_pages:
            rows = [page_params(latest_pages[url]) for url in sorted(latest_pages)]
            await conn.execute(_UPSERT_PAGES, *_columns(rows, len(PAGE_COLUMNS)))
        await conn.execute(_INSERT_FETCHES, *_columns(fetches, 9))
    links = [(src, dst, int(nofollow), text) for src, dst, nofollow, text in link_rows(outcomes)]
    if links:
        await conn.execute(_UPSERT_LINKS, *_columns(links, 4))
    alternates = alternate_rows(outcomes)
    if alternates:
        await conn.execute(_INSERT_ALTERNATES, *_columns(alternates, 3))
    found = discovered(batch)
    new_hosts = {d.host for d in found}.difference(known_hosts)
    await add_hosts(conn, new_hosts)
    dropped = await upsert_urls(conn, found)
    lastmods = sorted({d.url: d.lastmod for d in found if d.lastmod is not None}.items())
    if lastmods:
        await conn.execute(_KEEP_LASTMODS, *_columns(lastmods, 2))
    final = latest(outcomes)
    if final:
        states = await conn.fetch(
            _SET_STATES, [o.url.id for o in final], [o.state for o in final],
            [o.reason for o in final],
        )  # fmt: skip
        depths = {row[0]: row[1] for row in states if row[2] in ("done", "failed")}
        dropped += deeper_pages(final, depths)
    await relax(conn, dropped, max_depth)
    if batch.robots:
        robots = {r.origin: r for r in batch.robots}  # the last of an origin's wins
        rows = [robots_row(robots[key]) for key in sorted(robots)]
        await conn.execute(_UPSERT_ROBOTS, *_columns(rows, 6))
    read = sitemap_records(outcomes)
    if read:
        sitemaps = [(s.url, s.kind, s.entries, s.left_out) for s in read]
        await conn.execute(_UPSERT_SITEMAPS, *_columns(sitemaps, 4))
        entries = sitemap_entry_rows(read)
        if entries:
            await conn.execute(_INSERT_SITEMAP_ENTRIES, *_columns(entries, 2))
    await save_hosts(conn, run_id, batch.hosts)
    if pages:
        await conn.execute(
            "UPDATE runs SET pages = pages + $2, reserved = greatest(reserved - $2, 0)"
            " WHERE id = $1",
            run_id,
            len(pages),
        )
    return lost, new_hosts


async def upsert_urls(conn: Any, found: Sequence[Discovered]) -> list[tuple[str, int]]:
    """Rules 1 and 2 for URLs found; returns the fetched URLs whose depth dropped, with their
    new depth."""
    rows = shallowest(found)
    if not rows:
        return []
    inserted = {row[0] for row in await conn.fetch(_INSERT_URLS, *_columns(rows, 9))}
    known = [d for d in rows if d.url not in inserted]
    if not known:
        return []
    nearer = [
        (d.url, d.depth, d.state, d.reason, d.discovered_from, d.redirects, d.sitemap)
        for d in known
    ]
    lowered = await conn.fetch(_LOWER_URLS, *_columns(nearer, 7))
    return [(row[0], row[1]) for row in lowered if row[2] in ("done", "failed")]


async def relax(conn: Any, dropped: list[tuple[str, int]], max_depth: int) -> None:
    """Rule 3, as sqlite_writes.relax does it: the pages of URLs whose depth dropped take the
    new depth; their followed links' targets are found again one deeper, which may drop more
    fetched URLs, and on until nothing drops (depths only go down: it ends)."""
    while dropped:
        pairs = least_depths(dropped)
        lowered = await conn.fetch(_LOWER_PAGES, *_columns(pairs, 2))
        if not lowered:
            return
        targets = await conn.fetch(
            _FOLLOWED_TARGETS, [row[0] for row in lowered], [row[1] for row in lowered]
        )
        dropped = await upsert_urls(conn, refound([tuple(row) for row in targets], max_depth))


async def add_hosts(conn: Any, names: Collection[str]) -> None:
    """Every host with URLs has a row (claims look there)."""
    if names:
        await conn.execute(
            "INSERT INTO hosts (host) SELECT unnest($1::text[]) ORDER BY 1"
            " ON CONFLICT (host) DO NOTHING",
            sorted(names),
        )


async def save_hosts(conn: Any, run_id: int, records: Sequence[HostRecord], also: str = "") -> None:
    """Save the state of the run's hosts among `records`; `also`: more of SET (releasing)."""
    if records:
        latest_records = {h.host: h for h in records}
        rows = [host_params(latest_records[name]) for name in sorted(latest_records)]
        await conn.execute(SAVE_HOSTS.format(also=also), run_id, *_columns(rows, 12))


async def _stored_versions(conn: Any, pages: Sequence[PageRecord]) -> dict[str, Version]:
    """The status and hash of the version stored of each page's URL, if any."""
    rows = await conn.fetch(
        "SELECT url, status, sha256 FROM pages WHERE url = ANY($1::text[])",
        sorted({p.url for p in pages}),
    )
    return {row[0]: (row[1], row[2]) for row in rows}


def _columns(rows: Sequence[Sequence[object]], width: int) -> list[list[object]]:
    """Rows as columns: the arrays `unnest` takes."""
    return [[row[n] for row in rows] for n in range(width)]
