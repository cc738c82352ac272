"""The hostile web: every bad input bounded, recorded, and survived (one trap per test)."""

from __future__ import annotations

import asyncio
import resource
from typing import Any

import pytest
from conftest import ConfigFactory, crawl, rows
from hostile import MB, huge_page, make_hostile_app

from crawler.config import Config, FetchConfig
from crawler.engine.crawl import RunResult
from crawler.engine.workers import BIG_PAGE

HOST = "evil.test"


async def _crawl_trap(
    aiohttp_server: Any, make_config: ConfigFactory, path: str, **sections: dict[str, Any]
) -> tuple[Config, int]:
    config, port, _ = await _crawl_trap_result(aiohttp_server, make_config, path, **sections)
    return config, port


async def _crawl_trap_result(
    aiohttp_server: Any, make_config: ConfigFactory, path: str, **sections: dict[str, Any]
) -> tuple[Config, int, RunResult]:
    server = await aiohttp_server(make_hostile_app())
    sections.setdefault("fetch", {}).setdefault("timeout", 1)
    config = make_config([f"http://{HOST}:{server.port}{path}"], hosts=(HOST,), **sections)
    result = await asyncio.wait_for(crawl(config), 60)
    assert result.outcome in ("finished", "limit")
    return config, server.port, result


def _page(config: Config, suffix: str) -> tuple[Any, ...]:
    [row] = rows(
        config,
        "SELECT status, bytes, truncated, length(body), error, elapsed_ms FROM pages"
        " WHERE url LIKE ?",
        ("%" + suffix,),
    )
    return row


async def test_big_body_is_cut_at_max_bytes(
    aiohttp_server: Any, make_config: ConfigFactory
) -> None:
    config, _ = await _crawl_trap(aiohttp_server, make_config, "/big", fetch={"max_bytes": MB})
    assert _page(config, "/big")[:4] == (200, MB, 1, MB)


async def test_gzip_bomb_costs_at_most_max_bytes(
    aiohttp_server: Any, make_config: ConfigFactory
) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    config, _ = await _crawl_trap(
        aiohttp_server, make_config, "/gzip-bomb", fetch={"max_bytes": 2 * MB}
    )
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    status, size, truncated, stored, error, _ = _page(config, "/gzip-bomb")
    assert (status, size, truncated, stored, error) == (200, 2 * MB, 1, 2 * MB, None)
    assert grown_mb < 64  # 256 MB inflated would show; what we read is 2 MB


async def test_brotli_bomb_costs_at_most_max_bytes(
    aiohttp_server: Any, make_config: ConfigFactory
) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    config, _ = await _crawl_trap(
        aiohttp_server, make_config, "/brotli-bomb", fetch={"max_bytes": 2 * MB}
    )
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert _page(config, "/brotli-bomb")[:5] == (200, 2 * MB, 1, 2 * MB, None)
    assert grown_mb < 64


@pytest.mark.parametrize("path", ["/trickle", "/hang"])
async def test_timeout_covers_the_whole_request(
    aiohttp_server: Any, make_config: ConfigFactory, path: str
) -> None:
    config, _ = await _crawl_trap(aiohttp_server, make_config, path, fetch={"timeout": 1})
    status, _, _, _, error, elapsed_ms = _page(config, path)
    assert status is None
    assert error == "timeout"
    # The 1 s limit ended it: a timer fires late on a busy machine, never early; and the
    # default limit (30 s), were the config's ignored, would have ended it far later.
    assert elapsed_ms >= 900
    assert elapsed_ms < FetchConfig().timeout * 1000
    assert rows(config, "SELECT state FROM urls WHERE url LIKE ?", ("%" + path,)) == [("failed",)]


async def test_repeated_timeouts_back_off(aiohttp_server: Any, make_config: ConfigFactory) -> None:
    config, _ = await _crawl_trap(
        aiohttp_server, make_config, "/hang", fetch={"timeout": 0.5, "retries": 2}
    )
    [(requests, errors, delay, reason)] = rows(
        config, "SELECT requests, errors, delay, delay_reason FROM hosts"
    )
    assert (requests, errors) == (4, 3)  # robots.txt (404), then three tries
    assert (delay, reason) == (2.0, "back-off")  # 0.5 s, doubled, doubled again


@pytest.mark.parametrize(
    ("path", "error"),
    [
        pytest.param("/reset", "bad body", id="reset-mid-body"),
        pytest.param("/lying-length", "bad body", id="content-length-lies"),
    ],
)
async def test_broken_connections_are_error_rows(
    aiohttp_server: Any, make_config: ConfigFactory, path: str, error: str
) -> None:
    config, _ = await _crawl_trap(aiohttp_server, make_config, path)
    status, _, _, _, message, _ = _page(config, path)
    assert status is None
    assert message.startswith(error)


async def test_binary_labelled_html(aiohttp_server: Any, make_config: ConfigFactory) -> None:
    config, _ = await _crawl_trap(aiohttp_server, make_config, "/binary")
    assert _page(config, "/binary")[:2] == (200, 200_000)


async def test_deeply_nested_html_is_parsed(
    aiohttp_server: Any, make_config: ConfigFactory
) -> None:
    config, port = await _crawl_trap(aiohttp_server, make_config, "/nested")
    fetched = {u for (u,) in rows(config, "SELECT url FROM pages")}
    assert fetched == {f"http://{HOST}:{port}/nested", f"http://{HOST}:{port}/nested-target"}


