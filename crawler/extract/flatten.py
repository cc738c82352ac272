"""The parse's linear pre-pass: a page's HTML less everything parse_html does not read, so that
the tree lexbor builds of what is left stays a few levels deep and small, whatever the input
(pure, no I/O).

lexbor's tree builder follows the HTML spec, and the spec is quadratic on deep nesting (100,000
nested ``<div>`` take ~50 s) and on runs of distinct formatting elements (``<b id=1>x<p><b
id=2>x<p>...`` clones O(n²) nodes: 4,096 tags take ~2.5 s). `flatten` drops, in one linear
regex scan, every tag but those read (a, area, base, meta, link, h1, the title element), with
comments and raw text elements; the tags kept keep their attributes as written, within what
lexbor reads in linear time (names.py). Long pages are flattened in steps (`flatten_steps`), and
pages of megabytes in segments that lexbor builds one at a time (`flat_segments`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

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
    "FLATTEN_BATCH",
    "READ_ATTRIBUTES",
    "SEGMENT",
    "TOKENS_PER_STEP",
    "flat_segments",
    "flatten",
    "flatten_steps",
    "token_pattern",
]

# flatten keeps the tags we read, the <title> element, each span as written, and the text
# between tags (anchor and h1 text), and drops the rest: other tags (each becomes one space, so
# that "x<br>y" stays two words and no two pieces of text join into a tag), comments, doctypes,
# raw text elements (<script> etc.) with their content. So lexbor is in its data state at the
# start of every kept span and tokenizes it exactly as token_pattern() does, which takes the HTML
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
# all the others first (11% less CPU in flatten on the PostgreSQL docs, bench/README.md), and
# _COMMON and PLAIN_TAG before TAG_ATTRS (a third less again, bench/README.md).
@functools.cache
def token_pattern() -> re.Pattern[str]:
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
# Longer texts are flattened in batches of tokens (`flat_segments`): split's list of pieces
# takes ~10x the text (35 MB of objects for 5 MB of HTML, in the parse process).
FLATTEN_BATCH = 1_000_000  # characters
_TOKENS_PER_BATCH = 4_096
_NULS = re.compile("\x00{2,}")
# ... and a flattened text that long is built into lexbor trees one segment of about this many
# characters at a time, each freed before the next: lexbor takes ~20 bytes per character of
# tree (60 MB for a page of 100,000 links) and keeps all of it until the tree is freed.
SEGMENT = 256_000  # characters
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


def flatten(text: str) -> str:
    """The tags parse_html reads, the <title> element and the text, without anything else."""
    if len(text) > FLATTEN_BATCH:
        return "".join(flat_segments(text, len(text)))
    return finish(flatten_steps(text))


def flatten_steps(text: str) -> Steps[str]:
    """`flatten`, pausing after each TOKENS_PER_STEP tokens: the pre-pass of a 200 KB page
    takes ~10 ms, which the event loop would otherwise wait for in one piece.

    split(maxsplit=n) leaves the text after the n-th token unsplit, as its last piece; split
    again, that rest gives what one split of the whole would have (the pattern looks at nothing
    before where a match starts, and cannot match empty)."""
    split = token_pattern().split
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


def flat_segments(text: str, segment: int) -> Iterator[str]:
    """`flatten(text)` in pieces that lexbor can build one at a time with the same result:
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
    for match in token_pattern().finditer(text):
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
                span = None  # past MAX_H1: dropped, as in flatten_steps
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
