"""Sitemaps end to end: real local servers whose pages only their sitemaps lead to, read by
crawls on both storage backends; what the server was asked, and what the tables say."""

from __future__ import annotations

import gzip
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import web
from backends import Backend
from kit import LOG, HostPlan, make_site

from crawler.engine.crawl import Crawler

HOST = "sm.test"
NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


def urlset(*entries: str | tuple[str, str]) -> bytes:
    items = []
    for entry in entries:
        loc, lastmod = entry if isinstance(entry, tuple) else (entry, None)
        extra = f"<lastmod>{lastmod}</lastmod>" if lastmod else ""
        items.append(f"<url><loc>{loc}</loc>{extra}</url>")
    return f'<?xml version="1.0"?><urlset {NS}>{"".join(items)}</urlset>'.encode()


def index(*locs: str) -> bytes:
    items = "".join(f"<sitemap><loc>{loc}</loc></sitemap>" for loc in locs)
    return f'<?xml version="1.0"?><sitemapindex {NS}>{items}</sitemapindex>'.encode()


Site = dict[str, tuple[str, bytes]]  # path: (content type, body); "{o}" is the origin


def _app(site: Site) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        found = site.get(request.path_qs)
        if found is None:
            return web.Response(status=404, text="not here")
        origin = f"http://{request.host}".encode()
        content_type, body = found
        if content_type != "application/gzip":
            body = body.replace(b"{o}", origin)
        return web.Response(body=body, content_type=content_type)

    # Every path is the site's own, robots.txt too (a 404 unless `site` has one).
    return make_site({HOST: HostPlan(pages=0, routes={"/*": handle})})


def _gz(body: bytes, port: int) -> bytes:
    return gzip.compress(body.replace(b"{o}", f"http://{HOST}:{port}".encode()))


