"""The SQLite schema, created and migrated by an ordered list of named steps.

`PRAGMA user_version` holds how many steps a database has had; opening a database runs the
rest, each in its own transaction, so a database from an older version keeps working. Append
new steps; never edit or reorder old ones.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable

# The public tables (SPEC.md "Database") are urls, pages, links and hosts; the rest is ours.
_INITIAL = """
CREATE TABLE urls (
    id              INTEGER PRIMARY KEY,
    url             TEXT NOT NULL UNIQUE,
    host            TEXT NOT NULL,
    depth           INTEGER NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('queued', 'done', 'failed', 'skipped')),
    reason          TEXT,
    discovered_from TEXT,
    redirects       INTEGER NOT NULL DEFAULT 0
);
-- The frontier: queued URLs of one host in breadth-first order.
CREATE INDEX urls_frontier ON urls (host, depth, id) WHERE state = 'queued';
CREATE INDEX urls_state ON urls (state, reason);

CREATE TABLE pages (
    id           INTEGER PRIMARY KEY,
    url          TEXT NOT NULL UNIQUE,
    host         TEXT NOT NULL,
    status       INTEGER,
    content_type TEXT,
    title        TEXT,
    body         BLOB,
    bytes        INTEGER NOT NULL DEFAULT 0,
    truncated    INTEGER NOT NULL DEFAULT 0,
    depth        INTEGER NOT NULL,
    fetched_at   TEXT NOT NULL,
    elapsed_ms   INTEGER,
    error        TEXT,
    location     TEXT
);
CREATE INDEX pages_host ON pages (host);

CREATE TABLE links (
    src_url  TEXT NOT NULL,
    dst_url  TEXT NOT NULL,
    nofollow INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (src_url, dst_url)
) WITHOUT ROWID;
CREATE INDEX links_dst ON links (dst_url);

CREATE TABLE hosts (
    host              TEXT PRIMARY KEY,
    robots_status     TEXT,
    robots_fetched_at TEXT,
    crawl_delay       REAL,
    delay             REAL,
    delay_reason      TEXT,
    requests          INTEGER NOT NULL DEFAULT 0,
    errors            INTEGER NOT NULL DEFAULT 0,
    min_gap_ms        REAL
);

CREATE TABLE robots (
    origin     TEXT PRIMARY KEY,
    host       TEXT NOT NULL,
    status     INTEGER,
    body       BLOB,
    error      TEXT,
    fetched_at TEXT NOT NULL
);

-- Settings of the current run that SQL needs (max_depth, for the trigger below).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value
);

