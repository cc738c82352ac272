from __future__ import annotations

import html
import re
import socket
import time
from collections import deque

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from protego import Protego
from pytest_aiohttp import AiohttpClient
from yarl import URL

from crawler import demo_site
from crawler.demo_site import (
    DEMO_HOSTS,
    REQUEST_LOG,
    RequestRecord,
    build_site,
    expected_pages,
    make_app,
    wait_for,
)

Client = TestClient[web.Request, web.Application]
ANCHOR = re.compile(r"<a\b([^>]*?)\bhref=\"([^\"]*)\"", re.IGNORECASE)


@pytest.fixture
async def client(aiohttp_client: AiohttpClient) -> Client:
    return await aiohttp_client(make_app())


async def get(client: Client, url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """GET an absolute demo URL through the test server, the way a crawler with resolve would."""
    parsed = URL(url)
    headers.setdefault("Host", parsed.raw_authority)
    async with client.get(parsed.raw_path_qs, headers=headers, allow_redirects=False) as resp:
        return resp.status, dict(resp.headers), await resp.read()


def origin(client: Client, host: str = "docs.demo.test") -> str:
    return f"http://{host}:{client.port}"


@pytest.mark.parametrize("host", DEMO_HOSTS)
async def test_virtual_hosts_answer_by_host_header(client: Client, host: str) -> None:
    status, headers, body = await get(client, origin(client, host) + "/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    name = host.split(".")[0].capitalize()
    assert f"<title>{name} home</title>" in body.decode()


async def test_host_matching_ignores_case_and_port(client: Client) -> None:
    for host_header in ("BLOG.Demo.Test", "blog.demo.test:1", "blog.demo.test"):
        status, _, body = await get(client, origin(client) + "/", Host=host_header)
        assert status == 200
        assert b"<title>Blog home</title>" in body


@pytest.mark.parametrize("host_header", ["elsewhere.test", "demo.test:8080", "127.0.0.1"])
async def test_unknown_host_is_404(client: Client, host_header: str) -> None:
    status, _, body = await get(client, origin(client) + "/", Host=host_header)
    assert (status, body) == (404, b"unknown host")


async def test_links_carry_the_port_of_the_request(client: Client) -> None:
    _, _, body = await get(client, origin(client) + "/", Host="docs.demo.test:4321")
    assert 'href="http://blog.demo.test:4321/"' in body.decode()
    _, _, body = await get(client, origin(client) + "/", Host="docs.demo.test")
    assert 'href="http://blog.demo.test/"' in body.decode()


@pytest.mark.parametrize("host", DEMO_HOSTS)
async def test_robots_txt_disallows_private(client: Client, host: str) -> None:
    status, headers, body = await get(client, origin(client, host) + "/robots.txt")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    assert body == b"User-agent: *\nDisallow: /private/\n"
    # The private pages exist, so fetching one shows up as a 200 in the request log.
    status, _, _ = await get(client, origin(client, host) + "/private/report-1")
    assert status == 200


async def test_redirect(client: Client) -> None:
    status, headers, _ = await get(client, origin(client) + "/moved")
    assert status == 301
    assert headers["Location"] == "/page/3"


@pytest.mark.parametrize(
    ("path", "status", "content_type", "prefix"),
    [
        pytest.param("/missing", 404, "text/plain", b"not found", id="404"),
        pytest.param("/no/such/page", 404, "text/plain", b"not found", id="unknown-path"),
        pytest.param("/broken", 500, "text/plain", b"", id="500"),
        pytest.param("/files/report", 200, "application/pdf", b"%PDF-", id="pdf"),
        pytest.param("/files/report.pdf", 200, "application/pdf", b"%PDF-", id="pdf-named"),
        pytest.param("/logo", 200, "image/png", b"\x89PNG\r\n\x1a\n", id="png"),
        pytest.param("/logo.png", 200, "image/png", b"\x89PNG\r\n\x1a\n", id="png-named"),
    ],
)
async def test_special_resources(
    client: Client, path: str, status: int, content_type: str, prefix: bytes
) -> None:
    got_status, headers, body = await get(client, origin(client) + path)
    assert got_status == status
    assert headers["Content-Type"].split(";")[0] == content_type
    assert body.startswith(prefix)


async def test_same_page_under_different_spellings(client: Client) -> None:
    bodies = {
        (await get(client, origin(client) + path))[2]
        for path in ("/page/7", "/page/%37", "/p%61ge/7")
    }
    assert len(bodies) == 1


async def test_nofollow_and_noindex_markup(client: Client) -> None:
    site = build_site()["docs.demo.test"]
    [src] = [p for p, r in site.items() if any(link.nofollow for link in r.links)]
    _, _, body = await get(client, origin(client) + src)
    assert '<a rel="nofollow" href="/nofollow-target">' in body.decode()
    _, _, body = await get(client, origin(client) + "/noindex")
    assert '<meta name="robots" content="noindex">' in body.decode()


async def test_request_log_records_each_arrival(client: Client) -> None:
    log = client.app[REQUEST_LOG]
    log.clear()
    before = time.monotonic()
    await get(
        client, origin(client) + "/page/5?x=1", Host="BLOG.demo.test:99", **{"User-Agent": "t/1"}
    )
    await get(client, origin(client) + "/broken", Host="elsewhere.test")
    assert [(r.host, r.path) for r in log] == [
        ("blog.demo.test", "/page/5?x=1"),
        ("elsewhere.test", "/broken"),
    ]
    assert log[0].user_agent == "t/1"
    assert log[1].user_agent.startswith("Python/")
    assert "aiohttp/" in log[1].user_agent
    assert all(isinstance(r, RequestRecord) for r in log)
    assert before <= log[0].time <= log[1].time <= time.monotonic()


async def crawl(client: Client) -> dict[str, int]:
    """A small, correct crawler: 0-1 BFS over the served links (a redirect hop costs 0)."""
    robots: dict[str, Protego] = {}
    seed = origin(client) + "/"
    depth = {seed: 0}
    queue, done = deque([seed]), set()
    while queue:
        url = queue.popleft()
        if url in done:
            continue
        done.add(url)
        status, headers, body = await get(client, url)
        if 300 <= status < 400:
            found, hop = [(headers["Location"], False)], 0
        elif headers.get("Content-Type", "").startswith("text/html"):
            attrs_hrefs = ANCHOR.findall(body.decode())
            found, hop = [(html.unescape(h), "nofollow" in a) for a, h in attrs_hrefs], 1
        else:
            continue
        for href, nofollow in found:
            target = URL(url).join(URL(href)).with_fragment(None)
            if nofollow or target.scheme != "http" or target.host not in DEMO_HOSTS:
                continue
            base = str(target.origin())
            if base not in robots:
                robots[base] = Protego.parse((await get(client, base + "/robots.txt"))[2].decode())
            if not robots[base].can_fetch(str(target), "test-bot"):
                continue
            if depth[url] + hop < depth.get(str(target), 1 << 30):
                depth[str(target)] = depth[url] + hop
                (queue.appendleft if hop == 0 else queue.append)(str(target))
    return depth


async def test_expected_pages_matches_the_served_site(client: Client) -> None:
    assert client.port is not None
    crawled = await crawl(client)
    expected = expected_pages(port=client.port, skip_extensions=())  # this crawl skips none
    assert crawled == expected
    hosts = {URL(u).host for u in expected}
    assert hosts == set(DEMO_HOSTS)
    assert len(expected) > 300


def test_expected_pages_contents() -> None:
    full = expected_pages(port=8080)
    docs = "http://docs.demo.test:8080"
    for path in ("/missing", "/broken", "/files/report", "/logo", "/noindex"):
        assert docs + path in full
    assert docs + "/files/report.pdf" not in full  # skip_extensions
    assert docs + "/files/report.pdf" in expected_pages(port=8080, skip_extensions=())
    assert full[docs + "/"] == 0
    assert full[docs + "/moved"] == full[docs + "/page/3"] == 1  # the redirect hop is free
    assert not any("/private/" in u or "nofollow-target" in u for u in full)
    assert "http://blog.demo.test:8080/" in full
    assert "http://notdemo.test/" not in full

    loose = expected_pages(port=8080, obey_robots=False, follow_nofollow=True)
    assert set(loose) - set(full) == {
        *(f"http://{h}:8080{p}" for h in DEMO_HOSTS for p in demo_site.PRIVATE_PATHS),
        docs + "/nofollow-target",
    }
    assert expected_pages(port=80, max_depth=0) == {"http://docs.demo.test/": 0}
    for max_depth in range(1, 4):
        shallow = expected_pages(port=8080, max_depth=max_depth)
        assert shallow == {u: d for u, d in full.items() if d <= max_depth}


def test_site_is_deterministic_and_sized_by_parameters() -> None:
    assert build_site(seed=1) == build_site.__wrapped__(seed=1)
    assert build_site(seed=1) != build_site(seed=2)
    small = expected_pages(port=8080, pages_per_host=20)
    assert sum("/page/" in u for u in small) == 3 * 19
    with pytest.raises(ValueError, match="pages_per_host"):
        build_site(pages_per_host=3)


def test_wait_for() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        assert wait_for(port, timeout=1)
    assert not wait_for(port, timeout=0.2)


def test_main_wait_for_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(demo_site, "wait_for", lambda port: False)
    assert demo_site.main(["--wait-for", "9"]) == 1
    assert "127.0.0.1:9" in capsys.readouterr().err