def _gzip_bomb(megabytes: int) -> bytes:
    """A gzip urlset of `megabytes` MB of spaces (about 200 KB compressed), made in steps."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    spaces = b" " * 1_000_000
    parts = [deflate.compress(b"<urlset>")]
    parts += [deflate.compress(spaces) for _ in range(megabytes)]
    return b"".join([*parts, deflate.flush()])


def _hidden_site(port: int) -> Site:
    """Pages no link reaches: robots.txt names an index of a gzipped urlset, a plain-text list
    and two indexes that list each other; one index lists itself."""
    gz = urlset(
        ("{o}/a/1", "2026-01-01"),
        "{o}/a/2",
        "http://other.test/x",  # another domain
        "{o}/private/secret",  # robots.txt disallows it
        "{o}/files/doc.pdf",  # skip_extensions
        "not a url",
    )
    robots = b"User-agent: *\nDisallow: /private/\nSitemap: {o}/smi.xml\n"
    return {
        "/robots.txt": ("text/plain", robots),
        "/": ("text/html", b"<title>home</title><p>no links"),
        "/smi.xml": ("application/xml", index("{o}/s/a.xml.gz", "{o}/s/b.txt", "{o}/smi.xml",
                                              "{o}/loop/1.xml")),
        "/s/a.xml.gz": ("application/gzip", _gz(gz, port)),
        "/s/b.txt": ("text/plain", b"{o}/b/1\r\n\r\n{o}/b/2\r\n# a comment\n"),
        "/loop/1.xml": ("application/xml", index("{o}/loop/2.xml")),
        "/loop/2.xml": ("application/xml", index("{o}/loop/1.xml")),
        **{path: ("text/html", b"<title>t</title>") for path in ("/a/1", "/a/2", "/b/1", "/b/2")},
    }  # fmt: skip


async def test_pages_only_sitemaps_reach_are_crawled(
    aiohttp_server: Any, backend: Backend, tmp_path: Path
) -> None:
    site: Site = {}
    server = await aiohttp_server(_app(site))
    site.update(_hidden_site(server.port))
    o = f"http://{HOST}:{server.port}"
    config = backend.config(tmp_path, [f"{o}/"], hosts=(HOST,))

    await Crawler(config).run()

    requests = Counter(server.app[LOG].paths())
    assert set(requests.values()) == {1}  # each once: the loops ended
    assert set(requests) == {
        "/robots.txt", "/", "/smi.xml", "/s/a.xml.gz", "/s/b.txt", "/loop/1.xml", "/loop/2.xml",
        "/a/1", "/a/2", "/b/1", "/b/2",
    }  # fmt: skip
    urls = {
        url.removeprefix(o): rest
        for url, *rest in await backend.rows(
            "SELECT url, state, reason, depth, discovered_from, sitemap, lastmod FROM urls"
        )
    }
    assert urls["/a/1"] == ["done", None, 0, f"{o}/s/a.xml.gz", None, "2026-01-01"]
    assert urls["/b/2"] == ["done", None, 0, f"{o}/s/b.txt", None, None]
    assert urls["/private/secret"][:2] == ["skipped", "robots"]
    assert urls["/files/doc.pdf"][:2] == ["skipped", "extension"]
    assert urls["/smi.xml"] == ["done", None, 0, f"{o}/robots.txt", 0, None]
    assert urls["/loop/2.xml"][4] == 2  # two indexes below the named one
    assert not [url for url in urls if "other.test" in url]
    sitemaps = await backend.rows("SELECT url, kind, entries, left_out FROM sitemaps ORDER BY url")
    assert [(url.removeprefix(o), *rest) for url, *rest in sitemaps] == [
        ("/loop/1.xml", "index", 1, None),
        ("/loop/2.xml", "index", 1, None),
        ("/s/a.xml.gz", "urlset", 6, None),
        ("/s/b.txt", "text", 2, None),
        ("/smi.xml", "index", 4, None),
    ]
    pages = await backend.rows("SELECT count(*) FROM pages")
    assert pages == [(len(requests) - 1,)]  # a row for every fetch but robots.txt's


async def test_limits_nesting_size_and_entries(aiohttp_server: Any, tmp_path: Path) -> None:
    site: Site = {}
    server = await aiohttp_server(_app(site))
    o = f"http://{HOST}:{server.port}"
    # A chain of indexes 7 deep; a 60,000-entry urlset; a gzip bomb (1 GB of spaces).
    for n in range(7):
        site[f"/n/{n}.xml"] = ("application/xml", index(f"{o}/n/{n + 1}.xml"))
    many = urlset(*(f"{o}/m/{n}" for n in range(60_000)))
    site["/many.xml"] = ("application/xml", many)
    site["/bomb.xml.gz"] = ("application/gzip", _gzip_bomb(200))
    site["/robots.txt"] = ("text/plain", b"")
    sitemaps = [f"{o}/n/0.xml", f"{o}/many.xml", f"{o}/bomb.xml.gz"]
    backend = Backend("sqlite", str(tmp_path / "crawl.db"))
    config = backend.config(
        tmp_path, [f"{o}/"], hosts=(HOST,), sitemaps=sitemaps, include=["/n/|/nothing"]
    )

    await Crawler(config).run()

    read = {
        url.removeprefix(o): rest
        for url, *rest in await backend.rows("SELECT url, kind, entries, left_out FROM sitemaps")
    }
    assert read["/many.xml"] == ["urlset", 50_000, "entries"]
    assert read["/bomb.xml.gz"] == ["urlset", 0, "size"]
    assert {path for path in read if path.startswith("/n/")} == {f"/n/{n}.xml" for n in range(6)}
    assert await backend.rows(
        "SELECT state, reason, sitemap FROM urls WHERE url LIKE '%/n/6.xml'"
    ) == [("skipped", "sitemap-depth", 6)]
    # The entries went through the scope (include) like links: queued none of them.
    states = await backend.rows(
        "SELECT state, reason, count(*) FROM urls WHERE url LIKE '%/m/%' GROUP BY 1, 2"
    )
    assert states == [("skipped", "include", 50_000)]
    assert not [path for path in server.app[LOG].paths() if path.startswith("/m/")]


async def test_a_resumed_crawl_reads_on_where_the_sitemaps_left_it(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    site: Site = {}
    server = await aiohttp_server(_app(site))
    site.update(_hidden_site(server.port))
    o = f"http://{HOST}:{server.port}"
    backend = Backend("sqlite", str(tmp_path / "crawl.db"))

    # The home page, the index and one of its sitemaps, then the page budget is spent ...
    await Crawler(
        backend.config(tmp_path, [f"{o}/"], hosts=(HOST,), max_pages=3, concurrency=1)
    ).run()
    first = server.app[LOG].paths()
    assert first == ["/robots.txt", "/", "/smi.xml", "/s/a.xml.gz"]
    # ... and a crawl of the same database without the limit goes on from there.
    await Crawler(backend.config(tmp_path, [f"{o}/"], hosts=(HOST,))).run()

    requests = Counter(server.app[LOG].paths())
    assert set(requests.values()) == {1}
    assert {"/a/1", "/a/2", "/b/1", "/b/2", "/s/b.txt", "/loop/2.xml"} <= set(requests)


async def test_a_recrawl_reads_the_sitemaps_again(aiohttp_server: Any, tmp_path: Path) -> None:
    site: Site = {}
    server = await aiohttp_server(_app(site))
    site.update(_hidden_site(server.port))
    o = f"http://{HOST}:{server.port}"
    config = Backend("sqlite", str(tmp_path / "crawl.db")).config(
        tmp_path, [f"{o}/"], hosts=(HOST,)
    )
    await Crawler(config).run()
    first = Counter(server.app[LOG].paths())
    site["/s/b.txt"] = ("text/plain", b"{o}/b/1\n{o}/b/3\n")  # a page added to a sitemap
    site["/b/3"] = ("text/html", b"<title>t</title>")

    await Crawler(config, recrawl=True).run()

    second = Counter(server.app[LOG].paths()) - first
    assert {"/smi.xml", "/s/a.xml.gz", "/s/b.txt", "/loop/1.xml", "/loop/2.xml"} <= set(second)
    assert "/b/3" in second
    assert set(second.values()) == {1}
