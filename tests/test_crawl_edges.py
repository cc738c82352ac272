"""End to end against small purpose-built sites: duplicates, long URLs, dead hosts, base href."""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from conftest import ConfigFactory, crawl, rows
from kit import LOG, HostPlan, Page, make_site


def _site(pages: Mapping[str, str | Page]) -> web.Application:
    """A kit site answering any host with `pages` (path -> HTML, "{port}" filled in, or a
    Page); robots.txt and every other path 404. app[LOG].paths(): every path_qs asked for."""
    routes = {path: Page(page) if isinstance(page, str) else page for path, page in pages.items()}
    return make_site({"*": HostPlan(pages=0, robots=None, routes=routes)})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_normalized_duplicates_are_fetched_once(
    aiohttp_server: Any, make_config: ConfigFactory
) -> None:
    links = [
        "HTTP://DUP.TEST:{port}/a/./b#x",
        "http://dup.test:{port}/a/b",
        "/a/%62",
        "a/b#y",
        "./x/../a/b",
        "/a/b?",
    ]
    home = "".join(f'<a href="{href}">l</a>' for href in links)
    server = await aiohttp_server(_site({"/": home, "/a/b": "<title>B</title>"}))
    config = make_config([f"http://dup.test:{server.port}/"], hosts=("dup.test",))

    await crawl(config)

    assert Counter(server.app[LOG].paths()) == {"/robots.txt": 1, "/": 1, "/a/b": 1}
    assert rows(config, "SELECT url, title FROM pages ORDER BY url") == [
        (f"http://dup.test:{server.port}/", None),
        (f"http://dup.test:{server.port}/a/b", "B"),
    ]
    assert rows(config, "SELECT count(*) FROM links")[0][0] == 1


async def test_links_to_files_of_skip_extensions_are_never_requested(
    aiohttp_server: Any, make_config: ConfigFactory
) -> None:
    links = ["/report.pdf", "/logo.PNG", "/pics/a.jpg?w=2", "/page.html", "/v1.2/"]
    home = "".join(f'<a href="{href}">l</a>' for href in links)
    pages = {"/": home, "/page.html": "", "/v1.2/": "", "/report.pdf": "%PDF", "/logo.PNG": ""}
    server = await aiohttp_server(_site(pages))
    config = make_config([f"http://ext.test:{server.port}/"], hosts=("ext.test",))

    await crawl(config)

    assert sorted(server.app[LOG].paths()) == ["/", "/page.html", "/robots.txt", "/v1.2/"]
    origin = f"http://ext.test:{server.port}"
    skipped = rows(config, "SELECT url, reason FROM urls WHERE state = 'skipped' ORDER BY url")
    assert [(url.removeprefix(origin), reason) for url, reason in skipped] == [
        ("/logo.PNG", "extension"),
        ("/pics/a.jpg?w=2", "extension"),
        ("/report.pdf", "extension"),
    ]


async def test_a_target_linked_both_ways_is_one_followed_link(
    aiohttp_server: Any, make_config: ConfigFactory
) -> None:
    home = (
        '<a rel="nofollow" href="/t">1</a><a href="/t#again">2</a>'  # nofollow first
        '<a href="/u">3</a><a rel="nofollow" href="/u">4</a>'  # nofollow last
        '<a rel="nofollow" href="/n">5</a><a rel="nofollow" href="/n?">6</a>'  # nofollow only
    )
    server = await aiohttp_server(_site({"/": home, "/t": "", "/u": "", "/n": ""}))
    config = make_config([f"http://both.test:{server.port}/"], hosts=("both.test",))

    await crawl(config)

    origin = f"http://both.test:{server.port}"
    links = {
        dst.removeprefix(origin): n
        for dst, n in rows(config, "SELECT dst_url, nofollow FROM links")
    }
    assert links == {"/t": 0, "/u": 0, "/n": 1}
    assert sorted(server.app[LOG].paths()) == ["/", "/robots.txt", "/t", "/u"]
    assert not rows(config, "SELECT 1 FROM urls WHERE url = ?", (origin + "/n",))


async def test_long_urls_are_skipped(aiohttp_server: Any, make_config: ConfigFactory) -> None:
    long_path = "/" + "x" * 300
    server = await aiohttp_server(
        _site({"/": f'<a href="{long_path}">long</a><a href="/short">short</a>', "/short": ""})
    )
    config = make_config(
        [f"http://long.test:{server.port}/"], hosts=("long.test",), crawl={"max_url_length": 100}
    )

    await crawl(config)

    assert long_path not in server.app[LOG].paths()
    assert "/short" in server.app[LOG].paths()
    skipped = rows(config, "SELECT url, state, reason FROM urls WHERE url LIKE '%xxxx%'")
    assert skipped == [(f"http://long.test:{server.port}{long_path}", "skipped", "too-long")]


