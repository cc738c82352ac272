"""fetch.proxy and fetch.headers: every request (robots.txt, sitemaps, pages) goes through
the proxy, with the headers; https by CONNECT; an unreachable proxy is a per-request error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from kit import SITE, HostPlan, Page, make_site, run_cli_async, write_config
from kit.proxy import forward_proxy
from kit.tls import trusted_ca

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


DIRECT = "direct.test"  # in NO_PROXY: reached without the proxy
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def _clear_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy variable of the test's own environment reaches the crawl (either case)."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


async def test_env_proxy_carries_every_request_but_those_of_no_proxy_hosts(
    aiohttp_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sitemap = Page("<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'></urlset>",
                   content_type="application/xml")  # fmt: skip
    plans = {HOST: HostPlan(pages=4, routes={"/s.xml": sitemap}), DIRECT: HostPlan(pages=3)}
    server = await aiohttp_server(make_site(plans))
    port = server.port
    _clear_proxy_environment(monkeypatch)
    async with forward_proxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.setenv("NO_PROXY", DIRECT)
        config = write_config(
            tmp_path / "config.toml",
            [f"http://{HOST}:{port}/p/0", f"http://{DIRECT}:{port}/p/0"],
            hosts=(DIRECT,),  # only the direct host is resolved by the crawler: the proxy
            crawl={"sitemaps": [f"http://{HOST}:{port}/s.xml"]},  # resolves the other
            fetch={"proxy": "env"},
        )
        ran = await run_cli_async("crawl", str(config))
    assert ran.code == 0, ran.err

    seen = server.app[SITE].log
    proxied = [r for r in seen if r.host == HOST]
    direct = [r for r in seen if r.host == DIRECT]
    assert {r.path for r in proxied} >= {"/robots.txt", "/s.xml", *(f"/p/{i}" for i in range(4))}
    assert {r.path for r in direct} >= {"/robots.txt", *(f"/p/{i}" for i in range(3))}
    # Every request of the proxied host went through the proxy, in order; none of the other.
    assert [("GET", f"http://{HOST}:{port}{r.path}") for r in proxied] == proxy.log
    assert not [target for _, target in proxy.log if DIRECT in target]


SECURE = "secure.site.test"


async def _crawl_through(
    tmp_path: Path, run: str, seed: str, proxy_port: int
) -> list[tuple[Any, ...]]:
    """A crawl of `seed` through the proxy (config and database named `run`): its pages rows."""
    config = write_config(
        tmp_path / f"{run}.toml",
        [seed],
        hosts=(SECURE,),  # pinned, though with a proxy the proxy resolves it
        db=f"{run}.db",
        fetch={"proxy": f"http://127.0.0.1:{proxy_port}"},
        politeness={"obey_robots": False},  # the page's own row tells how its request went
    )
    ran = await run_cli_async("crawl", str(config))
    assert ran.code == 0, ran.err
    assert "Traceback" not in ran.err
    database = Backend("sqlite", str(tmp_path / f"{run}.db"))
    return await database.rows("SELECT url, status, error FROM pages ORDER BY url")


async def test_https_through_the_proxy_by_connect_fetches_the_page(
    aiohttp_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clear_proxy_environment(monkeypatch)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with trusted_ca(tmp_path, SECURE) as (ca_pem, server_context):
        server = await aiohttp_server(make_site({SECURE: HostPlan(pages=2)}), ssl=server_context)
    origin = f"https://{SECURE}:{server.port}"
    seen = server.app[SITE].log
    async with forward_proxy() as proxy:
        # Trusted (OpenSSL's default verify paths read SSL_CERT_FILE): every page is fetched
        # through CONNECT tunnels, and the site saw each request.
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_pem))
        trusted = await _crawl_through(tmp_path, "trusted", f"{origin}/p/0", proxy.port)
        assert trusted == [(f"{origin}/p/{i}", 200, None) for i in range(2)]
        assert [r.path for r in seen] == ["/p/0", "/p/1"]
        assert proxy.log
        assert set(proxy.log) == {("CONNECT", f"{SECURE}:{server.port}")}
        tunnels = len(proxy.log)

        # Untrusted: the tunnel opens, TLS refuses the certificate, and the page's row says so.
        monkeypatch.delenv("SSL_CERT_FILE")
        untrusted = await _crawl_through(tmp_path, "untrusted", f"{origin}/p/0", proxy.port)
    assert len(proxy.log) > tunnels
    assert set(proxy.log) == {("CONNECT", f"{SECURE}:{server.port}")}
    assert len(seen) == 2  # no request reached the site
    [(url, status, error)] = untrusted
    assert (url, status) == (f"{origin}/p/0", None)
    assert error.startswith("connection failed: "), error
    assert "certificate verify failed" in error, error
