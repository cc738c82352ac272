"""The storage contract (crawler/storage/contract.py), rule by rule, on both backends: SQLite in
tmp_path and PostgreSQL on the throwaway server (tests/pgserver.py). Everything goes through the
contract's methods; tables are read on the backend's own read path (`Db.rows`).

Rules that need two runs crawling at once (SQLite holds one at a time) run on PostgreSQL only.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, closing
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from yarl import URL

from crawler.config import DEFAULT_LEASE
from crawler.errors import StoreError
from crawler.records import (
    Discovered,
    HostRecord,
    LinkRecord,
    Outcome,
    PageRecord,
    QueuedURL,
    RobotsRecord,
    SitemapRecord,
    utc_at,
    utc_now,
)
from crawler.storage import Batch, ResumeState, Storage, open_reader
from crawler.storage.postgres import PostgresStore
from crawler.storage.sqlite import SQLiteStore

T = TypeVar("T")
SEED = "http://a.test/"
SHORT_LEASE = 0.5  # seconds


@dataclass
class Db:
    """One crawl database, on one backend."""

    kind: str
    location: Any  # a Path (SQLite) or a URL (PostgreSQL)

    def open(self) -> AbstractAsyncContextManager[Storage]:
        if self.kind == "sqlite":
            return SQLiteStore.open(self.location)
        return PostgresStore.open(self.location)

    async def columns(self, table: str) -> list[str]:
        """The names of `table`'s columns, in order."""
        if self.kind == "sqlite":
            return [row[1] for row in await self.rows(f"PRAGMA table_info({table})")]
        return [
            row[0]
            for row in await self.rows(
                "SELECT column_name FROM information_schema.columns"
                f" WHERE table_name = '{table}' ORDER BY ordinal_position"
            )
        ]

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of `sql` (plain SQL both backends read alike), read apart from the store."""
        if self.kind == "sqlite":
            with closing(sqlite3.connect(self.location)) as db:
                return [tuple(row) for row in db.execute(sql)]
        conn = await asyncpg.connect(self.location)
        try:
            return [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Db:
    if request.param == "sqlite":
        return Db("sqlite", tmp_path / "crawl.db")
    return Db("postgres", request.getfixturevalue("make_pg_url")())


@pytest.fixture
async def store(db: Db) -> AsyncIterator[Storage]:
    async with db.open() as opened:
        yield opened


postgres_only = pytest.mark.parametrize("db", ["postgres"], indirect=True)


def found(
    url: str, depth: int, state: str = "queued", reason: str | None = None, src: str | None = SEED
) -> Discovered:
    return Discovered(url, URL(url).host or "", depth, state, reason, src)  # type: ignore[arg-type]


def page(url: str, depth: int) -> PageRecord:
    return PageRecord(
        url=url, host=URL(url).host or "", status=200, content_type="text/html", title="t",
        body=b"<p>", bytes=3, truncated=False, depth=depth, fetched_at=utc_now(), elapsed_ms=1,
        error=None, location=None, sha256=hashlib.sha256(b"<p>").hexdigest(),
    )  # fmt: skip


def fetched(
    q: QueuedURL, links: Sequence[LinkRecord] = (), discovered: Sequence[Discovered] = ()
) -> Outcome:
    return Outcome(q, "done", page=page(q.url, q.depth), links=[*links], discovered=[*discovered])


_CLAIMS: dict[int, dict[str, int]] = {}  # id(store): host: the claim it holds the host under


async def claim(store: Storage, limit: int) -> list[HostRecord]:
    """store.claim_hosts, remembering each host's claim for `take` (as the frontier does)."""
    records = await store.claim_hosts(limit)
    _CLAIMS.setdefault(id(store), {}).update((r.host, r.claim) for r in records)
    return records


async def begin(
    store: Storage, seeds: Sequence[str] = (SEED,), max_depth: int = 5, lease: float = DEFAULT_LEASE
) -> ResumeState:
    """Start a run with these seeds and claim every host it can."""
    resume = await store.start_run([found(s, 0, src=None) for s in seeds], max_depth, lease)
    await claim(store, 100)
    return resume


async def take(store: Storage, url: str) -> QueuedURL:
    """The queued URL `url`, as the frontier takes it."""
    host = URL(url).host or ""
    queued = await store.next_queued(host, 1000, ())
    (match,) = [q for q in queued if q.url == url]
    match.claim = _CLAIMS.get(id(store), {}).get(host, 0)
    return match


async def eventually(probe: Callable[[], Awaitable[T]], done: Callable[[T], bool]) -> T:
    """Poll `probe` until `done` says yes (10 s at most): for leases to lapse."""
    async with asyncio.timeout(10):
        while not done(value := await probe()):  # noqa: ASYNC110 (a lease lapsing: poll)
            await asyncio.sleep(0.05)
    return value


async def url_rows(db: Db) -> list[tuple[Any, ...]]:
    return await db.rows("SELECT url, depth, state, reason, discovered_from FROM urls ORDER BY url")


