"""The PostgreSQL schema: the public tables of SQLite's (sqlite_schema.py), with the same names,
columns, column order and values (0/1 integers, ISO-8601 text times, BYTEA for BLOB, DOUBLE
PRECISION for REAL), so that the same SQL gives the same answers.

Where it differs, and why:
- URLs can be longer than a B-tree index entry may be (2704 bytes), so `urls`, `pages` and
  `links` are unique by the MD5 of their URLs (an expression index, 16 bytes), and a hash
  index (no length limit) answers `WHERE url = ...` (and `links.dst_url = ...`: who links
  to a URL). An MD5 collision would make two URLs one: no URL found on the web has one.
- `links_dst` is kept up all along: other processes are writing, there is no quiet end to
  build it in.

Migrations are an ordered list of named scripts; `crawler_schema` holds how many a database has
had. Several processes may start at once: `migrate` runs under a transaction-scoped advisory
lock, so one migrates and the others then find it done. Append steps; never edit old ones.
"""

from __future__ import annotations

from typing import Any

_INITIAL = """
CREATE TABLE urls (
    id              BIGSERIAL PRIMARY KEY,
    url             TEXT NOT NULL,
    host            TEXT NOT NULL,
    depth           INTEGER NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('queued', 'done', 'failed', 'skipped')),
    reason          TEXT,
    discovered_from TEXT,
    redirects       INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX urls_url_key ON urls ((md5(url)::uuid));
CREATE INDEX urls_url ON urls USING hash (url);
-- The frontier: queued URLs of one host in breadth-first order.
CREATE INDEX urls_frontier ON urls (host, depth, id) WHERE state = 'queued';
CREATE INDEX urls_state ON urls (state, reason);

CREATE TABLE pages (
    id           BIGSERIAL PRIMARY KEY,
    url          TEXT NOT NULL,
    host         TEXT NOT NULL,
    status       INTEGER,
    content_type TEXT,
    title        TEXT,
    body         BYTEA,
    bytes        INTEGER NOT NULL DEFAULT 0,
    truncated    INTEGER NOT NULL DEFAULT 0,
    depth        INTEGER NOT NULL,
    fetched_at   TEXT NOT NULL,
    elapsed_ms   INTEGER,
    error        TEXT,
    location     TEXT
);
CREATE UNIQUE INDEX pages_url_key ON pages ((md5(url)::uuid));
CREATE INDEX pages_url ON pages USING hash (url);
CREATE INDEX pages_host ON pages (host);

CREATE TABLE links (
    src_url  TEXT NOT NULL,
    dst_url  TEXT NOT NULL,
    nofollow INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX links_key ON links ((md5(src_url)::uuid), (md5(dst_url)::uuid));
CREATE INDEX links_dst ON links USING hash (dst_url);

CREATE TABLE hosts (
    host              TEXT PRIMARY KEY,
    robots_status     TEXT,
    robots_fetched_at TEXT,
    crawl_delay       DOUBLE PRECISION,
    delay             DOUBLE PRECISION,
    delay_reason      TEXT,
    requests          INTEGER NOT NULL DEFAULT 0,
    errors            INTEGER NOT NULL DEFAULT 0,
    min_gap_ms        DOUBLE PRECISION,
    retry_after_until TEXT,
    owner             BIGINT,            -- the run holding the host (rule 8), or NULL
    lease_until       DOUBLE PRECISION,  -- POSIX seconds on the database's clock
    backoff           DOUBLE PRECISION,
    next_start_at     TEXT,
    claims            BIGINT NOT NULL DEFAULT 0  -- claims so far: a save checks its outcomes'
);
CREATE INDEX hosts_next_start ON hosts (next_start_at NULLS FIRST, host);

CREATE TABLE robots (
    origin     TEXT PRIMARY KEY,
    host       TEXT NOT NULL,
    status     INTEGER,
    body       BYTEA,
    error      TEXT,
    fetched_at TEXT NOT NULL
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT
);

CREATE TABLE runs (
    id         BIGSERIAL PRIMARY KEY,
    started_at TEXT NOT NULL,
    ended_at   TEXT,
    outcome    TEXT NOT NULL DEFAULT 'running',
    pages      INTEGER NOT NULL DEFAULT 0,
    seeds      TEXT NOT NULL,
    lag_p99_ms DOUBLE PRECISION,
    lag_max_ms DOUBLE PRECISION,
    machine    TEXT,
    pid        INTEGER,
    renewed_at TEXT,
    lease      DOUBLE PRECISION,
    reserved   INTEGER NOT NULL DEFAULT 0
);
"""

# As sqlite_schema._sitemaps.
_SITEMAPS = """
ALTER TABLE urls ADD COLUMN sitemap INTEGER;
ALTER TABLE urls ADD COLUMN lastmod TEXT;
CREATE TABLE sitemaps (
    url      TEXT NOT NULL,
    kind     TEXT NOT NULL,
    entries  INTEGER NOT NULL,
    left_out TEXT
);
CREATE UNIQUE INDEX sitemaps_url_key ON sitemaps ((md5(url)::uuid));
"""

