"""Storage: the narrow interface the engine writes and reads through, and its SQLite backend.

The engine needs little from storage: record a run and its seeds, list hosts with queued URLs,
take a host's next queued URLs in breadth-first order, and commit a batch of outcomes in one
transaction. `Storage` states that contract so a PostgreSQL backend (many crawler processes
sharing one frontier) can follow without touching the engine.

Resource handling: `SQLiteStore.open()` is an async context manager owning two connections:
one that writes, in a thread of its own (`WriterThread`, used only by the writer task), and
one that reads the frontier (aiosqlite); both are closed on exit, whatever happened.
Error handling: sqlite3 errors become StoreError here and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import sqlite3
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import aiosqlite

from .errors import StoreError
from .records import (
    Discovered,
    HostRecord,
    Outcome,
    PageRecord,
    QueuedURL,
    RobotsRecord,
    utc_now,
)
from .schema import migrate

_T = TypeVar("_T")


@dataclass(slots=True)
class Batch:
    """What the writer commits in one transaction."""

    outcomes: list[Outcome] = field(default_factory=list)
    robots: list[RobotsRecord] = field(default_factory=list)
    hosts: list[HostRecord] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ResumeState:
    """What a starting run learns from earlier runs of the same database."""

    run_id: int
    resumed: bool  # earlier runs wrote this database
    pages: int  # pages fetched by earlier runs
    pages_by_host: dict[str, int]
    hosts: list[HostRecord]
    robots: list[RobotsRecord]


class Storage(Protocol):
    """The engine's view of storage. Only the writer task calls `save`."""

    async def start_run(self, seeds: Sequence[Discovered], max_depth: int) -> ResumeState:
        """Record a new run (marking a run left 'running' as 'crashed'), add the seeds."""
        ...

    async def end_run(self, run_id: int, outcome: str, lag: tuple[float, float] | None) -> None:
        """Record how the run ended (finished, limit, interrupted, failed) and the event loop's
        lag (p99, max, seconds) if measured."""
        ...

    async def queued_hosts(self) -> list[str]:
        """Every host with at least one queued URL."""
        ...

    async def next_queued(self, host: str, limit: int, taken: Collection[int]) -> list[QueuedURL]:
        """Up to `limit` queued URLs of `host`, shallowest first, leaving out ids in `taken`."""
        ...

    async def count_queued(self) -> int:
        """How many URLs are queued (for progress; may lag the writer a little)."""
        ...

    async def save(self, batch: Batch) -> None:
        """Commit a batch: pages, links, discovered URLs, URL states, robots, hosts, together."""
        ...


class SQLiteStore:
    """The SQLite backend: WAL mode, one writing connection in its own thread, one reading
    connection (aiosqlite) for the frontier."""

    def __init__(self, writer: WriterThread, reader: aiosqlite.Connection) -> None:
        self._writer = writer
        self._reader = reader
        self._run_id = 0

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, path: Path) -> AsyncIterator[SQLiteStore]:
        """Create or migrate the database at `path` and open its connections."""
        async with contextlib.AsyncExitStack() as stack:
            # A failure here is the user's storage.path (a folder, unwritable, not SQLite).
            with translated(f"storage.path: cannot use {str(path)!r}", exit_code=2):
                await asyncio.to_thread(prepare, path)
                writer = await stack.enter_async_context(WriterThread.open(path))
                reader = await stack.enter_async_context(
                    aiosqlite.connect(path, isolation_level=None)
                )
                await reader.execute("PRAGMA busy_timeout = 10000")
                await reader.execute("PRAGMA query_only = ON")
            yield cls(writer, reader)

    async def start_run(self, seeds: Sequence[Discovered], max_depth: int) -> ResumeState:
        with translated("cannot start the run"):
            run_id, earlier = await self._writer.call(_start_run, seeds, max_depth)
            self._run_id = run_id
            by_host = await _fetch_all(
                self._reader, "SELECT host, count(*) FROM pages GROUP BY host"
            )
            hosts = await _fetch_all(self._reader, f"SELECT {_HOST_COLUMNS} FROM hosts")
            robots = await _fetch_all(
                self._reader, "SELECT origin, host, status, body, error, fetched_at FROM robots"
            )
        pages_by_host = {host: count for host, count in by_host}
        return ResumeState(
            run_id=run_id,
            resumed=earlier,
            pages=sum(pages_by_host.values()),
            pages_by_host=pages_by_host,
            hosts=[HostRecord(*row) for row in hosts],
            robots=[RobotsRecord(*row) for row in robots],
        )

    async def end_run(self, run_id: int, outcome: str, lag: tuple[float, float] | None) -> None:
        with translated("cannot record the end of the run"):
            await self._writer.call(_end_run, run_id, outcome, lag)

    async def queued_hosts(self) -> list[str]:
        with translated("cannot read the frontier"):
            rows = await _fetch_all(
                self._reader, "SELECT DISTINCT host FROM urls WHERE state = 'queued'"
            )
        return [host for (host,) in rows]

    async def next_queued(self, host: str, limit: int, taken: Collection[int]) -> list[QueuedURL]:
        # Taken URLs are still 'queued' until their outcome commits: read past them.
        with translated("cannot read the frontier"):
            rows = await _fetch_all(
                self._reader,
                "SELECT id, url, host, depth, redirects FROM urls"
                " WHERE host = ? AND state = 'queued' ORDER BY depth, id LIMIT ?",
                (host, limit + len(taken)),
            )
        fresh = [QueuedURL(*row) for row in rows if row[0] not in taken]
        return fresh[:limit]

    async def count_queued(self) -> int:
        with translated("cannot read the frontier"):
            rows = await _fetch_all(
                self._reader, "SELECT count(*) FROM urls WHERE state = 'queued'"
            )
        return int(rows[0][0])

    async def save(self, batch: Batch) -> None:
        with translated("cannot write the crawl to the database"):
            await self._writer.call(_save, batch, self._run_id)


