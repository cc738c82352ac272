"""`crawler serve DB` as a user runs it: a real `crawler serve` process (kit.cli) on a real
SQLite file or PostgreSQL database, asked over HTTP with aiohttp's client; crawls run in
processes of their own against a kit site on loopback; the live page in a real Chromium
(kit.browser), driven from a thread so that the test's site keeps answering.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing
from html import escape
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from backends import Backend, fill
from kit import HostPlan, finish, make_site, run_cli_async, started_cli, write_config
from kit.browser import chromium, screenshot, severe_console
from prometheus_client.parser import text_string_to_metric_families
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from crawler.commands.report import build_report
from crawler.errors import CrawlerError
from crawler.storage import open_reader
from crawler.storage.postgres import PostgresStore
from crawler.storage.read_contract import Counts
from crawler.storage.sqlite import SQLiteStore

DOCS = Path(__file__).resolve().parents[1] / "docs"
TOKEN = "s3cret-token"
SITE = "site.test"


@pytest.fixture
async def filled(backend: Backend) -> Backend:
    """backends.fill's crawl (13 pages of every status class, skips, two hosts), ended."""
    opening = (
        SQLiteStore.open(Path(backend.location))
        if backend.kind == "sqlite"
        else PostgresStore.open(backend.location)
    )
    async with opening as store:
        await fill(store)
    return backend


@asynccontextmanager
async def serving(db: str, *args: str) -> AsyncIterator[str]:
    """`crawler serve DB ARGS` on a free loopback port: its base URL, while it runs. Stopped
    with SIGINT on the way out, which must end it with 130."""
    async with started_cli("serve", db, "--port", "0", *args, stdout=False) as process:
        assert process.stderr is not None
        line = (await asyncio.wait_for(process.stderr.readline(), 60)).decode()
        assert " at http://127.0.0.1:" in line, line
        yield line.split(" at ")[1].split()[0]
        process.send_signal(signal.SIGINT)
        ran = await finish(process)
        assert ran.code == 130, ran.err
        assert "Traceback" not in ran.err


