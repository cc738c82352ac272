"""Politeness, proved from what a real server logged: robots.txt first, pacing, back-off."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from aiohttp import web
from conftest import ConfigFactory, crawl, rows
from kit import SITE, HostPlan, RequestLog, Site, html, links, make_site, max_in_flight, min_gap

from crawler.frontier.politeness import MAX_BACKOFF, HostSlot


async def _serve(aiohttp_server: Any, plans: dict[str, HostPlan]) -> tuple[Site, int]:
    server = await aiohttp_server(make_site(plans))
    return server.app[SITE], server.port


def _seeds(port: int, hosts: list[str]) -> list[str]:
    return [f"http://{host}:{port}/p/0" for host in hosts]


async def test_many_hosts_paced_and_robots_first(
    aiohttp_server: Any, make_config: ConfigFactory
) -> None:
    hosts = [f"h{n}.test" for n in range(24)]
    plans = {h: HostPlan(pages=8, extra_links=("/private/x",)) for h in hosts}
    site, port = await _serve(aiohttp_server, plans)
    delay = 0.1
    config = make_config(
        _seeds(port, hosts),
        hosts=tuple(hosts),
        crawl={"concurrency": 64},
        politeness={"delay": delay},
    )

    result = await crawl(config)

    assert result.outcome == "finished"
    for host, hits in site.by_host().items():
        assert hits[0].path == "/robots.txt", host
        assert [h.path for h in hits].count("/robots.txt") == 1
        assert not [h for h in hits if h.path.startswith("/private/")]
        assert len(hits) == 9  # robots.txt and the 8 pages
        assert min_gap(hits) >= delay, host
        assert max_in_flight(hits) == 1
    # Hosts go side by side, not one after another: every host had its first request
    # before any host had its last.
    by_host = site.by_host().values()
    assert max(hits[0].start for hits in by_host) < min(hits[-1].start for hits in by_host)
    assert rows(config, "SELECT count(*) FROM urls WHERE reason = 'robots'")[0][0] == 24


async def test_per_host_concurrency_is_a_ceiling(
    aiohttp_server: Any, make_config: ConfigFactory
) -> None:
    plans = {"a.test": HostPlan(pages=15, page_sleep=0.15, robots_sleep=0.3)}
    site, port = await _serve(aiohttp_server, plans)
    config = make_config(
        _seeds(port, ["a.test"]),
        hosts=("a.test",),
        crawl={"concurrency": 16},
        politeness={"delay": 0, "per_host_concurrency": 2},
    )

    await crawl(config)

    pages = [h for h in site.log if h.path.startswith("/p/")]
    assert len(pages) == 15
    assert max_in_flight(pages) == 2


def _fast_host_done(log: RequestLog) -> bool:
    return len(log.hits("fast.test")) == 6  # robots.txt and its 5 pages


async def _after_fast_host(request: web.Request) -> web.Response:
    """A slow.test page, answered only once the fast host has had all its requests."""
    await request.app[SITE].log.wait_for(_fast_host_done)
    n = int(request.path.rsplit("/", 1)[1])
    return html(links([f"/p/{c}" for c in (2 * n + 1, 2 * n + 2) if c < 5]))


async def test_crawl_delay_raises_the_delay(
    aiohttp_server: Any, make_config: ConfigFactory
) -> None:
    slow_robots = "User-agent: *\nCrawl-delay: 0.3\n"
    held_pages = {f"/p/{n}": _after_fast_host for n in range(1, 5)}
    plans = {
        # slow.test's pages after the first wait for fast.test to be done: a crawler that
        # held fast.test back behind slow.test's delay would never get there (a 30 s guard).
        "slow.test": HostPlan(pages=5, robots=slow_robots, routes=held_pages),
        "fast.test": HostPlan(pages=5),
        "huge.test": HostPlan(pages=5, robots="User-agent: *\nCrawl-delay: 1000000000\n"),
    }
    site, port = await _serve(aiohttp_server, plans)
    config = make_config(
        _seeds(port, list(plans)),
        hosts=tuple(plans),
        politeness={"delay": 0.05, "max_crawl_delay": 10},
        fetch={"timeout": 60},  # a held page is not a timeout
    )

    await crawl(config)

    slow = site.hits("slow.test")
    assert min_gap(slow) >= 0.3
    assert len(slow) == 6
    fast = site.hits("fast.test")
    assert len(fast) == 6
    # The fast host was not held back by the slow one: all its requests had arrived before
    # the server answered slow.test's second page (what ran, in order; not how long it took).
    held = [r for r in slow if r.path not in ("/robots.txt", "/p/0")]
    assert held
    assert max(r.start for r in fast) < min(r.end for r in held)
    assert [h.path for h in site.hits("huge.test")] == ["/robots.txt"]
    assert rows(config, "SELECT state, reason FROM urls WHERE host = 'huge.test'") == [
        ("skipped", "crawl-delay")
    ]
    hosts = dict(rows(config, "SELECT host, delay_reason FROM hosts"))
    assert hosts["slow.test"] == "crawl-delay"
    assert hosts["fast.test"] == "config"


async def test_our_group_beats_the_star_group(
    aiohttp_server: Any, make_config: ConfigFactory
) -> None:
    robots = "User-agent: *\nDisallow: /p/1\n\nUser-agent: TestBot\nDisallow: /p/2\n"
    site, port = await _serve(aiohttp_server, {"g.test": HostPlan(pages=7, robots=robots)})
    config = make_config(
        _seeds(port, ["g.test"]),
        hosts=("g.test",),
        politeness={"user_agent": "testbot/1.0 (+http://x)"},
    )

    await crawl(config)

    paths = {h.path for h in site.log}
    assert "/p/1" in paths  # only `*` forbids it, and `*` is not our group
    assert "/p/2" not in paths
    assert "/p/5" not in paths  # only reachable through /p/2
    assert rows(config, "SELECT url FROM urls WHERE reason = 'robots'") == [
        (f"http://g.test:{port}/p/2",)
    ]


@pytest.mark.parametrize(
    ("plan", "fetched"),
    [
        pytest.param(HostPlan(pages=3, robots=None), 3, id="404-allows-all"),
        pytest.param(HostPlan(pages=3, robots="x", robots_status=403), 3, id="403-allows-all"),
        pytest.param(HostPlan(pages=3, robots="x", robots_status=401), 3, id="401-allows-all"),
        pytest.param(HostPlan(pages=3, robots="x", robots_status=500), 0, id="500-disallows"),
        pytest.param(HostPlan(pages=3, robots_sleep=3), 0, id="timeout-disallows"),
        pytest.param(
            HostPlan(pages=3, robots="\ufeffUser-agent: *\nDisallow: /p/1\n"), 2, id="bom"
        ),
    ],
)
async def test_robots_answers(
    aiohttp_server: Any, make_config: ConfigFactory, plan: HostPlan, fetched: int
) -> None:
    site, port = await _serve(aiohttp_server, {"r.test": plan})
    config = make_config(
        _seeds(port, ["r.test"]), hosts=("r.test",), fetch={"timeout": 1, "retries": 1}
    )

    await crawl(config)

    pages = [h for h in site.log if h.path.startswith("/p/")]
    assert len(pages) == fetched
    robots = [h for h in site.log if h.path == "/robots.txt"]
    if fetched == 0:
        assert len(robots) == 2  # one try, one retry
        assert rows(config, "SELECT reason FROM urls") == [("robots-unreachable",)]
    else:
        assert len(robots) == 1
        assert site.log[0].path == "/robots.txt"


async def test_robots_redirect_is_followed_and_paced(
    aiohttp_server: Any, make_config: ConfigFactory
) -> None:
    plans = {
        "from.test": HostPlan(pages=3, robots_redirect="http://to.test:{port}/robots.txt"),
        "to.test": HostPlan(pages=1, robots="User-agent: *\nDisallow: /p/2\n"),
    }
    server = await aiohttp_server(make_site(plans))
    site: Site = server.app[SITE]
    plans["from.test"].robots_redirect = f"http://to.test:{server.port}/robots.txt"
    config = make_config(
        _seeds(server.port, ["from.test"]),
        hosts=tuple(plans),
        politeness={"delay": 0.2},
    )

    await crawl(config)

    assert [(h.host, h.path) for h in site.log[:2]] == [
        ("from.test", "/robots.txt"),
        ("to.test", "/robots.txt"),
    ]
    assert [h.path for h in site.hits("from.test")] == ["/robots.txt", "/p/0", "/p/1"]
    assert min_gap(site.hits("from.test")) >= 0.2


async def test_retry_after_holds_the_host(aiohttp_server: Any, make_config: ConfigFactory) -> None:
    plan = HostPlan(pages=4, extra_links=("/retry-after/1",))
    site, port = await _serve(aiohttp_server, {"ra.test": plan})
    config = make_config(
        [f"http://ra.test:{port}/retry-after/1", f"http://ra.test:{port}/p/0"],
        hosts=("ra.test",),
        fetch={"retries": 1},
    )

    await crawl(config)

    hits = site.hits("ra.test")
    busy = next(h for h in hits if h.path == "/retry-after/1")
    after = [h for h in hits if h.start > busy.start]
    assert after
    assert min(h.start for h in after) - busy.end >= 1.0
    [(status,)] = rows(config, "SELECT status FROM pages WHERE url LIKE '%retry-after%'")
    assert status == 200  # retried once the host was free again


async def test_errors_back_the_host_off(aiohttp_server: Any, make_config: ConfigFactory) -> None:
    failing = tuple(f"/status/500?n={n}" for n in range(3))
    plan = HostPlan(pages=12, extra_links=failing)
    site, port = await _serve(aiohttp_server, {"bad.test": plan})
    config = make_config(
        _seeds(port, ["bad.test"]), hosts=("bad.test",), politeness={"delay": 0.01}
    )

    await crawl(config)

    starts = [h.start for h in site.hits("bad.test") if h.path.startswith("/status/")]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(gaps) == 2
    assert gaps[0] >= 0.5  # back-off starts at half a second …
    assert gaps[1] >= 1.0  # … and doubles while errors repeat
    # Successes after the errors bring the delay back down to the configured one.
    [(errors, reason, delay)] = rows(config, "SELECT errors, delay_reason, delay FROM hosts")
    assert errors == 3
    assert (reason, delay) == ("config", 0.01)


async def test_redirect_chains_are_cut(aiohttp_server: Any, make_config: ConfigFactory) -> None:
    site, port = await _serve(aiohttp_server, {"rd.test": HostPlan(pages=1)})
    config = make_config(
        [f"http://rd.test:{port}/redirect/8"], hosts=("rd.test",), fetch={"max_redirects": 5}
    )

    await crawl(config)

    assert [h.path for h in site.log] == ["/robots.txt"] + [
        f"/redirect/{n}" for n in range(8, 2, -1)
    ]
    states = dict(rows(config, "SELECT url, reason FROM urls WHERE state = 'skipped'"))
    assert states == {f"http://rd.test:{port}/redirect/2": "redirects"}
    [(location,)] = rows(config, "SELECT location FROM pages WHERE url LIKE '%/redirect/8'")
    assert location == f"http://rd.test:{port}/redirect/7"
    depths = {d for (d,) in rows(config, "SELECT DISTINCT depth FROM pages")}
    assert depths == {0}  # a redirect target keeps its source's depth


async def test_robots_txt_is_fetched_again_after_its_ttl(
    aiohttp_server: Any, make_config: ConfigFactory
) -> None:
    site, port = await _serve(aiohttp_server, {"ttl.test": HostPlan(pages=12)})
    config = make_config(
        _seeds(port, ["ttl.test"]),
        hosts=("ttl.test",),
        politeness={"delay": 0.1, "robots_ttl": 0.45},
    )

    await crawl(config)

    paths = [h.path for h in site.log]
    assert paths[0] == "/robots.txt"
    assert paths.count("/robots.txt") >= 3
    assert len([p for p in paths if p.startswith("/p/")]) == 12
    assert min_gap(site.log) >= 0.1


async def test_robots_redirect_loop_ends_after_five_hops(
    aiohttp_server: Any, make_config: ConfigFactory
) -> None:
    plan = HostPlan(pages=2, robots_redirect="/robots.txt")  # robots.txt redirects to itself
    site, port = await _serve(aiohttp_server, {"loop.test": plan})
    config = make_config(_seeds(port, ["loop.test"]), hosts=("loop.test",))

    await crawl(config)

    paths = [h.path for h in site.log]
    assert paths == ["/robots.txt"] * 6 + ["/p/0", "/p/1"]  # 5 hops followed, then allow all
    [(status,)] = rows(config, "SELECT robots_status FROM hosts")
    assert status.startswith("allow-all")


async def test_megabytes_of_robots_garbage(aiohttp_server: Any, make_config: ConfigFactory) -> None:
    garbage = "Disallow: /p/1\n" + "\x00\xff junk line without a colon\n" * 200_000
    site, port = await _serve(aiohttp_server, {"junk.test": HostPlan(pages=3, robots=garbage)})
    config = make_config(_seeds(port, ["junk.test"]), hosts=("junk.test",))

    await crawl(config)

    assert sorted(h.path for h in site.log) == ["/p/0", "/p/1", "/p/2", "/robots.txt"]


# HostSlot alone, on times the test picks: exact arithmetic, no server.


def test_the_delay_counts_from_the_start_and_from_the_answer() -> None:
    slot = HostSlot("a.test", delay=1.0)
    slot.start(10.0)
    assert slot.ready_at() == 11.0
    slot.finish(200, None, answered_at=10.4)
    assert slot.ready_at() == 11.4  # the server saw the request as late as 10.4
    slot.start(11.4)
    slot.finish(200, None, answered_at=11.5)
    assert slot.ready_at() == 12.5
    assert slot.min_gap == pytest.approx(1.4)
    assert (slot.requests, slot.errors, slot.in_flight) == (2, 0, 0)


def test_back_off_doubles_to_its_ceiling_and_halves_back() -> None:
    slot = HostSlot("a.test", delay=0.1)
    backoffs = []
    for _ in range(9):
        slot.start(0.0)
        assert slot.finish(500, None, answered_at=0.0) is True
        backoffs.append(slot.backoff)
    assert backoffs == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, MAX_BACKOFF, MAX_BACKOFF]
    assert slot.delay_reason == "back-off"
    recovering = []
    while slot.backoff:
        slot.start(0.0)
        assert slot.finish(200, None, answered_at=0.0) is False
        recovering.append(slot.backoff)
    assert recovering == [30.0, 15.0, 7.5, 3.75, 1.875, 0.9375, 0.46875, 0.234375, 0.1171875, 0]
    assert (slot.effective_delay, slot.delay_reason) == (0.1, "config")


@pytest.mark.parametrize(
    ("status", "counts"),
    [
        pytest.param(None, True, id="no-answer"),
        pytest.param(429, True, id="429"),
        pytest.param(503, True, id="503"),
        pytest.param(404, False, id="404"),
        pytest.param(301, False, id="301"),
    ],
)
def test_what_counts_as_an_error(status: int | None, counts: bool) -> None:
    slot = HostSlot("a.test", delay=0.0)
    slot.start(0.0)
    assert slot.finish(status, None, answered_at=0.0) is counts
    assert slot.errors == int(counts)


def test_retry_after_holds_from_the_answer_on_429_and_503_only() -> None:
    slot = HostSlot("a.test", delay=1.0)
    slot.start(0.0)
    slot.finish(503, 30.0, answered_at=2.0)
    assert slot.ready_at() == 32.0
    other = HostSlot("b.test", delay=1.0)
    other.start(0.0)
    other.finish(500, 30.0, answered_at=2.0)  # Retry-After means nothing on a 500
    assert other.ready_at() == 3.0  # the answer plus the back-off (1.0, the delay)


def test_crawl_delay_counts_from_the_robots_answer_and_names_the_reason() -> None:
    slot = HostSlot("a.test", delay=0.5)
    slot.start(0.0)
    slot.finish(200, None, answered_at=0.2)
    slot.apply_crawl_delay(3.0, since=0.2)
    assert slot.ready_at() == 3.2
    assert (slot.effective_delay, slot.delay_reason) == (3.0, "crawl-delay")


def test_a_retry_after_outlives_the_process_through_its_record() -> None:
    slot = HostSlot("a.test", delay=1.0)
    slot.start(100.0)
    slot.finish(429, 60.0, answered_at=100.0)
    record = slot.record(now=110.0, wall=1_800_000_000.0)  # 50 s of the hold are left
    restored = HostSlot("a.test", delay=1.0)
    restored.restore(record, now=7.0, wall=1_800_000_020.0)  # a new process, 20 s later
    assert restored.ready_at() == pytest.approx(37.0)
    assert (restored.requests, restored.errors) == (1, 1)
