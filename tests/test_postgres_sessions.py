"""The PostgreSQL store outlives the server ending its sessions: the idle-in-transaction timeout
(a process stopped mid-transaction) or an administrator's pg_terminate_backend. Each operation
runs again on a fresh connection; none of them fails the crawl."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest
from backends import pg_rows
from yarl import URL

from crawler.config import DEFAULT_LEASE
from crawler.records import Discovered, Outcome, PageRecord, utc_now
from crawler.storage import Batch
from crawler.storage.common import MACHINE
from crawler.storage.postgres import PostgresStore
from crawler.storage.postgres_sessions import session_name

SEED = "http://a.test/"
SEED_FOUND = Discovered(SEED, "a.test", 0, "queued", None, None)


async def _end_other_sessions(url: str) -> int:
    """Terminate every other session on this database; returns how many there were."""
    conn = await asyncpg.connect(url)
    try:
        ended = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return len(ended)


def _page(url: str) -> PageRecord:
    return PageRecord(
        url=url, host=URL(url).host or "", status=200, content_type="text/html", title="t",
        body=b"<p>", bytes=3, truncated=False, depth=0, fetched_at=utc_now(), elapsed_ms=1,
        error=None, location=None,
    )  # fmt: skip


async def test_every_operation_survives_its_sessions_ended(pg_url: str) -> None:
    async with PostgresStore.open(pg_url) as store:
        await store.start_run([SEED_FOUND], 5, DEFAULT_LEASE)
        (record,) = await store.claim_hosts(10)

        assert await _end_other_sessions(pg_url) >= 1
        (queued,) = await store.next_queued("a.test", 10, ())
        assert await _end_other_sessions(pg_url) >= 1
        assert await store.count_queued() == 1
        assert await _end_other_sessions(pg_url) >= 1
        assert await store.live_runs() == 1
        assert await _end_other_sessions(pg_url) >= 1
        queued.claim = record.claim
        lost = await store.save(Batch([Outcome(queued, "done", page=_page(SEED))]))

        assert lost == []
        assert await _end_other_sessions(pg_url) >= 1
        assert await store.count_queued() == 0
        assert await store.hosts_with_work() == 0


@contextlib.asynccontextmanager
async def stalled_run(pg_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A run of a process of this machine that stopped renewing long ago (its pid is free, so
    it is gone by its pid too), whose session holds a.test's row locked, as a process stopped
    halfway through a statement would."""
    pid = 4_000_000
    name = session_name(MACHINE, pid)
    conn = await asyncpg.connect(pg_url, server_settings={"application_name": name})
    try:
        await conn.execute(
            "INSERT INTO runs (started_at, seeds, machine, pid, renewed_at, lease)"
            " VALUES ('2026-01-01T00:00:00.000Z', '', $1, $2, '2026-01-01T00:00:00.000Z', 60)",
            MACHINE, pid,
        )  # fmt: skip
        await conn.execute("BEGIN")
        await conn.execute("SELECT * FROM hosts WHERE host = 'a.test' FOR UPDATE")
        yield conn
    finally:
        conn.terminate()


async def _ended(conn: asyncpg.Connection) -> bool:
    try:
        await conn.execute("SELECT 1")
    except (
        asyncpg.ConnectionDoesNotExistError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,  # the server ended it: asyncpg#1069, see postgres._on
    ):
        return True
    return False


async def test_a_run_ends_the_sessions_of_runs_whose_lease_lapsed(pg_url: str) -> None:
    """A process stopped in the middle of a statement keeps its session 'active' (no server
    timeout ends it) and its locks: the live runs end it once its lease has lapsed."""
    async with PostgresStore.open(pg_url) as store:
        await store.start_run([SEED_FOUND], 5, DEFAULT_LEASE)
        async with stalled_run(pg_url) as stalled:
            assert await store.live_runs() == 1  # itself; the stalled run is gone ...

            assert await _ended(stalled)  # ... and its session was ended,
            assert [r.host for r in await store.claim_hosts(10)] == ["a.test"]  # its lock too


async def test_a_starting_run_ends_the_sessions_of_runs_it_finds_gone(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with PostgresStore.open(pg_url) as store:
        first = await store.start_run([SEED_FOUND], 5, DEFAULT_LEASE)
        await store.end_run(first.run_id, "interrupted", None)
    async with stalled_run(pg_url) as stalled, PostgresStore.open(pg_url) as store:
        await store.start_run([], 5, DEFAULT_LEASE)

        assert await _ended(stalled)
        assert [r.host for r in await store.claim_hosts(10)] == ["a.test"]
    # The session was seen gone within start_run's transaction (a fresh snapshot each look).
    assert "ended 1 database sessions" in caplog.text
    assert "still there" not in caplog.text
    outcomes = await pg_rows(pg_url, "SELECT outcome FROM runs ORDER BY id")
    assert outcomes == [("interrupted",), ("crashed",), ("running",)]
