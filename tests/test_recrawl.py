"""Recrawl end to end: a site that changes between two passes, served by three hosts that treat
conditional requests three ways. What the server was asked (which requests carried which
validators, which were answered 304) is read from its log; what changed, from `fetches`."""

from __future__ import annotations

import asyncio
import hashlib
import signal
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from backends import Backend
from kit import (
    LOG,
    HostPlan,
    Request,
    RequestLog,
    finish,
    make_site,
    run_cli_async,
    started_cli,
    write_config,
)

from crawler.commands.stats import Pass, read_stats
from crawler.engine.crawl import Crawler

# Each honours the conditional requests of one kind, or none.
HONOURS = {"etag.test": "If-None-Match", "lm.test": "If-Modified-Since", "none.test": None}


def validators(request: Request) -> frozenset[str]:
    """The conditional headers the request carried."""
    return frozenset(h for h in ("If-None-Match", "If-Modified-Since") if h in request.headers)


@dataclass
class ChangingSite:
    """Path -> HTML per version; `edit()` moves to the second version: / links to a new page
    /d, /a changes, /b is deleted, /c stays as it was."""

    version: int = 1

    def pages(self) -> dict[str, str]:
        links = ["/a", "/b", "/c"] + (["/d"] if self.version == 2 else [])
        pages = {
            "/": "".join(f'<a href="{href}">{href}</a>' for href in links),
            "/a": f"<title>A</title>version {self.version}",
            "/b": "<title>B</title>soon gone",
            "/c": "<title>C</title>always the same",
        }
        if self.version == 2:
            del pages["/b"]
            pages["/d"] = "<title>D</title>new"
        return pages

    def edit(self) -> None:
        self.version = 2


def _app(site: ChangingSite) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        return _answer(site, request.host.partition(":")[0], request)

    # Every path is the site's own, robots.txt too (a 404: no rules).
    return make_site({host: HostPlan(pages=0, routes={"/*": handle}) for host in HONOURS})


def _answer(site: ChangingSite, host: str, request: web.Request) -> web.Response:
    html = site.pages().get(request.path)
    if html is None:
        return web.Response(status=404, text="not here")
    etag = '"' + hashlib.sha256(html.encode()).hexdigest()[:16] + '"'
    # A version's time: the edited pages changed later than the others.
    changed = site.version == 2 and request.path in ("/", "/a", "/d")
    modified = "Wed, 02 Dec 2026 10:00:00 GMT" if changed else "Tue, 01 Dec 2026 10:00:00 GMT"
    honours = HONOURS[host]
    if honours == "If-None-Match" and request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    if honours == "If-Modified-Since" and request.headers.get("If-Modified-Since") == modified:
        return web.Response(status=304)
    headers = {}
    if honours != "If-Modified-Since":
        headers["ETag"] = etag
    if honours != "If-None-Match":
        headers["Last-Modified"] = modified
    return web.Response(text=html, content_type="text/html", headers=headers)


async def _server(aiohttp_server: Any) -> tuple[ChangingSite, RequestLog, list[str]]:
    """The changing site on a loopback server, its request log, and its three hosts' home
    pages."""
    site = ChangingSite()
    server = await aiohttp_server(_app(site))
    return site, server.app[LOG], [f"http://{host}:{server.port}/" for host in HONOURS]


EXPECTED = {"/": "changed", "/a": "changed", "/b": "gone", "/c": "unchanged", "/d": "new"}


