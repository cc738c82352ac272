"""Pure HTML extraction: body bytes in, what the crawler keeps of a page out: title, base href,
links with their anchor text, robots rules and directives, canonical, meta description, first
h1, hreflang alternates; and the config's `[fields]` (fields.py), on the same tree.

No I/O. The crawler's hot path, so the tree is walked once, and kept small (below).

Resource handling: lexbor's tree builder is quadratic on some inputs, so `parse_html` first
drops, in one linear scan, everything it does not read (flatten.py); the tree lexbor then
builds is a few levels deep whatever the input. With `[fields]` set, selectors need
the page's real structure: the page goes to lexbor whole, unless `fields.tangled` finds it
leaves too many elements open (then it is flattened as without fields, and its fields are None).

Error handling: nothing here raises on any input; bad bytes are replaced, unknown charsets fall
back to UTF-8, broken markup is whatever lexbor's error recovery makes of it.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

from ..heap import address_space_cap
from .charset import HTML_WS, decode_html
from .directives import (
    MAX_DIRECTIVES,
    PageRules,
    header_rules,
    merge_rules,
    parse_robots_directives,
)
from .fields import Field, FieldValue, evaluate, tangled
from .flatten import FLATTEN_BATCH, SEGMENT, flat_segments, flatten_steps
from .steps import Steps, finish

__all__ = [
    "Alternate",
    "Link",
    "PageRules",
    "ParsedPage",
    "decode_html",
    "header_rules",
    "merge_rules",
    "parse_html",
    "parse_html_capped",
    "parse_html_flat",
    "parse_html_steps",
    "parse_robots_directives",
]

# One ``a[href]`` or ``area[href]``: (href, rel=nofollow, anchor text); href stripped, not yet
# resolved; text whitespace-collapsed, at most MAX_ANCHOR characters ("" for none).
# A plain tuple, not a class: a page parsed in another process can carry 100,000 of them back,
# and tuples of str and bool unpickle in C (a NamedTuple's constructor took 0.3 s for those).
Link = tuple[str, bool, str]
# One ``<link rel="alternate" hreflang href>``: (hreflang, href), both stripped, href unresolved.
Alternate = tuple[str, str]

# Hostile pages stay bounded: what one page can put in its row and rows.
MAX_ANCHOR = 200  # characters of a link's text
MAX_TEXT = 1_000  # characters of the description and the h1
MAX_HREFLANG = 100  # characters of an hreflang value
MAX_ALTERNATES = 100  # hreflang alternates a page keeps (the first)


@dataclass(frozen=True, slots=True)
class ParsedPage:
    """What the crawler keeps from one HTML page."""

    title: str | None
    base_href: str | None
    links: Sequence[Link]  # a list; from the parse process, packed.PackedLinks
    rules: PageRules
    canonical: str | None = None  # the first <link rel=canonical>'s href, unresolved
    description: str | None = None  # the first <meta name=description>, collapsed, cut
    h1: str | None = None  # the first <h1>'s text, collapsed, cut
    alternates: tuple[Alternate, ...] = ()
    robots: tuple[str, ...] = ()  # the contents of the meta robots (and our token's) as found
    # Each [fields] entry's value (href/src not yet resolved); None: no fields asked for.
    fields: dict[str, FieldValue] | None = None
    tangled: bool = False  # fields were asked for, but the page was too tangled to build whole


_WS_RUN = re.compile(r"[\t\n\f\r ]+")

NODES_PER_STEP = 1_000  # of the walk over a tree: ~5 ms, most of them links
# lexbor builds the tree of a longer text in a thread, when the page is parsed in steps (~0.1 ms
# a KB of links: it would stall an event loop)
TREE_IN_THREAD = 65_536  # characters
# With [fields], a page's whole tree is built in the parse process within this much more memory
# (a tree takes ~25 bytes a character of dense markup): the linear check (`fields.tangled`)
# estimates what lexbor's tree builder holds open, and where it estimates too low (in-table and
# foreign-content rules), a page of 41 KB made lexbor clone 200 MB of formatting elements.
WHOLE_TREE_BYTES = 64 * 1024**2
WHOLE_TREE_PER_BYTE = 64


def parse_html(
    body: bytes, header_charset: str | None, robots_token: str, fields: tuple[Field, ...] = ()
) -> ParsedPage:
    """Parse a page. robots_token is our crawler's product token, lower-cased (e.g. "crawler");
    `fields` are evaluated on the same tree (a module-level function with picklable arguments:
    the parse process runs it for big pages)."""
    return finish(parse_html_steps(body, header_charset, robots_token, fields))


def parse_html_capped(
    body: bytes, header_charset: str | None, robots_token: str, fields: tuple[Field, ...]
) -> ParsedPage:
    """`parse_html`, the whole tree `fields` need built within WHOLE_TREE_BYTES plus
    WHOLE_TREE_PER_BYTE a byte of `body` more memory; a page that needs more is parsed flat
    instead, as a tangled one. For a process of one thread (the parse process): the cap is the
    process's (heap.address_space_cap)."""
    try:
        with address_space_cap(WHOLE_TREE_BYTES + WHOLE_TREE_PER_BYTE * len(body)):
            return parse_html(body, header_charset, robots_token, fields)
    except (MemoryError, SelectolaxError):
        pass  # out of the handler: its traceback holds the failed parse's frames
    return parse_html_flat(body, header_charset, robots_token, fields)


