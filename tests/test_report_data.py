"""What the report reads, kept by a real crawl of a local site on both backends (storage rule
16), and an older database of each backend migrated to it: its rows get NULL, its new tables
are empty, and a crawl goes on writing into it."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, closing
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from backends import pg_database_before
from conftest import ConfigFactory, crawl
from kit import HostPlan, Page, make_site

from crawler.config import DEFAULT_LEASE, Config
from crawler.records import Discovered, Outcome, PageRecord, SitemapRecord, utc_now
from crawler.storage import Batch, Storage
from crawler.storage.postgres import PostgresStore
from crawler.storage.sqlite import SQLiteStore
from crawler.storage.sqlite_schema import MIGRATIONS

HOME = """<html><head><title>Home</title>
<base href="/docs/">
<link rel="canonical" href="../?utm=1#top">
<meta name="description" content="  The   home
page ">
<meta name="ROBOTS" content="NoArchive">
<link rel="alternate" hreflang="de" href="/de/">
<link rel="alternate" hreflang="x-default" href="http://site.test:{port}/">
</head><body><div><h1>Welcome <em>home</em></h1><h1>Second</h1>
<a href="/about"> About   <b>us</b> </a><a href="/plain"><img src="/i.png"></a>
<a href="/about">again</a></div></body></html>"""
SITEMAP = """<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<url><loc>http://site.test:{port}/about</loc></url>
<url><loc>http://site.test:{port}/orphan</loc></url>
<url><loc>http://site.test:{port}/private/x</loc></url>
<url><loc>http://site.test:{port}/excluded/x</loc></url>
<url><loc>http://elsewhere.test/y</loc></url>
<url><loc>http://site.test:{port}/orphan#again</loc></url>
</urlset>"""


def _site() -> Any:
    routes = {
        "/": Page(HOME),
        "/about": Page("<p>about", headers={"X-Robots-Tag": "noindex, otherbot: nofollow"}),
        "/plain": Page("plain text", content_type="text/plain", headers={"X-Robots-Tag": "none"}),
        "/orphan": Page("<h1>Orphan</h1>"),
        "/de/": Page(""),
        "/sitemap.xml": Page(SITEMAP, content_type="application/xml"),
    }
    return make_site({"site.test": HostPlan(pages=0, routes=routes)})


async def _rows(config: Config, sql: str) -> list[tuple[Any, ...]]:
    if config.storage.url:
        conn = await asyncpg.connect(config.storage.url)
        try:
            return [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()
    with closing(sqlite3.connect(config.storage.path)) as db:
        return db.execute(sql).fetchall()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_crawl_keeps_what_the_report_reads(
    backend: str,
    aiohttp_server: Any,
    make_config: ConfigFactory,
    make_pg_url: Callable[[], str],
) -> None:
    server = await aiohttp_server(_site())
    origin = f"http://site.test:{server.port}"
    config = make_config(
        [f"{origin}/"],
        hosts=("site.test",),
        crawl={"sitemaps": [f"{origin}/sitemap.xml"], "exclude": ["/excluded/"]},
        pg_url=make_pg_url() if backend == "postgres" else None,
    )

    await crawl(config)

    pages = await _rows(
        config, "SELECT url, canonical, description, h1, robots FROM pages ORDER BY url"
    )
    # An alternate is no link: /de/ is not fetched.
    assert [row for row in pages if row[0] != f"{origin}/sitemap.xml"] == [
        (f"{origin}/", f"{origin}/?utm=1", "The home page", "Welcome home", "noarchive"),
        (f"{origin}/about", None, None, None, "noindex"),
        (f"{origin}/orphan", None, None, "Orphan", None),
        (f"{origin}/plain", None, None, None, "none"),
    ]
    links = await _rows(config, "SELECT src_url, dst_url, text FROM links ORDER BY dst_url")
    assert links == [
        (f"{origin}/", f"{origin}/about", "About us"),
        (f"{origin}/", f"{origin}/plain", ""),
    ]
    alternates = await _rows(config, "SELECT * FROM alternates ORDER BY hreflang")
    assert alternates == [
        (f"{origin}/", "de", f"{origin}/de/"),
        (f"{origin}/", "x-default", f"{origin}/"),
    ]
    entries = await _rows(config, "SELECT sitemap, url FROM sitemap_entries ORDER BY url")
    sitemap = f"{origin}/sitemap.xml"
    # In scope: not the excluded path nor the other host; robots.txt is the fetch's business.
    assert entries == [
        (sitemap, f"{origin}/about"),
        (sitemap, f"{origin}/orphan"),
        (sitemap, f"{origin}/private/x"),
    ]


# -- an older database ------------------------------------------------------------------------

OLD_PAGE = (
    "INSERT INTO pages (url, host, status, title, depth, fetched_at)"
    " VALUES ('http://a.test/', 'a.test', 200, 'old', 0, '2026-01-01T00:00:00.000Z')"
)
OLD_LINK = (
    "INSERT INTO links (src_url, dst_url, nofollow) VALUES ('http://a.test/', 'http://a.test/x', 0)"
)
NEW_COLUMNS = "SELECT canonical, description, h1, robots FROM pages"


def _sqlite_before_report_data(path: Path) -> None:
    before = [name for name, _ in MIGRATIONS].index("report-data")
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        for _name, step in MIGRATIONS[:before]:
            step(db)
        db.execute(f"PRAGMA user_version = {before}")
        db.execute(OLD_PAGE)
        db.execute(OLD_LINK)


def _page() -> PageRecord:
    return PageRecord(
        url="http://a.test/", host="a.test", status=200, content_type="text/html", title="new",
        body=b"", bytes=0, truncated=False, depth=0, fetched_at=utc_now(), elapsed_ms=1,
        error=None, location=None, canonical="http://a.test/c", h1="h",
    )  # fmt: skip


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_an_older_database_gets_the_columns_null_and_keeps_working(
    backend: str, tmp_path: Path, make_pg_url: Callable[[], str]
) -> None:
    opened: AbstractAsyncContextManager[Storage]
    if backend == "sqlite":
        config = Config.from_dict(
            {"crawl": {"seeds": ["http://a.test/"]}, "storage": {"path": "old.db"}},
            source=tmp_path / "config.toml",
        )
        _sqlite_before_report_data(config.storage.path)
        opened = SQLiteStore.open(config.storage.path)
    else:
        url = make_pg_url()
        config = Config.from_dict(
            {"crawl": {"seeds": ["http://a.test/"]}, "storage": {"url": url}},
            source=tmp_path / "config.toml",
        )
        await pg_database_before(url, "report-data", OLD_PAGE, OLD_LINK)
        opened = PostgresStore.open(url)

    async with opened as store:
        assert await _rows(config, NEW_COLUMNS) == [(None, None, None, None)]
        assert await _rows(config, "SELECT text FROM links") == [(None,)]
        assert await _rows(config, "SELECT count(*) FROM alternates") == [(0,)]
        assert await _rows(config, "SELECT count(*) FROM sitemap_entries") == [(0,)]
        # A crawl goes on: the old link's row takes text, the page its new columns.
        seed = Discovered("http://a.test/", "a.test", 0, "queued")
        await store.start_run([seed], max_depth=5, lease=DEFAULT_LEASE)
        claim = {h.host: h.claim for h in await store.claim_hosts(10)}
        [queued] = await store.next_queued("a.test", 10, ())
        queued.claim = claim["a.test"]
        outcome = Outcome(
            queued, "done", page=_page(), links=[(seed.url, "http://a.test/x", False, "")]
        )
        outcome.alternates = [(seed.url, "de", "http://a.test/de")]
        outcome.sitemap = SitemapRecord("http://a.test/s.xml", "urlset", 1, None, (seed.url,))
        assert await store.save(Batch([outcome])) == []

    assert await _rows(config, NEW_COLUMNS) == [("http://a.test/c", None, "h", None)]
    assert await _rows(config, "SELECT text FROM links") == [("",)]
    assert await _rows(config, "SELECT * FROM alternates") == [
        ("http://a.test/", "de", "http://a.test/de")
    ]
    assert await _rows(config, "SELECT * FROM sitemap_entries") == [
        ("http://a.test/s.xml", "http://a.test/")
    ]
