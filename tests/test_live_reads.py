"""The live view's reads (read_contract.py, rules 17-20) and the heartbeat that feeds them
(storage contract: `renew_hosts` writes the run's lag so far), on both backends.

Crawls are written through each backend's own `Storage` (backends.fill and the contract's
methods), and read through `open_reader` in a thread: the PostgreSQL reader runs an event
loop of its own, which cannot run inside the test's.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, closing
from pathlib import Path
from typing import TypeVar

import pytest
from backends import ENDED, STARTED, Backend, fill, found
from clocks import ManualClock

from crawler.config import DEFAULT_LEASE
from crawler.frontier.leases import Leases
from crawler.records import utc_at
from crawler.storage import Storage, open_reader
from crawler.storage.common import MACHINE
from crawler.storage.postgres import PostgresStore
from crawler.storage.read_contract import HeldHost, Reader, Span
from crawler.storage.sqlite import SQLiteStore

T = TypeVar("T")
SEEDS = ["https://a.test/", "https://b.test/"]


def opened(backend: Backend) -> AbstractAsyncContextManager[Storage]:
    if backend.kind == "sqlite":
        return SQLiteStore.open(Path(backend.location))
    return PostgresStore.open(backend.location)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Storage]:
    async with opened(backend) as store:
        yield store


async def read(backend: Backend, what: Callable[[Reader], T]) -> T:
    """`what` of a reader of the backend's database, opened and read in a thread."""

    def in_thread() -> T:
        with open_reader(backend.location) as reader:
            return what(reader)

    return await asyncio.to_thread(in_thread)


async def execute(backend: Backend, sql: str) -> None:
    """Plain SQL both backends run alike, committed on a connection of its own."""
    if backend.kind == "postgres":
        await backend.rows(sql)
        return
    with closing(sqlite3.connect(backend.location)) as db, db:
        db.execute(sql)


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# -- the heartbeat: renew_hosts writes the lag so far -----------------------------------------


async def test_each_heartbeat_writes_the_lag_so_far(backend: Backend, store: Storage) -> None:
    run = await store.start_run([found(s, 0) for s in SEEDS], 3, DEFAULT_LEASE)
    lag = "SELECT lag_p99_ms, lag_max_ms FROM runs"
    assert await backend.rows(lag) == [(None, None)]
    await store.renew_hosts([], lag=(0.0123, 0.0456))
    assert await backend.rows(lag) == [(12.3, 45.6)]
    await store.renew_hosts([])  # not measured this time: what was written stays
    assert await backend.rows(lag) == [(12.3, 45.6)]
    await store.renew_hosts([], lag=(0.02, 0.05))
    assert await backend.rows(lag) == [(20.0, 50.0)]
    await store.end_run(run.run_id, "finished", (0.021, 0.0601))
    assert await backend.rows(lag) == [(21.0, 60.1)]


async def test_the_leases_send_the_engines_lag_with_each_renewal(
    backend: Backend, store: Storage
) -> None:
    asked: list[int] = []

    async def lag() -> tuple[float, float]:
        asked.append(len(asked))
        return 0.001 * len(asked), 0.01 * len(asked)

    await store.start_run([found(s, 0) for s in SEEDS], 3, DEFAULT_LEASE)
    leases = Leases(store, ManualClock(), lease=DEFAULT_LEASE, timeout=5.0, lag=lag)
    await leases.claim(10)
    assert await leases.renew() == set()
    assert await backend.rows("SELECT lag_p99_ms, lag_max_ms FROM runs") == [(1.0, 10.0)]
    await leases.renew()
    assert await backend.rows("SELECT lag_p99_ms, lag_max_ms FROM runs") == [(2.0, 20.0)]
    assert asked == [0, 1]


# -- rule 17: live runs -----------------------------------------------------------------------


async def test_17_live_runs_are_the_running_ones_whose_process_is_alive(
    backend: Backend, store: Storage
) -> None:
    run = await store.start_run([found(s, 0) for s in SEEDS], 3, DEFAULT_LEASE)
    await store.renew_hosts([], lag=(0.004, 0.009))
    now = utc_at(time.time())
    gone = dead_pid()
    await execute(
        backend,
        "INSERT INTO runs (started_at, seeds, outcome, machine, pid, renewed_at, lease, pass)"
        f" VALUES ('{STARTED}', '', 'running', '{MACHINE}', {gone}, '{now}', 600, 1),"
        f" ('{STARTED}', '', 'running', 'far', 1, '{STARTED}', 60, 1),"  # no renewal: lapsed
        f" ('{STARTED}', '', 'running', 'far', 1, '{now}', 600, 1),"  # renewed: alive
        f" ('{STARTED}', '{ENDED}', 'finished', 'far', 1, '{now}', 600, 1)",
    )
    (ours, far) = await read(backend, lambda r: r.live_runs())
    assert (ours.id, ours.machine, ours.pages, ours.pass_number) == (run.run_id, MACHINE, 0, 1)
    assert (ours.lag_p99_ms, ours.lag_max_ms) == (4.0, 9.0)
    assert ours.renewed_at is not None
    assert (far.id, far.machine, far.started_at, far.lag_p99_ms) == (4, "far", STARTED, None)
    await store.end_run(run.run_id, "finished", None)
    assert [r.id for r in await read(backend, lambda r: r.live_runs())] == [4]


