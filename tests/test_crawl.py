"""End to end: the crawler against the demo site on a real loopback server, a real SQLite file."""

from __future__ import annotations

import itertools
from collections import Counter

from conftest import ConfigFactory, DemoServer, crawl, rows
from kit import LOG
from yarl import URL

from crawler.demo_site import DEMO_HOSTS, build_site, expected_pages


def _seed(server: DemoServer) -> str:
    return f"http://docs.demo.test:{server.port}/"


def _expected_links(port: int) -> dict[tuple[str, str], int]:
    """The `links` rows a full crawl must leave, from the site's model: (src, dst) -> nofollow.

    Links come from every fetched 2xx HTML page; a target is stored once per page, with
    nofollow = 1 only if every link to it there is rel=nofollow; non-http links are not stored.
    """
    site = build_site()
    expected: dict[tuple[str, str], int] = {}
    for src in expected_pages(port=port):
        url = URL(src)
        assert url.host is not None
        resource = site[url.host].get(url.path)
        if resource is None or resource.status != 200 or resource.content_type != "text/html":
            continue
        for link in resource.links:
            if link.target is not None:
                dst = f"http://{link.target[0]}:{port}{link.target[1]}"
            elif link.href.startswith("http"):
                dst = link.href  # off-site, already normalized
            else:
                continue  # mailto:, javascript:, data:
            expected[src, dst] = min(expected.get((src, dst), 1), int(link.nofollow))
    return expected


async def test_crawl_finds_exactly_the_reachable_pages(
    demo_server: DemoServer, make_config: ConfigFactory
) -> None:
    config = make_config([_seed(demo_server)], crawl={"allowed_domains": ["demo.test"]})

    result = await crawl(config)

    expected = expected_pages(port=demo_server.port)
    stored = dict(rows(config, "SELECT url, depth FROM pages"))
    assert result.outcome == "finished"
    assert stored == expected
    assert result.pages == len(expected)
    assert result.extracted_in == {"loop": len(expected)}  # small pages: in the event loop
    # The server saw each page once (a retry would be a second request).
    page_requests = Counter(
        (r.host, r.path) for r in demo_server.app[LOG] if r.path != "/robots.txt"
    )
    assert max(page_requests.values()) == 1
    assert len(page_requests) == len(expected)
    # The run's event-loop lag is on record, as the run measured it.
    [(p99, worst)] = rows(config, "SELECT lag_p99_ms, lag_max_ms FROM runs")
    assert (p99, worst) == (round(result.lag_p99 * 1000, 1), round(result.lag_max * 1000, 1))
    # "Who links to a URL" is an index lookup once the run is over (built at its end).
    plan = rows(config, "EXPLAIN QUERY PLAN SELECT src_url FROM links WHERE dst_url = 'x'")
    assert "links_dst" in plan[0][-1]


async def test_robots_txt_comes_first_and_is_obeyed(
    demo_server: DemoServer, make_config: ConfigFactory
) -> None:
    config = make_config(
        [_seed(demo_server)],
        crawl={"allowed_domains": ["demo.test"]},
        politeness={"user_agent": "TestBot/2.0 (+http://test)"},
    )

    await crawl(config)

    log = demo_server.app[LOG]
    for host in DEMO_HOSTS:
        paths = [r.path for r in log if r.host == host]
        assert paths[0] == "/robots.txt"
        assert paths.count("/robots.txt") == 1
        assert not [p for p in paths if p.startswith("/private/")]
    assert {r.user_agent for r in log} == {"TestBot/2.0 (+http://test)"}
    skipped = rows(config, "SELECT url FROM urls WHERE state = 'skipped' AND reason = 'robots'")
    assert skipped
    assert all("/private/" in url for (url,) in skipped)


