"""A page's readable text for `pages.text`: body bytes in, plain text (or None) out.

The page's text without the elements that name themselves navigation or boilerplate
(resiliparse, `BOILERPLATE`), else the page's visible text (selectolax). Pure and synchronous:
no I/O, no state, and nothing escapes on any input. It runs in helper processes
(crawler/text/pool.py), which give each call a time limit and kill a process that overruns it.

Why resiliparse's plain text with a list of boilerplate elements: on the PostgreSQL, MkDocs
and Django docs, measured against each page's known main element (bench/text.py), it keeps
more of the main text than trafilatura `fast=True` (which `pages.text` held before issue 22:
recall 1.00 against 0.93 on the PostgreSQL docs, 0.997 against 0.86 on Django's big pages) at
the same precision and navigation leaked, for a tenth of its CPU; resiliparse's own
main-content heuristics cost twice as much and let the PostgreSQL docs' navigation through.
On the open web, what the list does not name (comment threads, "related" blocks) stays in.
trafilatura, lxml and lxml_html_clean are no dependencies any more.

Resource handling: lexbor's tree builder is quadratic on runs of formatting elements (4,096
distinct ``<b id=N>x<p>`` take ~8.5 s) and, in some builds, on deep nesting (selectolax's:
50,000 nested ``<div>`` take 9 s; resiliparse 2.0's: 0.02 s); the helper's time limit bounds
that, and a page estimated too deep (`too_deep`) gets its visible text. That fallback first
flattens the page in one linear regex scan (`visible_text`): invisible elements (script,
style, template, ...) go with their content, block tags become line breaks, other tags go;
lexbor then only decodes the character references of a tree one level deep.

Output: runs of whitespace become one space, each block's text is a line, no empty lines, no
NUL (PostgreSQL's text type refuses it).
"""

from __future__ import annotations

import re
from functools import cache
from itertools import accumulate

from resiliparse.extract.html2text import extract_plain_text

# Not extract.html: a helper process needs these pieces only (and their imports, not its).
from ..extract.charset import decode_html
from ..extract.names import NAME_END, TAG_ATTRS, TAG_NAME, element_pattern

# The scan follows the HTML tokenizer as crawler/extract/flatten.py does, with its pieces
# (possessive repeats keep it linear).
# Not rendered, or not text: raw text and RCDATA elements, and <template> (nested templates
# end at the first </template>; what follows it is then kept as text, a rare, harmless error).
_HIDDEN = (
    "script", "style", "noscript", "template", "title", "textarea", "xmp", "iframe",
    "noembed", "noframes", "svg", "math", "select",
)  # fmt: skip
# Tags that start a new line in a browser.
_BLOCKS = (
    "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "dialog",
    "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3",
    "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section",
    "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul", "legend", "menu",
    "center", "body", "option",
)  # fmt: skip


@cache
def _markup() -> re.Pattern[str]:
    """What visible_text drops (re.split on it gives [text, block-or-None, text, ...]: group 1
    is a block tag, a line break). Compiled on first use: the fallback is rare, and compiling
    takes 14 ms of every helper's start."""
    return re.compile(
        r"<(?:"
        r"!--(?:-?>|[^-]*+(?:-(?!-!?>)[^-]*+)*+(?:--!?>)?)"
        r"|(?:!|\?|/(?![a-z]))[^>]*+>?"
        rf"|{'|'.join(element_pattern(name) for name in _HIDDEN)}"
        rf"|(/?(?:{'|'.join(_BLOCKS)}){NAME_END}{TAG_ATTRS})"
        rf"|/?{TAG_NAME}{TAG_ATTRS})",
        re.IGNORECASE | re.ASCII,
    )