# -- rule 18: hosts held now ------------------------------------------------------------------


async def test_18_held_hosts_are_those_a_live_run_holds_now(
    backend: Backend, store: Storage
) -> None:
    run = await store.start_run([found(s, 0) for s in SEEDS], 3, DEFAULT_LEASE)
    assert await read(backend, lambda r: r.held_hosts()) == []
    claimed = await store.claim_hosts(10)
    held = await read(backend, lambda r: r.held_hosts())
    assert held == [
        HeldHost("a.test", run.run_id, None, None, 0, 0, 0),
        HeldHost("b.test", run.run_id, None, None, 0, 0, 0),
    ]
    await store.release_hosts([c for c in claimed if c.host == "a.test"])
    await execute(backend, "UPDATE hosts SET delay = 2.5, delay_reason = 'backoff'")
    assert await read(backend, lambda r: r.held_hosts()) == [
        HeldHost("b.test", run.run_id, 2.5, "backoff", 0, 0, 0)
    ]
    await execute(backend, "UPDATE hosts SET lease_until = 1")  # lapsed
    assert await read(backend, lambda r: r.held_hosts()) == []


async def test_18_a_host_held_by_a_gone_run_is_not_shown(backend: Backend, store: Storage) -> None:
    run = await store.start_run([found(s, 0) for s in SEEDS], 3, DEFAULT_LEASE)
    await store.claim_hosts(10)
    await execute(backend, f"UPDATE runs SET pid = {dead_pid()} WHERE id = {run.run_id}")
    assert await read(backend, lambda r: r.held_hosts()) == []


# -- rule 19: pages over time -----------------------------------------------------------------


async def test_19_the_timeline_of_a_finished_crawl_ends_at_its_last_fetch(
    backend: Backend, store: Storage
) -> None:
    await fill(store)  # pages fetched at 00:00:01.5 .. 00:00:10.5, one a second
    spans = await read(backend, lambda r: r.timeline(10, 4))
    assert spans == [
        Span("2026-11-24T23:59:40.000Z", 0),
        Span("2026-11-24T23:59:50.000Z", 0),
        Span("2026-11-25T00:00:00.000Z", 9),
        Span("2026-11-25T00:00:10.000Z", 1),
    ]
    assert await read(backend, lambda r: r.timeline(1, 2)) == [
        Span("2026-11-25T00:00:09.000Z", 1),
        Span("2026-11-25T00:00:10.000Z", 1),
    ]
    by_minute = await read(backend, lambda r: r.timeline(60, 2))
    assert by_minute == [Span("2026-11-24T23:59:00.000Z", 0), Span("2026-11-25T00:00:00.000Z", 10)]


async def test_19_while_a_run_is_live_the_timeline_ends_now(
    backend: Backend, store: Storage
) -> None:
    await fill(store)
    await store.start_run([], 3, DEFAULT_LEASE)
    before = utc_at(time.time() - 10)
    spans = await read(backend, lambda r: r.timeline(1, 5))
    assert len(spans) == 5
    # A lower bound only: the database's clock reads "now" after `before` was taken, and a busy
    # machine only moves it later.
    assert spans[-1].start >= before[:19]
    assert {s.pages for s in spans} == {0}  # fill's pages are from 2026-11-25


# -- rule 20: the whole view ------------------------------------------------------------------


async def test_20_the_crawls_state_running_then_finished_or_stopped(
    backend: Backend, store: Storage
) -> None:
    assert (await read(backend, lambda r: r.live())).state == "empty"
    run = await store.start_run([found(s, 0) for s in SEEDS], 3, DEFAULT_LEASE)
    await store.claim_hosts(10)
    live = await read(backend, lambda r: r.live(10, 3))
    assert live.state == "running"
    assert [r.id for r in live.runs] == [run.run_id]
    assert [h.host for h in live.hosts] == ["a.test", "b.test"]
    assert live.counts.url_states["queued"] == 2
    assert len(live.timeline) == 3
    assert live.bucket == 10
    await store.end_run(run.run_id, "interrupted", None)
    stopped = await read(backend, lambda r: r.live())
    assert (stopped.state, stopped.runs, stopped.hosts) == ("stopped", (), ())
    run = await store.start_run([], 3, DEFAULT_LEASE)
    await store.end_run(run.run_id, "limit", None)
    assert (await read(backend, lambda r: r.live())).state == "finished"


async def test_20_one_snapshot_agrees_with_the_counts(backend: Backend, store: Storage) -> None:
    await fill(store)
    await execute(backend, f"UPDATE runs SET started_at = '{STARTED}', ended_at = '{ENDED}'")
    live, counts = await read(backend, lambda r: (r.live(60, 2), r.counts()))
    assert live.counts == counts
    assert live.state == "finished"  # fill's run ended 'limit'
    assert sum(s.pages for s in live.timeline) == counts.pages