async def get(url: str, **headers: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, await response.text()


async def live(base: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(base + "live.json") as response:
        assert response.status == 200, await response.text()
        view: dict[str, Any] = await response.json()
        return view


async def counts_of(db: str) -> Counts:
    def read() -> Counts:
        with open_reader(db) as reader:
            return reader.counts()

    return await asyncio.to_thread(read)


async def crawl_started(db: str) -> bool:
    """Whether the crawl database `db` holds a run yet (a crawl process made it)."""

    def read() -> bool:
        try:
            with open_reader(db) as reader:
                return bool(reader.runs())
        except CrawlerError:
            return False

    return await asyncio.to_thread(read)


async def eventually(check: Callable[[], Any], what: str, tries: int = 600) -> Any:
    """`check()`'s first true answer (a coroutine function), asked every 0.1 s."""
    for _ in range(tries):
        answer = await check()
        if answer:
            return answer
        await asyncio.sleep(0.1)
    raise AssertionError(f"never: {what}")


# -- /metrics and /live.json against the database's own figures --------------------------------


async def test_metrics_are_the_databases_counts_in_prometheus_form(filled: Backend) -> None:
    counts = await counts_of(filled.location)
    async with serving(filled.location) as base:
        status, text = await get(base + "metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(text)}
    kinds = {name: f.type for name, f in families.items()}
    assert kinds == {
        "crawler_pages": "counter",
        "crawler_urls": "gauge",
        "crawler_skipped": "counter",
        "crawler_bytes": "counter",
        "crawler_errors": "counter",
        "crawler_hosts": "gauge",
        "crawler_hosts_crawling": "gauge",
        "crawler_processes": "gauge",
        "crawler_running": "gauge",
        "crawler_event_loop_lag_p99_seconds": "gauge",
        "crawler_event_loop_lag_max_seconds": "gauge",
    }

    def samples(name: str) -> dict[tuple[tuple[str, str], ...], float]:
        return {tuple(sorted(s.labels.items())): s.value for s in families[name].samples}

    assert {s.name for s in families["crawler_pages"].samples} == {"crawler_pages_total"}
    by_class = {k.replace("no response", "none"): v for k, v in counts.status_classes.items()}
    assert samples("crawler_pages") == {(("status_class", k),): v for k, v in by_class.items()}
    assert samples("crawler_urls") == {(("state", k),): v for k, v in counts.url_states.items()}
    skipped = {(("reason", k),): v for k, v in counts.skip_reasons.items()}
    assert samples("crawler_skipped") == skipped == {
        (("reason", "depth"),): 1, (("reason", "robots"),): 1, (("reason", "trap"),): 1,
    }  # fmt: skip
    assert samples("crawler_bytes") == {(): counts.bytes}
    assert samples("crawler_errors") == {(): counts.errors}
    assert samples("crawler_hosts") == {(): counts.hosts}
    assert samples("crawler_processes") == samples("crawler_running") == {(): 0}
    labels = {label for f in families.values() for s in f.samples for label in s.labels}
    assert labels == {"status_class", "state", "reason"}  # none per host or URL


async def test_live_json_holds_the_crawls_figures(filled: Backend) -> None:
    counts = await counts_of(filled.location)
    async with serving(filled.location) as base:
        view = await live(base)
        page_status, page = await get(base)
    assert (view["state"], view["pages"], view["queued"]) == ("finished", 10, 1)
    assert view["by_status"] == {"2xx": 4, "3xx": 1, "4xx": 2, "5xx": 0, "none": 3}
    assert (view["errors"], view["bytes"], view["hosts"]) == (3, counts.bytes, 2)
    assert view["urls"] == counts.url_states
    assert (view["processes"], view["crawling"], view["pages_per_s"]) == ([], [], None)
    assert len(view["timeline"]) == 60
    assert sum(span["pages"] for span in view["timeline"]) == 10  # fetched within a minute
    assert page_status == 200
    assert 'href="http' not in page
    assert 'src="' not in page


async def test_report_routes_serve_what_crawler_report_writes(filled: Backend) -> None:
    def built() -> dict[str, Any]:
        with open_reader(filled.location) as reader:
            return build_report(reader, 1000)

    want = await asyncio.to_thread(built)
    async with serving(filled.location) as base:
        json_status, body = await get(base + "report.json")
        html_status, html = await get(base + "report")
    assert (json_status, html_status) == (200, 200)
    served = json.loads(body)
    assert served.keys() == want.keys()
    for key in ("summary", "broken_links", "redirect_chains", "titles", "duplicates", "depth"):
        assert served[key] == want[key], key
    assert "Content-Security-Policy" in html
    assert want["broken_links"]["count"] == 2  # backends.fill's two 404s, drawn by the page
    for item in want["broken_links"]["items"]:
        assert escape(item["url"]) in html


# -- the token, the address, the database -----------------------------------------------------


async def test_with_a_token_every_request_needs_it(filled: Backend) -> None:
    async with serving(filled.location, "--token", TOKEN) as base:
        for path in ("", "live.json", "metrics", "report"):
            assert (await get(base + path))[0] == 401
            assert (await get(base + path, Authorization="Bearer wrong"))[0] == 401
        assert (await get(base + "live.json?token=wrong"))[0] == 401
        assert (await get(base, Authorization=f"Bearer {TOKEN}"))[0] == 200
        assert (await get(base + f"live.json?token={TOKEN}"))[0] == 200
        assert (await get(base + "metrics", Authorization=f"Bearer {TOKEN}"))[0] == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("--host", "0.0.0.0"), "is not a loopback address: it needs --token", id="0"),
        pytest.param(("--host", "example.org"), "is not a loopback address", id="name"),
    ],
)
async def test_off_loopback_without_a_token_is_a_usage_error(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    crawl = tmp_path / "crawl.db"
    async with SQLiteStore.open(crawl) as store:
        await fill(store)
    code, _, err = await run_cli_async("serve", str(crawl), *args)
    assert code == 2
    assert message in err
    assert err.count("\n") == 1


async def test_a_missing_or_foreign_database_is_one_line_and_exit_2(tmp_path: Path) -> None:
    code, _, err = await run_cli_async("serve", str(tmp_path / "nothing.db"))
    assert (code, err) == (2, f"crawler: error: no database at {str(tmp_path / 'nothing.db')!r}\n")
    foreign = tmp_path / "other.db"
    with closing(sqlite3.connect(foreign)) as db, db:
        db.execute("CREATE TABLE notes (text TEXT)")
    code, _, err = await run_cli_async("serve", str(foreign))
    assert code == 2
    assert "is not a crawl database" in err
    assert err.count("\n") == 1


# -- a locked database: 503, then recovery ----------------------------------------------------


async def test_a_locked_sqlite_file_answers_503_then_recovers(tmp_path: Path) -> None:
    crawl = tmp_path / "crawl.db"
    async with SQLiteStore.open(crawl) as store:
        await fill(store)
    async with serving(str(crawl)) as base:
        assert (await live(base))["pages"] == 10
        with closing(sqlite3.connect(crawl, isolation_level=None)) as holder:
            holder.execute("PRAGMA locking_mode = EXCLUSIVE")
            holder.execute("BEGIN EXCLUSIVE")
            holder.execute("UPDATE runs SET pages = pages")  # the lock is taken now
            status, text = await get(base + "live.json")
            metrics_status, _ = await get(base + "metrics")
            holder.execute("ROLLBACK")
        assert (status, metrics_status) == (503, 503)
        assert '"error": "cannot read the crawl: ' in text
        assert (await live(base))["pages"] == 10


# -- a crawl running in another process -------------------------------------------------------


def slow_crawl_config(folder: Path, port: int, backend: Backend, pages: int) -> Path:
    """A crawl of `pages` pages of the kit site on `port`, one every 0.2 s, heartbeats often
    (storage.lease 4: a renewal every 2/3 s)."""
    return write_config(
        folder / "config.toml",
        [f"http://{SITE}:{port}/p/0"],
        hosts=(SITE,),
        **backend.where,
        crawl={"concurrency": 2},
        politeness={"delay": 0.2},
        fetch={"timeout": 2},
        storage={"lease": 4},
    )


async def test_the_live_view_follows_a_crawl_in_another_process_and_its_end(
    backend: Backend, tmp_path: Path, aiohttp_server: Any
) -> None:
    server = await aiohttp_server(make_site({SITE: HostPlan(pages=25)}))
    config = slow_crawl_config(tmp_path, server.port, backend, 25)
    async with started_cli("crawl", str(config), "--quiet", stdout=False) as crawl:
        await eventually(lambda: crawl_started(backend.location), "the crawl started")
        async with serving(backend.location) as base:

            async def running_with_lag() -> dict[str, Any] | None:
                view = await live(base)
                measured = [p for p in view["processes"] if p["lag_p99_ms"] is not None]
                return view if view["state"] == "running" and measured and view["pages"] else None

            view = await eventually(running_with_lag, "a running crawl with its lag")
            (process,) = view["processes"]
            assert process["pid"] == crawl.pid
            assert [h["host"] for h in view["crawling"]] == [SITE]
            assert view["crawling"][0]["delay"] == 0.2
            assert view["pages_per_s"] > 0  # from the first page on, not after a whole span
            ran = await finish(crawl)
            assert ran.code == 0, ran.err
            after = await live(base)
            assert (after["state"], after["pages"], after["processes"]) == ("finished", 25, [])
            assert after["crawling"] == []
            metrics = (await get(base + "metrics"))[1]
    assert 'crawler_pages_total{status_class="2xx"} 25.0' in metrics
    assert "crawler_processes 0.0" in metrics


async def test_the_live_page_in_a_browser_changes_while_a_crawl_runs(
    tmp_path: Path, aiohttp_server: Any
) -> None:
    server = await aiohttp_server(make_site({SITE: HostPlan(pages=60)}))
    backend = Backend("sqlite", str(tmp_path / "crawl.db"))
    config = slow_crawl_config(tmp_path, server.port, backend, 60)
    async with started_cli("crawl", str(config), "--quiet", stdout=False) as crawl:
        await eventually(lambda: crawl_started(backend.location), "the crawl started")
        async with serving(backend.location) as base:
            seen = await asyncio.to_thread(watch_the_live_page, base, tmp_path / "live.png")
        await finish(crawl)
    first, second, state, console = seen
    assert 0 < first < second
    assert state == "running"
    assert console == []
    if os.environ.get("CRAWLER_SCREENSHOTS"):  # CRAWLER_SCREENSHOTS=1: refresh docs/live.png
        shutil.copy(tmp_path / "live.png", DOCS / "live.png")


def watch_the_live_page(base: str, shot: Path) -> tuple[int, int, str, list[Any]]:
    """In Chromium: the pages figure once it is above 0, then once it has grown; the state;
    the console's errors. A screenshot at `shot` meanwhile."""
    with chromium() as browser:
        browser.get(base)
        wait = WebDriverWait(browser, 60, poll_frequency=0.2)

        def pages() -> int:
            text = browser.find_element(By.ID, "pages").text.replace(",", "")
            return int(text) if text.isdigit() else 0

        first: int = wait.until(lambda _: pages() or False)
        second: int = wait.until(lambda _: pages() if pages() > first else False)
        assert browser.find_elements(By.CSS_SELECTOR, "#rate rect")
        assert browser.find_elements(By.CSS_SELECTOR, "#mix rect")
        assert browser.find_elements(By.CSS_SELECTOR, "#processes-table tbody td")
        state = browser.find_element(By.ID, "state").text
        screenshot(browser, shot)
        return first, second, state, severe_console(browser)
