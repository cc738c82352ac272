"""Faults heal: the process that parses big pages is replaced when it dies mid-crawl; it is
let go after a big call (its heap with it), and reused after small ones."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from conftest import ConfigFactory, crawl, rows
from kit import HostPlan, Page, make_site
from selectolax.lexbor import LexborHTMLParser
from stalls import parse_or_stall, pid, run_then_stall

from crawler.config import Config
from crawler.engine import workers
from crawler.engine.workers import BIG_PAGE
from crawler.extract import flatten
from crawler.extract.flatten import FLATTEN_BATCH
from crawler.extract.html import decode_html
from crawler.extract.parse_pool import RECYCLE_BYTES, ParsePool, ParseProcessDied, ParseTimedOut
from crawler.heap import heap_trimmer

HOST = "big.test"
PADDING = "<!-- " + "x" * BIG_PAGE + " -->"  # over BIG_PAGE: parsed in the separate process


def _big_page(n: int) -> str:
    links = "".join(f'<a href="/leaf/{n}/{i}">leaf</a>' for i in range(5))
    more = f'<a href="/big/{n + 1}">next</a>' if n < 3 else ""
    return f"<html><title>big {n}</title><body>{links}{more}{PADDING}</body></html>"


def _is_parse_helper(pid: int | str) -> bool:
    try:
        return b"crawler.extract.parse_helper" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # no such process (any more)
        return False


def _parse_helpers() -> list[int]:
    """This process's children that are page-parsing helpers."""
    tasks = Path(f"/proc/{os.getpid()}/task").iterdir()
    children = [pid for task in tasks for pid in (task / "children").read_text().split()]
    return [int(pid) for pid in children if _is_parse_helper(pid)]


async def _kill_first_helper(killed: list[int]) -> None:
    # The crawl starts the helper on its own: only /proc tells when.
    while not (helpers := _parse_helpers()):  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    os.kill(helpers[0], signal.SIGKILL)
    killed.append(helpers[0])


def _app() -> web.Application:
    async def big(request: web.Request) -> web.Response:
        n = int(request.path.rsplit("/", 1)[1])
        return web.Response(text=_big_page(n), content_type="text/html")

    leaf = Page("<html><title>leaf</title></html>")
    return make_site(
        {HOST: HostPlan(pages=0, robots=None, routes={"/big/*": big, "/leaf/*": leaf})}
    )


async def test_a_killed_parse_process_is_replaced(
    aiohttp_server: Any, make_config: ConfigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    killed: list[int] = []
    server = await aiohttp_server(_app())
    config = _big_pages_config(make_config, server.port)

    with caplog.at_level(logging.WARNING, logger="crawler.extract.parse_pool"):
        async with asyncio.TaskGroup() as group:
            group.create_task(_kill_first_helper(killed))  # the one started for page 1
            result = await crawl(config)

    assert len(killed) == 1
    assert result.extracted_in.get("process") == 3
    assert rows(config, "SELECT count(*) FROM pages WHERE error IS NOT NULL") == [(0,)]
    links = rows(
        config, "SELECT src_url, count(*) FROM links WHERE src_url LIKE '%/big/%' GROUP BY 1"
    )
    assert sorted(count for _, count in links) == [5, 6, 6]  # every big page's links
    assert rows(config, "SELECT count(*) FROM pages") == [(18,)]
    assert "the page-parsing process died" in caplog.text


async def test_the_crawl_trims_its_heap_after_each_big_page_only(
    aiohttp_server: Any, make_config: ConfigFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    trimmed: list[int] = []  # pages in the database at each trim
    server = await aiohttp_server(_app())
    config = _big_pages_config(make_config, server.port)
    trim_returned = heap_trimmer()()  # glibc's malloc_trim, for real
    assert trim_returned == 0 or trim_returned == 1
    monkeypatch.setattr(workers, "heap_trimmer", lambda: lambda: trimmed.append(1))
    result = await crawl(config)
    assert result.extracted_in.get("process") == 3
    assert rows(config, "SELECT count(*) FROM pages") == [(18,)]
    assert len(trimmed) == 3  # the 15 small leaves: none


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def die_once(marker: str) -> int:
    """Kill the process running this the first time (no marker file yet); then its pid."""
    if not os.path.exists(marker):
        Path(marker).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


def raise_value_error(text: str) -> None:
    raise ValueError(text)


@pytest.fixture
def importable_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """The helper can import this module (to unpickle its functions)."""
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))


@pytest.mark.usefixtures("importable_here")
async def test_a_call_whose_process_dies_runs_again_in_a_new_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = str(tmp_path / "died")
    with caplog.at_level(logging.WARNING, logger="crawler.extract.parse_pool"):
        async with ParsePool() as pool:
            pid = await pool.run(die_once, marker)
            assert pool.restarts == 1
            assert pid == pool.pid
            assert pid != os.getpid()
            with pytest.raises(ParseProcessDied, match="died"):
                await pool.run(die)  # kills the helper, every time
            assert pool.restarts == 3
            assert await pool.run(die_once, marker) != pid  # the next call gets a new process
    assert "the page-parsing process died" in caplog.text