# -- the data -------------------------------------------------------------------------------


async def test_rule_1_depth_only_goes_down(db: Db, store: Storage) -> None:
    await begin(store)
    seed = await take(store, SEED)
    x = "http://a.test/x"
    await store.save(Batch([fetched(seed, discovered=[found(x, 3, src="http://a.test/p3")])]))
    assert await store.save(Batch([Outcome(seed, "done")])) == []
    batch = Batch([Outcome(seed, "done", discovered=[
        found(x, 4, src="http://a.test/p4"), found(x, 2, src="http://a.test/p2"),
        found(x, 2, src="http://a.test/other2"),  # as near as the first: changes nothing
    ])])  # fmt: skip
    await store.save(batch)
    await store.save(
        Batch([Outcome(seed, "done", discovered=[found(x, 5, src="http://a.test/p5")])])
    )
    assert (await url_rows(db))[1] == (x, 2, "queued", None, "http://a.test/p2")


async def test_rule_2_depth_skips_come_back_other_skips_stay(db: Db, store: Storage) -> None:
    await begin(store, max_depth=2)
    seed = await take(store, SEED)
    deep, excluded = "http://a.test/deep", "http://a.test/excluded"
    await store.save(Batch([fetched(seed, discovered=[
        found(deep, 3, "skipped", "depth"), found(excluded, 3, "skipped", "exclude"),
    ])]))  # fmt: skip
    await store.save(Batch([Outcome(seed, "done", discovered=[
        found(deep, 2), found(excluded, 2),
    ])]))  # fmt: skip
    assert (await url_rows(db))[1:] == [
        (deep, 2, "queued", None, SEED),
        (excluded, 2, "skipped", "exclude", SEED),
    ]


async def test_rule_3_a_fetched_page_follows_its_url_recursively(db: Db) -> None:
    p, q, r, n = (f"http://a.test/{name}" for name in "pqrn")
    async with db.open() as store:
        first = await begin(store, max_depth=2)
        seed = await take(store, SEED)
        await store.save(Batch([fetched(seed, [(SEED, p, False, "")], [found(p, 1)])]))
        page_p = await take(store, p)
        await store.save(Batch([fetched(page_p, [(p, q, False, "")], [found(q, 2, src=p)])]))
        page_q = await take(store, q)
        links = [(q, r, False, ""), (q, n, True, "")]
        too_deep = [found(r, 3, "skipped", "depth", q), found(n, 3, "skipped", "depth", q)]
        await store.save(Batch([fetched(page_q, links, too_deep)]))
        await store.end_run(first.run_id, "finished", None)
    async with db.open() as store:
        await begin(store, seeds=[SEED, p], max_depth=2)  # p is a seed now: depth 0
    pages = await db.rows("SELECT url, depth FROM pages ORDER BY url")
    assert pages == [(SEED, 0), (p, 0), (q, 1)]
    assert (await url_rows(db))[1:] == [
        (n, 3, "skipped", "depth", q),  # nofollow: not followed, not relaxed
        (p, 0, "done", None, None),
        (q, 1, "done", None, p),
        (r, 2, "queued", None, q),  # back in reach
    ]


async def test_rule_3_a_page_fetched_while_its_depth_dropped(db: Db, store: Storage) -> None:
    y, z = "http://a.test/y", "http://a.test/z"
    await begin(store, max_depth=3)
    seed = await take(store, SEED)
    await store.save(Batch([fetched(seed, discovered=[found(y, 3, src="http://a.test/far")])]))
    in_flight = await take(store, y)
    await store.save(Batch([Outcome(seed, "done", discovered=[found(y, 1)])]))
    await store.save(
        Batch([fetched(in_flight, [(y, z, False, "")], [found(z, 4, "skipped", "depth", y)])])
    )
    assert await db.rows(f"SELECT depth FROM pages WHERE url = '{y}'") == [(1,)]
    assert (await url_rows(db))[2] == (z, 2, "queued", None, y)


async def test_rule_4_the_last_outcome_wins(db: Db, store: Storage) -> None:
    urls = [f"http://a.test/{n}" for n in range(3)]
    await begin(store, seeds=urls)
    a, b, c = [await take(store, url) for url in urls]
    await store.save(Batch([
        Outcome(a, "failed"), Outcome(b, "skipped", "robots"), Outcome(c, "done"),
        fetched(a), Outcome(c, "failed"),
    ]))  # fmt: skip
    await store.save(Batch([Outcome(b, "skipped", "trap")]))
    assert [row[2:4] for row in await url_rows(db)] == [
        ("done", None), ("skipped", "trap"), ("failed", None),
    ]  # fmt: skip


