"""Pure HTML extraction: body bytes in, what the crawler keeps of a page out: title, base href,
links with their anchor text, robots rules and directives, canonical, meta description, first
h1, hreflang alternates; and the config's `[fields]` (fields.py), on the same tree.

No I/O. The crawler's hot path, so the tree is walked once, and kept small (below).

Resource handling: lexbor's tree builder follows the HTML spec, and the spec is quadratic on
deep nesting (100,000 nested ``<div>`` take ~50 s) and on runs of distinct formatting elements
(``<b id=1>x<p><b id=2>x<p>...`` clones O(n²) nodes: 4,096 tags take ~2.5 s). So `parse_html`
first drops, in one linear regex scan, everything it does not read (`_flatten`); the tree
lexbor then builds is a few levels deep whatever the input, and the attributes of the tags
kept stay within what lexbor reads in linear time (names.py). With `[fields]` set, selectors need
the page's real structure: the page goes to lexbor whole, unless `fields.tangled` finds it
leaves too many elements open (then it is flattened as without fields, and its fields are None).

Error handling: nothing here raises on any input; bad bytes are replaced, unknown charsets fall
back to UTF-8, broken markup is whatever lexbor's error recovery makes of it.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable, Iterator, Sequence
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
from .names import (
    MAX_ATTRIBUTES,
    NAME_END,
    TAG_ATTRS,
    TAG_NAME,
    SpanNames,
    element_pattern,
    trimmed,
)
from .steps import Steps, finish

__all__ = [
    "NAME_END",
    "TAG_ATTRS",
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

# _flatten keeps the tags we read, the <title> element, each span as written, and the text
# between tags (anchor and h1 text), and drops the rest: other tags (each becomes one space, so
# that "x<br>y" stays two words and no two pieces of text join into a tag), comments, doctypes,
# raw text elements (<script> etc.) with their content. So lexbor is in its data state at the
# start of every kept span and tokenizes it exactly as _token() does, which takes the HTML
# tokenizer's rules: a tag is "<" + ASCII letter (re.ASCII, else "\u017fcript" matches
# "script"), its name ends at whitespace, "/" or ">", a quote opens a value only after "=", and
# an unclosed quote, comment or raw text element runs to the end. A "<" left in the text is one
# the tokenizer reads as text. Possessive repeats keep the scan linear. split, not sub: before
# Python 3.12, sub expands a group template in Python for each match, which tripled the cost.
# The attributes the collector reads: past MAX_NAMES in a tree, the kept spans keep only these
# (names.py: lexbor's cost grows faster than the distinct attribute names it is given).
READ_ATTRIBUTES = frozenset({"href", "rel", "name", "content", "hreflang"})
LONG_SPAN = 2 * MAX_ATTRIBUTES  # characters: a kept span longer keeps those attributes only
# <h1> start tags kept in one tree: interleaved with <a> and </a> (say "<h1></a><a href=x>"
# again and again), each nests the tree deeper, and lexbor's work grows with the square of
# their number (20,000 of them: 1.7 s). Past these, they are dropped: only the first <h1>'s
# text is read, and the text stays (in the anchors around it too).
MAX_H1 = 16


_RAW_TEXT = ("script", "style", "textarea", "xmp", "iframe", "noembed", "noframes")
_SPECIAL = rf"(?:a|area|base|meta|link|h1|title|{'|'.join(_RAW_TEXT)}|plaintext){NAME_END}"


# The usual tag's attributes, read in fewer steps than TAG_ATTRS takes: each after whitespace,
# a name and maybe ="...", '...' or an unquoted value, then "/"? ">". Where the tokenizer could
# read the tag another way (a quote or "=" in a name, "=" after whitespace, no whitespace after
# a quoted value, an unclosed quote) it does not match, and TAG_ATTRS reads the tag; where it
# matches, it ends where the tokenizer ends the tag.
_PLAIN_ATTRS = (
    r"(?:[\t\n\f\r ]++[^\t\n\f\r />=\"']++"
    r"""(?:=(?:"[^"]*+"|'[^']*+'|[^\t\n\f\r >"'][^\t\n\f\r >]*+))?)*+"""
    r"[\t\n\f\r ]*+/?>"
)
PLAIN_TAG = rf"[a-z][^\t\n\f\r />\"'=]*+{_PLAIN_ATTRS}"
# The commonest names, lower-case as written: a tag of one of these is dropped without the test
# against every kept and raw text name first (re tries each of those in full, where it tells
# these apart by their first character: a third of the pre-pass's CPU on the PostgreSQL docs).
_COMMON = (
    "span|div|p|li|ul|ol|code|pre|td|tr|th|em|strong|dt|dd|dl|table|tbody|thead|section|br|"
    "img|hr|i|b|h2|h3|h4|tt|small|sup|var|kbd|cite|nav|blockquote"
)
# A tag dropped whole: one of the commonest, else any but a kept or raw text element.
_DROPPED = (
    rf"/?(?:(?-i:{_COMMON}){NAME_END}(?:{_PLAIN_ATTRS}|{TAG_ATTRS})"
    rf"|(?!{_SPECIAL})(?:{PLAIN_TAG}|{TAG_NAME}{TAG_ATTRS}))"
)


