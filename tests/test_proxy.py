"""fetch.proxy and fetch.headers: every request (robots.txt, sitemaps, pages) goes through
the proxy, with the headers; https by CONNECT; an unreachable proxy is a per-request error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backends import Backend
from kit import SITE, HostPlan, Page, make_site, run_cli_async, write_config
from kit.proxy import forward_proxy

HOST = "site.test"


async def test_every_request_goes_through_the_proxy_with_the_headers(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    sitemap = Page("<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'></urlset>",
                   content_type="application/xml")  # fmt: skip
    server = await aiohttp_server(make_site({HOST: HostPlan(pages=6, routes={"/s.xml": sitemap})}))
    async with forward_proxy() as proxy:
        config = write_config(
            tmp_path / "config.toml",
            [f"http://{HOST}:{server.port}/p/0"],
            hosts=(),
            crawl={"sitemaps": [f"http://{HOST}:{server.port}/s.xml"]},
            fetch={"proxy": f"http://127.0.0.1:{proxy.port}", "headers": {"Accept-Language": "en"}},
        )
        ran = await run_cli_async("crawl", str(config))
    assert ran.code == 0, ran.err
    seen = server.app[SITE].log
    assert {r.path for r in seen} >= {"/robots.txt", "/s.xml", *(f"/p/{i}" for i in range(6))}
    assert [("GET", f"http://{HOST}:{server.port}{r.path}") for r in seen] == proxy.log
    assert all(r.headers.get("Accept-Language") == "en" for r in seen)


async def test_https_goes_by_connect(tmp_path: Path) -> None:
    async with forward_proxy() as proxy:
        config = write_config(
            tmp_path / "config.toml",
            [f"https://{HOST}:{proxy.port}/"],  # TLS to a plain socket: the request fails
            hosts=(),
            fetch={"proxy": f"http://127.0.0.1:{proxy.port}"},
        )
        ran = await run_cli_async("crawl", str(config))
    assert ran.code == 0, ran.err
    assert proxy.log[0] == ("CONNECT", f"{HOST}:{proxy.port}")


async def test_an_unreachable_proxy_is_an_error_per_request_retried(tmp_path: Path) -> None:
    async with forward_proxy() as gone:
        port = gone.port  # closed when the block ends: nothing listens there
    config = write_config(
        tmp_path / "config.toml",
        [f"http://{HOST}/"],
        hosts=(),
        fetch={"proxy": f"http://127.0.0.1:{port}", "retries": 1},
        politeness={"obey_robots": False},
    )
    ran = await run_cli_async("crawl", str(config))
    assert ran.code == 0, ran.err
    assert "Traceback" not in ran.err
    rows = await Backend("sqlite", str(tmp_path / "crawl.db")).rows(
        "SELECT url, status, error FROM pages"
    )
    assert len(rows) == 1
    assert rows[0][1] is None
    assert "connection failed" in rows[0][2]