async def test_rule_5_nofollow_is_the_minimum(db: Db, store: Storage) -> None:
    await begin(store)
    seed = await take(store, SEED)
    one, two, three, four, five = (f"http://b.test/{n}" for n in range(5))
    first = [(SEED, one, True, ""), (SEED, two, True, ""), (SEED, four, False, "")]
    await store.save(Batch([fetched(seed, first)]))
    again = [
        (SEED, one, False, ""), (SEED, two, True, ""), (SEED, three, False, ""),
        (SEED, three, True, ""), (SEED, four, True, ""), (SEED, five, True, ""),
        (SEED, five, True, ""),
    ]  # fmt: skip
    await store.save(Batch([Outcome(seed, "done", links=again)]))
    assert await db.rows("SELECT dst_url, nofollow FROM links ORDER BY dst_url") == [
        (one, 0), (two, 1), (three, 0), (four, 0), (five, 1),
    ]  # fmt: skip


async def test_rule_6_a_failed_batch_commits_nothing(db: Db, store: Storage) -> None:
    await begin(store)
    seed = await take(store, SEED)
    first = fetched(seed, [(SEED, "http://a.test/new", False, "")], [found("http://a.test/new", 1)])
    robots = RobotsRecord("http://a.test", "a.test", 200, b"", None, utc_now())
    broken = fetched(seed)
    assert broken.page is not None
    broken.page = replace(broken.page, fetched_at=None)  # type: ignore[arg-type]  # NOT NULL
    with pytest.raises(StoreError, match="cannot write the crawl") as caught:
        await store.save(Batch([first, broken], [robots]))
    assert "\n" not in str(caught.value)
    for table in ("pages", "links", "robots"):
        assert await db.rows(f"SELECT count(*) FROM {table}") == [(0,)]
    assert [row[2] for row in await url_rows(db)] == ["queued"]
    assert await store.save(Batch([first])) == []  # usable after the rollback
    assert await db.rows("SELECT count(*) FROM urls") == [(2,)]


async def test_rule_7_taken_urls_are_left_out(store: Storage) -> None:
    urls = [f"http://a.test/{n}" for n in range(5)]
    await begin(store, seeds=urls)
    first = await store.next_queued("a.test", 2, ())
    rest = await store.next_queued("a.test", 2, {q.id for q in first})
    assert [q.url for q in first + rest] == urls[:4]
    assert await store.count_queued() == 5


# -- the owners -----------------------------------------------------------------------------


async def test_rule_8_claims_hosts_with_queued_urls_soonest_first(store: Storage) -> None:
    seeds = ["http://a.test/", "http://b.test/", "http://c.test/"]
    await store.start_run([found(s, 0, src=None) for s in seeds], 5, DEFAULT_LEASE)
    (a,) = await claim(store, 1)
    ready = utc_at(time.time() + 5)
    later = replace(a, next_start_at=utc_at(time.time() + 9))
    await store.release_hosts([later])
    assert [h.host for h in await claim(store, 3)] == ["b.test", "c.test", "a.test"]
    done_c = await take(store, "http://c.test/")
    await store.save(Batch([Outcome(done_c, "done")], hosts=[_record("c.test", next=ready)]))
    await store.release_hosts([_record(h, next=ready) for h in ("a.test", "b.test", "c.test")])
    assert {h.host for h in await claim(store, 10)} == {"a.test", "b.test"}  # c: done
    assert await claim(store, 10) == []  # held: not twice


async def test_rule_8_a_lapsed_lease_frees_the_host(store: Storage) -> None:
    await begin(store, lease=SHORT_LEASE)
    assert await store.renew_hosts(["a.test", "b.test"]) == {"a.test"}
    again = await eventually(lambda: claim(store, 10), bool)
    assert [h.host for h in again] == ["a.test"]


@postgres_only
async def test_rule_8_two_runs_never_share_a_host(db: Db) -> None:
    seeds = [f"http://h{n}.test/" for n in range(20)]
    async with db.open() as one, db.open() as two:
        await one.start_run([found(s, 0, src=None) for s in seeds], 5, DEFAULT_LEASE)
        await two.start_run([], 5, DEFAULT_LEASE)
        claims = await asyncio.gather(*(claim(run, 3) for run in (one, two) * 4))
        hosts = [h.host for claim in claims for h in claim]
        assert len(hosts) == len(set(hosts)) == 20
        assert await claim(one, 5) == await claim(two, 5) == []