# As sqlite_schema._recrawl.
_RECRAWL = """
ALTER TABLE pages ADD COLUMN etag TEXT;
ALTER TABLE pages ADD COLUMN last_modified TEXT;
ALTER TABLE pages ADD COLUMN sha256 TEXT;
UPDATE pages SET sha256 = encode(sha256(body), 'hex') WHERE body IS NOT NULL;
ALTER TABLE runs ADD COLUMN pass INTEGER NOT NULL DEFAULT 1;
CREATE TABLE fetches (
    url           TEXT NOT NULL,
    pass          INTEGER NOT NULL,
    fetched_at    TEXT NOT NULL,
    status        INTEGER,
    etag          TEXT,
    last_modified TEXT,
    sha256        TEXT,
    change        TEXT,
    host          TEXT NOT NULL
);
CREATE INDEX fetches_pass ON fetches (pass, host);
INSERT INTO fetches SELECT url, 1, fetched_at, status, NULL, NULL, sha256, 'new', host FROM pages;
"""

# As sqlite_schema._text_search. The index is on an expression (no column a `SELECT *` would
# show): SEARCH_DOCUMENT, which a search must repeat as it is to use it. A tsvector holds at most
# 1 MB, so the text indexed is cut at 200,000 characters (a page longer than that is rare).
SEARCH_DOCUMENT = (
    "(setweight(to_tsvector('english', coalesce(title, '')), 'A')"
    " || setweight(to_tsvector('english', left(coalesce(text, ''), 200000)), 'B'))"
)
_TEXT_SEARCH = f"""
ALTER TABLE pages ADD COLUMN text TEXT;
ALTER TABLE pages ADD COLUMN request_head TEXT;
ALTER TABLE pages ADD COLUMN response_head TEXT;
CREATE INDEX pages_search ON pages USING gin ({SEARCH_DOCUMENT});
"""

# As sqlite_schema._report_data. Keyed by the MD5 of their URLs, as links are; a hash index
# each for "the alternates of a page", "who names a URL as its alternate", "which sitemaps list
# a URL".
_REPORT_DATA = """
ALTER TABLE pages ADD COLUMN canonical TEXT;
ALTER TABLE pages ADD COLUMN description TEXT;
ALTER TABLE pages ADD COLUMN h1 TEXT;
ALTER TABLE pages ADD COLUMN robots TEXT;
ALTER TABLE links ADD COLUMN text TEXT;
CREATE TABLE alternates (
    src_url  TEXT NOT NULL,
    hreflang TEXT NOT NULL,
    dst_url  TEXT NOT NULL
);
CREATE UNIQUE INDEX alternates_key
    ON alternates ((md5(src_url)::uuid), hreflang, (md5(dst_url)::uuid));
CREATE INDEX alternates_src ON alternates USING hash (src_url);
CREATE INDEX alternates_dst ON alternates USING hash (dst_url);
CREATE TABLE sitemap_entries (
    sitemap TEXT NOT NULL,
    url     TEXT NOT NULL
);
CREATE UNIQUE INDEX sitemap_entries_key
    ON sitemap_entries ((md5(sitemap)::uuid), (md5(url)::uuid));
CREATE INDEX sitemap_entries_url ON sitemap_entries USING hash (url);
"""

# As sqlite_schema._fields: text, not jsonb, so that a read gives back what SQLite's does, key
# order and all (`fields::json->>'price'` queries it).
_FIELDS = """
ALTER TABLE pages ADD COLUMN fields TEXT;
"""

MIGRATIONS: list[tuple[str, str]] = [
    ("initial", _INITIAL),
    ("sitemaps", _SITEMAPS),
    ("recrawl", _RECRAWL),
    ("text-search", _TEXT_SEARCH),
    ("report-data", _REPORT_DATA),
    ("fields", _FIELDS),
]

_LOCK = 0x63726177  # pg_advisory_xact_lock key of schema changes ("craw")


class SchemaTooNewError(Exception):
    """The database was migrated by a newer crawler."""


async def migrate(conn: Any) -> int:
    """Bring the database of `conn` (an asyncpg connection) to the newest schema, in one
    transaction; returns the steps run."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
        await conn.execute("CREATE TABLE IF NOT EXISTS crawler_schema (version INTEGER NOT NULL)")
        version = int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM crawler_schema"))
        if version > len(MIGRATIONS):
            raise SchemaTooNewError(
                f"schema version {version} is newer than this crawler knows ({len(MIGRATIONS)})"
            )
        for _name, script in MIGRATIONS[version:]:
            await conn.execute(script)
        if version < len(MIGRATIONS):
            await conn.execute("DELETE FROM crawler_schema")
            await conn.execute("INSERT INTO crawler_schema (version) VALUES ($1)", len(MIGRATIONS))
    return len(MIGRATIONS) - version
