from __future__ import annotations

from email.utils import formatdate

import pytest

from crawler.fetch import parse_retry_after

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