@postgres_only
async def test_rule_9_a_stalled_run_commits_nothing_for_a_host_it_lost(db: Db) -> None:
    async with db.open() as one, db.open() as two:
        await begin(one, lease=SHORT_LEASE)
        await two.start_run([], 5, DEFAULT_LEASE)
        assert await claim(two, 10) == []
        seed = await take(one, SEED)
        taken = await eventually(lambda: claim(two, 10), bool)  # one's lease lapsed
        assert [h.host for h in taken] == ["a.test"]
        outcome = fetched(
            seed, [(SEED, "http://a.test/x", False, "")], [found("http://a.test/x", 1)]
        )
        robots = RobotsRecord("http://a.test", "a.test", 404, None, None, utc_now())
        lost = await one.save(Batch([outcome], [robots], [_record("a.test", requests=9)]))
        assert lost == [outcome]
        assert await one.renew_hosts(["a.test"]) == set()
        assert await two.save(Batch([fetched(await take(two, SEED))])) == []
        old = fetched(seed)  # taken under one's claim, before two claimed the host
        assert await one.save(Batch([old])) == [old]
    assert await db.rows("SELECT url FROM pages") == [(SEED,)]
    assert await db.rows("SELECT count(*) FROM links") == [(0,)]
    assert await db.rows("SELECT count(*) FROM robots") == [(0,)]
    assert await db.rows("SELECT url FROM urls") == [(SEED,)]
    assert await db.rows("SELECT requests FROM hosts") == [(0,)]


async def test_rule_9_a_lapsed_lease_saves_nothing(db: Db, store: Storage) -> None:
    await begin(store, lease=SHORT_LEASE)
    seed = await take(store, SEED)
    await asyncio.sleep(SHORT_LEASE + 0.2)  # the lease was taken before: it lapsed
    outcome = fetched(seed)
    assert await store.save(Batch([outcome])) == [outcome]
    assert [row[2] for row in await url_rows(db)] == ["queued"]


async def test_rule_10_pacing_outlives_its_owner(db: Db) -> None:
    saved = _record("a.test", next=utc_at(time.time() + 30), backoff=4.0, retry=utc_now())
    async with db.open() as store:
        await begin(store, lease=SHORT_LEASE)
        await store.release_hosts([saved])
        (claimed,) = await claim(store, 10)
        assert replace(claimed, claim=0) == saved  # released, not taken over: as saved
        crashed_next = replace(saved, next_start_at=utc_at(time.time() - 60), delay=3.0)
        await store.save(Batch(hosts=[crashed_next]))
        # Closed without end_run: as if killed, still holding a.test.
    async with db.open() as store:
        await store.start_run([], 5, DEFAULT_LEASE)
        before = time.time()
        (taken_over,) = await eventually(lambda: claim(store, 10), bool)
    assert taken_over.next_start_at is not None  # one delay (the back-off, 4 s) from the claim
    assert datetime.fromisoformat(taken_over.next_start_at).timestamp() >= before + 4.0 - 0.01
    assert replace(taken_over, next_start_at=None, claim=0) == replace(
        crashed_next, next_start_at=None
    )
    assert taken_over.claim == claimed.claim + 1  # each claim of a host is a new one


async def test_rule_11_budgets_count_earlier_runs(db: Db) -> None:
    urls = [f"http://a.test/{n}" for n in range(3)]
    async with db.open() as store:
        first = await begin(store, seeds=urls)
        assert await store.reserve_pages(2, 10) == 2
        await store.save(Batch([fetched(await take(store, url)) for url in urls[:2]]))
        await store.end_run(first.run_id, "limit", None)
    async with db.open() as store:
        await begin(store)
        assert await store.reserve_pages(5, 0) == 5  # no limit
        assert await store.reserve_pages(5, 6) == 4  # 2 fetched before
        assert await store.reserve_pages(5, 6) == 0
        await store.save(Batch([fetched(await take(store, urls[2]))]))
        assert await store.reserve_pages(5, 6) == 0  # a reserved page became a fetched one
        assert await store.reserve_pages(5, 8) == 2


@postgres_only
async def test_rule_11_two_runs_never_get_more_than_max_pages(db: Db) -> None:
    async with db.open() as one, db.open() as two:
        await one.start_run([found(SEED, 0, src=None)], 5, DEFAULT_LEASE)
        second = await two.start_run([], 5, DEFAULT_LEASE)
        grants = await asyncio.gather(*(run.reserve_pages(3, 20) for run in (one, two) * 6))
        assert sum(grants) == 20
        await two.end_run(second.run_id, "finished", None)  # its unused pages come back
        assert await one.reserve_pages(50, 20) == sum(grants[1::2])


class _SavesAfterItsFirstRead:
    """A connection of a reservation that, after its first read, lets another run's save
    commit: that save moves a page from the run's `reserved` to its `pages`."""

    def __init__(self, conn: Any, save: Callable[[], Awaitable[object]]) -> None:
        self._conn = conn
        self._save: Callable[[], Awaitable[object]] | None = save

    async def execute(self, *args: Any) -> Any:
        return await self._conn.execute(*args)

    async def fetch(self, *args: Any) -> Any:
        return await self._after(await self._conn.fetch(*args))

    async def fetchval(self, *args: Any) -> Any:
        return await self._after(await self._conn.fetchval(*args))

    async def _after(self, result: Any) -> Any:
        if self._save is not None:
            save, self._save = self._save, None
            await save()
        return result