async def test_pages_hold_status_title_links_and_body(
    demo_server: DemoServer, make_config: ConfigFactory
) -> None:
    config = make_config([_seed(demo_server)], crawl={"allowed_domains": ["demo.test"]})
    base = f"http://docs.demo.test:{demo_server.port}"

    await crawl(config)

    by_url = {
        r[0]: r[1:]
        for r in rows(
            config,
            "SELECT url, status, content_type, title, length(body), bytes, location, error"
            " FROM pages",
        )
    }
    home = by_url[base + "/"]
    assert home[0] == 200
    assert home[1] == "text/html"
    assert home[2] == "Docs home"
    assert home[3] == home[4] > 0
    assert by_url[base + "/moved"][0] == 301
    assert by_url[base + "/moved"][5] == base + "/page/3"
    assert by_url[base + "/missing"][0] == 404
    assert by_url[base + "/broken"][0] == 500
    assert by_url[base + "/files/report"][1] == "application/pdf"
    assert by_url[base + "/logo"][1] == "image/png"
    skipped = rows(config, "SELECT url FROM urls WHERE reason = 'extension' ORDER BY url")
    assert skipped == [(base + "/files/report.pdf",), (base + "/logo.png",)]
    assert by_url[base + "/noindex"][0] == 200
    assert by_url[base + "/noindex"][3] is None  # noindex: body not stored
    # Links: one row per distinct target of each page, whatever its spellings there (the
    # model writes most links in several ways), exactly as the site's model has them;
    # off-site ones too, never fetched or queued.
    links = {
        (src, dst): n
        for src, dst, n in rows(config, "SELECT src_url, dst_url, nofollow FROM links")
    }
    assert links == _expected_links(demo_server.port)
    assert links[base + "/", base + "/moved"] == 0
    offsite = {dst for _, dst in links if "elsewhere.example" in dst or "notdemo.test" in dst}
    assert offsite
    assert not offsite & {u for (u,) in rows(config, "SELECT url FROM urls")}
    nofollow = [src for (src, dst), n in links.items() if dst == base + "/nofollow-target"]
    assert len(nofollow) == 1
    assert links[nofollow[0], base + "/nofollow-target"] == 1
    assert not rows(config, "SELECT 1 FROM urls WHERE url = ?", (base + "/nofollow-target",))


async def test_max_depth_limits_the_crawl(
    demo_server: DemoServer, make_config: ConfigFactory
) -> None:
    config = make_config(
        [_seed(demo_server)], crawl={"allowed_domains": ["demo.test"], "max_depth": 2}
    )

    await crawl(config)

    stored = dict(rows(config, "SELECT url, depth FROM pages"))
    assert stored == expected_pages(port=demo_server.port, max_depth=2)
    too_deep = rows(config, "SELECT depth, state, reason FROM urls WHERE depth > 2")
    assert too_deep
    assert set(too_deep) <= {(3, "skipped", "depth"), (3, "skipped", "extension")}
    assert (3, "skipped", "depth") in too_deep


async def test_scope_default_is_the_seed_host(
    demo_server: DemoServer, make_config: ConfigFactory
) -> None:
    config = make_config([_seed(demo_server)])

    await crawl(config)

    assert {h for (h,) in rows(config, "SELECT DISTINCT host FROM pages")} == {"docs.demo.test"}
    assert {r.host for r in demo_server.app[LOG]} == {"docs.demo.test"}
    # Cross-host links are recorded as links, not as URLs to crawl.
    assert rows(config, "SELECT count(*) FROM links WHERE dst_url LIKE 'http://blog.demo.test%'")[
        0
    ][0]
    assert not rows(config, "SELECT 1 FROM urls WHERE host = 'blog.demo.test'")


async def test_include_and_exclude(demo_server: DemoServer, make_config: ConfigFactory) -> None:
    config = make_config(
        [_seed(demo_server)],
        crawl={"exclude": [r"/page/\d*7$"], "include": [r"/page/|/$"]},
    )

    await crawl(config)

    fetched = {u for (u,) in rows(config, "SELECT url FROM pages")}
    assert fetched
    assert not [u for u in fetched if u.endswith("7")]
    assert all("/page/" in u or u.endswith(f":{demo_server.port}/") for u in fetched)
    reasons = dict(rows(config, "SELECT reason, count(*) FROM urls GROUP BY reason"))
    assert reasons["exclude"] > 0
    assert reasons["include"] > 0  # /moved, /missing, the PDF ... don't match include
    requested = {r.path for r in demo_server.app[LOG]}
    assert "/moved" not in requested
    assert "/page/7" not in requested