-- Depth is the shortest known link distance from a seed. Hosts are crawled side by side, so a
-- page can be fetched before a shorter path to it is found; when that happens (its URL's depth
-- drops below its page's), the page takes the new depth and its followed links are relaxed,
-- recursively (PRAGMA recursive_triggers), reviving links that were too deep before.
CREATE TRIGGER urls_depth_relax AFTER UPDATE ON urls
WHEN NEW.state IN ('done', 'failed')
 AND NEW.depth < (SELECT depth FROM pages WHERE url = NEW.url)
BEGIN
    UPDATE pages SET depth = NEW.depth WHERE url = NEW.url;
    UPDATE urls SET
        depth = NEW.depth + 1,
        discovered_from = NEW.url,
        reason = CASE WHEN state = 'skipped' AND reason = 'depth'
                       AND NEW.depth + 1 <= (SELECT value FROM settings WHERE key = 'max_depth')
                      THEN NULL ELSE reason END,
        state = CASE WHEN state = 'skipped' AND reason = 'depth'
                      AND NEW.depth + 1 <= (SELECT value FROM settings WHERE key = 'max_depth')
                     THEN 'queued' ELSE state END
    WHERE depth > NEW.depth + 1
      AND url IN (SELECT dst_url FROM links WHERE src_url = NEW.url AND nofollow = 0);
END;

CREATE TABLE runs (
    id         INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    ended_at   TEXT,
    outcome    TEXT NOT NULL DEFAULT 'running',
    pages      INTEGER NOT NULL DEFAULT 0,
    seeds      TEXT NOT NULL
);
"""


def _initial(db: sqlite3.Connection) -> None:
    for statement in _statements(_INITIAL):
        db.execute(statement)


def _statements(script: str) -> list[str]:
    """Split a script into statements; a trigger body's semicolons don't end its statement.
    (executescript would commit the migration's transaction before running.)"""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return [s for s in statements if s.strip(" ;\n")]


def _hosts_retry_after(db: sqlite3.Connection) -> None:
    # A Retry-After must outlive the process that received it.
    db.execute("ALTER TABLE hosts ADD COLUMN retry_after_until TEXT")


def _runs_lag(db: sqlite3.Connection) -> None:
    # How late the event loop ran its timers in each run: a blocking call shows up here.
    db.execute("ALTER TABLE runs ADD COLUMN lag_p99_ms REAL")
    db.execute("ALTER TABLE runs ADD COLUMN lag_max_ms REAL")


def _runs_owners(db: sqlite3.Connection) -> None:
    # Which process a run is (machine, pid), its lease heartbeat, and the pages of max_pages it
    # holds (storage/contract.py rules 11 and 12).
    db.execute("ALTER TABLE runs ADD COLUMN machine TEXT")
    db.execute("ALTER TABLE runs ADD COLUMN pid INTEGER")
    db.execute("ALTER TABLE runs ADD COLUMN renewed_at TEXT")
    db.execute("ALTER TABLE runs ADD COLUMN lease REAL")
    db.execute("ALTER TABLE runs ADD COLUMN reserved INTEGER NOT NULL DEFAULT 0")


def _hosts_owners(db: sqlite3.Connection) -> None:
    # A host is claimed by one run at a time (owner, lease_until: POSIX seconds), and its pacing
    # outlives the run (rules 8 and 10). Every host with URLs has a row.
    db.execute("ALTER TABLE hosts ADD COLUMN owner INTEGER")
    db.execute("ALTER TABLE hosts ADD COLUMN lease_until REAL")
    db.execute("ALTER TABLE hosts ADD COLUMN backoff REAL")
    db.execute("ALTER TABLE hosts ADD COLUMN next_start_at TEXT")
    db.execute("INSERT OR IGNORE INTO hosts (host) SELECT DISTINCT host FROM urls")
    db.execute("CREATE INDEX hosts_next_start ON hosts (next_start_at)")


def _no_depth_trigger(db: sqlite3.Connection) -> None:
    # Rule 3 (depth relaxation) moved into the backends' save (storage/sqlite_writes.py), where
    # PostgreSQL's does the same: a trigger belongs to one backend.
    db.execute("DROP TRIGGER IF EXISTS urls_depth_relax")


def _hosts_claims(db: sqlite3.Connection) -> None:
    # How many times each host was claimed: an outcome commits only under the claim it was
    # taken under (a run that lost a host and claimed it again drops what it had under way).
    db.execute("ALTER TABLE hosts ADD COLUMN claims INTEGER NOT NULL DEFAULT 0")


def _sitemaps(db: sqlite3.Connection) -> None:
    # Sitemap documents are URLs of the frontier, marked by how deep in sitemap indexes they
    # were found; entries keep their <lastmod>; each document read leaves a row (SPEC Sitemaps).
    db.execute("ALTER TABLE urls ADD COLUMN sitemap INTEGER")
    db.execute("ALTER TABLE urls ADD COLUMN lastmod TEXT")
    db.execute(
        "CREATE TABLE sitemaps (url TEXT PRIMARY KEY, kind TEXT NOT NULL,"
        " entries INTEGER NOT NULL, left_out TEXT)"
    )


def _recrawl(db: sqlite3.Connection) -> None:
    # Passes (SPEC Recrawl): each run belongs to one; `fetches` has a row per page fetch of any
    # pass, `pages` the latest version with its validators and content hash. The pages of an
    # older database are pass 1's fetches, hashed from their stored bodies.
    db.create_function("crawler_sha256", 1, _sha256_hex, deterministic=True)
    for column in ("etag", "last_modified", "sha256"):
        db.execute(f"ALTER TABLE pages ADD COLUMN {column} TEXT")
    db.execute("UPDATE pages SET sha256 = crawler_sha256(body) WHERE body IS NOT NULL")
    db.execute("ALTER TABLE runs ADD COLUMN pass INTEGER NOT NULL DEFAULT 1")
    db.execute(
        "CREATE TABLE fetches (url TEXT NOT NULL, pass INTEGER NOT NULL, fetched_at TEXT NOT NULL,"
        " status INTEGER, etag TEXT, last_modified TEXT, sha256 TEXT, change TEXT,"
        " host TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX fetches_pass ON fetches (pass, host)")
    db.execute(
        "INSERT INTO fetches SELECT url, 1, fetched_at, status, NULL, NULL, sha256, 'new', host"
        " FROM pages"
    )


# SPEC "Export, text and search": the full-text index of pages' title and text, an FTS5 table
# over `pages` kept by triggers. `content="pages"`, double-quoted, is how Datasette finds a
# table's index (so it offers search on the file as it is).
_SEARCH = """
CREATE VIRTUAL TABLE pages_fts USING fts5(
    title, text, content="pages", content_rowid="id",
    tokenize="porter unicode61 remove_diacritics 2"
);
CREATE TRIGGER pages_fts_insert AFTER INSERT ON pages BEGIN
    INSERT INTO pages_fts (rowid, title, text) VALUES (new.id, new.title, new.text);
END;
CREATE TRIGGER pages_fts_delete AFTER DELETE ON pages BEGIN
    INSERT INTO pages_fts (pages_fts, rowid, title, text)
    VALUES ('delete', old.id, old.title, old.text);
END;
CREATE TRIGGER pages_fts_update AFTER UPDATE OF title, text ON pages BEGIN
    INSERT INTO pages_fts (pages_fts, rowid, title, text)
    VALUES ('delete', old.id, old.title, old.text);
    INSERT INTO pages_fts (rowid, title, text) VALUES (new.id, new.title, new.text);
END;
INSERT INTO pages_fts (pages_fts) VALUES ('rebuild');
"""


def _text_search(db: sqlite3.Connection) -> None:
    # Each page's readable text, the exchange as it went (request and response heads, for
    # WARC), and the index over title and text; an older database's titles are indexed here.
    for column in ("text", "request_head", "response_head"):
        db.execute(f"ALTER TABLE pages ADD COLUMN {column} TEXT")
    for statement in _statements(_SEARCH):
        db.execute(statement)


def _report_data(db: sqlite3.Connection) -> None:
    # What `crawler report` reads (storage/contract.py rule 16): per page its canonical, meta
    # description, first h1 and robots directives, per link its anchor text, the pages' hreflang
    # alternates and what each sitemap lists. An older database's rows get NULL.
    for column in ("canonical", "description", "h1", "robots"):
        db.execute(f"ALTER TABLE pages ADD COLUMN {column} TEXT")
    db.execute("ALTER TABLE links ADD COLUMN text TEXT")
    db.execute(
        "CREATE TABLE alternates (src_url TEXT NOT NULL, hreflang TEXT NOT NULL,"
        " dst_url TEXT NOT NULL, PRIMARY KEY (src_url, hreflang, dst_url)) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX alternates_dst ON alternates (dst_url)")
    db.execute(
        "CREATE TABLE sitemap_entries (sitemap TEXT NOT NULL, url TEXT NOT NULL,"
        " PRIMARY KEY (sitemap, url)) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX sitemap_entries_url ON sitemap_entries (url)")


def _fields(db: sqlite3.Connection) -> None:
    # Each page's [fields] values (rule 21): a JSON object as text, json_extract() reads it.
    db.execute("ALTER TABLE pages ADD COLUMN fields TEXT")


# The index kept by the save (sqlite_writes.WRITER_INDEXES), by the triggers for the rest.
_SEARCH_BY_WRITER = """
DROP TRIGGER pages_fts_insert;
DROP TRIGGER pages_fts_update;
CREATE TRIGGER pages_fts_insert AFTER INSERT ON pages
WHEN NOT EXISTS (SELECT 1 FROM settings WHERE key = 'writer_indexes') BEGIN
    INSERT INTO pages_fts (rowid, title, text) VALUES (new.id, new.title, new.text);
END;
CREATE TRIGGER pages_fts_update AFTER UPDATE OF title, text ON pages
WHEN NOT EXISTS (SELECT 1 FROM settings WHERE key = 'writer_indexes') BEGIN
    INSERT INTO pages_fts (pages_fts, rowid, title, text)
    VALUES ('delete', old.id, old.title, old.text);
    INSERT INTO pages_fts (rowid, title, text) VALUES (new.id, new.title, new.text);
END;
"""


def _search_by_writer(db: sqlite3.Connection) -> None:
    for statement in _statements(_SEARCH_BY_WRITER):
        db.execute(statement)


def _sha256_hex(body: bytes | None) -> str | None:
    return None if body is None else hashlib.sha256(body).hexdigest()


MIGRATIONS: list[tuple[str, Callable[[sqlite3.Connection], None]]] = [
    ("initial", _initial),
    ("hosts-retry-after", _hosts_retry_after),
    ("runs-lag", _runs_lag),
    ("runs-owners", _runs_owners),
    ("hosts-owners", _hosts_owners),
    ("no-depth-trigger", _no_depth_trigger),
    ("hosts-claims", _hosts_claims),
    ("sitemaps", _sitemaps),
    ("recrawl", _recrawl),
    ("text-search", _text_search),
    ("report-data", _report_data),
    ("fields", _fields),
    ("search-by-writer", _search_by_writer),
]


def migrate(db: sqlite3.Connection) -> int:
    """Bring `db` (a plain sqlite3 connection) to the newest schema; returns the steps run."""
    version: int = db.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise sqlite3.DatabaseError(
            f"schema version {version} is newer than this crawler knows ({len(MIGRATIONS)})"
        )
    for number, (_name, step) in enumerate(MIGRATIONS[version:], start=version + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            step(db)
            db.execute(f"PRAGMA user_version = {number}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    return len(MIGRATIONS) - version