@postgres_only
async def test_rule_11_a_save_during_a_reservation_never_frees_a_page_twice(db: Db) -> None:
    # Two reads (pages fetched, then pages reserved) saw a save that committed between them in
    # neither: one page over max_pages (--processes 3 on a busy machine).
    async with db.open() as one, db.open() as two:
        await begin(one)
        await two.start_run([], 5, DEFAULT_LEASE)
        assert await one.reserve_pages(1, 5) == 1
        queued = await take(one, SEED)
        assert isinstance(two, PostgresStore)
        async with two._pool.acquire() as conn, conn.transaction():
            racing = _SavesAfterItsFirstRead(conn, lambda: one.save(Batch([fetched(queued)])))
            granted = await two._reserve_pages(racing, 5, 5)
        assert granted == 4
        assert await db.rows("SELECT sum(pages) FROM runs") == [(1,)]


@postgres_only
async def test_rule_11_a_stalled_run_on_this_machine_keeps_its_pages(db: Db) -> None:
    async with db.open() as one, db.open() as stalled:
        await one.start_run([found(SEED, 0, src=None)], 5, DEFAULT_LEASE)
        await stalled.start_run([], 5, 1.0)
        assert await stalled.reserve_pages(4, 10) == 4
        await asyncio.sleep(1.5)  # its lease lapses unrenewed; its process (ours) lives on
        assert await one.reserve_pages(10, 10) == 6  # it may still spend its 4 when it wakes


async def test_rule_12_a_dead_run_is_crashed_and_its_hosts_free(db: Db) -> None:
    await _crash_in_a_subprocess(db)
    async with db.open() as store:
        await store.start_run([], 5, DEFAULT_LEASE)
        assert await store.live_runs() == 1
        assert [h.host for h in await claim(store, 10)] == ["a.test"]  # at once
    assert await db.rows("SELECT outcome FROM runs ORDER BY id") == [("crashed",), ("running",)]


@postgres_only
async def test_rule_12_runs_know_each_other(db: Db) -> None:
    async with db.open() as one:
        first = await begin(one)
        async with db.open() as stalled:
            await stalled.start_run([], 5, 3.0)  # alive (our pid), not renewing
        async with db.open() as two:
            second = await two.start_run([], 5, DEFAULT_LEASE)
            assert second.resumed
            assert second.started_at == first.started_at  # the crawl's session: max_duration
            assert await one.live_runs() == 3  # `stalled` has not lapsed yet
            await eventually(lambda: two.live_runs(), lambda n: n == 2)
            async with db.open() as three:
                await three.start_run([], 5, DEFAULT_LEASE)
            await one.end_run(first.run_id, "finished", None)  # releases a.test
            assert [h.host for h in await claim(two, 10)] == ["a.test"]
    outcomes = await db.rows("SELECT id, outcome FROM runs ORDER BY id")
    assert outcomes == [(1, "finished"), (2, "crashed"), (3, "running"), (4, "running")]


async def test_rule_13_sitemaps_are_urls(db: Db, store: Storage) -> None:
    sitemap, entry = "http://a.test/sitemap.xml", "http://a.test/listed"
    await begin(store)
    seed = await take(store, SEED)
    named = found(sitemap, 0, src=None)._replace(sitemap=0)
    robots = RobotsRecord("http://a.test", "a.test", 200, b"Sitemap: x", None, _AT, (named,))
    # Found by a link and named by robots.txt in one batch: the nearer sighting decides.
    link = found(sitemap, 1, src=SEED)
    await store.save(Batch([fetched(seed, discovered=[link])], [robots]))
    assert [(q.url, q.sitemap) for q in await store.next_queued("a.test", 10, ())] == [(sitemap, 0)]
    document = await take(store, sitemap)
    listed = [
        found(SEED, 0, src=sitemap)._replace(lastmod="2026-01-02"),
        found(entry, 0, src=sitemap)._replace(lastmod="2026-03-04"),
        found("http://a.test/index2.xml", 0, src=sitemap)._replace(sitemap=1),
    ]
    read = fetched(document, discovered=listed)
    read.sitemap = SitemapRecord(sitemap, "urlset", 3, "entries")
    await store.save(Batch([read]))

    rows = await db.rows("SELECT url, depth, state, sitemap, lastmod FROM urls ORDER BY url")
    assert rows == [
        (SEED, 0, "done", None, "2026-01-02"),  # a seed listed: it takes the lastmod
        ("http://a.test/index2.xml", 0, "queued", 1, None),
        (entry, 0, "queued", None, "2026-03-04"),
        (sitemap, 0, "done", 0, None),
    ]
    assert await db.rows("SELECT * FROM sitemaps") == [(sitemap, "urlset", 3, "entries")]
    queued = await store.next_queued("a.test", 10, ())
    assert sorted((q.url, q.sitemap) for q in queued) == [
        ("http://a.test/index2.xml", 1),
        (entry, None),
    ]


