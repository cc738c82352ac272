"""A local site that plants one of each thing `crawler report` finds, and the report it must give.

site.test: broken links (/missing 404 from three pages, /gone 500 from two), a 3-hop redirect
chain (/r3 → /r2 → /r1 → /final) and a loop (/loop1 → /loop2 → /loop1), two pages sharing a
title and two sharing a body (/twin1, /twin2: the same body, so the same title too), a page
without a title, a too-long title, two pages with one hostile title (markup and a script end
tag), a slow page, a page canonicalised to another and one whose canonical answers 404, a
noindex page, an hreflang alternate without a return link, a page without a description and
one with a description too long, a sitemap that lists an orphan and a 404. slow.test: a robots
Crawl-delay. Every other 2xx page has a meta description, shared only where the title is.
"""

from __future__ import annotations

import html
from typing import Any

from kit import HostPlan, Page, make_site, redirect

HOST, SLOW_HOST = "site.test", "slow.test"
HOSTILE = "<img src=x onerror=alert(1)></script><script>document.title='pwned'</script>"
LONG = "A title that goes on and on, well past the sixty characters a search shows"
SLOW_SECONDS = 1.0  # every other page answers at once
CRAWL_DELAY = 0.2
HOME_LINKS = (
    "/a", "/b", "/twin1", "/twin2", "/long", "/hostile1", "/hostile2", "/notitle", "/r3",
    "/loop1", "/missing", "/gone", "/slow", "/canon", "/canon-broken", "/noindex", "/en", "/de",
    "/nodesc", "/longdesc",
)  # fmt: skip
LONG_DESCRIPTION = "A description that says far more than any search result could show. " * 3
SITEMAP = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
    "<url><loc>http://site.test:{port}/</loc></url>"
    "<url><loc>http://site.test:{port}/orphan</loc></url>"
    "<url><loc>http://site.test:{port}/listed-missing</loc></url>"
    "</urlset>"
)


def page(
    title: str | None, *hrefs: str, body: str = "", head: str = "", description: str | None = ""
) -> Page:
    """An HTML page with `title` (None: no <title>), a description (by default one of its own,
    None: none), more `head` markup, and links."""
    if description == "":
        description = f"About {title or 'nothing'}"
    if title is not None:
        head += f"<title>{html.escape(title)}</title>"
    if description is not None:
        head += f'<meta name="description" content="{html.escape(description)}">'
    anchors = "".join(f'<a href="{href}">{href}</a>' for href in hrefs)
    return Page(f"<html><head>{head}</head><body>{body}{anchors}</body></html>")


TWIN = Page(
    '<html><head><title>Twin</title><meta name="description" content="Twins">'
    "</head><body>one body, twice</body></html>"
)


def planted_site() -> Any:
    """The aiohttp app of the planted site (serve it with `aiohttp_server`)."""
    routes = {
        "/": page("Home", *HOME_LINKS, "http://slow.test:{port}/"),
        "/a": page("Same title", "/missing", "/", body="a"),
        "/b": page("Same title", "/missing", "/gone", body="b"),
        "/twin1": TWIN,
        "/twin2": TWIN,
        "/long": page(LONG),
        "/hostile1": page(HOSTILE, body="1"),
        "/hostile2": page(HOSTILE, body="2"),
        "/notitle": page(None),
        "/r3": redirect("/r2", 301),
        "/r2": redirect("/r1", 301),
        "/r1": redirect("/final", 301),
        "/final": page("Final"),
        "/loop1": redirect("/loop2", 302),
        "/loop2": redirect("/loop1", 302),
        "/missing": Page("not here", status=404),
        "/gone": Page("broken", status=500),
        "/slow": Page(page("Slow").body, sleep=SLOW_SECONDS),
        "/canon": page("Canonicalised", head='<link rel="canonical" href="/a">'),
        "/canon-broken": page("Broken canonical", head='<link rel="canonical" href="/missing">'),
        "/noindex": page("Kept out", head='<meta name="robots" content="noindex">'),
        "/en": page("English", head='<link rel="alternate" hreflang="de" href="/de">'),
        "/de": page("Deutsch"),
        "/nodesc": page("Undescribed", description=None),
        "/longdesc": page("Overdescribed", description=LONG_DESCRIPTION),
        "/orphan": page("Orphan"),
        "/listed-missing": Page("not here either", status=404),
        "/sitemap.xml": Page(SITEMAP, content_type="application/xml"),
    }
    slow_routes = {"/": page("Slow host", "/next"), "/next": page("Slow host, next")}
    return make_site(
        {
            HOST: HostPlan(pages=0, routes=routes),
            SLOW_HOST: HostPlan(
                pages=0, robots=f"User-agent: *\nCrawl-delay: {CRAWL_DELAY}\n", routes=slow_routes
            ),
        }
    )


def expected(origin: str) -> dict[str, Any]:
    """What the JSON report must list for the site served at `origin` (http://site.test:port);
    lists of sources are compared as sets by the tests (fetch order varies)."""

    def u(path: str) -> str:
        return origin + path

    return {
        "origin": origin,
        "broken_links": [
            {"url": u("/missing"), "status": 404, "error": None, "inlinks": 3,
             "sources": {u("/"), u("/a"), u("/b")}},
            {"url": u("/gone"), "status": 500, "error": None, "inlinks": 2,
             "sources": {u("/"), u("/b")}},
        ],
        "redirect_chains": [
            {"urls": [u("/loop1"), u("/loop2"), u("/loop1")], "statuses": [302, 302, 302],
             "hops": 2, "loop": True, "inlinks": 1},
            {"urls": [u("/r3"), u("/r2"), u("/r1"), u("/final")],
             "statuses": [301, 301, 301, 200], "hops": 3, "loop": False, "inlinks": 1},
        ],
        "titles_missing": [u("/notitle")],
        "titles_duplicate": {
            "Same title": {u("/a"), u("/b")},
            "Twin": {u("/twin1"), u("/twin2")},
            HOSTILE: {u("/hostile1"), u("/hostile2")},
        },
        "titles_too_long": {u("/long"): LONG, u("/hostile1"): HOSTILE, u("/hostile2"): HOSTILE},
        "duplicates": [{u("/twin1"), u("/twin2")}],
        "descriptions_duplicate": {  # once the crawl keeps them: pages sharing a title share one
            "About Same title": {u("/a"), u("/b")},
            "Twins": {u("/twin1"), u("/twin2")},
            f"About {HOSTILE}": {u("/hostile1"), u("/hostile2")},
        },
        "slowest": u("/slow"),
        "descriptions_missing": [u("/nodesc")],
        "descriptions_too_long": {u("/longdesc"): LONG_DESCRIPTION.strip()},
        "canonicalised": {u("/canon"): u("/a"), u("/canon-broken"): u("/missing")},
        "canonical_broken": [
            {"url": u("/canon-broken"), "canonical": u("/missing"), "status": 404}
        ],
        "noindex": [u("/noindex")],
        "hreflang_no_return": [{"url": u("/en"), "hreflang": "de", "target": u("/de")}],
        "sitemap_orphans": {u("/orphan"), u("/listed-missing")},
        "sitemap_not_200": [u("/listed-missing")],
    }  # fmt: skip
