"""A test crawl's database on either backend: its config, and its tables read back; and crawls
made by hand for the read side: `fill` (through the storage contract), the `Twin` (the same
crawl in SQLite and in PostgreSQL), and the stats rows `build_stats_db` writes straight in."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from contextlib import AbstractAsyncContextManager, closing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg
from kit import build_config
from yarl import URL

from crawler.config import DEFAULT_LEASE, Config
from crawler.records import Discovered, HostRecord, Outcome, PageRecord, QueuedURL, RobotsRecord
from crawler.storage import Batch, Storage
from crawler.storage.postgres import PostgresStore
from crawler.storage.sqlite import SQLiteStore, prepare


class Backend:
    """Where a test's crawl is stored (an SQLite file or a PostgreSQL database), and how its
    tables are read."""

    def __init__(self, kind: str, location: str) -> None:
        self.kind, self.location = kind, location

    @property
    def where(self) -> dict[str, str]:
        """The kit.build_config / kit.write_config option naming this database."""
        return {"db": self.location} if self.kind == "sqlite" else {"pg_url": self.location}

    def config(
        self,
        tmp_path: Path,
        seeds: list[str],
        *,
        hosts: tuple[str, ...],
        storage: dict[str, Any] | None = None,
        fetch: dict[str, Any] | None = None,
        **crawl: Any,
    ) -> Config:
        """kit.build_config with four workers and the crawler's connect timeout; `crawl`: more
        crawl keys; `storage`, `fetch`: more keys of those sections."""
        return build_config(
            tmp_path,
            seeds,
            hosts=hosts,
            **self.where,
            crawl={"concurrency": 4, **crawl},
            fetch={"connect_timeout": None, **(fetch or {})},
            storage=storage or {},
        )

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self.kind == "sqlite":
            with closing(sqlite3.connect(self.location)) as db:
                return db.execute(sql).fetchall()
        return await pg_rows(self.location, sql)


async def pg_rows(url: str, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """The rows of `sql` on the PostgreSQL database at `url`, on a connection of their own."""
    conn = await asyncpg.connect(url)
    try:
        return [tuple(row) for row in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


async def pg_database_before(url: str, step: str, *statements: str) -> None:
    """Make the database at `url` as a crawler from before the migration `step` left it, then
    run `statements` on it."""
    from crawler.storage.postgres_schema import MIGRATIONS

    before = [name for name, _ in MIGRATIONS].index(step)
    conn = await asyncpg.connect(url)
    try:
        for _name, script in MIGRATIONS[:before]:
            await conn.execute(script)
        await conn.execute("CREATE TABLE crawler_schema (version INTEGER NOT NULL)")
        await conn.execute("INSERT INTO crawler_schema VALUES ($1)", before)
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


# -- a crawl written through the storage contract, on both backends --------------------------

HOME, OTHER = "https://example.org/", "https://other.example/"
STARTED, ENDED = "2026-11-25T00:00:00.000Z", "2026-11-25T00:00:42.250Z"
BODY = b"<html><title>caf\xc3\xa9</title>\xff</html>"  # valid UTF-8, then one invalid byte


@dataclass(frozen=True)
class Twin:
    """The same crawl in an SQLite file and in a PostgreSQL database."""

    path: Path
    url: str


def found(url: str, depth: int, state: str = "queued", reason: str | None = None) -> Discovered:
    src = None if depth == 0 else HOME
    return Discovered(url, URL(url).host or "", depth, state, reason, src)  # type: ignore[arg-type]


def page(q: QueuedURL, status: int | None, n: int, **fields: Any) -> PageRecord:
    values: dict[str, Any] = {
        "url": q.url,
        "host": q.host,
        "status": status,
        "content_type": "text/html",
        "title": f"page {n}",
        "body": b"<p>" * n,
        "bytes": 3 * n,
        "truncated": False,
        "depth": q.depth,
        "fetched_at": f"2026-11-25T00:00:{n:02d}.500Z",
        "elapsed_ms": 10 * n,
        "error": None,
        "location": None,
    }
    values.update(fields)
    return PageRecord(**values)


def host(name: str, delay: float, reason: str, **fields: Any) -> HostRecord:
    values: dict[str, Any] = {
        "host": name,
        "delay": delay,
        "delay_reason": reason,
        "crawl_delay": None,
        "robots_status": "allow-all",
        "robots_fetched_at": "2026-11-25T00:00:00.125Z",
        "requests": 0,
        "errors": 0,
        "min_gap_ms": None,
    }
    values.update(fields)
    return HostRecord(**values)


async def take(store: Storage, url: str, claims: dict[str, HostRecord]) -> QueuedURL:
    """The queued URL `url`, taken under its host's claim, as the frontier takes it."""
    queued = await store.next_queued(URL(url).host or "", 1000, ())
    (match,) = [q for q in queued if q.url == url]
    return replace(match, claim=claims[match.host].claim)


