"""What the parse gives lexbor, recorded: the texts crawler/extract/html.py builds trees of."""

from __future__ import annotations

import pytest
from selectolax.lexbor import LexborHTMLParser

from crawler.extract import html


def lexbor_inputs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record each text parse_html hands to lexbor (which still parses it)."""
    given: list[str] = []

    def spy(text: str) -> LexborHTMLParser:
        given.append(text)
        return LexborHTMLParser(text)

    monkeypatch.setattr(html, "LexborHTMLParser", spy)
    return given