async def test_a_page_with_100000_links(aiohttp_server: Any, make_config: ConfigFactory) -> None:
    config, _, result = await _crawl_trap_result(
        aiohttp_server, make_config, "/many-links", crawl={"max_pages": 3}
    )
    assert rows(config, "SELECT count(*) FROM links")[0][0] == 100_000
    # Each with its anchor text, the link's number (packed on the way back from the process).
    texts = "SELECT count(*) FROM links WHERE dst_url LIKE '%/many/' || text"
    assert rows(config, texts)[0][0] == 100_000
    assert rows(config, "SELECT count(*) FROM urls WHERE state = 'queued'")[0][0] == 99_998
    # 3 MB: parsed in the page-parsing process, off the event loop; the two leaves in the loop.
    assert result.extracted_in == {"process": 1, "loop": 2}


@pytest.mark.parametrize("links", [5_000, 12_000])  # 12,000: over 256 KB, under BIG_PAGE
async def test_a_page_under_a_megabyte_is_extracted_in_steps(
    aiohttp_server: Any, make_config: ConfigFactory, links: int
) -> None:
    # In the event loop, in steps (no process started for it); its tree built in a thread.
    config, _, result = await _crawl_trap_result(
        aiohttp_server, make_config, f"/many-links?n={links}", crawl={"max_pages": 1}
    )
    [(size,)] = rows(config, "SELECT bytes FROM pages")
    assert size < BIG_PAGE
    assert rows(config, "SELECT count(*) FROM links")[0][0] == links
    assert result.extracted_in == {"loop": 1}


async def test_a_50_mb_page_does_not_block_the_loop(
    aiohttp_server: Any, make_config: ConfigFactory
) -> None:
    huge_page()  # built before the crawl: the server shares the test's event loop
    config, _, result = await _crawl_trap_result(
        aiohttp_server,
        make_config,
        "/huge",
        crawl={"max_pages": 1},
        fetch={"max_bytes": 60 * MB, "timeout": 30},
    )
    status, size, truncated, *_ = _page(config, "/huge")
    assert (status, truncated) == (200, 0)
    assert size > 50_000_000
    assert rows(config, "SELECT count(*) FROM links")[0][0] == 1000
    assert result.extracted_in == {"process": 1}


async def test_endless_calendar_is_bounded_by_depth(
    aiohttp_server: Any, make_config: ConfigFactory
) -> None:
    config, _ = await _crawl_trap(
        aiohttp_server, make_config, "/calendar/0", crawl={"max_depth": 4}
    )
    assert rows(config, "SELECT count(*) FROM pages")[0][0] == 9  # days -4 … 4
    assert rows(config, "SELECT count(*), min(depth) FROM urls WHERE reason = 'depth'") == [(2, 5)]


async def test_repeating_path_segments_are_a_trap(
    aiohttp_server: Any, make_config: ConfigFactory
) -> None:
    config, port = await _crawl_trap(aiohttp_server, make_config, "/a/")
    fetched = sorted(u for (u,) in rows(config, "SELECT url FROM pages"))
    assert fetched == [f"http://{HOST}:{port}/a/", f"http://{HOST}:{port}/a/a/"]
    assert rows(config, "SELECT url, reason FROM urls WHERE state = 'skipped'") == [
        (f"http://{HOST}:{port}/a/a/a/", "trap")
    ]


async def test_session_id_variants_are_capped(
    aiohttp_server: Any, make_config: ConfigFactory
) -> None:
    config, _ = await _crawl_trap(
        aiohttp_server, make_config, "/session", crawl={"max_query_variants": 5}
    )
    fetched = rows(config, "SELECT count(*) FROM pages WHERE url LIKE '%/session?%'")[0][0]
    assert fetched == 5
    assert rows(config, "SELECT count(*) FROM urls WHERE reason = 'trap'")[0][0] > 50


async def test_redirect_loop_ends(aiohttp_server: Any, make_config: ConfigFactory) -> None:
    config, port = await _crawl_trap(aiohttp_server, make_config, "/loop-a")
    assert rows(config, "SELECT url, status, location FROM pages ORDER BY url") == [
        (f"http://{HOST}:{port}/loop-a", 302, f"http://{HOST}:{port}/loop-b"),
        (f"http://{HOST}:{port}/loop-b", 302, f"http://{HOST}:{port}/loop-a"),
    ]


async def test_tls_to_a_plain_http_server_is_an_error_row(
    aiohttp_server: Any, make_config: ConfigFactory
) -> None:
    server = await aiohttp_server(make_hostile_app())
    config = make_config(
        [f"https://{HOST}:{server.port}/"],
        hosts=(HOST,),
        politeness={"obey_robots": False},
        fetch={"timeout": 2},
    )

    assert (await crawl(config)).outcome == "finished"

    [(status, error)] = rows(config, "SELECT status, error FROM pages")
    assert status is None
    assert "ssl" in error.lower()


async def _garbage_server(reply: bytes) -> asyncio.Server:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        pytest.param(b"HELLO THERE\r\n\r\n", "bad response: ", id="not-http"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\nhi", "bad response: ", id="bad-length"
        ),
        pytest.param(
            b"HTTP/1.1 999999 ???\r\n\x00\x01\x02\r\n\r\n", "bad response: ", id="binary-headers"
        ),
        pytest.param(b"", "server disconnected: ", id="closed-at-once"),
    ],
)
async def test_protocol_garbage_is_an_error_row(
    make_config: ConfigFactory, reply: bytes, kind: str
) -> None:
    server = await _garbage_server(reply)
    port = server.sockets[0].getsockname()[1]
    config = make_config(
        [f"http://junk.test:{port}/"], hosts=("junk.test",), politeness={"obey_robots": False}
    )
    async with server:
        assert (await crawl(config)).outcome == "finished"

    [(status, error, state)] = rows(
        config, "SELECT status, error, state FROM pages JOIN urls USING (url)"
    )
    assert (status, state) == (None, "failed")
    assert error.startswith(kind)