# Group 1 is a kept span less its "<"; every alternative starts after one literal "<", which
# lets re jump from "<" to "<". The first alternative is the common case, a tag dropped whole
# (no element named in the others): re tries alternatives in order, and most tags used to fail
# all the others first (11% less CPU in _flatten on the PostgreSQL docs, bench/README.md), and
# _COMMON and PLAIN_TAG before TAG_ATTRS (a third less again, bench/README.md).
@functools.cache
def _token() -> re.Pattern[str]:
    # Compiled on first use, not on import (~10 ms): nothing before a crawl's first request
    # needs it.
    return re.compile(
        r"<(?:"
        rf"{_DROPPED}"
        rf"|(/?(?:a|area|base|meta|link|h1){NAME_END}{TAG_ATTRS}|{element_pattern('title')})"
        r"|!--(?:-?>|[^-]*+(?:-(?!-!?>)[^-]*+)*+(?:--!?>)?)"
        r"|(?:!|\?|/(?![a-z]))[^>]*+>?"
        rf"|{'|'.join(element_pattern(name) for name in _RAW_TEXT)}"
        rf"|plaintext{NAME_END}[\s\S]*"
        rf"|/?{TAG_NAME}{TAG_ATTRS})",
        re.IGNORECASE | re.ASCII,
    )


TOKENS_PER_STEP = 2_048  # ~1-2 ms of the pre-pass; a page of fewer goes in one piece
NODES_PER_STEP = 1_000  # of the walk over a tree: ~5 ms, most of them links
# lexbor builds the tree of a longer text in a thread, when the page is parsed in steps (~0.1 ms
# a KB of links: it would stall an event loop)
TREE_IN_THREAD = 65_536  # characters
# Longer texts are flattened in batches of tokens (`_flat_segments`): split's list of pieces
# takes ~10x the text (35 MB of objects for 5 MB of HTML, in the parse process).
FLATTEN_BATCH = 1_000_000  # characters
_TOKENS_PER_BATCH = 4_096
_NULS = re.compile("\x00{2,}")
# ... and a flattened text that long is built into lexbor trees one segment of about this many
# characters at a time, each freed before the next: lexbor takes ~20 bytes per character of
# tree (60 MB for a page of 100,000 links) and keeps all of it until the tree is freed.
SEGMENT = 256_000  # characters
# With [fields], a page's whole tree is built in the parse process within this much more memory
# (a tree takes ~25 bytes a character of dense markup): the linear check (`fields.tangled`)
# estimates what lexbor's tree builder holds open, and where it estimates too low (in-table and
# foreign-content rules), a page of 41 KB made lexbor clone 200 MB of formatting elements.
WHOLE_TREE_BYTES = 64 * 1024**2
WHOLE_TREE_PER_BYTE = 64
# The kept spans that open or close an element a later token can still add to: <a> and <h1>
# (the other tags kept are void, or raw text spans closed within themselves).
_A_OR_H1 = re.compile(r"/?(?:a|h1)(?![^\t\n\f\r />])", re.IGNORECASE | re.ASCII)
_UNKNOWN = "?"
# What the tree builder holds open of <a> and <h1>, after each kind of span (HTML spec, "in
# body": an <a> start tag closes an open <a>; </h1> closes an <a> inside, left to be cloned
# by the next text; <h1> directly in <h1> replaces it). "a" also stands for an <a> closed but
# still in the list of formatting elements: the next <a> or </a> drops it either way. Any other
# sequence (an <h1> inside an <a>: the adoption agency moves nodes) is not followed: "?".
_OPEN_AFTER = {
    ("", "a"): "a", ("", "/a"): "", ("", "h1"): "h1", ("", "/h1"): "",
    ("a", "a"): "a", ("a", "/a"): "", ("a", "/h1"): "a",
    ("h1", "a"): "h1 a", ("h1", "/a"): "h1", ("h1", "h1"): "h1", ("h1", "/h1"): "",
    ("h1 a", "a"): "h1 a", ("h1 a", "/a"): "h1", ("h1 a", "/h1"): "a",
}  # fmt: skip


def _flatten(text: str) -> str:
    """The tags parse_html reads, the <title> element and the text, without anything else."""
    if len(text) > FLATTEN_BATCH:
        return "".join(_flat_segments(text, len(text)))
    return finish(_flatten_steps(text))


