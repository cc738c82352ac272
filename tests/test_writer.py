"""The writer's group commit (engine/writer.py): what arrives while a transaction lingers joins
it; `commit_now`, a full batch and `close` cut the linger short; and a crawl whose frontier waits
for the writer never waits out the linger. Real SQLite files throughout."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from kit import run_cli_async, write_config

from crawler.config import DEFAULT_LEASE
from crawler.engine import writer as writer_module
from crawler.engine.writer import Writer
from crawler.records import Discovered, Outcome, RobotsRecord, utc_now
from crawler.storage.sqlite import SQLiteStore

HOUR = 3600.0  # a linger nobody waits out in a test: only a hurry ends it


class Commits:
    """What the writer reported committing, one entry a transaction."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.changed = asyncio.Event()

    def __call__(self, kept: list[Outcome], lost: list[Outcome]) -> None:
        self.sizes.append(len(kept) + len(lost))
        self.changed.set()

    async def until(self, count: int) -> None:
        while len(self.sizes) < count:
            self.changed.clear()
            await self.changed.wait()


def robots(n: int) -> RobotsRecord:
    return RobotsRecord(f"http://a.test:{8000 + n}", "a.test", 404, None, None, utc_now())


@asynccontextmanager
async def running_writer(
    tmp_path: Path, linger: float, alone: bool = True
) -> AsyncIterator[tuple[Writer, Commits]]:
    """A writer over a real store whose run holds host a.test, running in the background."""
    async with SQLiteStore.open(tmp_path / "crawl.db") as store:
        seed = Discovered("http://a.test/", "a.test", 0, "queued")
        await store.start_run([seed], max_depth=5, lease=DEFAULT_LEASE)
        await store.claim_hosts(1)
        commits = Commits()
        writer = Writer(store, commits, list, linger=linger, may_linger=lambda: alone)
        task = asyncio.create_task(writer.run())
        try:
            yield writer, commits
        finally:
            await writer.close()
            await task


def robots_rows(tmp_path: Path) -> int:
    with closing(sqlite3.connect(tmp_path / "crawl.db")) as db:
        return int(db.execute("SELECT count(*) FROM robots").fetchone()[0])


async def test_what_arrives_while_a_transaction_lingers_joins_it(tmp_path: Path) -> None:
    async with running_writer(tmp_path, HOUR) as (writer, commits):
        for n in range(3):
            await writer.put(robots(n))
            for _ in range(5):
                await asyncio.sleep(0)  # the writer runs between the puts
        assert commits.sizes == []  # lingering, nothing committed yet
        writer.commit_now()
        await commits.until(1)
        assert robots_rows(tmp_path) == 3
        await writer.put(robots(3))
        writer.commit_now()
        await commits.until(2)
    assert robots_rows(tmp_path) == 4


async def test_without_a_linger_each_arrival_commits_on_its_own(tmp_path: Path) -> None:
    async with running_writer(tmp_path, 0) as (writer, commits):
        for n in range(3):
            await writer.put(robots(n))
            await commits.until(n + 1)
    assert robots_rows(tmp_path) == 3


async def test_no_linger_while_other_runs_share_the_crawl(tmp_path: Path) -> None:
    # Another run may be waiting for a host of ours: it gets one only once no outcome of it
    # waits for a commit.
    async with running_writer(tmp_path, HOUR, alone=False) as (writer, commits):
        for n in range(3):
            await writer.put(robots(n))
            await commits.until(n + 1)
    assert robots_rows(tmp_path) == 3


async def test_close_commits_what_lingers(tmp_path: Path) -> None:
    async with running_writer(tmp_path, HOUR) as (writer, _commits):
        await writer.put(robots(0))
        await asyncio.sleep(0)
    assert robots_rows(tmp_path) == 1


async def test_a_full_batch_commits_without_lingering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "MAX_BATCH", 2)
    async with running_writer(tmp_path, HOUR) as (writer, commits):
        await writer.put(robots(0))
        await asyncio.sleep(0)
        await writer.put(robots(1))
        await commits.until(1)
        assert robots_rows(tmp_path) == 2


def chain_site(pages: int) -> web.Application:
    """/0 links to /1, which links to /2, ...: each page is found only on the one before, so
    the frontier waits for the writer's commit before every page."""

    async def page(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        link = f'<a href="/{n + 1}">next</a>' if n + 1 < pages else ""
        return web.Response(text=f"<html><body>{link}</body></html>", content_type="text/html")

    async def no_robots(request: web.Request) -> web.Response:
        return web.Response(status=404)

    app = web.Application()
    app.router.add_get("/robots.txt", no_robots)
    app.router.add_get("/{n:\\d+}", page)
    return app


async def test_a_crawl_that_waits_for_the_writer_never_waits_out_the_linger(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    server = await aiohttp_server(chain_site(10))
    config = write_config(
        tmp_path / "config.toml", [f"http://chain.test:{server.port}/0"], hosts=["chain.test"]
    )
    # An hour's linger: the crawl ends only because the frontier hurries the writer.
    linger = f"import crawler.engine.writer as writer\nwriter.LINGER = {HOUR}"
    ran = await run_cli_async("crawl", str(config), prelude=linger, seconds=45)
    assert ran.code == 0, ran.err
    with closing(sqlite3.connect(tmp_path / "crawl.db")) as db:
        fetched = db.execute("SELECT count(*) FROM pages WHERE status = 200").fetchone()[0]
    assert fetched == 10