async def test_rule_14_a_recrawl_is_a_pass(db: Db) -> None:
    gone, same = "http://a.test/gone", "http://a.test/same"
    async with db.open() as store:
        first = await begin(store, seeds=[SEED, gone, same])
        pages = {url: fetched(await take(store, url)) for url in (SEED, gone, same)}
        await store.save(Batch(list(pages.values())))
        await store.end_run(first.run_id, "finished", None)
    async with db.open() as store:
        second = await store.start_run([], 5, DEFAULT_LEASE, new_pass=True)
        await claim(store, 10)
        assert (first.pass_number, second.pass_number) == (1, 2)
        assert sorted(q.url for q in await store.next_queued("a.test", 10, ())) == [
            SEED, gone, same,
        ]  # fmt: skip
        again = {url: await take(store, url) for url in (SEED, gone, same)}
        answers = [
            Outcome(again[SEED], "done", page=replace(page(SEED, 0), status=304, body=None)),
            Outcome(again[gone], "done", page=replace(page(gone, 0), status=404)),
            Outcome(again[same], "done", page=page(same, 0)),
        ]
        await store.save(Batch(answers))
    rows = await db.rows("SELECT url, pass, status, change FROM fetches ORDER BY pass, url")
    assert rows == [
        (SEED, 1, 200, "new"), (gone, 1, 200, "new"), (same, 1, 200, "new"),
        (SEED, 2, 304, "unchanged"), (gone, 2, 404, "gone"), (same, 2, 200, "unchanged"),
    ]  # fmt: skip
    # pages: the latest version; the 304 left the stored one as it was
    assert await db.rows("SELECT url, status, body FROM pages ORDER BY url") == [
        (SEED, 200, b"<p>"), (gone, 404, b"<p>"), (same, 200, b"<p>"),
    ]  # fmt: skip


async def _pass_run(
    db: Db, fetch: Sequence[str], ended: str, new_pass: bool = True
) -> tuple[ResumeState, list[str]]:
    """One run asking for a new pass: what it started on, the URLs queued for it, and the
    URLs of `fetch` fetched before it ends `ended`."""
    async with db.open() as store:
        resume = await store.start_run([], 5, DEFAULT_LEASE, new_pass=new_pass)
        await claim(store, 10)
        queued = sorted(q.url for q in await store.next_queued("a.test", 10, ()))
        await store.save(Batch([fetched(await take(store, url)) for url in fetch]))
        await store.end_run(resume.run_id, ended, None)
    return resume, queued


async def test_rule_14_an_unfinished_pass_is_continued(db: Db) -> None:
    urls = ["http://a.test/", "http://a.test/x", "http://a.test/y"]
    async with db.open() as store:
        first = await begin(store, seeds=urls)
        await store.save(Batch([fetched(await take(store, url)) for url in urls]))
        await store.end_run(first.run_id, "finished", None)
    runs = [
        await _pass_run(db, urls[:1], "interrupted"),  # stopped: pass 2 is unfinished
        await _pass_run(db, urls[1:2], "failed"),  # continued, failed: unfinished still
        await _pass_run(db, urls[2:], "finished"),  # continued to its end
        await _pass_run(db, urls[:1], "limit"),  # pass 3; a limit completes a pass too
        await _pass_run(db, [], "finished"),  # so a new pass, 4
    ]

    assert (
        [(r.pass_number, r.pass_start, queued) for r, queued in runs]
        == [
            (2, "started", urls),
            (2, "continued", urls[1:]),  # what pass 2 had left, not the whole crawl again
            (2, "continued", urls[2:]),
            (3, "started", urls),
            (4, "started", urls),
        ]
    )
    rows = await db.rows("SELECT pass, url, change FROM fetches ORDER BY pass, url")
    assert [row for row in rows if row[0] == 2] == [(2, url, "unchanged") for url in urls]
    assert [row[0] for row in rows].count(3) == 1


async def test_rule_14_a_killed_pass_is_continued(db: Db) -> None:
    async with db.open() as store:
        first = await begin(store, seeds=[SEED])
        await store.save(Batch([fetched(await take(store, SEED))]))
        await store.end_run(first.run_id, "finished", None)
    await _crash_in_a_subprocess(db, new_pass=True)  # begins pass 2, killed in it

    resume, queued = await _pass_run(db, [], "interrupted")

    assert (resume.pass_number, resume.pass_start, queued) == (2, "continued", [SEED])
    assert await db.rows("SELECT outcome FROM runs ORDER BY id") == [
        ("finished",),
        ("crashed",),
        ("interrupted",),
    ]


@postgres_only
async def test_rule_14_a_recrawl_joins_a_live_pass(db: Db) -> None:
    async with db.open() as one:
        first = await begin(one)
        async with db.open() as two:  # `one` is crawling: no new pass, it joins pass 1
            joined = await two.start_run([], 5, DEFAULT_LEASE, new_pass=True)
            assert joined.pass_number == first.pass_number == 1
            await two.end_run(joined.run_id, "finished", None)
        await one.end_run(first.run_id, "finished", None)
    async with db.open() as three:  # no live run: a new pass
        assert (await three.start_run([], 5, DEFAULT_LEASE, new_pass=True)).pass_number == 2