class WriterThread:
    """The writing connection, in the one thread that uses it; `call` runs a function of that
    connection there.

    Each save is one call, a whole transaction, not one await per statement as aiosqlite would
    make it: every await is a round trip through the event loop, and a busy loop gets to it
    only after the page it is extracting. Measured on the 64-host site: statement by
    statement, the writer was saving for 30 of the crawl's 32 seconds but busy for only 9, and
    its back-pressure held the fetching up.
    """

    def __init__(self, executor: ThreadPoolExecutor, db: sqlite3.Connection) -> None:
        self._executor = executor
        self._db = db

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, path: Path) -> AsyncIterator[WriterThread]:
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(1, thread_name_prefix="crawler-writer") as executor:
            db = await loop.run_in_executor(executor, _connect_writer, path)
            try:
                yield cls(executor, db)
            finally:
                # In the thread, after whatever was handed to it: a cancelled caller does not
                # stop a transaction that is under way there.
                await asyncio.shield(loop.run_in_executor(executor, db.close))

    async def call(self, fn: Callable[..., _T], *args: object) -> _T:
        """fn(connection, *args), in the writer thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, self._db, *args))


def _connect_writer(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout = 10000")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA recursive_triggers = ON")
    # 16 MB of page cache instead of 2: the url indexes of a big crawl stay in it.
    db.execute("PRAGMA cache_size = -16000")
    return db


# The functions below run in the writer thread, one transaction each.


def _start_run(
    db: sqlite3.Connection, seeds: Sequence[Discovered], max_depth: int
) -> tuple[int, bool]:
    """A new run's id, and whether earlier runs wrote this database."""
    with _transaction(db):
        earlier = db.execute("SELECT 1 FROM runs LIMIT 1").fetchone() is not None
        db.execute("UPDATE runs SET outcome = 'crashed' WHERE outcome = 'running'")
        cursor = db.execute(
            "INSERT INTO runs (started_at, seeds) VALUES (?, ?)",
            (utc_now(), " ".join(s.url for s in seeds)),
        )
        db.execute(
            "INSERT OR REPLACE INTO settings (key, value) VALUES ('max_depth', ?)", (max_depth,)
        )
        _insert_rows(db, _UPSERT_URLS, seeds)
        # Kept up link by link, this index (who links to a URL) was half of what the writer
        # did: every new link lands on a random page of it. end_run builds it in one pass.
        db.execute("DROP INDEX IF EXISTS links_dst")
    return cursor.lastrowid or 0, earlier


def _end_run(
    db: sqlite3.Connection, run_id: int, outcome: str, lag: tuple[float, float] | None
) -> None:
    p99, worst = (round(s * 1000, 1) for s in lag) if lag else (None, None)
    if outcome != "failed":  # after a failure (a full disk, say) only the row below
        db.execute(_INDEX_LINKS_DST)
    db.execute(
        "UPDATE runs SET ended_at = ?, outcome = ?, lag_p99_ms = ?, lag_max_ms = ? WHERE id = ?",
        (utc_now(), outcome, p99, worst, run_id),
    )


def _save(db: sqlite3.Connection, batch: Batch, run_id: int) -> None:
    outcomes = batch.outcomes
    with _transaction(db):
        pages = [o.page for o in outcomes if o.page is not None]
        db.executemany(_INSERT_PAGE, [_page_params(p) for p in pages])
        _insert_rows(db, _INSERT_LINKS, [link for o in outcomes for link in o.links])
        _insert_rows(db, _UPSERT_URLS, [d for o in outcomes for d in o.discovered])
        latest = {o.url.id: o for o in outcomes}  # the last word on a URL wins
        by_state: dict[tuple[str, str | None], list[int]] = defaultdict(list)
        for o in latest.values():
            by_state[o.state, o.reason].append(o.url.id)
        for (state, reason), ids in by_state.items():
            for chunk in _chunks(ids):
                db.execute(_set_state(len(chunk)), (state, reason, *chunk))
        if batch.robots:
            db.executemany(
                "INSERT OR REPLACE INTO robots (origin, host, status, body, error, fetched_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(r.origin, r.host, r.status, r.body, r.error, r.fetched_at) for r in batch.robots],
            )
        if batch.hosts:
            db.executemany(
                f"INSERT OR REPLACE INTO hosts ({_HOST_COLUMNS}) VALUES ({', '.join('?' * 10)})",
                [_host_params(h) for h in batch.hosts],
            )
        if pages:
            db.execute("UPDATE runs SET pages = pages + ? WHERE id = ?", (len(pages), run_id))


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def prepare(path: Path) -> None:
    """Create or migrate the database and switch it to WAL (blocking: run it in a thread)."""
    if path.is_dir():
        raise sqlite3.OperationalError("it is a directory")
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        migrate(db)
    finally:
        db.close()