_SPACES = re.compile(r"\s+")
# What is not main content, by name: navigation, banners, sidebars, footers, menus, dialogs. Left
# out of the page's text (with resiliparse's own list: script, style, hidden elements, ...).
# resiliparse's main-content heuristics (main_content=True) cost 4-5 times the extraction
# itself and kept DocBook's navigation tables on 99.8% of the PostgreSQL pages; this list
# scores better on every corpus of bench/text.py at half the CPU (bench/README.md).
BOILERPLATE = [
    "nav", "header", "footer", "aside", "dialog", "[role=navigation]", "[role=banner]",
    "[role=contentinfo]", "[role=search]", "[role=complementary]", "[role=dialog]",
    '[aria-hidden="true"]', '[class^="nav"]', '[id^="nav"]', '[class$="nav"]', '[id$="nav"]',
    '[class*="sidebar"]', '[id*="sidebar"]', '[class*="breadcrumb"]', '[class*="menu"]',
    '[id*="menu"]', '[class*="footer"]', '[id*="footer"]', '[class*="header"]', '[id*="header"]',
]  # fmt: skip
# The nesting a page can reach, estimated in one linear scan: +1 for each start tag, -1 for each
# end tag (never below 0: an end tag with nothing open closes nothing), not counting void
# elements, elements whose end tag may be left out, or self-closed tags. Some lexbor builds take
# seconds past a few thousand levels (quadratic; pyproject.toml allows resiliparse versions
# older than the one measured), so a page estimated deeper than MAX_DEPTH gets its visible text
# instead (a flat tree); real pages nest a few dozen deep.
MAX_DEPTH = 1_000
_UNCOUNTED = (
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
    "source", "track", "wbr", "p", "li", "dt", "dd", "tr", "td", "th", "thead", "tbody",
    "tfoot", "colgroup", "caption", "option", "optgroup", "rb", "rt", "rtc", "rp",
)  # fmt: skip
_COUNTED_TAG = re.compile(
    rf"<(/?)(?!(?:{'|'.join(_UNCOUNTED)}){NAME_END})[a-z][^>]*+(?<!/)>", re.IGNORECASE | re.ASCII
)
# The cheap bound before it counts characters, a chunk at a time (str.count, no match objects):
# every "<" not followed by "/" may start a tag, every "</" ends one. Less than half the CPU of
# finding the tags themselves (on Django's docs 0.12 against 0.29 ms a page, best of 8).
_CHUNK = 4_096
_STEP = {"": 1, "/": -1}.__getitem__


def main_text(html: str) -> str | None:
    """The page's text without its BOILERPLATE (resiliparse), one line per block; no
    comments, link targets, alt texts, form fields or list bullets (as trafilatura gave)."""
    return extract_plain_text(
        html, main_content=False, preserve_formatting=True, list_bullets=False, alt_texts=False,
        links=False, form_fields=False, noscript=False, comments=False, skip_elements=BOILERPLATE,
    )  # fmt: skip


def page_text(body: bytes, charset: str | None, url: str | None = None) -> str | None:
    """The page's main text (resiliparse), else its visible text, else None.

    `charset` is the Content-Type header's charset; `url`, the page's URL, is not used (the
    text shows no links). Never raises."""
    try:
        html = decode_html(body, charset)
    except Exception:  # decode_html does not raise; nothing may escape from here, though
        return None
    try:
        main = None if too_deep(html) else main_text(html)
    except Exception:  # resiliparse's errors on odd input (a parse that failed): fall back
        main = None
    text = normalize(main) if main else None
    if text:
        return text
    try:
        return visible_text(html)
    except Exception:
        return None


def nesting(html: str) -> int:
    """How deep the page's elements nest, estimated (see MAX_DEPTH): linear."""
    steps = map(_STEP, _COUNTED_TAG.findall(html))
    return max(accumulate(steps, _deeper, initial=0))


def _deeper(depth: int, step: int) -> int:
    return max(depth + step, 0)


def nesting_bound(html: str) -> int:
    """An upper bound of `nesting` when every "</" ends a counted element: per chunk, the depth
    at its start plus its "<"s that may start a tag; then its end tags, before those starts
    (the order that leaves the most open)."""
    depth = deepest = 0
    for start in range(0, len(html), _CHUNK):
        end = start + _CHUNK
        ends = html.count("</", start, end)
        starts = html.count("<", start, end) - ends
        deepest = max(deepest, depth + starts)
        depth = max(depth - ends, 0) + starts
    return deepest


def too_deep(html: str) -> bool:
    """Whether the page nests deeper than MAX_DEPTH (`nesting`), its cheap bound checked first."""
    return nesting_bound(html) > MAX_DEPTH and nesting(html) > MAX_DEPTH


def visible_text(html: str) -> str | None:
    """The text a browser would show for the whole page, one line per block, or None."""
    # The source's own line breaks are layout: spaces first, then a line break for each block
    # tag. re.split gives text runs at even indices and block tags (or None) at odd ones.
    pieces = _markup().split(_SPACES.sub(" ", html))
    flat = "".join(
        piece if i % 2 == 0 else ("\n" if piece else "") for i, piece in enumerate(pieces)
    )
    # Left is text only; a "<" in it (a stray one, or "<" + "b" after a dropped tag) must not
    # open a tag. lexbor decodes the character references (imported here: 17 ms of a helper's
    # start for a rare fallback).
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(flat.replace("<", "&lt;"))
    return normalize(tree.body.text()) if tree.body is not None else None


def normalize(text: str) -> str | None:
    """Spaces collapsed, one line per paragraph, no empty lines, no NUL; None if empty."""
    lines = map(" ".join, map(str.split, text.replace("\0", "").splitlines()))
    return "\n".join(filter(None, lines)) or None  # maps, no generator: 35% less CPU