async def test_rule_15_the_index_follows_the_pages(db: Db, store: Storage) -> None:
    urls = [SEED, "http://a.test/b"]
    await begin(store, seeds=urls)
    a, b = [await take(store, url) for url in urls]

    def version(q: QueuedURL, text: str) -> Outcome:
        outcome = fetched(q)
        assert outcome.page is not None
        outcome.page = replace(outcome.page, text=text)
        return outcome

    # One URL twice in a batch, then once more in the next: only its last text is found.
    await store.save(Batch([version(a, "gannets"), version(b, "ospreys"), version(a, "puffins")]))
    assert await _found(db, "gannets") == []
    assert await _found(db, "puffins") == [SEED]
    await store.save(Batch([version(a, "terns")]))
    assert [await _found(db, word) for word in ("puffins", "terns", "ospreys")] == [
        [], [SEED], ["http://a.test/b"],
    ]  # fmt: skip


async def _found(db: Db, terms: str) -> list[str]:
    def search() -> list[str]:
        with open_reader(str(db.location)) as reader:
            return [url for url, _, _ in reader.search(terms, 10)]

    return await asyncio.to_thread(search)


async def test_rule_16_the_report_data_is_kept(db: Db, store: Storage) -> None:
    a, b, sitemap = "http://a.test/a", "http://a.test/b", "http://a.test/sitemap.xml"
    await begin(store, seeds=[SEED, sitemap])
    seed = await take(store, SEED)
    first = fetched(seed, [(SEED, a, True, ""), (SEED, b, False, "B")], [found(a, 1), found(b, 1)])
    assert first.page is not None
    first.page = replace(
        first.page, canonical=a, description="d", h1="h", robots="noindex, nofollow"
    )
    first.alternates = [(SEED, "de", a), (SEED, "de", a), (SEED, "en", b)]
    # The same links again: the newest non-empty text wins, "" keeps what was there.
    again = Outcome(seed, "done", links=[(SEED, a, True, "A"), (SEED, b, False, "")])
    again.alternates = [(SEED, "de", a)]
    await store.save(Batch([first, again]))
    await store.save(Batch([Outcome(seed, "done", links=[(SEED, a, False, "A2")])]))
    document = await take(store, sitemap)
    read = fetched(document)
    read.sitemap = SitemapRecord(sitemap, "urlset", 4, None, (SEED, a))
    await store.save(Batch([read]))
    read.sitemap = SitemapRecord(sitemap, "urlset", 4, None, (a, b))  # read again: one more
    await store.save(Batch([read]))

    pages = await db.rows("SELECT url, canonical, description, h1, robots FROM pages ORDER BY 1")
    assert pages == [(SEED, a, "d", "h", "noindex, nofollow"), (sitemap, None, None, None, None)]
    links = await db.rows("SELECT dst_url, nofollow, text FROM links ORDER BY 1")
    assert links == [(a, 0, "A2"), (b, 0, "B")]
    alternates = await db.rows("SELECT * FROM alternates ORDER BY 1, 2, 3")
    assert alternates == [(SEED, "de", a), (SEED, "en", b)]
    entries = await db.rows("SELECT * FROM sitemap_entries ORDER BY 1, 2")
    assert entries == [(sitemap, SEED), (sitemap, a), (sitemap, b)]


async def test_rule_17_fields_are_kept_as_given(db: Db, store: Storage) -> None:
    a = "http://a.test/a"
    await begin(store, seeds=[SEED, a])
    seed, other = await take(store, SEED), await take(store, a)
    first = fetched(seed)
    assert first.page is not None
    # Key order, non-ASCII and spacing as written: PostgreSQL's text column keeps them all.
    given = '{"z":"Préis 1","a":null,"tags":["x","y"]}'
    first.page = replace(first.page, fields='{"z":"old"}')
    await store.save(Batch([first]))
    first.page = replace(first.page, fields=given)  # a later version replaces the column
    await store.save(Batch([first, fetched(other)]))

    assert await db.rows("SELECT url, fields FROM pages ORDER BY 1") == [(SEED, given), (a, None)]
    price = "SELECT json_extract(fields, '$.z') FROM pages WHERE fields IS NOT NULL"
    if db.kind == "postgres":
        price = "SELECT fields::json->>'z' FROM pages WHERE fields IS NOT NULL"
    assert await db.rows(price) == [("Préis 1",)]


# -- both backends alike --------------------------------------------------------------------