@pytest.mark.usefixtures("importable_here")
async def test_a_call_past_its_time_limit_has_the_process_killed_and_is_not_run_again(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran"
    async with ParsePool() as pool:
        first = await pool.run(pid)  # started, this module imported: the limit is the call's
        with pytest.raises(ParseTimedOut, match=r"took over 2\.0 s"):
            await pool.run(run_then_stall, str(marker), time_limit=2.0)
        assert marker.read_text(encoding="utf-8") == "ran\n"  # once: not again in a new one
        assert (pool.timeouts, pool.restarts) == (1, 0)
        assert not _is_parse_helper(first)  # killed and reaped
        assert await pool.run(os.getpid, time_limit=60.0) not in (first, os.getpid())


@pytest.mark.usefixtures("importable_here")
async def test_a_fields_page_past_the_time_limit_is_parsed_flat_and_the_crawl_goes_on(
    aiohttp_server: Any,
    make_config: ConfigFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(workers, "parse_html_packed", parse_or_stall)
    monkeypatch.setattr(workers, "WHOLE_TREE_SECONDS", 5.0)
    routes = {
        "/": Page('<h1>home</h1><a href="/stall">s</a><a href="/after">a</a><a href="/big">b</a>'),
        "/stall": Page('<h1>stall here</h1><a href="/leaf">l</a>'),
        "/big": Page(f'<h1>stall here</h1><a href="/leaf">l</a>{PADDING}'),  # over BIG_PAGE
        "/after": Page("<h1>after</h1>"),
        "/leaf": Page("<h1>leaf</h1>"),
    }
    server = await aiohttp_server(make_site({HOST: HostPlan(pages=0, robots=None, routes=routes)}))
    origin = f"http://{HOST}:{server.port}"
    config = make_config([f"{origin}/"], hosts=(HOST,), fields={"h": "h1"})
    with caplog.at_level(logging.WARNING, logger="crawler.engine.workers"):
        result = await crawl(config)
    assert result.extracted_in == {"process": 5}
    found = dict(rows(config, "SELECT url, fields FROM pages"))
    assert found == {
        f"{origin}/": '{"h":"home"}',
        f"{origin}/stall": '{"h":null}',  # flat: its link to /leaf kept
        f"{origin}/big": '{"h":null}',
        f"{origin}/after": '{"h":"after"}',
        f"{origin}/leaf": '{"h":"leaf"}',
    }
    for stalled in ("stall", "big"):
        assert f"{origin}/{stalled}: the page-parsing process took over 5.0 s" in caplog.text


async def test_the_process_is_let_go_after_a_big_call_and_kept_after_small_ones() -> None:
    async with ParsePool() as pool:
        assert await pool.run(len, b"x" * 10) == 10
        first = pool.pid
        assert await pool.run(len, b"x" * 1000) == 1000
        assert pool.pid == first
        assert first is not None
        assert _is_parse_helper(first)
        assert await pool.run(len, b"x" * RECYCLE_BYTES) == RECYCLE_BYTES
        assert pool.pid is None
        assert pool.recycled == 1
        assert not _is_parse_helper(first)  # ended and reaped
        assert await pool.run(len, b"") == 0
        pool_pid = pool.pid
        assert pool_pid not in (None, first)
    assert not _is_parse_helper(pool_pid)


@pytest.mark.usefixtures("importable_here")
async def test_what_the_call_raised_is_raised_where_it_was_called() -> None:
    async with ParsePool() as pool:
        with pytest.raises(ValueError, match="bad page"):
            await pool.run(raise_value_error, "bad page")
        assert pool.restarts == 0
        assert await pool.run(len, "abc") == 3


async def test_a_call_the_process_cannot_unpickle_raises_and_the_process_lives_on() -> None:
    async with ParsePool() as pool:
        pid = await pool.run(os.getpid)
        with pytest.raises(ModuleNotFoundError):  # this module is not on the helper's path
            await pool.run(raise_value_error, "x")
        assert await pool.run(os.getpid) == pid


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            b"".join(b'<div><a href="/%d">x</a></div>\n' % n for n in range(60_000)), id="links"
        ),
        pytest.param(
            b"<p>" + b"\x00" * (2 * BIG_PAGE) + b'<\x00a><a href="/after">z</a>', id="nuls"
        ),
    ],
)
def test_a_long_page_flattened_in_batches_parses_as_a_short_one_would(body: bytes) -> None:
    assert len(body) > FLATTEN_BATCH
    text = decode_html(body, None)
    with_split = flatten.token_pattern().split(text)
    with_split[1::2] = ["<" + span if span else " " for span in with_split[1::2]]
    batched = flatten.flatten(text)
    assert len(batched) <= len(text)
    assert LexborHTMLParser(batched).html == LexborHTMLParser("".join(with_split)).html


def _big_pages_config(make_config: ConfigFactory, port: int) -> Config:
    """A crawl of the big pages from /big/1, one request at a time."""
    return make_config(
        [f"http://{HOST}:{port}/big/1"],
        hosts=(HOST,),
        crawl={"concurrency": 1},
        fetch={"max_bytes": 4 * BIG_PAGE},
    )
