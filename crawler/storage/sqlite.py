"""The SQLite backend: the whole crawl in one file, crawled by one process at a time.

Resource handling: `SQLiteStore.open()` is an async context manager owning a lock on the file
(`<db>.lock`, so that a second crawl of it fails at once) and two connections: one that writes,
in a thread of its own (`sqlite_thread.WriterThread`, whose functions are in `sqlite_writes`),
and one that reads the frontier (aiosqlite). All are let go on exit, whatever happened.
Error handling: sqlite3 errors become StoreError in `translated`, here and nowhere else (the CLI,
`query` and `stats` use it too).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from ..config import DEFAULT_LEASE
from ..errors import StoreError
from ..records import Discovered, HostRecord, Outcome, QueuedURL, RobotsRecord
from . import sqlite_writes as writes
from .common import HOSTS_WITH_WORK, ROBOTS_SELECT, run_is_gone
from .contract import Batch, ResumeState
from .sqlite_schema import migrate
from .sqlite_thread import ROWS_PER_STATEMENT, WriterThread

__all__ = ["ROWS_PER_STATEMENT", "SQLiteStore", "prepare", "translated"]


class SQLiteStore:
    """The SQLite backend (storage/contract.py): WAL mode, one writing connection in its own
    thread, one reading connection (aiosqlite) for the frontier."""

    def __init__(self, writer: WriterThread, reader: aiosqlite.Connection) -> None:
        self._writer = writer
        self._reader = reader
        self._run_id = 0
        self._max_depth = 0
        self._lease = DEFAULT_LEASE
        self._pass = 1

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, path: Path) -> AsyncIterator[SQLiteStore]:
        """Lock the database at `path` for this crawl, create or migrate it, open its
        connections."""
        async with contextlib.AsyncExitStack() as stack:
            # A failure here is the user's storage.path (a folder, unwritable, not SQLite).
            with translated(f"storage.path: cannot use {str(path)!r}", exit_code=2):
                lock = await asyncio.to_thread(_lock, path)
                stack.callback(os.close, lock)
                await asyncio.to_thread(prepare, path)
                writer = await stack.enter_async_context(WriterThread.open(path))
                reader = await stack.enter_async_context(
                    aiosqlite.connect(path, isolation_level=None)
                )
                await reader.execute("PRAGMA busy_timeout = 10000")
                await reader.execute("PRAGMA query_only = ON")
            yield cls(writer, reader)

    async def start_run(
        self,
        seeds: Sequence[Discovered],
        max_depth: int,
        lease: float,
        new_pass: bool = False,
    ) -> ResumeState:
        with translated("cannot start the run"):
            run_id, earlier, self._pass, started = await self._writer.call(
                writes.start_run, seeds, max_depth, lease, os.getpid(), new_pass
            )
            self._run_id, self._max_depth, self._lease = run_id, max_depth, lease
            by_host = await _fetch_all(
                self._reader,
                f"SELECT host, count(*) FROM fetches WHERE pass = {self._pass} GROUP BY host",
            )
            robots = await _fetch_all(
                self._reader, "SELECT origin, host, status, body, error, fetched_at FROM robots"
            )
        pages_by_host = {host: count for host, count in by_host}
        return ResumeState(
            run_id=run_id,
            resumed=earlier,
            pages=sum(pages_by_host.values()),
            pages_by_host=pages_by_host,
            robots=[RobotsRecord(*row) for row in robots],
            started_at=time.time(),  # the file lock makes this run the only one
            pass_number=self._pass,
            pass_start=started,
        )

    async def end_run(self, run_id: int, outcome: str, lag: tuple[float, float] | None) -> None:
        with translated("cannot record the end of the run"):
            await self._writer.call(writes.end_run, run_id, outcome, lag)

    async def claim_hosts(self, limit: int) -> list[HostRecord]:
        with translated("cannot claim hosts"):
            return await self._writer.call(writes.claim_hosts, self._run_id, limit, self._lease)

    async def renew_hosts(
        self, hosts: Collection[str], lag: tuple[float, float] | None = None
    ) -> set[str]:
        with translated("cannot renew the hosts' lease"):
            return await self._writer.call(
                writes.renew_hosts, self._run_id, hosts, self._lease, lag
            )

    async def release_hosts(self, hosts: Sequence[HostRecord]) -> None:
        with translated("cannot release hosts"):
            await self._writer.call(writes.release_hosts, self._run_id, hosts)

    async def live_runs(self) -> int:
        with translated("cannot read the runs"):
            rows = await _fetch_all(
                self._reader,
                "SELECT id, machine, pid, renewed_at, lease FROM runs WHERE outcome = 'running'",
            )
        now = time.time()
        return sum(1 for row in rows if row[0] == self._run_id or not run_is_gone(row, now))

    async def hosts_with_work(self) -> int:
        with translated("cannot read the frontier"):
            rows = await _fetch_all(self._reader, HOSTS_WITH_WORK)
        return int(rows[0][0])

    async def robots_of(self, hosts: Collection[str]) -> list[RobotsRecord]:
        names = list(hosts)
        marks = ", ".join("?" * len(names))
        with translated("cannot read robots.txt answers"):
            rows = await _fetch_all(
                self._reader, f"{ROBOTS_SELECT} WHERE host IN ({marks})", tuple(names)
            )
        return [RobotsRecord(*row) for row in rows]

    async def next_queued(self, host: str, limit: int, taken: Collection[int]) -> list[QueuedURL]:
        # Taken URLs are still 'queued' until their outcome commits: read past them.
        with translated("cannot read the frontier"):
            rows = await _fetch_all(
                self._reader,
                NEXT_QUEUED if self._pass == 1 else NEXT_QUEUED_AGAIN,
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

    async def reserve_pages(self, wanted: int, max_pages: int) -> int:
        if not max_pages:
            return wanted
        with translated("cannot reserve pages"):
            return await self._writer.call(writes.reserve_pages, self._run_id, wanted, max_pages)

    async def save(self, batch: Batch) -> list[Outcome]:
        with translated("cannot write the crawl to the database"):
            return await self._writer.call(
                writes.save, batch, self._run_id, self._max_depth, self._pass
            )


NEXT_QUEUED = (
    "SELECT id, url, host, depth, redirects, sitemap FROM urls"
    " WHERE host = ? AND state = 'queued' ORDER BY depth, id LIMIT ?"
)
# In a recrawl, with the validators of the version stored (rule 14).
NEXT_QUEUED_AGAIN = (
    "SELECT u.id, u.url, u.host, u.depth, u.redirects, u.sitemap, p.etag, p.last_modified"
    " FROM urls u LEFT JOIN pages p ON p.url = u.url"
    " WHERE u.host = ? AND u.state = 'queued' ORDER BY u.depth, u.id LIMIT ?"
)


def _lock(path: Path) -> int:
    """Hold `<path>.lock` for as long as the returned descriptor stays open (blocking: run it
    in a thread). The lock dies with the process, however it ends."""
    if path.is_dir():
        raise IsADirectoryError("it is a directory")
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreError(
            f"storage.path: {str(path)!r} is being crawled by another process;"
            " wait for it or stop it",
            exit_code=2,
        ) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


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


async def _fetch_all(
    db: aiosqlite.Connection, sql: str, params: tuple[object, ...] = ()
) -> list[tuple[Any, ...]]:
    async with db.execute(sql, params) as cursor:
        return [tuple(row) for row in await cursor.fetchall()]


@contextlib.contextmanager
def translated(
    what: str, *, exit_code: int = 1, explain: Callable[[str], str] | None = None
) -> Iterator[None]:
    """sqlite3's exceptions (and the OS errors behind them) become StoreError, naming what we
    were doing: the one place they are translated (the CLI, `query` and `stats` use it too).
    Exit code 2 where the cause is the user's (storage.path, a DB argument, their SQL);
    `explain` turns sqlite's message into the user's line instead."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__  # one line, whatever it said
        text = explain(message) if explain is not None else f"{what}: {message}"
        raise StoreError(text, exit_code=exit_code) from exc