def parse_html_flat(
    body: bytes, header_charset: str | None, robots_token: str, fields: tuple[Field, ...]
) -> ParsedPage:
    """`parse_html` of a page too tangled for `fields`: parsed flat, every field None."""
    flat = parse_html(body, header_charset, robots_token)
    return dataclasses.replace(flat, fields=dict.fromkeys(f.name for f in fields), tangled=True)


def parse_html_steps(
    body: bytes, header_charset: str | None, robots_token: str, fields: tuple[Field, ...] = ()
) -> Steps[ParsedPage]:
    """parse_html, pausing within the pre-pass of a page of many tags (`flatten_steps`)."""
    text = decode_html(body, header_charset)
    whole = bool(fields) and not tangled(text)
    page = _Collector(robots_token)
    if fields:
        page.tangled = not whole
        if not whole:
            page.fields = dict.fromkeys(f.name for f in fields)
    if whole:
        sources: Iterable[str] = (text,)
    elif len(text) > FLATTEN_BATCH:
        sources = flat_segments(text, SEGMENT)  # one tree at a time: a page of megabytes
    else:
        flat = yield from flatten_steps(text)
        sources = (flat,)
    for source in sources:
        build = functools.partial(_tree, source, fields if whole else ())
        built = (yield build) if len(source) > TREE_IN_THREAD else build()
        tree, page_fields = cast(tuple[LexborHTMLParser, dict[str, FieldValue]], built)
        if whole:
            page.fields = page_fields
        yield from _collect(tree, page)
        del tree, built  # before the next segment's tree is built
    return page.parsed()


def _tree(source: str, fields: tuple[Field, ...]) -> tuple[LexborHTMLParser, dict[str, FieldValue]]:
    """lexbor's tree of `source`, and the `fields` evaluated on it (a call that may run in a
    thread: lexbor lets the GIL go while it builds the tree)."""
    tree = LexborHTMLParser(source)
    return tree, evaluate(tree, fields) if fields else {}