async def save(store: Storage, batch: Batch) -> None:
    assert await store.save(batch) == []  # nothing lost: the run holds its hosts


async def fill(store: Storage) -> None:
    """A small crawl: 4 pages answered 200, 3 no response, 2 404, 1 301 (no two counts tie),
    links, skips, a URL left queued, two hosts' politeness."""
    seeds = [HOME, OTHER, OTHER + "slow", OTHER + "reset"]
    run = await store.start_run([found(s, 0) for s in seeds], 3, DEFAULT_LEASE)
    claims = {h.host: h for h in await store.claim_hosts(10)}
    inner = ["about", "contact", "team", "missing", "gone", "old"]
    home = await take(store, HOME, claims)
    links = [(HOME, HOME + name, False, "") for name in inner]
    links.append((HOME, "https://elsewhere.test/", True, ""))
    discovered = [found(HOME + name, 1) for name in inner]
    discovered += [
        found(HOME + "later", 1),
        found(HOME + "deep/1", 4, "skipped", "depth"),
        found(HOME + "private", 1, "skipped", "robots"),
        found(HOME + "a/b/a/b/a/", 1, "skipped", "trap"),
    ]
    title = "Home \u00e9 \u201cquoted\u201d, with a comma"
    home_page = page(home, 200, 1, title=title, body=BODY, bytes=len(BODY), truncated=True)
    await save(
        store, Batch([Outcome(home, "done", page=home_page, links=links, discovered=discovered)])
    )
    outcomes = []
    for n, (name, status) in enumerate(
        [("about", 200), ("contact", 200), ("team", 200), ("missing", 404), ("gone", 404)], 2
    ):
        q = await take(store, HOME + name, claims)
        body = None if status == 404 else b"<p>\n\tline"
        back = [(q.url, HOME + "missing", False, ""), (q.url, HOME + "about", name == "team", "")]
        outcomes.append(Outcome(q, "done", page=page(q, status, n, body=body), links=back))
    old = await take(store, HOME + "old", claims)
    moved = page(old, 301, 7, location=HOME + "about", body=None, bytes=0, title=None)
    outcomes.append(Outcome(old, "done", page=moved))
    for n, (url, error) in enumerate(
        [(OTHER, "timeout"), (OTHER + "slow", "timeout"), (OTHER + "reset", "connection reset")], 8
    ):
        q = await take(store, url, claims)
        failed = page(q, None, n, error=error, body=None, bytes=0, title=None, content_type=None)
        outcomes.append(Outcome(q, "failed", page=failed))
    robots = [RobotsRecord("https://example.org", "example.org", 200, b"", None, STARTED)]
    hosts = [
        host("example.org", 1.0, "config", requests=8, min_gap_ms=1003.4),
        host("other.example", 2.5, "backoff", crawl_delay=5.0, requests=3, errors=3),
    ]
    await save(store, Batch(outcomes, robots, hosts))
    await store.end_run(run.run_id, "limit", (0.0123, 0.0456))


