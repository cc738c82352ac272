"""`crawler report`: a crawl of the planted site (tests/report_site.py) gives a JSON report that
lists exactly what was planted, on both backends; the HTML opens from disk in a real Chromium,
draws its charts, sorts and filters, names no outside URL and runs nothing a crawled title
holds; a missing or foreign database is one line and exit 2; an older database (before R1's
columns) gives its sections empty.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from contextlib import closing
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from kit import run_in_process, run_in_thread
from kit.browser import chromium, screenshot, severe_console
from report_site import CRAWL_DELAY, HOST, HOSTILE, SLOW_HOST, SLOW_SECONDS, expected, planted_site
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from crawler.commands.report import build_report
from crawler.commands.report_html import render_report
from crawler.engine.crawl import Crawler
from crawler.storage import open_reader
from crawler.storage.sqlite_schema import MIGRATIONS

EMPTY = {"count": 0, "items": []}
R1_SECTIONS = {
    "descriptions": {"missing": EMPTY, "duplicate": EMPTY, "too_long": EMPTY},
    "canonicals": {"canonicalised": EMPTY, "broken": EMPTY},
    "noindex": EMPTY,
    "hreflang": {"no_return": EMPTY},
    "sitemaps": {"orphans": EMPTY, "not_200": EMPTY, "not_in_sitemap": EMPTY},
}


async def crawl_planted(aiohttp_server: Any, backend: Backend, tmp_path: Path) -> str:
    """Crawl the planted site into `backend`; returns its origin (http://site.test:port)."""
    server = await aiohttp_server(planted_site())
    origin = f"http://{HOST}:{server.port}"
    config = backend.config(
        tmp_path,
        [origin + "/"],
        hosts=(HOST, SLOW_HOST),
        allowed_domains=[HOST, SLOW_HOST],
        sitemaps=[origin + "/sitemap.xml"],
    )
    result = await Crawler(config).run()
    assert result.outcome == "finished"
    return origin


async def report_of(
    capsys: pytest.CaptureFixture[str], db: str, out: Path, *options: str
) -> dict[str, Any]:
    ran = await run_in_thread(capsys, "report", db, "--format", "json", "-o", str(out), *options)
    assert (ran.code, ran.err) == (0, f"crawler: report written to {out}\n")
    loaded: dict[str, Any] = json.loads(await asyncio.to_thread(out.read_text, encoding="utf-8"))
    return loaded


async def test_the_report_lists_exactly_what_the_site_plants(
    aiohttp_server: Any, backend: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    origin = await crawl_planted(aiohttp_server, backend, tmp_path)
    want = expected(origin)
    report = await report_of(capsys, backend.location, tmp_path / "report.json")

    broken = report["broken_links"]
    assert broken["count"] == 2
    assert [{**i, "sources": set(i["sources"])} for i in broken["items"]] == want["broken_links"]
    assert report["redirect_chains"] == {"count": 2, "items": want["redirect_chains"]}
    titles = report["titles"]
    assert titles["missing"] == {"count": 1, "items": [{"url": u} for u in want["titles_missing"]]}
    assert titles["duplicate"]["count"] == 3
    assert {g["text"]: set(g["urls"]) for g in titles["duplicate"]["items"]} == want[
        "titles_duplicate"
    ]
    assert {i["url"]: i["title"] for i in titles["too_long"]["items"]} == want["titles_too_long"]
    assert titles["too_long"]["items"][0]["length"] == len(HOSTILE)  # the longest first
    assert report["duplicates"]["count"] == 1
    assert [set(g["urls"]) for g in report["duplicates"]["items"]] == want["duplicates"]
    slowest = report["slowest"]["items"][0]
    assert slowest["url"] == want["slowest"]
    # A lower bound only: the server sleeps that long before answering; load only adds to it.
    assert slowest["elapsed_ms"] >= SLOW_SECONDS * 1000
    assert report["slowest"]["count"] == report["summary"]["pages"]
    hosts = {h["host"]: h for h in report["hosts"]["items"]}
    assert set(hosts) == {HOST, SLOW_HOST}
    assert (hosts[SLOW_HOST]["crawl_delay"], hosts[SLOW_HOST]["delay_reason"]) == (
        CRAWL_DELAY,
        "crawl-delay",
    )
    assert hosts[SLOW_HOST]["delay"] == CRAWL_DELAY
    summary = report["summary"]
    assert summary["by_status"] == {"2xx": 22, "3xx": 5, "4xx": 2, "5xx": 1, "none": 0}
    assert summary["pages"] == 30
    assert [(row["depth"], row.get("2xx"), row.get("3xx")) for row in report["depth"]] == [
        (0, 3, None),  # the seed, the sitemap and the orphan it lists
        (1, 18, 5),  # a redirect's target is at its depth
        (2, 1, None),
    ]
    assert sum(b["pages"] for b in report["charts"]["fetched_over_time"]["buckets"]) == 30
    assert sum(b["pages"] for b in report["charts"]["response_times"]) == 30
    assert report["changes"]["items"] == [
        {"pass": 1, "new": 30, "changed": 0, "unchanged": 0, "gone": 0}
    ]
    assert_report_data_sections(report, want)
    stats = await run_in_thread(capsys, "stats", backend.location)
    assert (
        "  look at    broken links 2, redirect chains 2, orphans 2, duplicate bodies 1,"
        " duplicate titles 3 (crawler report lists them)"
    ) in stats.out.splitlines()

    cut = await report_of(capsys, backend.location, tmp_path / "cut.json", "--limit", "1")
    assert cut["broken_links"]["count"] == 2
    assert cut["broken_links"]["items"] == report["broken_links"]["items"][:1]
    assert cut["titles"]["duplicate"]["count"] == 3
    assert len(cut["titles"]["duplicate"]["items"]) == 1
    assert cut["redirect_chains"] == {"count": 2, "items": want["redirect_chains"][:1]}

    html_file = tmp_path / "report.html"
    ran = await run_in_thread(capsys, "report", backend.location, "-o", str(html_file))
    assert ran.code == 0
    assert_self_contained(await asyncio.to_thread(html_file.read_text, encoding="utf-8"))


def assert_report_data_sections(report: dict[str, Any], want: dict[str, Any]) -> None:
    """The sections fed by what the crawl keeps per page (descriptions, canonicals, robots,
    hreflang, sitemap entries) list exactly what the site plants."""
    descriptions = report["descriptions"]
    assert [i["url"] for i in descriptions["missing"]["items"]] == want["descriptions_missing"]
    shared = descriptions["duplicate"]["items"]
    assert {g["text"]: set(g["urls"]) for g in shared} == want["descriptions_duplicate"]
    too_long = descriptions["too_long"]["items"]
    assert {i["url"]: i["description"] for i in too_long} == want["descriptions_too_long"]
    canonicals = report["canonicals"]
    canonicalised = canonicals["canonicalised"]["items"]
    assert {i["url"]: i["canonical"] for i in canonicalised} == want["canonicalised"]
    assert canonicals["broken"]["items"] == want["canonical_broken"]
    assert [i["url"] for i in report["noindex"]["items"]] == want["noindex"]
    assert report["hreflang"]["no_return"]["items"] == want["hreflang_no_return"]
    sitemaps = report["sitemaps"]
    assert {i["url"] for i in sitemaps["orphans"]["items"]} == want["sitemap_orphans"]
    assert [i["url"] for i in sitemaps["not_200"]["items"]] == want["sitemap_not_200"]
    listed_html = {want["origin"] + "/", want["origin"] + "/orphan"}
    html_2xx = report["summary"]["by_status"]["2xx"] - 1  # all but the sitemap itself
    assert sitemaps["not_in_sitemap"]["count"] == html_2xx - len(listed_html)
    assert not listed_html & {i["url"] for i in sitemaps["not_in_sitemap"]["items"]}


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text of <style> and <script>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline: dict[str, str] = {"style": "", "script": ""}
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in = tag if tag in self.inline else None

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self.inline[self._in] += data


def assert_self_contained(page: str) -> None:
    """The page names no URL to load: no src/href/action attribute at all, no element that
    loads, one script (inline), no url() or @import in its style."""
    parsed = Tags()
    parsed.feed(page)
    names = [tag for tag, _ in parsed.tags]
    loading = {"src", "href", "xlink:href", "srcset", "action", "poster", "data", "background"}
    assert [(t, a) for t, a in parsed.tags if loading & set(a)] == []
    assert not {"img", "link", "iframe", "object", "embed", "base", "form"} & set(names)
    assert names.count("script") == 1
    assert "url(" not in parsed.inline["style"]
    assert "@import" not in parsed.inline["style"]
    assert all(not (a.get("style") or "").count("url(") for _, a in parsed.tags)


def test_a_missing_file_or_a_foreign_database_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.db"
    ran = run_in_process(capsys, "report", str(missing))
    assert (ran.code, ran.out) == (2, "")
    assert ran.err == f"crawler: error: no database at {str(missing)!r}\n"
    foreign = tmp_path / "foreign.db"
    with closing(sqlite3.connect(foreign)) as db, db:
        db.execute("CREATE TABLE notes (x)")
    ran = run_in_process(capsys, "report", str(foreign), "-o", str(tmp_path / "r.html"))
    assert (ran.code, ran.out) == (2, "")
    assert ran.err.count("\n") == 1
    assert "is not a crawl database" in ran.err
    assert not (tmp_path / "r.html").exists()
    ran = run_in_process(capsys, "report", str(foreign), "--limit", "-1")
    assert (ran.code, ran.err) == (2, "crawler: error: --limit must be 0 or more, not -1\n")


def older_database(path: Path) -> Path:
    """A crawl database as the crawler left it before R1's columns (migrated up to
    text-search), holding a few pages."""
    steps = [name for name, _ in MIGRATIONS].index("text-search") + 1
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        for number, (_name, step) in enumerate(MIGRATIONS[:steps], start=1):
            step(db)
            db.execute(f"PRAGMA user_version = {number}")
        rows = [
            ("https://old.test/", 200, "Old", "text/html", 5),
            ("https://old.test/a", 200, "Old", "text/html", 7),
            ("https://old.test/b", 404, None, "text/html", 9),
        ]
        db.executemany(
            "INSERT INTO pages (url, host, status, title, content_type, depth, fetched_at,"
            " elapsed_ms) VALUES (?, 'old.test', ?, ?, ?, 0, '2026-01-01T00:00:00Z', ?)",
            rows,
        )
        db.execute(
            "INSERT INTO links (src_url, dst_url) VALUES ('https://old.test/', 'https://old.test/b')"
        )
    return path


def test_an_older_database_gives_r1s_sections_empty(tmp_path: Path) -> None:
    with open_reader(older_database(tmp_path / "old.db")) as reader:
        assert "description" not in reader.columns("pages")
        report = build_report(reader, 10)
    for key, empty in R1_SECTIONS.items():
        assert report[key] == empty, key
    assert report["titles"]["duplicate"]["items"] == [
        {"text": "Old", "count": 2, "urls": ["https://old.test/", "https://old.test/a"]}
    ]
    assert [i["url"] for i in report["broken_links"]["items"]] == ["https://old.test/b"]
    assert_self_contained(render_report(report))


async def test_the_html_report_in_a_real_browser(
    aiohttp_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = Backend("sqlite", str(tmp_path / "crawl.db"))
    origin = await crawl_planted(aiohttp_server, backend, tmp_path)
    page = tmp_path / "report.html"
    ran = await run_in_thread(capsys, "report", backend.location, "-o", str(page))
    assert ran.code == 0
    await asyncio.to_thread(check_in_browser, page, origin)


def check_in_browser(page: Path, origin: str) -> None:
    with chromium() as browser:
        browser.get(page.as_uri())
        title = browser.title
        assert title.startswith("Crawl report: ")
        check_charts(browser)
        assert browser.find_element(By.CSS_SELECTOR, "#broken-count b").text == "2"
        check_sorting_and_filtering(browser, origin)
        check_hostile_title(browser, title)
        assert severe_console(browser) == []
        if os.environ.get("REPORT_PNG"):  # docs/report.png is made so
            screenshot(browser, Path(os.environ["REPORT_PNG"]))
    with chromium(width=390, height=844) as phone:
        phone.get(page.as_uri())
        overflow = "return document.body.scrollWidth - document.documentElement.clientWidth"
        assert phone.execute_script(overflow) <= 0
        assert severe_console(phone) == []


def check_charts(browser: WebDriver) -> None:
    for chart in ("chart-status", "chart-depth", "chart-time", "chart-response"):
        svg = browser.find_element(By.CSS_SELECTOR, f"#{chart} svg")
        assert len(svg.find_elements(By.TAG_NAME, "rect")) >= 1, chart
        assert svg.size["width"] > 100, chart


def rows_of(browser: WebDriver, table: str) -> list[list[str]]:
    script = (
        "return Array.from(document.getElementById(arguments[0]).tBodies[0].rows)"
        ".filter(r => !r.hidden).map(r => Array.from(r.cells).map(c => c.textContent))"
    )
    found: list[list[str]] = browser.execute_script(script, table)
    return found


def check_sorting_and_filtering(browser: WebDriver, origin: str) -> None:
    table = "table-broken"
    assert [r[0] for r in rows_of(browser, table)] == [origin + "/missing", origin + "/gone"]
    inlinks = browser.find_elements(By.CSS_SELECTOR, f"#{table} th")[3]
    inlinks.click()  # ascending
    assert [r[3] for r in rows_of(browser, table)] == ["2", "3"]
    inlinks.click()  # descending
    assert [r[3] for r in rows_of(browser, table)] == ["3", "2"]
    search = browser.find_element(By.CSS_SELECTOR, f'input[data-table="{table}"]')
    search.send_keys("gone")
    assert [r[0] for r in rows_of(browser, table)] == [origin + "/gone"]
    search.clear()
    search.send_keys("x")  # `clear` fires no input event; a new key does
    search.send_keys("\b")
    assert len(rows_of(browser, table)) == 2


def check_hostile_title(browser: WebDriver, title: str) -> None:
    shown = [r[0] for r in rows_of(browser, "table-titles-duplicate")]
    assert HOSTILE in shown  # its characters, as text
    assert browser.title == title  # the script in it did not run
    assert browser.execute_script("return document.querySelectorAll('img').length") == 0
    assert browser.execute_script("return document.scripts.length") == 1
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.accept()
