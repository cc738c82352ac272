from __future__ import annotations

from collections.abc import Callable
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from kit import LOG, HostPlan, Page, build_config, make_site

from crawler.fetch import Fetcher, parse_retry_after

NOW = 1_800_000_000.0  # a whole second: HTTP-dates have no fraction


def test_retry_after_seconds() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 7 ") == 7.0


def test_retry_after_http_date() -> None:
    assert parse_retry_after(formatdate(NOW + 30, usegmt=True), now=NOW) == 30.0
    assert parse_retry_after("Fri, 15 Jan 2027 08:00:30 GMT", now=NOW) == 30.0  # by hand


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "Wed, 99 Foo 2026"])
def test_retry_after_junk_is_ignored(value: str | None) -> None:
    assert parse_retry_after(value) is None


def test_retry_after_in_the_past_is_zero() -> None:
    assert parse_retry_after(formatdate(NOW - 60, usegmt=True), now=NOW) == 0.0


async def test_a_request_goes_out_only_if_its_last_check_says_so(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    """The check runs once the connection is ready, new or reused, just before the request
    is written: a process stopped after its earlier checks may have lost its host."""
    server = await aiohttp_server(make_site({"a.test": HostPlan(routes={"/*": Page("ok")})}))
    config = build_config(tmp_path, ["http://a.test/"], hosts=("a.test",))
    base = f"http://a.test:{server.port}"
    asked: list[str] = []

    def check(answer: bool, path: str) -> Callable[[], bool]:
        def ask() -> bool:
            asked.append(path)
            return answer

        return ask

    async with Fetcher(config) as fetcher:
        refused = await fetcher.get(base + "/new", max_bytes=100, before_send=check(False, "/new"))
        sent = await fetcher.get(base + "/one", max_bytes=100, before_send=check(True, "/one"))
        again = await fetcher.get(base + "/two", max_bytes=100, before_send=check(False, "/two"))
        plain = await fetcher.get(base + "/three", max_bytes=100)

    assert (refused.sent, refused.status, refused.error) == (False, None, "not sent")
    assert (sent.sent, sent.status, sent.body) == (True, 200, b"ok")
    assert (again.sent, again.status) == (False, None)  # on a reused connection too
    assert plain.sent
    assert asked == ["/new", "/one", "/two"]
    assert server.app[LOG].paths() == ["/one", "/three"]