async def test_max_pages_stops_cleanly(demo_server: DemoServer, make_config: ConfigFactory) -> None:
    config = make_config([_seed(demo_server)], crawl={"max_pages": 25})

    result = await crawl(config)

    assert result.outcome == "limit"
    assert rows(config, "SELECT count(*) FROM pages")[0][0] == 25
    pages = [r for r in demo_server.app[LOG] if r.path != "/robots.txt"]
    assert len(pages) == 25


async def test_max_pages_per_host(demo_server: DemoServer, make_config: ConfigFactory) -> None:
    config = make_config(
        [_seed(demo_server)],
        crawl={"allowed_domains": ["demo.test"], "max_pages_per_host": 10},
    )

    result = await crawl(config)

    assert result.outcome == "finished"
    per_host = dict(rows(config, "SELECT host, count(*) FROM pages GROUP BY host"))
    assert per_host == dict.fromkeys(DEMO_HOSTS, 10)
    skipped = rows(config, "SELECT count(*) FROM urls WHERE reason = 'max-pages'")[0][0]
    assert skipped > 0


async def test_max_duration_stops_cleanly(
    demo_server: DemoServer, make_config: ConfigFactory
) -> None:
    config = make_config(
        [_seed(demo_server)], crawl={"max_duration": 0.5}, politeness={"delay": 0.1}
    )

    result = await crawl(config)

    assert result.outcome == "limit"
    assert rows(config, "SELECT outcome FROM runs") == [("limit",)]
    # What ran, not how much: the crawl stopped short of the site, with URLs still queued,
    # robots.txt first. (How many pages fit in 0.5 s depends on the machine's load: on a busy
    # one the deadline may pass before the first page, or its timer fire late.)
    docs = [url for url in expected_pages(port=demo_server.port) if "//docs." in url]
    assert rows(config, "SELECT count(*) FROM pages")[0][0] < len(docs)
    assert rows(config, "SELECT count(*) FROM urls WHERE state = 'queued'")[0][0] > 0
    log = demo_server.app[LOG]
    assert log.paths()[:1] in ([], ["/robots.txt"])
    # Stopped cleanly: every request was answered (none cut off), and every page the server
    # was asked for was stored.
    base = f"http://docs.demo.test:{demo_server.port}"
    requested = {base + r.path for r in log if r.path != "/robots.txt"}
    assert requested == {u for (u,) in rows(config, "SELECT url FROM pages")}
    assert all(r.end < float("inf") for r in log)


async def test_delay_spaces_requests_to_each_host(
    demo_server: DemoServer, make_config: ConfigFactory
) -> None:
    delay = 0.05
    config = make_config(
        [_seed(demo_server)],
        crawl={"allowed_domains": ["demo.test"], "max_pages": 60, "concurrency": 16},
        politeness={"delay": delay},
    )

    await crawl(config)

    log = demo_server.app[LOG]
    for host in DEMO_HOSTS:
        times = [r.start for r in log if r.host == host]
        assert len(times) > 5
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= delay, (host, min(gaps))
    # Three hosts crawled side by side, not one after another: each host's first page was
    # requested before every host's last one.
    pages = [r for r in log if r.path != "/robots.txt"]
    firsts = [next(r.start for r in pages if r.host == host) for host in DEMO_HOSTS]
    lasts = [next(r.start for r in reversed(pages) if r.host == host) for host in DEMO_HOSTS]
    assert max(firsts) < min(lasts)


async def test_store_body_false_keeps_no_bodies_and_skips_non_html(
    demo_server: DemoServer, make_config: ConfigFactory
) -> None:
    config = make_config([_seed(demo_server)], storage={"store_body": False})

    await crawl(config)

    assert rows(config, "SELECT count(*) FROM pages WHERE body IS NOT NULL") == [(0,)]
    sizes = dict(rows(config, "SELECT content_type, max(bytes) FROM pages GROUP BY 1"))
    assert sizes["text/html"] > 0  # HTML is still read, for its links
    assert sizes["application/pdf"] == 0  # nothing else needs its body read
