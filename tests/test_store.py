"""The SQLite store on a real database file: a save binds many rows per statement, and must
mean what saving the rows one by one meant (tests/test_crawl.py covers it through crawls)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from crawler.errors import StoreError
from crawler.records import Discovered, Outcome, PageRecord, QueuedURL, utc_now
from crawler.store import ROWS_PER_STATEMENT, Batch, SQLiteStore

SEED = "http://a.test/"


def page(url: str) -> PageRecord:
    return PageRecord(
        url=url, host="a.test", status=200, content_type="text/html", title="t", body=b"<p>",
        bytes=3, truncated=False, depth=0, fetched_at=utc_now(), elapsed_ms=1, error=None,
        location=None,
    )  # fmt: skip


def found(url: str, depth: int, state: str = "queued", reason: str | None = None) -> Discovered:
    return Discovered(url, "a.test", depth, state, reason, SEED)  # type: ignore[arg-type]


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql).fetchall()


async def seed_outcome(store: SQLiteStore) -> Outcome:
    """The seed, taken from the frontier, as the outcome a fetch of it starts from."""
    (seed,) = await store.next_queued("a.test", 1, ())
    return Outcome(url=seed, state="done", page=page(SEED))


async def test_a_save_of_many_rows_stores_every_row(tmp_path: Path) -> None:
    path = tmp_path / "crawl.db"
    count = 2 * ROWS_PER_STATEMENT + 7  # two full statements and a part
    async with SQLiteStore.open(path) as store:
        await store.start_run([found(SEED, 0)], max_depth=5)
        outcome = await seed_outcome(store)
        urls = [f"http://a.test/p{n}" for n in range(count)]
        outcome.links = [(SEED, url, n % 2 == 0) for n, url in enumerate(urls)]
        outcome.discovered = [found(url, 1) for url in urls]
        await store.save(Batch([outcome]))
    links = rows(path, "SELECT dst_url, nofollow FROM links")
    assert sorted(links) == sorted((url, int(n % 2 == 0)) for n, url in enumerate(urls))
    queued = rows(path, "SELECT url, depth, discovered_from FROM urls WHERE state = 'queued'")
    assert sorted(queued) == sorted((url, 1, SEED) for url in urls)
    assert rows(path, "SELECT state FROM urls WHERE url = 'http://a.test/'") == [("done",)]


async def test_repeats_in_one_save_keep_the_least_depth_and_the_followed_link(
    tmp_path: Path,
) -> None:
    path = tmp_path / "crawl.db"
    deep, shallow, revived = "http://a.test/deep", "http://a.test/shallow", "http://a.test/rev"
    async with SQLiteStore.open(path) as store:
        await store.start_run([found(SEED, 0)], max_depth=2)
        outcome = await seed_outcome(store)
        hidden = "http://a.test/hidden"  # last of three rows: padded to four by repeating it
        outcome.links = [
            (SEED, deep, True),
            (SEED, deep, False),
            (SEED, hidden, True),
        ]
        outcome.discovered = [
            found(deep, 3, "skipped", "depth"),
            found(deep, 2),  # found again, shallower: queued after all
            found(shallow, 1),
            found(shallow, 2),  # deeper: changes nothing
            found(revived, 3, "skipped", "depth"),
        ]
        await store.save(Batch([outcome]))
    links = rows(path, "SELECT dst_url, nofollow FROM links")
    assert sorted(links) == [(deep, 0), (hidden, 1)]
    stored = rows(path, "SELECT url, depth, state, reason FROM urls WHERE url != 'http://a.test/'")
    assert sorted(stored) == [
        (deep, 2, "queued", None),
        (revived, 3, "skipped", "depth"),
        (shallow, 1, "queued", None),
    ]


async def test_each_outcome_sets_its_own_state(tmp_path: Path) -> None:
    path = tmp_path / "crawl.db"
    urls = [f"http://a.test/{n}" for n in range(ROWS_PER_STATEMENT + 3)]
    async with SQLiteStore.open(path) as store:
        await store.start_run([found(url, 0) for url in urls], max_depth=5)
        queued = await store.next_queued("a.test", len(urls), ())
        states = [("done", None), ("failed", None), ("skipped", "robots"), ("skipped", "trap")]
        outcomes = [
            Outcome(url=q, state=states[n % 4][0], reason=states[n % 4][1])  # type: ignore[arg-type]
            for n, q in enumerate(queued)
        ]
        await store.save(Batch(outcomes))
    expected = {q.url: states[n % 4] for n, q in enumerate(queued)}
    stored = {
        url: (state, reason)
        for url, state, reason in rows(path, "SELECT url, state, reason FROM urls")
    }
    assert stored == expected


async def test_a_failed_save_commits_nothing_of_its_batch(tmp_path: Path) -> None:
    path = tmp_path / "crawl.db"
    async with SQLiteStore.open(path) as store:
        await store.start_run([found(SEED, 0)], max_depth=5)
        outcome = await seed_outcome(store)
        outcome.discovered = [found("http://a.test/new", 1)]
        twice = Outcome(
            url=QueuedURL(outcome.url.id, SEED, "a.test", 0), state="done", page=page(SEED)
        )
        with pytest.raises(StoreError, match="cannot write the crawl"):
            await store.save(Batch([outcome, twice]))  # the same page twice: UNIQUE fails
        await store.save(Batch([outcome]))  # the connection is usable after the rollback
    assert rows(path, "SELECT count(*) FROM pages") == [(1,)]
    assert rows(path, "SELECT count(*) FROM urls") == [(2,)]
