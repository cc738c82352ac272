"""The PostgreSQL backend: one crawl shared by any number of processes on any number of machines.

Each run claims hosts for a lease (`claim_hosts`, one statement, FOR UPDATE SKIP LOCKED), renews
it, and commits outcomes only for hosts it still holds (`save` checks them FOR SHARE in its own
transaction). Saves are in postgres_writes; the schema in postgres_schema.

Resource handling: `PostgresStore.open()` is an async context manager owning an asyncpg pool
(1 to 4 connections), closed on exit. Every method takes a connection for one statement or one
transaction and gives it back.
Error handling: asyncpg's exceptions (and the OS errors behind them) become StoreError in
`translated`, here and nowhere else: exit code 2 while opening (the user's storage.url: a bad
URL, no server, authentication, a missing database), 1 afterwards. A transaction that deadlocks
or fails to serialize with another process's is run again, a few times, before that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Sequence
from typing import Any, TypeVar

import asyncpg

from ..config import DEFAULT_LEASE
from ..errors import StoreError
from ..records import Discovered, HostRecord, Outcome, QueuedURL, RobotsRecord
from . import postgres_runs as runs
from . import postgres_writes as writes
from .common import (
    HOST_SELECT,
    HOSTS_WITH_WORK,
    MACHINE,
    PAGES_THIS_PASS,
    ROBOTS_SELECT,
    claimed,
    lag_ms,
    reservation_counts,
    run_is_gone,
    taken_over,
)
from .contract import Batch, ResumeState
from .opening import shown
from .postgres_schema import SchemaTooNewError, migrate
from .postgres_sessions import fence, session_name
from .postgres_writes import NOW

_T = TypeVar("_T")
logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0  # seconds to reach the server
ATTEMPTS = 5  # tries of a transaction that deadlocked or failed to serialize
ANALYZE_FIRST = 500  # outcomes saved before the first ANALYZE (then at 5,000, 50,000, ...)
MAX_KNOWN_HOSTS = 100_000  # host names remembered as having a row, at most
# Deadlocks and failures to serialize abort a transaction; so does the server when a session
# sits in a transaction longer than the lease (a process stopped mid-transaction, see open).
_RETRYABLE = (
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.exceptions.IdleInTransactionSessionTimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,  # the server ended it, as just said
    asyncpg.InterfaceError,  # "the underlying connection is closed", for the same reason
    asyncpg.InternalClientError,  # the same, seen as "cannot switch to state" (see _on)
)
_NEXT_QUEUED = (
    "SELECT id, url, host, depth, redirects, sitemap FROM urls"
    " WHERE host = $1 AND state = 'queued' AND NOT id = ANY($3::bigint[])"
    " ORDER BY depth, id LIMIT $2"
)
# In a recrawl, with the validators of the version stored (rule 14).
_NEXT_QUEUED_AGAIN = (
    "SELECT u.id, u.url, u.host, u.depth, u.redirects, u.sitemap, p.etag, p.last_modified"
    " FROM urls u LEFT JOIN pages p ON md5(p.url)::uuid = md5(u.url)::uuid AND p.url = u.url"
    " WHERE u.host = $1 AND u.state = 'queued' AND NOT u.id = ANY($3::bigint[])"
    " ORDER BY u.depth, u.id LIMIT $2"
)
_BUDGET_LOCK = 0x70616765  # pg_advisory_xact_lock key of reserve_pages ("page")
# runs.RUNNING's columns, then pages, whether the run is of this pass (its pages count), and
# whether it holds a reservation (a running run with pages reserved).
_BUDGET_ROWS = (
    f"{runs.RUNNING.removesuffix(' FROM runs')}, pages, pass = $1,"
    " outcome = 'running' AND reserved > 0 FROM runs"
    " WHERE pass = $1 OR (outcome = 'running' AND reserved > 0)"
)

_CLAIM = f"""
WITH picked AS (
    SELECT host AS picked, owner AS previous FROM hosts h
    WHERE (owner IS NULL OR lease_until IS NULL OR lease_until <= {NOW})
      AND EXISTS (SELECT 1 FROM urls u WHERE u.host = h.host AND u.state = 'queued')
    ORDER BY next_start_at NULLS FIRST, host
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE hosts SET owner = $1, lease_until = {NOW} + $3, claims = claims + 1
FROM picked WHERE hosts.host = picked.picked
RETURNING picked.previous, {NOW}, claims,
    ({PAGES_THIS_PASS.format(host="hosts.host", run="$1")}), {HOST_SELECT}
"""

# Host rows are locked in the order of their names, as `save` locks them.
_RENEW = f"""
UPDATE hosts SET lease_until = {NOW} + $3
FROM (SELECT host FROM hosts WHERE owner = $1 AND host = ANY($2::text[])
      ORDER BY host FOR UPDATE) AS mine
WHERE hosts.host = mine.host
RETURNING hosts.host
"""


class PostgresStore:
    """The PostgreSQL backend (storage/contract.py), on an asyncpg pool."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._run_id = 0
        self._max_depth = 0
        self._lease = DEFAULT_LEASE
        self._known_hosts: set[str] = set()  # hosts rows that exist: not sent again
        self._saved = 0  # outcomes this store saved
        self._analyze_at = ANALYZE_FIRST  # ... when it runs ANALYZE next (then ten times more)
        self._pass = 1  # the run's pass (rule 14), from start_run
        self._fenced: set[int] = set()  # runs whose sessions were ended (sessions.fence)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, url: str, lease: float = DEFAULT_LEASE) -> AsyncIterator[PostgresStore]:
        """Connect to the database at `url`, create or migrate its schema.

        A process stopped in the middle of a transaction (SIGSTOP, a long pause) would keep
        its rows locked, and the hosts it holds could not be claimed by others however long
        ago their leases lapsed: the server ends such a transaction after `lease` seconds."""
        idle = str(max(1000, int(lease * 1000)))  # milliseconds
        async with contextlib.AsyncExitStack() as stack:
            with translated(f"storage.url: cannot use {shown(url)!r}", exit_code=2, opening=True):
                pool = await asyncpg.create_pool(
                    url,
                    min_size=1,
                    max_size=4,
                    timeout=CONNECT_TIMEOUT,
                    server_settings={
                        "idle_in_transaction_session_timeout": idle,
                        "application_name": session_name(MACHINE, os.getpid()),
                    },
                )
                stack.push_async_callback(_close, pool)
                async with pool.acquire() as conn:
                    await migrate(conn)
            yield cls(pool)

    async def start_run(
        self,
        seeds: Sequence[Discovered],
        max_depth: int,
        lease: float,
        new_pass: bool = False,
    ) -> ResumeState:
        self._max_depth, self._lease = max_depth, lease
        with translated("cannot start the run"):
            run_id, earlier, started_at, self._pass, started = await self._transaction(
                runs.start_run, seeds, max_depth, lease, new_pass
            )
            self._run_id = run_id
            by_host = await self._statement(
                lambda conn: conn.fetch(
                    "SELECT host, count(*) FROM fetches WHERE pass = $1 GROUP BY host", self._pass
                )
            )
            robots = await self._statement(
                lambda conn: conn.fetch(
                    "SELECT origin, host, status, body, error, fetched_at FROM robots"
                )
            )
        pages_by_host = {row[0]: int(row[1]) for row in by_host}
        return ResumeState(
            run_id=run_id,
            resumed=earlier,
            pages=sum(pages_by_host.values()),
            pages_by_host=pages_by_host,
            robots=[RobotsRecord(*row) for row in robots],
            started_at=started_at,
            pass_number=self._pass,
            pass_start=started,
        )

    async def end_run(self, run_id: int, outcome: str, lag: tuple[float, float] | None) -> None:
        p99, worst = lag_ms(lag)
        with translated("cannot record the end of the run"):
            await self._statement(
                lambda conn: conn.execute(runs.END_RUN, run_id, outcome, p99, worst)
            )

    async def claim_hosts(self, limit: int) -> list[HostRecord]:
        with translated("cannot claim hosts"):
            rows = await self._statement(
                lambda conn: conn.fetch(_CLAIM, self._run_id, limit, self._lease)
            )
        return [
            taken_over(claimed(row[4:], row[2], row[3]), row[0], self._run_id, row[1])
            for row in rows
        ]

    async def renew_hosts(
        self, hosts: Collection[str], lag: tuple[float, float] | None = None
    ) -> set[str]:
        # Two statements, not one transaction: a save locks its hosts first, its run's row last.
        p99, worst = lag_ms(lag)
        with translated("cannot renew the hosts' lease"):
            rows = await self._statement(
                lambda conn: conn.fetch(_RENEW, self._run_id, sorted(hosts), self._lease)
            )
            await self._statement(
                lambda conn: conn.execute(runs.HEARTBEAT, self._run_id, p99, worst)
            )
        return {row[0] for row in rows}

    async def release_hosts(self, hosts: Sequence[HostRecord]) -> None:
        also = ", owner = NULL, lease_until = NULL"
        with translated("cannot release hosts"):
            await self._statement(lambda conn: writes.save_hosts(conn, self._run_id, hosts, also))

    async def live_runs(self) -> int:
        with translated("cannot read the runs"):
            rows = await self._statement(
                lambda conn: conn.fetch(f"{runs.RUNNING} WHERE outcome = 'running'")
            )
        gone = [r for r in rows if r[0] != self._run_id and run_is_gone(r, r[6])]
        self._fenced.intersection_update(r[0] for r in gone)  # a run that renewed may lapse again
        fresh = [r for r in gone if r[0] not in self._fenced]
        if fresh:
            self._fenced.update(r[0] for r in fresh)
            with translated("cannot end the sessions of lapsed runs"):
                await self._statement(lambda conn: fence(conn, fresh))
        return len(rows) - len(gone)

    async def hosts_with_work(self) -> int:
        with translated("cannot read the frontier"):
            return int(await self._statement(lambda conn: conn.fetchval(HOSTS_WITH_WORK)))

    async def robots_of(self, hosts: Collection[str]) -> list[RobotsRecord]:
        with translated("cannot read robots.txt answers"):
            rows = await self._statement(
                lambda conn: conn.fetch(
                    f"{ROBOTS_SELECT} WHERE host = ANY($1::text[])", list(hosts)
                )
            )
        return [RobotsRecord(*row) for row in rows]

    async def next_queued(self, host: str, limit: int, taken: Collection[int]) -> list[QueuedURL]:
        # Taken URLs are still 'queued' until their outcome commits: read past them.
        with translated("cannot read the frontier"):
            query = _NEXT_QUEUED if self._pass == 1 else _NEXT_QUEUED_AGAIN
            rows = await self._statement(lambda conn: conn.fetch(query, host, limit, list(taken)))
        return [QueuedURL(*row) for row in rows]

    async def count_queued(self) -> int:
        with translated("cannot read the frontier"):
            count = await self._statement(
                lambda conn: conn.fetchval("SELECT count(*) FROM urls WHERE state = 'queued'")
            )
        return int(count)

    async def reserve_pages(self, wanted: int, max_pages: int) -> int:
        if not max_pages:
            return wanted
        with translated("cannot reserve pages"):
            return await self._transaction(self._reserve_pages, wanted, max_pages)

    async def _reserve_pages(self, conn: Any, wanted: int, max_pages: int) -> int:
        # One reservation at a time, crawl-wide; what it reads is committed before the lock.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _BUDGET_LOCK)
        # One statement, so one snapshot: a save that commits meanwhile moves a page from a
        # run's `reserved` to its `pages`, and two reads could see it in neither (one page
        # over max_pages, seen with --processes 3 on a busy machine).
        rows = await conn.fetch(_BUDGET_ROWS, self._pass)
        fetched: int = sum(r[7] for r in rows if r[8])
        reserved: int = sum(
            r[5] for r in rows if r[9] and (r[0] == self._run_id or reservation_counts(r, r[6]))
        )
        granted = max(0, min(wanted, max_pages - fetched - reserved))
        await conn.execute(
            "UPDATE runs SET reserved = reserved + $2 WHERE id = $1", self._run_id, granted
        )
        return granted

    async def save(self, batch: Batch) -> list[Outcome]:
        with translated("cannot write the crawl to the database"):
            lost, added = await self._transaction(
                writes.save, batch, self._run_id, self._max_depth, self._known_hosts, self._pass
            )
        if len(self._known_hosts) < MAX_KNOWN_HOSTS:
            self._known_hosts.update(added)
        self._saved += len(batch.outcomes)
        if self._saved >= self._analyze_at:
            await self._analyze()
        return lost

    async def _analyze(self) -> None:
        """Fresh planner statistics while the tables grow from nothing. Autovacuum looks at a
        database once a minute: until it analyzes, the plans for the depth relaxation (rule 3)
        scan `links` (50-400 ms a save, make bench-scale), after it they probe its index."""
        self._analyze_at *= 10
        with translated("cannot analyze the crawl's tables"):
            await self._statement(lambda conn: conn.execute("ANALYZE urls, pages, links"))

    async def _transaction(self, fn: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        """fn(connection, *args) in a transaction, run again if it deadlocked or could not
        serialize with another process's (each waited on the other: one of them gives up)."""
        return await self._retried(fn, *args, transaction=True)

    async def _statement(self, fn: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        """fn(connection, *args), one statement (atomic by itself), run again as above."""
        return await self._retried(fn, *args, transaction=False)

    async def _retried(self, fn: Callable[..., Awaitable[_T]], *args: Any, transaction: bool) -> _T:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with self._pool.acquire() as conn:
                    return await _on(conn, fn, *args, transaction=transaction)
            except _RETRYABLE:
                if attempt == ATTEMPTS:
                    raise
                await asyncio.sleep(random.uniform(0, 0.05 * attempt))
        raise AssertionError("unreachable")


async def _on(conn: Any, fn: Callable[..., Awaitable[_T]], *args: Any, transaction: bool) -> _T:
    try:
        if not transaction:
            return await fn(conn, *args)
        async with conn.transaction():
            return await fn(conn, *args)
    except asyncpg.InternalClientError:
        # A session the server ended mid-transaction sometimes leaves asyncpg's protocol in
        # a state it cannot leave (MagicStack/asyncpg#1069): the pool must not lend it again.
        conn.terminate()
        raise


async def _close(pool: Any) -> None:
    with translated("cannot close the database connections"):
        await pool.close()


@contextlib.contextmanager
def translated(what: str, *, exit_code: int = 1, opening: bool = False) -> Iterator[None]:
    """asyncpg's exceptions (and the OS errors behind them) become StoreError, naming what we
    were doing, on one line: the one place they are translated. `opening`: also a URL that
    asyncpg cannot read (ValueError and the like) and a schema from a newer crawler."""
    extra: tuple[type[BaseException], ...] = (
        (ValueError, OverflowError, SchemaTooNewError) if opening else ()
    )
    try:
        yield
    except (
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,
        OSError,
        *extra,
    ) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise StoreError(f"{what}: {message}", exit_code=exit_code) from exc
