from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from crawler.fetch import parse_retry_after


def test_retry_after_seconds() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 7 ") == 7.0


def test_retry_after_http_date() -> None:
    value = formatdate(time.time() + 30, usegmt=True)
    seconds = parse_retry_after(value)
    assert seconds is not None
    assert 28 <= seconds <= 30


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "Wed, 99 Foo 2026"])
def test_retry_after_junk_is_ignored(value: str | None) -> None:
    assert parse_retry_after(value) is None


def test_retry_after_in_the_past_is_zero() -> None:
    assert parse_retry_after(formatdate(time.time() - 60, usegmt=True)) == 0.0