_PUBLIC = {  # table: its columns compared (times that differ between two runs left out)
    "urls": "url, depth, state, reason, discovered_from, host, redirects, sitemap, lastmod",
    "pages": "url, host, status, content_type, title, body, bytes, truncated, depth, fetched_at,"
    " elapsed_ms, error, location, etag, last_modified, sha256, canonical, description, h1,"
    " robots, fields",
    "fetches": "url, pass, fetched_at, status, etag, last_modified, sha256, change, host",
    "links": "src_url, dst_url, nofollow, text",
    "alternates": "*",
    "sitemap_entries": "*",
    "hosts": "*",
    "robots": "*",
    "sitemaps": "*",
    "runs": "id, outcome, pages, seeds, lag_p99_ms, lag_max_ms, machine, pid, lease, reserved,"
    " pass",
}
_LONG = "http://a.test/" + "x" * 10_000  # longer than a B-tree index entry may be


_LONG_PAGE = "http://a.test/" + "p" * 5_000


async def _same_crawl(db: Db) -> None:
    long_page = _LONG_PAGE
    async with db.open() as store:
        resume = await begin(store, seeds=[SEED, long_page], max_depth=2)
        seed, other = await take(store, SEED), await take(store, long_page)
        links = [
            (SEED, _LONG, False, "long \u00e9"),
            (SEED, "http://b.test/", True, ""),
            (SEED, long_page, False, ""),
        ]
        discovered = [
            found(_LONG, 1, "skipped", "too-long"),
            found("http://a.test/s.xml", 0, src=SEED)._replace(sitemap=2, lastmod="2026-05"),
        ]
        named = (found("http://a.test/r.xml", 0, src=None)._replace(sitemap=0),)
        robots = RobotsRecord("http://a.test", "a.test", 200, b"User-agent: *", None, _AT, named)
        outcomes = [fetched(seed, links, discovered), fetched(other), Outcome(other, "done")]
        outcomes[0].alternates = [(SEED, "de", _LONG), (SEED, "en", SEED)]
        outcomes[1].sitemap = SitemapRecord(
            long_page, "unknown", 0, "not a sitemap: root <p>", (_LONG, SEED)
        )
        for outcome in outcomes:
            if outcome.page is not None:
                outcome.page = replace(
                    outcome.page, fetched_at=_AT, canonical=_LONG, description="d \u00e9", h1="h",
                    robots="noindex, nofollow",
                )  # fmt: skip
        host = replace(_record("a.test", next=_AT, retry=_AT), robots_fetched_at=_AT)
        await store.save(Batch(outcomes, [robots], [host]))
        await store.end_run(resume.run_id, "finished", (0.0125, 0.05))


async def test_both_backends_keep_the_same_tables_and_values(
    tmp_path: Path, make_pg_url: Callable[[], str]
) -> None:
    sqlite, postgres = Db("sqlite", tmp_path / "crawl.db"), Db("postgres", make_pg_url())
    for db in (sqlite, postgres):
        await _same_crawl(db)
    for table in [*_PUBLIC, "settings"]:
        assert await postgres.columns(table) == await sqlite.columns(table), table
    for table, columns in _PUBLIC.items():
        sql = f"SELECT {columns} FROM {table} ORDER BY 1, 2"
        assert await postgres.rows(sql) == await sqlite.rows(sql), table
    who_links = f"SELECT src_url FROM links WHERE dst_url = '{_LONG}'"
    assert await postgres.rows(who_links) == await sqlite.rows(who_links) == [(SEED,)]
    listing = f"SELECT sitemap FROM sitemap_entries WHERE url = '{_LONG}'"
    assert await postgres.rows(listing) == await sqlite.rows(listing) == [(_LONG_PAGE,)]


_AT = "2024-05-01T12:00:00.000Z"


async def _crash_in_a_subprocess(db: Db, new_pass: bool = False) -> None:
    """A run started by another process, which dies holding a.test without ending it."""
    opener = (
        f"SQLiteStore.open(Path({str(db.location)!r}))"
        if db.kind == "sqlite"
        else f"PostgresStore.open({db.location!r})"
    )
    script = f"""
import asyncio, os
from pathlib import Path
from crawler.records import Discovered
from crawler.storage.postgres import PostgresStore
from crawler.storage.sqlite import SQLiteStore

async def main():
    async with {opener} as store:
        await store.start_run([Discovered({SEED!r}, "a.test", 0, "queued")], 5, {DEFAULT_LEASE!r},
                              new_pass={new_pass!r})
        assert len(await store.claim_hosts(10)) == 1
        os._exit(0)

asyncio.run(main())
"""
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", script)
    assert await asyncio.wait_for(process.wait(), 30) == 0


def _record(
    host: str,
    *,
    next: str | None = None,
    requests: int = 1,
    backoff: float = 0.0,
    retry: str | None = None,
) -> HostRecord:
    return HostRecord(
        host=host, delay=1.0, delay_reason="config", crawl_delay=None, robots_status="allow-all",
        robots_fetched_at=utc_now(), requests=requests, errors=0, min_gap_ms=None,
        retry_after_until=retry, backoff=backoff, next_start_at=next,
    )  # fmt: skip
