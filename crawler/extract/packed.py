"""A big page's links in a few flat values, for the way back from the parse process.

A page of 100,000 links parsed in another process came back as 100,000 tuples of two strings
and a bool: ~16 MB of objects in the crawl's process once unpickled, alive while every link is
resolved (bench/README.md, "Text on and off in a crawl"). `PackedLinks` holds the same links as
two joined strings and their end offsets (~2.5 MB for those); each link is made again, one at a
time, as the crawl iterates over them, and is garbage once resolved.
"""

from __future__ import annotations

import dataclasses
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

from .fields import Field
from .html import Link, ParsedPage, parse_html, parse_html_capped, parse_html_flat


@dataclass(frozen=True, slots=True)
class PackedLinks(Sequence[Link]):
    """Links (href, nofollow, text) in page order: a read-only sequence, made from a list."""

    hrefs: str  # every href, one after the other
    texts: str  # every anchor text, likewise
    href_ends: array[int]  # where each href ends in `hrefs`
    text_ends: array[int]
    nofollow: bytes  # 1 for a link with rel=nofollow, else 0

    @classmethod
    def of(cls, links: Sequence[Link]) -> PackedLinks:
        href_ends, text_ends = array("Q"), array("Q")
        href_end = text_end = 0
        for href, _, text in links:
            href_end += len(href)
            text_end += len(text)
            href_ends.append(href_end)
            text_ends.append(text_end)
        return cls(
            hrefs="".join(href for href, _, _ in links),
            texts="".join(text for _, _, text in links),
            href_ends=href_ends,
            text_ends=text_ends,
            nofollow=bytes(nofollow for _, nofollow, _ in links),
        )

    def __len__(self) -> int:
        return len(self.nofollow)

    def __iter__(self) -> Iterator[Link]:
        hrefs, texts = self.hrefs, self.texts
        href_start = text_start = 0
        for href_end, text_end, nofollow in zip(
            self.href_ends, self.text_ends, self.nofollow, strict=True
        ):
            yield hrefs[href_start:href_end], nofollow == 1, texts[text_start:text_end]
            href_start, text_start = href_end, text_end

    @overload
    def __getitem__(self, index: int) -> Link: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Link]: ...

    def __getitem__(self, index: int | slice) -> Link | Sequence[Link]:
        if isinstance(index, slice):
            return list(self)[index]
        n = range(len(self))[index]  # a negative index counts from the end; IndexError
        href_start = self.href_ends[n - 1] if n else 0
        text_start = self.text_ends[n - 1] if n else 0
        href = self.hrefs[href_start : self.href_ends[n]]
        return href, self.nofollow[n] == 1, self.texts[text_start : self.text_ends[n]]


def parse_html_packed(
    body: bytes, header_charset: str | None, robots_token: str, fields: tuple[Field, ...] = ()
) -> ParsedPage:
    """`parse_html`, its links packed (`PackedLinks`): what the parse process sends back.
    With `fields`, the whole tree is built within a memory cap (`parse_html_capped`)."""
    if fields:
        return _packed(parse_html_capped(body, header_charset, robots_token, fields))
    return _packed(parse_html(body, header_charset, robots_token))


def parse_html_flat_packed(
    body: bytes, header_charset: str | None, robots_token: str, fields: tuple[Field, ...]
) -> ParsedPage:
    """`parse_html_flat`, its links packed: a page whose whole tree the parse process could
    not build in time."""
    return _packed(parse_html_flat(body, header_charset, robots_token, fields))


def _packed(parsed: ParsedPage) -> ParsedPage:
    return dataclasses.replace(parsed, links=PackedLinks.of(parsed.links))