def _flatten_steps(text: str) -> Steps[str]:
    """`_flatten`, pausing after each TOKENS_PER_STEP tokens: the pre-pass of a 200 KB page
    takes ~10 ms, which the event loop would otherwise wait for in one piece.

    split(maxsplit=n) leaves the text after the n-th token unsplit, as its last piece; split
    again, that rest gives what one split of the whole would have (the pattern looks at nothing
    before where a match starts, and cannot match empty)."""
    split = _token().split
    flat: list[str] = []
    rest = text
    names = SpanNames()
    h1s = MAX_H1  # <h1> start tags the tree may still get (a bound: see MAX_H1)
    while True:
        # text, then a kept span (None: a dropped one), text, ..., then the rest
        pieces = split(rest, TOKENS_PER_STEP)
        done = len(pieces) < 2 * TOKENS_PER_STEP + 1
        if not done:
            rest = pieces.pop()
        spans = pieces[1::2]
        step = _bounded_step(pieces, spans, names)
        h1_starts = step.count("<h1") + step.count("<H1")  # at least the <h1> tags kept
        if h1_starts <= h1s:
            h1s -= h1_starts
        else:  # rare: the step is built again (its names counted twice: a tighter bound)
            h1s = _drop_h1s(spans, h1s)
            step = _bounded_step(pieces, spans, names)
        flat.append(step)
        if done:
            return "".join(flat)
        yield None


def _bounded_step(pieces: list[str | None], spans: list[str | None], names: SpanNames) -> str:
    """A step of the split (text, a kept span less its "<" or None, text, ...; `spans` its
    kept spans) as flattened text: each kept span as written, unless longer than LONG_SPAN or
    past the tree's names (`SpanNames`): then with the attributes read only. `pieces`' spans
    are replaced."""
    pieces[1::2] = [
        " " if span is None else "<" + span if len(span) <= LONG_SPAN else _trimmed(span)
        for span in spans
    ]
    step = "".join(pieces)  # type: ignore[arg-type]  # every None replaced
    if names.fit(step, spans):
        return step
    pieces[1::2] = [_trimmed(span) if span else " " for span in spans]
    return "".join(pieces)  # type: ignore[arg-type]


def _drop_h1s(spans: list[str | None], h1s: int) -> int:
    """The <h1> start tags of `spans` past the first `h1s` dropped; how many are left."""
    for i, span in enumerate(spans):
        if span and span[:2] in ("h1", "H1"):
            if h1s == 0:
                spans[i] = None
            else:
                h1s -= 1
    return h1s


def _trimmed(span: str) -> str:
    return trimmed(span, READ_ATTRIBUTES)


def _flat_segments(text: str, segment: int) -> Iterator[str]:
    """`_flatten(text)` in pieces that lexbor can build one at a time with the same result:
    each piece past the first starts at an <a> start tag where nothing of <a> or <h1> is open
    but an <a> (which that tag closes), so the tree builder starts it as a new document would;
    each is made of `segment` characters of `text` or more, but where no such tag follows.

    In bounded memory, for a text of megabytes. Runs of NULs in the text between tags become
    one: the tree builder ignores a NUL there (HTML spec, "in body"), but lexbor holds ~18
    bytes per NUL meanwhile (90 MB for a page of 5 MB of NULs, a decompression bomb); one is
    kept so that "<" + NUL stays text."""
    batches: list[str] = []
    pieces: list[str | None] = []  # as split gives them: text, a kept span or None, text, ...
    start = end = 0  # where in `text` the segment and the next piece start
    state = ""
    names = SpanNames()  # for each segment: a tree of its own
    h1s = MAX_H1
    for match in _token().finditer(text):
        piece = text[end : match.start()]
        pieces.append(_NULS.sub("\x00", piece) if "\x00" in piece else piece)
        span = match.group(1)
        end = match.end()
        if span and (kind := _A_OR_H1.match(span)) is not None:
            tag = kind.group().lower()
            if tag == "a" and state in ("", "a") and match.start() - start >= segment:
                batches.append(_bounded_step(pieces, pieces[1::2], names))
                yield "".join(batches)
                batches.clear()
                pieces[:] = [""]  # the segment starts with this span
                start = match.start()
                names = SpanNames()
                h1s = MAX_H1
            if tag != "h1":
                state = _OPEN_AFTER.get((state, tag), _UNKNOWN)
            elif h1s == 0:
                span = None  # past MAX_H1: dropped, as in _flatten_steps
            else:
                h1s -= 1
                state = _OPEN_AFTER.get((state, tag), _UNKNOWN)
        pieces.append(span)
        if len(pieces) >= _TOKENS_PER_BATCH:
            batches.append(_bounded_step(pieces, pieces[1::2], names))
            pieces.clear()
    piece = text[end:]
    pieces.append(_NULS.sub("\x00", piece) if "\x00" in piece else piece)
    batches.append(_bounded_step(pieces, pieces[1::2], names))
    yield "".join(batches)


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
    """parse_html, pausing within the pre-pass of a page of many tags (`_flatten_steps`)."""
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
        sources = _flat_segments(text, SEGMENT)  # one tree at a time: a page of megabytes
    else:
        flat = yield from _flatten_steps(text)
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
