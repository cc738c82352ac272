"""Crash-proof: kill -9 at any moment, resume, and end with exactly the same crawl."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from conftest import DemoServer
from killing import integrity, kill_and_resume
from kit import (
    LOG,
    SITE,
    HostPlan,
    finish,
    make_site,
    min_gap,
    run_cli_async,
    started_cli,
    write_config,
    write_demo_config,
)

from crawler.demo_site import expected_pages
from crawler.storage.sqlite import SQLiteStore
from crawler.storage.sqlite_schema import MIGRATIONS


@pytest.mark.timeout(120)
@pytest.mark.parametrize("seed", [1, 2])
async def test_sigkill_and_resume_give_the_uninterrupted_crawl(
    demo_server: DemoServer, tmp_path: Path, seed: int
) -> None:
    log = demo_server.app[LOG]
    total = len(expected_pages(port=demo_server.port)) + 3  # pages and three robots.txt
    result = await kill_and_resume(
        log, demo_server.port, tmp_path, seed=seed, kills=4, final_requests=total
    )

    assert len(result.kills) >= 4  # the crawl really was interrupted
    assert set(result.integrity) == {"ok"}
    assert result.pages == expected_pages(port=demo_server.port)  # URLs and depths
    assert result.refetched == []  # no committed page was requested again
    assert integrity(tmp_path / "crawl.db") == "ok"
    with closing(sqlite3.connect(tmp_path / "crawl.db")) as db:
        outcomes = [o for (o,) in db.execute("SELECT outcome FROM runs ORDER BY id")]
        queued = db.execute("SELECT count(*) FROM urls WHERE state = 'queued'").fetchone()[0]
    assert outcomes[-1] == "finished"
    assert "crashed" in outcomes
    assert queued == 0


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["int", "term"]
)
async def test_signal_stops_gracefully(
    demo_server: DemoServer, tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    config = write_demo_config(tmp_path, demo_server.port, delay=0.05)
    async with started_cli("crawl", str(config)) as process:
        await demo_server.app[LOG].seen(30)
        process.send_signal(signum)
        ran = await finish(process, seconds=20)

    assert ran.code == code
    assert f"Continue with: crawler resume {config}" in ran.err
    with closing(sqlite3.connect(tmp_path / "crawl.db")) as db:
        [(outcome,)] = db.execute("SELECT outcome FROM runs").fetchall()
        pages = db.execute("SELECT count(*) FROM pages").fetchone()[0]
    assert outcome == "interrupted"
    assert pages > 0


async def test_second_signal_stops_at_once(aiohttp_server: Any, tmp_path: Path) -> None:
    # The page never answers and the graceful stop's grace is an hour: the process can only
    # end because the second signal stopped it (no clock decides what passes).
    server = await aiohttp_server(make_site({"slow.test": HostPlan(pages=9, page_sleep=3600)}))
    site = server.app[SITE]
    config = _one_host_config(tmp_path, "slow.test", server.port, delay=1.0)
    prelude = "import crawler.engine.crawl\ncrawler.engine.crawl.GRACE_SECONDS = 3600"
    async with started_cli("crawl", str(config), "--quiet", prelude=prelude) as process:
        assert process.stderr is not None
        await asyncio.wait_for(site.arrived("/p/0"), 30)  # a request that never ends is open
        process.send_signal(signal.SIGINT)
        # The second signal goes once the first was handled (two pending SIGINTs are one).
        async with asyncio.timeout(30):
            while (line := await process.stderr.readline()) and b"stopping" not in line:
                pass
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.communicate(), 30)  # only a hang gets here

    assert process.returncode == 130
    assert integrity(tmp_path / "crawl.db") == "ok"
    with closing(sqlite3.connect(tmp_path / "crawl.db")) as db:
        state = db.execute("SELECT state FROM urls WHERE url LIKE '%/p/0'").fetchone()[0]
    assert state == "queued"  # cut off in flight: fetched again on resume


async def test_an_older_schema_is_migrated(tmp_path: Path) -> None:
    db_path = tmp_path / "old.db"
    with closing(sqlite3.connect(db_path, isolation_level=None)) as db:
        MIGRATIONS[0][1](db)  # a database as the first version wrote it
        db.execute("PRAGMA user_version = 1")
        db.execute("INSERT INTO hosts (host, requests, errors) VALUES ('old.test', 3, 1)")

    async with SQLiteStore.open(db_path):
        pass

    with closing(sqlite3.connect(db_path)) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        row = db.execute("SELECT host, requests, retry_after_until FROM hosts").fetchone()
    assert version == len(MIGRATIONS)
    assert row == ("old.test", 3, None)


async def test_restart_keeps_the_delay_and_the_robots_rules(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    server = await aiohttp_server(make_site({"p.test": HostPlan(pages=5)}))
    site = server.app[SITE]
    config = _one_host_config(tmp_path, "p.test", server.port, delay=0.6)
    command = ("crawl", str(config), "--quiet")
    async with started_cli(*command) as first:
        await asyncio.wait_for(site.arrived("/p/1"), 30)
        # Killed once the writer has committed /p/0 and the robots.txt it used.
        await _committed(tmp_path / "crawl.db", "/p/0")
        first.kill()

    async with started_cli(*command) as second:
        assert (await finish(second, seconds=30)).code == 0

    paths = [h.path for h in sorted(site.log, key=lambda h: h.start)]
    assert paths.count("/robots.txt") == 1  # still fresh: taken from the database
    assert sorted(set(paths) - {"/robots.txt"}) == [f"/p/{n}" for n in range(5)]
    assert min_gap(site.log) >= 0.6  # across the restart too


async def test_resume_applies_the_edited_scope_and_adds_seeds(
    demo_server: DemoServer, tmp_path: Path
) -> None:
    config = write_demo_config(tmp_path, demo_server.port, delay=0)
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("concurrency = 8", "concurrency = 8\nmax_pages = 20"))
    command = ("crawl", str(config), "--quiet")
    assert (await run_cli_async(*command)).code == 0
    with closing(sqlite3.connect(tmp_path / "crawl.db")) as db:
        to_exclude = db.execute(
            "SELECT url FROM urls WHERE state = 'queued' AND url LIKE '%/page/1%'"
        ).fetchall()
    assert to_exclude  # queued by the first run, in scope then

    extra_seed = f"http://shop.demo.test:{demo_server.port}/page/9"
    edited = text.replace("concurrency = 8", 'concurrency = 8\nexclude = ["/page/1"]')
    edited = edited.replace("seeds = [", f'seeds = ["{extra_seed}", ')
    config.write_text(edited, encoding="utf-8")
    assert (await run_cli_async(*command)).code == 0

    with closing(sqlite3.connect(tmp_path / "crawl.db")) as db:
        fetched = {u for (u,) in db.execute("SELECT url FROM pages")}
        runs = db.execute("SELECT outcome, pages FROM runs ORDER BY id").fetchall()
        excluded_later = db.execute(
            "SELECT url FROM pages WHERE url LIKE '%/page/1%'"
            " AND fetched_at >= (SELECT started_at FROM runs WHERE id = 2)"
        ).fetchall()
        states = {
            db.execute("SELECT state, reason FROM urls WHERE url = ?", url).fetchone()
            for url in to_exclude
        }
    assert excluded_later == []
    assert states == {("skipped", "exclude")}  # queued before the edit, skipped after it
    assert extra_seed in fetched
    assert runs[0] == ("limit", 20)
    assert runs[1][0] == "finished"


async def _committed(db: Path, path: str) -> None:
    """Wait (30 s at most) until the crawl in `db` has committed the page at `path` and a
    robots.txt."""
    sql = "SELECT (SELECT count(*) FROM pages WHERE url LIKE ?), (SELECT count(*) FROM robots)"
    async with asyncio.timeout(30):
        while True:
            try:  # read-only: never creates the file before the crawler does
                with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
                    pages, robots = conn.execute(sql, ("%" + path,)).fetchone()
            except sqlite3.OperationalError:  # no file or no tables yet
                pages = robots = 0
            if pages and robots:
                return
            await asyncio.sleep(0.01)


def _one_host_config(folder: Path, host: str, port: int, *, delay: float) -> Path:
    """A config crawling the multi-host test site's `host` from /p/0 (the crawler's defaults
    otherwise)."""
    return write_config(
        folder / "config.toml",
        [f"http://{host}:{port}/p/0"],
        hosts=(host,),
        crawl={"concurrency": None},
        politeness={"delay": delay},
        fetch={"timeout": None, "connect_timeout": None, "retries": None},
        storage={"path": None},
    )
