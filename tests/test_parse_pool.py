"""Faults heal: the process that parses big pages is replaced when it dies mid-crawl."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
from typing import Any

import pytest
from aiohttp import web
from conftest import ConfigFactory, crawl, rows
from kit import HostPlan, Page, make_site

from crawler.engine.workers import BIG_PAGE

HOST = "big.test"
PADDING = "<!-- " + "x" * BIG_PAGE + " -->"  # over BIG_PAGE: parsed in the separate process


def _big_page(n: int) -> str:
    links = "".join(f'<a href="/leaf/{n}/{i}">leaf</a>' for i in range(5))
    more = f'<a href="/big/{n + 1}">next</a>' if n < 3 else ""
    return f"<html><title>big {n}</title><body>{links}{more}{PADDING}</body></html>"


def _app(killed: list[int]) -> web.Application:
    async def big(request: web.Request) -> web.Response:
        n = int(request.path.rsplit("/", 1)[1])
        if n == 2:
            # The parse process served page 1 and now dies, before page 2 needs it.
            for child in multiprocessing.active_children():
                os.kill(child.pid or 0, signal.SIGKILL)
                await asyncio.to_thread(child.join, 10)
                killed.append(child.pid or 0)
        return web.Response(text=_big_page(n), content_type="text/html")

    leaf = Page("<html><title>leaf</title></html>")
    return make_site(
        {HOST: HostPlan(pages=0, robots=None, routes={"/big/*": big, "/leaf/*": leaf})}
    )


async def test_a_killed_parse_process_is_replaced(
    aiohttp_server: Any, make_config: ConfigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    killed: list[int] = []
    server = await aiohttp_server(_app(killed))
    config = make_config(
        [f"http://{HOST}:{server.port}/big/1"],
        hosts=(HOST,),
        crawl={"concurrency": 1},
        fetch={"max_bytes": 4 * BIG_PAGE},
    )

    with caplog.at_level(logging.WARNING, logger="crawler.engine.crawl"):
        result = await crawl(config)

    assert len(killed) == 1  # the process that parsed page 1, killed before page 2
    assert result.extracted_in.get("process") == 3
    assert rows(config, "SELECT count(*) FROM pages WHERE error IS NOT NULL") == [(0,)]
    links = rows(
        config, "SELECT src_url, count(*) FROM links WHERE src_url LIKE '%/big/%' GROUP BY 1"
    )
    assert sorted(count for _, count in links) == [5, 6, 6]  # every big page's links
    assert rows(config, "SELECT count(*) FROM pages") == [(18,)]
    assert "the page-parsing process died" in caplog.text