async def test_a_recrawl_asks_what_changed_and_records_it(
    aiohttp_server: Any, backend: Backend, tmp_path: Path
) -> None:
    site, log, seeds = await _server(aiohttp_server)
    config = backend.config(tmp_path, seeds, hosts=tuple(HONOURS))
    first = await Crawler(config).run()
    site.edit()
    mark = len(log)  # the second pass's requests come after it

    second = await Crawler(config, recrawl=True).run()

    assert (first.pass_number, second.pass_number) == (1, 2)
    # Which validators went out, and what was answered 304, per host (robots.txt: none).
    for host, honours in HONOURS.items():
        hits = {h.path: h for h in log[mark:] if h.host == host and h.path != "/robots.txt"}
        assert set(hits) == set(EXPECTED), host
        sent = {"etag.test": {"If-None-Match"}, "lm.test": {"If-Modified-Since"}}.get(
            host, {"If-None-Match", "If-Modified-Since"}
        )
        for path in ("/", "/a", "/b", "/c"):
            assert validators(hits[path]) == sent, (host, path)
        assert validators(hits["/d"]) == frozenset(), host  # new: nothing to compare with
        assert hits["/c"].status == (304 if honours else 200), host
    rows = await backend.rows("SELECT url, pass, status, change FROM fetches ORDER BY pass, url")
    by_pass = Counter(row[1] for row in rows)
    assert by_pass == {1: 4 * len(HONOURS), 2: 5 * len(HONOURS)}  # one row a fetch
    for url, pass_number, status, change in rows:
        path = "/" + url.split("/", 3)[3]
        if pass_number == 1:
            assert change == "new", url
        else:
            assert change == EXPECTED[path], url
            assert status == {"/b": 404}.get(
                path, 304 if path == "/c" and "none" not in url else 200
            )
    passes = (await asyncio.to_thread(read_stats, backend.location)).passes
    assert passes == (Pass(1, 12, 0, 0, 0, 0), Pass(2, 3, 6, 3, 3, 0))  # WHOLE_PASS
    # pages: the latest version of each; a 304 left the stored one as it was.
    pages = await backend.rows("SELECT url, status, body FROM pages")
    stored = {
        url.split("/", 3)[3] + "@" + url.split("/")[2].split(":")[0]: (s, b) for url, s, b in pages
    }
    for host in HONOURS:
        assert stored[f"c@{host}"] == (200, b"<title>C</title>always the same")
        assert stored[f"a@{host}"] == (200, b"<title>A</title>version 2")
        assert stored[f"b@{host}"][0] == 404


# What the recrawl of the site finds, uninterrupted (test_a_recrawl_asks_what_changed...).
WHOLE_PASS = "pass 2: 3 new, 6 changed, 3 unchanged, 3 gone"


async def _killed_recrawl(aiohttp_server: Any, backend: Backend, tmp_path: Path) -> Path:
    """Crawl the site, edit it, start `crawler recrawl` and SIGKILL it mid-pass; the config
    file the commands read."""
    site, log, seeds = await _server(aiohttp_server)
    config = backend.config(tmp_path, seeds, hosts=tuple(HONOURS))
    # The file the commands read: the same settings, and a delay so that a kill lands mid-pass.
    path = write_config(
        tmp_path / "config.toml",
        seeds,
        hosts=HONOURS,
        **backend.where,
        crawl={"concurrency": 4},
        politeness={"delay": 0.2},
        fetch={"connect_timeout": None},
    )
    await Crawler(config).run()
    site.edit()
    mark = len(log)

    def mid_pass(log: RequestLog) -> bool:
        return len([r for r in log[mark:] if r.path != "/robots.txt"]) >= 6

    async with started_cli("recrawl", str(path), "--quiet", stdout=False) as process:
        await log.wait_for(mid_pass, 60)
        process.send_signal(signal.SIGKILL)
        assert (await finish(process)).code == -signal.SIGKILL
    return path


async def test_a_killed_recrawl_resumes_to_the_same_counts(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    backend = Backend("sqlite", str(tmp_path / "crawl.db"))
    config = await _killed_recrawl(aiohttp_server, backend, tmp_path)

    ran = await run_cli_async("resume", str(config), "--quiet")

    assert ran.code == 0, ran.err
    assert ran.out.strip() == WHOLE_PASS
    fetched = await backend.rows("SELECT url, count(*) FROM fetches WHERE pass = 2 GROUP BY url")
    assert len(fetched) == 5 * len(HONOURS)
    assert {count for _, count in fetched} == {1}  # each page's fetch committed once


async def test_a_killed_recrawl_run_again_continues_its_pass(
    aiohttp_server: Any, backend: Backend, tmp_path: Path
) -> None:
    config = await _killed_recrawl(aiohttp_server, backend, tmp_path)
    before = await backend.rows("SELECT count(*) FROM fetches WHERE pass = 2")
    assert before[0][0] < 5 * len(HONOURS)  # killed mid-pass

    ran = await run_cli_async("recrawl", str(config))

    assert ran.code == 0, ran.err
    assert "recrawl: continuing pass 2 (interrupted)" in ran.err
    assert ran.out.strip() == WHOLE_PASS  # the whole pass, before and after the kill
    fetched = await backend.rows("SELECT pass, url, count(*) FROM fetches GROUP BY pass, url")
    assert {number for number, _, _ in fetched} == {1, 2}  # no pass 3
    assert len([row for row in fetched if row[0] == 2]) == 5 * len(HONOURS)
    assert {count for _, _, count in fetched} == {1}  # each page's fetch committed once
    # Run again now that pass 2 is complete, the recrawl starts pass 3 and says so.
    ran = await run_cli_async("recrawl", str(config))
    assert ran.code == 0, ran.err
    assert "recrawl: starting pass 3" in ran.err
    assert ran.out.strip() == "pass 3: 0 new, 0 changed, 15 unchanged, 0 gone"  # 404s: unchanged
