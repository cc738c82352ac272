"""Calls that stall the page-parsing process, for the tests of its time limit. A module of its
own: the process imports it to unpickle them, and this one imports nothing a page's parse does
not (a test module would bring pytest and aiohttp, seconds on a loaded machine, inside the
limit)."""

from __future__ import annotations

import os
import time

from crawler.extract.fields import Field
from crawler.extract.html import ParsedPage
from crawler.extract.packed import parse_html_packed


def pid() -> int:
    """The process's id (a first call: the process has imported this module since)."""
    return os.getpid()


def run_then_stall(marker: str) -> None:
    """Append "ran" to `marker`, then take an hour."""
    with open(marker, "a", encoding="utf-8") as ran:
        ran.write("ran\n")
    time.sleep(3600)


def parse_or_stall(
    body: bytes, charset: str | None, token: str, fields: tuple[Field, ...]
) -> ParsedPage:
    """parse_html_packed, but for a page that says "stall here", which takes an hour."""
    if b"stall here" in body:
        time.sleep(3600)
    return parse_html_packed(body, charset, token, fields)