def _collect(tree: LexborHTMLParser, page: _Collector) -> Steps[None]:
    """What `page` reads of a tree's elements, in document order; pausing every
    NODES_PER_STEP nodes."""
    # One walk over the flattened tree, which holds little more than the elements read here:
    # a CSS query per kind of element cost as much again (each walks the tree too).
    nodes = tree.root.traverse() if tree.root is not None else ()
    for n, node in enumerate(nodes, 1):
        if n % NODES_PER_STEP == 0:
            yield None
        tag = node.tag
        if tag == "a" or tag == "area":
            page.link_to(node)
        elif tag == "meta":
            page.meta(node)
        elif tag == "link":
            page.link_rel(node)
        elif tag == "h1" and page.h1 is None:
            page.h1 = _collapsed(node.text(), MAX_TEXT)
        elif tag == "title" and page.title is None:
            page.title = _WS_RUN.sub(" ", node.text()).strip(" ")
        elif tag == "base" and page.base_href is None:
            attrs = node.attributes
            if "href" in attrs:
                page.base_href = (attrs["href"] or "").strip(HTML_WS)


class _Collector:
    """What parse_html has found so far in one page."""

    def __init__(self, robots_token: str) -> None:
        self.robots_names = ("robots", robots_token.lower())
        self.title: str | None = None
        self.base_href: str | None = None
        self.h1: str | None = None
        self.canonical: str | None = None
        self.description: str | None = None
        # Repeats are dropped here (order kept): a page of 600,000 links to 1,000 places costs
        # 1,000 links downstream, and is cheap to send back from a parsing process. Each keeps
        # the first non-empty text found for it.
        self.links: dict[tuple[str, bool], str] = {}
        self.alternates: dict[Alternate, None] = {}
        self.robots: list[str] = []
        self.rules = PageRules()
        self.fields: dict[str, FieldValue] | None = None
        self.tangled = False

    def link_to(self, node: LexborNode) -> None:
        attrs = node.attributes  # one dict per node: cheaper than node.attrs.get per attribute
        if "href" in attrs:
            key = ((attrs["href"] or "").strip(HTML_WS), _has_rel("nofollow", attrs.get("rel")))
            if not self.links.get(key):
                self.links[key] = _collapsed(node.text(), MAX_ANCHOR) if node.tag == "a" else ""

    def meta(self, node: LexborNode) -> None:
        attrs = node.attributes
        if "content" not in attrs:
            return
        name = (attrs.get("name") or "").strip(HTML_WS).lower()
        content = attrs["content"] or ""
        if name in self.robots_names:
            self.rules = merge_rules(self.rules, parse_robots_directives(content))
            if len(self.robots) < MAX_DIRECTIVES:
                self.robots.append(content)
        elif name == "description" and self.description is None:
            self.description = _collapsed(content, MAX_TEXT)

    def link_rel(self, node: LexborNode) -> None:
        attrs = node.attributes
        rel, href = attrs.get("rel"), attrs.get("href")
        if href is None:
            return
        if self.canonical is None and _has_rel("canonical", rel):
            self.canonical = href.strip(HTML_WS)
        elif (
            "hreflang" in attrs
            and len(self.alternates) < MAX_ALTERNATES
            and _has_rel("alternate", rel)
        ):
            hreflang = (attrs["hreflang"] or "").strip(HTML_WS)[:MAX_HREFLANG]
            self.alternates[hreflang, href.strip(HTML_WS)] = None

    def parsed(self) -> ParsedPage:
        return ParsedPage(
            title=self.title or None,
            base_href=self.base_href,
            links=[(href, nofollow, text) for (href, nofollow), text in self.links.items()],
            rules=self.rules,
            canonical=self.canonical,
            description=self.description or None,
            h1=self.h1 or None,
            alternates=tuple(self.alternates),
            robots=tuple(self.robots),
            fields=self.fields,
            tangled=self.tangled,
        )


def _collapsed(text: str, limit: int) -> str:
    """Text with whitespace runs as one space, stripped, at most `limit` characters. Only the
    first 8 x limit characters are read: a hostile megabyte of text costs no more than that."""
    return _WS_RUN.sub(" ", text[: limit * 8]).strip(" ")[:limit].rstrip(" ")


def _has_rel(token: str, rel: str | None) -> bool:
    """Whether a rel attribute's token list holds `token` (lower-case)."""
    return rel is not None and token in rel.lower().split()