async def test_base_href_is_honoured(aiohttp_server: Any, make_config: ConfigFactory) -> None:
    home = '<base href="/docs/v2/"><a href="intro">intro</a><a href="../v1/old">old</a>'
    server = await aiohttp_server(_site({"/": home, "/docs/v2/intro": "", "/docs/v1/old": ""}))
    config = make_config([f"http://base.test:{server.port}/"], hosts=("base.test",))

    await crawl(config)

    assert sorted(server.app[LOG].paths()) == ["/", "/docs/v1/old", "/docs/v2/intro", "/robots.txt"]


async def test_refused_connection_is_a_row_not_a_crash(make_config: ConfigFactory) -> None:
    port = _free_port()  # nothing listens there any more
    config = make_config(
        [f"http://dead.test:{port}/"],
        hosts=("dead.test",),
        politeness={"obey_robots": False},
        fetch={"retries": 1},
    )

    result = await crawl(config)

    assert result.outcome == "finished"
    [(status, error, state)] = rows(
        config, "SELECT status, error, state FROM pages JOIN urls USING (url)"
    )
    assert status is None
    assert "connection" in error.lower()
    assert state == "failed"
    [(requests, errors)] = rows(config, "SELECT requests, errors FROM hosts")
    assert (requests, errors) == (2, 2)  # one try and one retry


async def test_unreachable_robots_skips_the_host(make_config: ConfigFactory) -> None:
    port = _free_port()
    config = make_config([f"http://dead.test:{port}/"], hosts=("dead.test",))

    result = await crawl(config)

    assert result.outcome == "finished"
    assert rows(config, "SELECT count(*) FROM pages")[0][0] == 0
    assert rows(config, "SELECT state, reason FROM urls") == [("skipped", "robots-unreachable")]


async def test_meta_and_header_nofollow(aiohttp_server: Any, make_config: ConfigFactory) -> None:
    home = '<a href="/meta">m</a><a href="/header">h</a><a href="/rel" rel="nofollow">r</a>'
    meta = '<meta name="robots" content="nofollow"><a href="/from-meta">x</a>'
    header = Page('<a href="/from-header">x</a>', headers={"X-Robots-Tag": "nofollow, noindex"})
    # Every other path, robots.txt too, is a leaf page.
    server = await aiohttp_server(
        _site({"/": home, "/meta": meta, "/header": header, "/*": Page("leaf")})
    )
    config = make_config([f"http://nf.test:{server.port}/"], hosts=("nf.test",))

    await crawl(config)

    assert sorted(server.app[LOG].paths()) == ["/", "/header", "/meta", "/robots.txt"]
    origin = f"http://nf.test:{server.port}"
    nofollow = {
        dst.removeprefix(origin): n
        for dst, n in rows(config, "SELECT dst_url, nofollow FROM links")
    }
    assert nofollow == {"/from-meta": 1, "/from-header": 1, "/rel": 1, "/meta": 0, "/header": 0}
    [(body,)] = rows(config, "SELECT body FROM pages WHERE url LIKE '%/header'")
    assert body is None  # X-Robots-Tag noindex


async def test_each_port_of_a_host_is_an_origin_with_its_own_robots_txt(
    aiohttp_server: Any, make_config: ConfigFactory
) -> None:
    # One host name, two ports: two origins (RFC 9309), each ruled by its own robots.txt.
    def site(robots: str, home: str) -> web.Application:
        routes = {path: Page("") for path in ("/a-only", "/b-only")} | {"/": Page(home)}
        return make_site({"*": HostPlan(pages=0, robots=robots, routes=routes)})

    links = '<a href="/a-only">a</a><a href="/b-only">b</a>'
    b = await aiohttp_server(site("User-agent: *\nDisallow: /a-only\n", links))
    a = await aiohttp_server(
        site("User-agent: *\nDisallow: /b-only\n", links + f'<a href="http://two.test:{b.port}/">')
    )
    config = make_config([f"http://two.test:{a.port}/"], hosts=("two.test",))

    await crawl(config)

    assert sorted(a.app[LOG].paths()) == ["/", "/a-only", "/robots.txt"]
    assert sorted(b.app[LOG].paths()) == ["/", "/b-only", "/robots.txt"]
