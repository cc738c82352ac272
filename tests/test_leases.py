"""Leases on a manual clock over a real SQLite store: what a renewal decides when the hosts it
asked about changed hands while it was on its way."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from pathlib import Path

from clocks import ManualClock

from crawler.frontier.leases import Leases
from crawler.records import Discovered
from crawler.storage.sqlite import SQLiteStore

LEASE = 60.0


class HeldBackStore(SQLiteStore):
    """A real store whose renewal answers only when the test lets it (after the database has
    answered): what other calls did meanwhile is what the test is about."""

    answer = asyncio.Event()

    async def renew_hosts(
        self, hosts: Collection[str], lag: tuple[float, float] | None = None
    ) -> set[str]:
        kept = await super().renew_hosts(hosts, lag)
        await self.answer.wait()
        return kept


async def test_a_host_claimed_again_while_a_renewal_was_asked_stays_held(tmp_path: Path) -> None:
    clock = ManualClock()
    async with HeldBackStore.open(tmp_path / "crawl.db") as store:
        assert isinstance(store, HeldBackStore)
        store.answer = asyncio.Event()
        seeds = [Discovered(f"http://{h}/", h, 0, "queued", None, None) for h in ("a", "b")]
        await store.start_run(seeds, 5, LEASE)
        leases = Leases(store, clock, lease=LEASE, timeout=5.0)
        records = await leases.claim(10)
        assert sorted(leases.held) == ["a", "b"]
        # Host a is given back in storage: the renewal will not find it held ...
        await store.release_hosts([r for r in records if r.host == "a"])
        clock.advance(1.0)
        renewal = asyncio.create_task(leases.renew())
        await asyncio.sleep(0.1)  # the renewal is waiting for its answer
        # ... and, while it is on its way, this run claims a again: a new lease.
        clock.advance(1.0)
        assert [r.host for r in await leases.claim(10)] == ["a"]
        store.answer.set()

        lost = await renewal

    assert lost == set()
    assert sorted(leases.held) == ["a", "b"]
    # a's lease ends a lease after its new claim (at 1002), b's a lease after the renewal was
    # sent (at 1001): a request of up to 5 s may start until 5 s before that.
    assert clock.now() == 1002.0
    assert [leases.can_start("a", t) for t in (1056.9, 1057.0)] == [True, False]
    assert [leases.can_start("b", t) for t in (1055.9, 1056.0)] == [True, False]


async def test_a_host_lost_while_held_is_reported_lost(tmp_path: Path) -> None:
    clock = ManualClock()
    async with HeldBackStore.open(tmp_path / "crawl.db") as store:
        assert isinstance(store, HeldBackStore)
        store.answer = asyncio.Event()
        store.answer.set()
        seeds = [Discovered("http://a/", "a", 0, "queued", None, None)]
        await store.start_run(seeds, 5, LEASE)
        leases = Leases(store, clock, lease=LEASE, timeout=5.0)
        records = await leases.claim(10)
        await store.release_hosts(records)  # as a takeover by another run would

        lost = await leases.renew()

    assert lost == {"a"}
    assert leases.held == []