async def fill_both(path: Path, url: str) -> None:
    opened: list[AbstractAsyncContextManager[Any]] = [
        SQLiteStore.open(path),
        PostgresStore.open(url),
    ]
    for opening in opened:
        async with opening as store:
            await fill(store)
    # Run times are the clock's when filled: the same on both, so that stats agree.
    times = (STARTED, ENDED)
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE runs SET started_at = ?, ended_at = ?", times)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("UPDATE runs SET started_at = $1, ended_at = $2", *times)
    finally:
        await conn.close()


def make_twin(folder: Path, url: str) -> Twin:
    path = folder / "crawl.db"
    asyncio.run(fill_both(path, url))
    return Twin(path, url)


# -- rows written straight into an SQLite crawl database (the stats tests') ------------------

RUNS = [
    # started_at, ended_at, outcome, pages
    ("2026-11-25T00:00:00.000Z", "2026-11-25T00:00:10.500Z", "interrupted", 8),
    ("2026-11-25T00:01:00.000Z", None, "crashed", 5),  # killed: counts up to its last page
    ("2026-11-25T00:02:00.000Z", None, "running", 0),  # no page yet: counts nothing
]
DURATION = 10.5 + 4.25

# host, status, bytes, error; fetched in order, spread over the first two runs
PAGES = [
    ("a.test", 200, 1000, None),
    ("a.test", 200, 2500, None),
    ("a.test", 200, 0, "body truncated"),
    ("a.test", 301, 0, None),
    ("a.test", 404, 120, None),
    ("a.test", 404, 120, None),
    ("b.test", 503, 50, None),
    ("b.test", 102, 0, None),
    ("b.test", None, 0, "timeout"),
    ("b.test", None, 0, "connection reset"),
    ("b.test", 200, 700_000, None),
    ("b.test", 999, 0, None),
    ("a.test", 200, 1_234_567, None),
]

# state, reason, how many
URLS = [
    ("done", None, 11),
    ("failed", None, 2),
    ("queued", None, 4),
    ("skipped", "depth", 3),
    ("skipped", "robots", 2),
    ("skipped", "exclude", 1),
    ("skipped", None, 1),
]

HOSTS = [
    # host, robots_status, delay, delay_reason, crawl_delay, requests, errors, min_gap_ms
    ("a.test", "ok", 1.0, "config", None, 9, 0, 1003.4),
    ("c.test", "unreachable", 2.5, "backoff", 5.0, 3, 3, None),
]


def fetched_at(i: int) -> str:
    if i < 8:  # run 1: 00:00:01 .. 00:00:08
        return f"2026-11-25T00:00:{i + 1:02d}.000Z"
    return f"2026-11-25T00:01:0{i - 8}.{250 if i == 12 else 0:03d}Z"  # run 2: up to 00:01:04.250


def build_stats_db(path: Path) -> Path:
    prepare(path)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.executemany(
            "INSERT INTO runs (started_at, ended_at, outcome, pages, seeds)"
            " VALUES (?, ?, ?, ?, '')",
            RUNS,
        )
        db.executemany(
            "INSERT INTO pages (url, host, status, bytes, depth, fetched_at, error)"
            " VALUES (?, ?, ?, ?, 0, ?, ?)",
            [
                (f"https://{host}/{i}", host, status, size, fetched_at(i), error)
                for i, (host, status, size, error) in enumerate(PAGES)
            ],
        )
        db.executemany(
            "INSERT INTO urls (url, host, depth, state, reason) VALUES (?, 'a.test', 1, ?, ?)",
            [
                (f"https://a.test/u/{state}/{reason}/{n}", state, reason)
                for state, reason, count in URLS
                for n in range(count)
            ],
        )
        db.executemany(
            "INSERT INTO hosts (host, robots_status, robots_fetched_at, delay, delay_reason,"
            " crawl_delay, requests, errors, min_gap_ms)"
            " VALUES (?, ?, '2026-11-25T00:00:00.500Z', ?, ?, ?, ?, ?, ?)",
            HOSTS,
        )
    return path