ROWS_PER_STATEMENT = 128  # 128 rows of 7 columns stay below SQLite's oldest variable limit, 999

# A URL found again by a shorter path takes the smaller depth; one skipped as too deep is revived.
_UPSERT_URLS = """
INSERT INTO urls (url, host, depth, state, reason, discovered_from, redirects)
VALUES {rows}
ON CONFLICT (url) DO UPDATE SET
    depth = excluded.depth,
    discovered_from = excluded.discovered_from,
    redirects = excluded.redirects,
    state = iif(urls.state = 'skipped' AND urls.reason = 'depth', excluded.state, urls.state),
    reason = iif(urls.state = 'skipped' AND urls.reason = 'depth', excluded.reason, urls.reason)
WHERE excluded.depth < urls.depth
"""

_INSERT_LINKS = """
INSERT INTO links (src_url, dst_url, nofollow) VALUES {rows}
ON CONFLICT DO UPDATE SET nofollow = min(nofollow, excluded.nofollow)
"""


def _insert_rows(db: sqlite3.Connection, sql: str, rows: Sequence[Sequence[object]]) -> None:
    """Run an INSERT whose `{rows}` takes one "(?, ...)" per row, for many rows at a time:
    executemany would step once per row, and between two steps the writer thread waits for the
    GIL, which the event loop holds."""
    for chunk in _chunks(rows):
        params = list(itertools.chain.from_iterable(chunk))
        db.execute(_with_rows(sql, len(chunk), len(chunk[0])), params)


def _chunks(rows: Sequence[_T]) -> Iterator[Sequence[_T]]:
    """`rows` by ROWS_PER_STATEMENT, the last chunk padded to a power of two by repeating its
    last row. sqlite3 keeps a prepared statement for each chunk size, and one of 128 rows is a
    110 KB program: any size made 7 MB of them. The repeat changes nothing: every statement
    fed by chunks is an upsert that a row repeated leaves as it was, or an `IN` list."""
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        missing = (1 << (len(chunk) - 1).bit_length()) - len(chunk)
        yield [*chunk, *[chunk[-1]] * missing] if missing else chunk


@functools.lru_cache(maxsize=64)
def _with_rows(sql: str, rows: int, width: int) -> str:
    return sql.format(rows=", ".join(["(" + ", ".join("?" * width) + ")"] * rows))


@functools.lru_cache(maxsize=64)
def _set_state(ids: int) -> str:
    return f"UPDATE urls SET state = ?, reason = ? WHERE id IN ({', '.join('?' * ids)})"


_INDEX_LINKS_DST = "CREATE INDEX IF NOT EXISTS links_dst ON links (dst_url)"

_INSERT_PAGE = """
INSERT INTO pages (url, host, status, content_type, title, body, bytes, truncated, depth,
                   fetched_at, elapsed_ms, error, location)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

_HOST_COLUMNS = (
    "host, delay, delay_reason, crawl_delay, robots_status, robots_fetched_at,"
    " requests, errors, min_gap_ms, retry_after_until"
)


def _page_params(p: PageRecord) -> tuple[object, ...]:
    return (
        p.url, p.host, p.status, p.content_type, p.title, p.body, p.bytes, int(p.truncated),
        p.depth, p.fetched_at, p.elapsed_ms, p.error, p.location,
    )  # fmt: skip


def _host_params(h: HostRecord) -> tuple[object, ...]:
    return (
        h.host, h.delay, h.delay_reason, h.crawl_delay, h.robots_status, h.robots_fetched_at,
        h.requests, h.errors, h.min_gap_ms, h.retry_after_until,
    )  # fmt: skip


async def _fetch_all(
    db: aiosqlite.Connection, sql: str, params: tuple[object, ...] = ()
) -> list[tuple[Any, ...]]:
    async with db.execute(sql, params) as cursor:
        return [tuple(row) for row in await cursor.fetchall()]


@contextlib.contextmanager
def translated(what: str, *, exit_code: int = 1) -> Iterator[None]:
    """sqlite3's exceptions (and the OS errors behind them) become StoreError, naming what we
    were doing. Exit code 2 where the cause is the user's setting (storage.path)."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        raise StoreError(f"{what}: {exc}", exit_code=exit_code) from exc
