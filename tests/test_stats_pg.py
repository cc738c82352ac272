"""`crawler stats` on a PostgreSQL crawl prints what it prints for the same rows in SQLite (the
first line, the database's name, aside): for a crawl written through the storage contract
(backends.py's twin) and for the stats tests' hand-made rows (runs that never ended, odd
statuses, skips without a reason).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from backends import DURATION, HOSTS, PAGES, RUNS, URLS, Twin, build_stats_db, fetched_at, make_twin
from kit import run_in_process
from pgserver import PgServer

from crawler.commands.stats import format_hosts, format_stats, read_stats
from crawler.errors import UsageError
from crawler.storage.postgres import PostgresStore
from crawler.storage.sqlite import prepare


@pytest.fixture(scope="module")
def twin(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    name = "stats_pg_twin"
    url = pg_server.create_database(name)
    try:
        yield make_twin(tmp_path_factory.mktemp("twin"), url)
    finally:
        pg_server.drop_database(name)


def test_stats_prints_the_same(twin: Twin, capsys: pytest.CaptureFixture[str]) -> None:
    code, on_pg, err = run_in_process(capsys, "stats", twin.url)
    assert (code, err) == (0, "")
    code, on_sqlite, _ = run_in_process(capsys, "stats", str(twin.path))
    assert code == 0
    pg_lines, sqlite_lines = on_pg.splitlines(), on_sqlite.splitlines()
    assert pg_lines[0] == twin.url
    assert pg_lines[1:] == sqlite_lines[1:]
    assert pg_lines[1] == "  pages      10  (2xx 4, 3xx 1, 4xx 2, 5xx 0, no response 3)"
    assert "1: 2026-11-25 00:00:00 → 00:00:42 limit, 10 pages" in on_pg


def test_stats_hosts_prints_the_same(twin: Twin, capsys: pytest.CaptureFixture[str]) -> None:
    code, on_pg, _ = run_in_process(capsys, "stats", twin.url, "--hosts")
    assert code == 0
    assert on_pg == run_in_process(capsys, "stats", str(twin.path), "--hosts")[1]
    assert on_pg.splitlines()[2].split() == [
        "example.org", "|", "allow-all", "|", "2026-11-25T00:00:00.125Z", "|", "1", "s",
        "(config)", "|", "|", "8", "|", "0", "|", "1003", "|", "7",
    ]  # fmt: skip


async def _build_pg(url: str) -> None:
    """build_stats_db's rows, in PostgreSQL."""
    async with PostgresStore.open(url):
        pass  # the schema
    conn = await asyncpg.connect(url)
    try:
        await conn.executemany(
            "INSERT INTO runs (started_at, ended_at, outcome, pages, seeds)"
            " VALUES ($1, $2, $3, $4, '')",
            RUNS,
        )
        await conn.executemany(
            "INSERT INTO pages (url, host, status, bytes, depth, fetched_at, error)"
            " VALUES ($1, $2, $3, $4, 0, $5, $6)",
            [
                (f"https://{host}/{i}", host, status, size, fetched_at(i), error)
                for i, (host, status, size, error) in enumerate(PAGES)
            ],
        )
        await conn.executemany(
            "INSERT INTO urls (url, host, depth, state, reason) VALUES ($1, 'a.test', 1, $2, $3)",
            [
                (f"https://a.test/u/{state}/{reason}/{n}", state, reason)
                for state, reason, count in URLS
                for n in range(count)
            ],
        )
        await conn.executemany(
            "INSERT INTO hosts (host, robots_status, robots_fetched_at, delay, delay_reason,"
            " crawl_delay, requests, errors, min_gap_ms)"
            " VALUES ($1, $2, '2026-11-25T00:00:00.500Z', $3, $4, $5, $6, $7, $8)",
            HOSTS,
        )
    finally:
        await conn.close()


def test_hand_made_rows_give_the_same_summary(pg_url: str, tmp_path: Path) -> None:
    path = build_stats_db(tmp_path / "crawl.db")
    asyncio.run(_build_pg(pg_url))
    on_pg, on_sqlite = read_stats(pg_url), read_stats(path)
    assert on_pg.duration == pytest.approx(DURATION)
    assert format_stats(on_pg).splitlines()[1:] == format_stats(on_sqlite).splitlines()[1:]
    assert format_hosts(pg_url) == format_hosts(path)


def test_an_empty_crawl(pg_url: str, tmp_path: Path) -> None:
    prepare(tmp_path / "new.db")

    async def schema() -> None:
        async with PostgresStore.open(pg_url):
            pass

    asyncio.run(schema())
    on_pg = format_stats(read_stats(pg_url)).splitlines()
    assert on_pg[1:] == format_stats(read_stats(tmp_path / "new.db")).splitlines()[1:]
    assert on_pg[-1] == "  runs       none"
    assert format_hosts(pg_url) == format_hosts(tmp_path / "new.db")


@pytest.mark.parametrize("reader", [read_stats, format_hosts])
def test_not_a_crawl_database(pg_url: str, reader: object) -> None:
    with pytest.raises(UsageError, match="is not a crawl database") as info:
        reader(pg_url)  # type: ignore[operator]
    assert info.value.exit_code == 2
    assert pg_url in str(info.value)
