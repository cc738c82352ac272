"""The SQLite backend's writing connection, in a thread of its own, and how it binds many rows
per statement.

Resource handling: `WriterThread.open()` owns the thread and the connection; the connection is
closed in that thread on exit, after whatever was handed to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

_T = TypeVar("_T")

ROWS_PER_STATEMENT = 128  # at most; fewer for wide rows (see per_statement)
VARIABLES = 999  # SQLite's oldest limit of variables a statement (32,766 since 3.32)


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
    # 8 MB of page cache instead of 2: the url indexes of a big crawl stay in it. 16 MB cost the
    # process 10-17 MB more at its peak for no CPU that interleaved rounds could tell apart, on
    # the docs, the 64 hosts and the million-URL site (bench/README.md, 2026-12-08).
    db.execute("PRAGMA cache_size = -8000")
    return db


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def insert_rows(
    db: sqlite3.Connection,
    sql: str,
    rows: Sequence[Sequence[object]],
    pad: Sequence[object] | None = None,
) -> None:
    """Run an INSERT whose `{rows}` takes one "(?, ...)" per row, for many rows at a time:
    executemany would step once per row, and between two steps the writer thread waits for the
    GIL, which the event loop holds. `pad`: the row that fills a last chunk (see chunks), for
    a plain INSERT that must leave it out (`WHERE column1 IS NOT NULL`, say)."""
    if not rows:
        return
    width = len(rows[0])
    for chunk in chunks(rows, per_statement(width), pad):
        params = list(itertools.chain.from_iterable(chunk))
        db.execute(with_rows(sql, len(chunk), width), params)


def per_statement(width: int) -> int:
    """Rows of `width` columns a statement: a power of two, within VARIABLES."""
    fit = min(ROWS_PER_STATEMENT, VARIABLES // max(1, width))
    return 1 << (fit.bit_length() - 1)


def chunks(
    rows: Sequence[_T], size: int = ROWS_PER_STATEMENT, pad: _T | None = None
) -> Iterator[Sequence[_T]]:
    """`rows` by `size`, the last chunk padded to a power of two by repeating its last row (or
    with `pad`). sqlite3 keeps a prepared statement for each chunk size, and one of 128 rows is
    a 110 KB program: any size made 7 MB of them. The repeat changes nothing: every statement
    fed by chunks is an upsert that a row repeated leaves as it was, or an `IN` list."""
    for start in range(0, len(rows), size):
        chunk = rows[start : start + size]
        missing = (1 << (len(chunk) - 1).bit_length()) - len(chunk)
        filler = chunk[-1] if pad is None else pad
        yield [*chunk, *[filler] * missing] if missing else chunk


@functools.lru_cache(maxsize=64)
def with_rows(sql: str, rows: int, width: int) -> str:
    return sql.format(rows=", ".join(["(" + ", ".join("?" * width) + ")"] * rows))


@functools.lru_cache(maxsize=64)
def marks(count: int) -> str:
    """`?, ?, ...`: `count` placeholders, for an `IN` list."""
    return ", ".join("?" * count)
