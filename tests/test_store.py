"""Each backend's own side, on real databases (the contract's rules, common to both, are in
tests/test_storage_contract.py): SQLite binds many rows per statement, which must mean what
saving the rows one by one meant, and one process at a time crawls a file; PostgreSQL says in
one line what is wrong with storage.url; `open_store` picks the backend."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import sqlite3
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from backends import pg_database_before
from pgserver import PgServer, free_port

from crawler.config import DEFAULT_LEASE, Config
from crawler.errors import StoreError
from crawler.records import Discovered, Outcome, PageRecord, QueuedURL, utc_now
from crawler.storage import Batch, open_store
from crawler.storage.postgres import PostgresStore
from crawler.storage.postgres_schema import MIGRATIONS as PG_MIGRATIONS
from crawler.storage.sqlite import ROWS_PER_STATEMENT, SQLiteStore
from crawler.storage.sqlite_schema import MIGRATIONS

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
    """The seed, taken from the frontier (its host claimed), as the outcome a fetch of it
    starts from."""
    (claimed,) = await store.claim_hosts(1)
    (seed,) = await store.next_queued("a.test", 1, ())
    seed.claim = claimed.claim  # as the frontier tags what it takes
    return Outcome(url=seed, state="done", page=page(SEED))


async def test_a_save_of_many_rows_stores_every_row(tmp_path: Path) -> None:
    path = tmp_path / "crawl.db"
    count = 2 * ROWS_PER_STATEMENT + 7  # two full statements and a part
    async with SQLiteStore.open(path) as store:
        await store.start_run([found(SEED, 0)], max_depth=5, lease=DEFAULT_LEASE)
        outcome = await seed_outcome(store)
        urls = [f"http://a.test/p{n}" for n in range(count)]
        outcome.links = [(SEED, url, n % 2 == 0, "") for n, url in enumerate(urls)]
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
        await store.start_run([found(SEED, 0)], max_depth=2, lease=DEFAULT_LEASE)
        outcome = await seed_outcome(store)
        hidden = "http://a.test/hidden"  # last of three rows: padded to four by repeating it
        outcome.links = [
            (SEED, deep, True, ""),
            (SEED, deep, False, ""),
            (SEED, hidden, True, ""),
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
        await store.start_run([found(url, 0) for url in urls], max_depth=5, lease=DEFAULT_LEASE)
        (claimed,) = await store.claim_hosts(1)
        queued = await store.next_queued("a.test", len(urls), ())
        for q in queued:
            q.claim = claimed.claim
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
        await store.start_run([found(SEED, 0)], max_depth=5, lease=DEFAULT_LEASE)
        outcome = await seed_outcome(store)
        outcome.discovered = [found("http://a.test/new", 1)]
        broken = Outcome(
            url=QueuedURL(outcome.url.id, SEED, "a.test", 0, claim=outcome.url.claim),
            state="done",
            page=dataclasses.replace(page(SEED), fetched_at=None),  # type: ignore[arg-type]
        )
        with pytest.raises(StoreError, match="cannot write the crawl"):
            await store.save(Batch([outcome, broken]))  # fetched_at is NOT NULL: it fails
        await store.save(Batch([outcome]))  # the connection is usable after the rollback
    assert rows(path, "SELECT count(*) FROM pages") == [(1,)]
    assert rows(path, "SELECT count(*) FROM urls") == [(2,)]


async def test_one_process_at_a_time_crawls_a_file(tmp_path: Path) -> None:
    path = tmp_path / "crawl.db"
    async with SQLiteStore.open(path):
        with pytest.raises(StoreError) as caught:
            async with SQLiteStore.open(path):
                pass
        assert str(caught.value) == (
            f"storage.path: {str(path)!r} is being crawled by another process;"
            " wait for it or stop it"
        )
        assert caught.value.exit_code == 2
    async with SQLiteStore.open(path) as store:  # free again
        await store.start_run([found(SEED, 0)], max_depth=5, lease=DEFAULT_LEASE)


async def test_a_database_of_the_trigger_era_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        for _name, step in MIGRATIONS[:3]:
            step(db)
        db.execute("PRAGMA user_version = 3")
        db.execute(
            "INSERT INTO urls (url, host, depth, state) VALUES"
            " ('http://a.test/', 'a.test', 0, 'done'), ('http://b.test/', 'b.test', 1, 'queued')"
        )
    async with SQLiteStore.open(path) as store:
        await store.start_run([], max_depth=5, lease=DEFAULT_LEASE)
        assert [h.host for h in await store.claim_hosts(10)] == ["b.test"]
    assert rows(path, "SELECT host FROM hosts ORDER BY host") == [("a.test",), ("b.test",)]
    triggers = rows(path, "SELECT name FROM sqlite_master WHERE type = 'trigger'")
    assert "urls_depth_relax" not in {name for (name,) in triggers}


async def test_a_database_from_before_recrawl_keeps_its_pages_as_pass_1(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    names = [name for name, _ in MIGRATIONS]
    before = names.index("recrawl")
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        for _name, step in MIGRATIONS[:before]:
            step(db)
        db.execute(f"PRAGMA user_version = {before}")
        db.execute(
            "INSERT INTO pages (url, host, status, body, depth, fetched_at) VALUES"
            " ('http://a.test/', 'a.test', 200, x'3c703e', 0, '2026-01-01T00:00:00.000Z'),"
            " ('http://a.test/x', 'a.test', 404, NULL, 1, '2026-01-01T00:00:01.000Z')"
        )
    async with SQLiteStore.open(path):
        pass
    assert rows(path, "SELECT url, pass, status, sha256, change FROM fetches ORDER BY url") == [
        ("http://a.test/", 1, 200, hashlib.sha256(b"<p>").hexdigest(), "new"),
        ("http://a.test/x", 1, 404, None, "new"),
    ]
    assert rows(path, "SELECT sha256 FROM pages WHERE status = 200") == [
        (hashlib.sha256(b"<p>").hexdigest(),)
    ]


async def test_a_postgres_database_from_before_recrawl_keeps_its_pages_as_pass_1(
    pg_url: str,
) -> None:
    await pg_database_before(
        pg_url,
        "recrawl",
        "INSERT INTO pages (url, host, status, body, depth, fetched_at)"
        " VALUES ('http://a.test/', 'a.test', 200, '<p>', 0, '2026-01-01T00:00:00.000Z')",
    )
    async with PostgresStore.open(pg_url):
        pass
    conn = await asyncpg.connect(pg_url)
    try:
        found = await conn.fetch("SELECT url, pass, status, sha256, change FROM fetches")
    finally:
        await conn.close()
    assert [tuple(row) for row in found] == [
        ("http://a.test/", 1, 200, hashlib.sha256(b"<p>").hexdigest(), "new")
    ]


def _config(tmp_path: Path, **storage: str) -> Config:
    raw = {"crawl": {"seeds": [SEED]}, "storage": storage}
    return Config.from_dict(raw, source=tmp_path / "config.toml")


async def test_open_store_picks_the_backend(tmp_path: Path, pg_url: str) -> None:
    async with open_store(_config(tmp_path, path="x.db")) as store:
        assert isinstance(store, SQLiteStore)
    async with open_store(_config(tmp_path, url=pg_url)) as store:
        assert isinstance(store, PostgresStore)


def test_postgres_without_asyncpg_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)  # import asyncpg fails
    monkeypatch.delitem(sys.modules, "crawler.storage.postgres")
    with pytest.raises(StoreError) as caught:
        open_store(_config(tmp_path, url="postgresql://u@localhost/db"))
    assert str(caught.value) == (
        "storage.url: PostgreSQL needs asyncpg: pip install 'crawler[postgres]'"
    )
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        pytest.param("postgresql://u:secret@127.0.0.1:{free}/db", "Connect call", id="refused"),
        pytest.param("postgresql://postgres:secret@127.0.0.1:{port}/nope", '"nope"', id="no-db"),
        pytest.param("postgresql://u:secret@127.0.0.1:99999/db", "port must be", id="bad-port"),
        pytest.param("postgresql://u@127.0.0.1:{port}/db?sslmode=bad", "sslmode", id="bad-option"),
    ],
)  # fmt: skip
async def test_a_database_that_cannot_be_used_is_one_line(
    pg_server: PgServer, url: str, problem: str
) -> None:
    url = url.format(port=pg_server.port, free=free_port())
    with pytest.raises(StoreError) as caught:
        async with PostgresStore.open(url):
            pass
    message = str(caught.value)
    assert message.startswith("storage.url: cannot use 'postgresql://")
    assert problem in message
    assert "secret" not in message
    assert "\n" not in message
    assert caught.value.exit_code == 2


async def test_processes_starting_together_create_the_schema_once(pg_url: str) -> None:
    async def start() -> int:
        async with PostgresStore.open(pg_url) as store:
            return (
                await store.start_run([found(SEED, 0)], max_depth=5, lease=DEFAULT_LEASE)
            ).run_id

    assert sorted(await asyncio.gather(*(start() for _ in range(4)))) == [1, 2, 3, 4]
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetch("SELECT version FROM crawler_schema") == [(len(PG_MIGRATIONS),)]
    finally:
        await conn.close()


async def test_a_deadlocked_transaction_is_run_again(pg_url: str) -> None:
    attempts = []

    async def deadlocks_once(conn: Any) -> int:
        attempts.append(1)
        await conn.execute("INSERT INTO settings (key, value) VALUES ('x', $1)", str(len(attempts)))
        if len(attempts) == 1:
            raise asyncpg.DeadlockDetectedError("deadlock detected")  # after a write: undone
        return len(attempts)

    async with PostgresStore.open(pg_url) as store:
        assert await store._transaction(deadlocks_once) == 2
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetch("SELECT value FROM settings WHERE key = 'x'") == [("2",)]
    finally:
        await conn.close()


def test_postgres_with_a_broken_asyncpg_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An asyncpg that is installed but fails to import (a bad build) is exit 2, one line."""
    broken = tmp_path / "site" / "asyncpg"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('undefined symbol: PyFoo')\n")
    monkeypatch.syspath_prepend(str(broken.parent))
    for name in [m for m in sys.modules if m == "asyncpg" or m.startswith("asyncpg.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delitem(sys.modules, "crawler.storage.postgres", raising=False)
    with pytest.raises(StoreError) as caught:
        open_store(_config(tmp_path, url="postgresql://u@localhost/db"))
    assert str(caught.value) == (
        "storage.url: PostgreSQL needs asyncpg: it cannot be imported (undefined symbol: PyFoo);"
        " pip install 'crawler[postgres]' --force-reinstall"
    )
    assert caught.value.exit_code == 2
