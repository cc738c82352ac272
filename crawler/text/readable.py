"""A page's readable text for `pages.text`: body bytes in, plain text (or None) out.

The main content where it can be told apart from navigation and boilerplate (trafilatura),
else the page's visible text (selectolax). Pure and synchronous: no I/O, no state, and nothing
escapes on any input. It runs in helper processes (crawler/text/pool.py), which give each call
a time limit and kill a process that overruns it.

Why trafilatura: on 1,169 PostgreSQL doc pages and 19 MkDocs pages, measured against each page's
known main element (bench/text.py), it keeps 93-98% of the main text's words at 99.7-100%
precision and lets the navigation through on 1% of pages, where the whole body's visible text
has 83-92% precision and leaks it on every page; `fast=True` (no readability/jusText fallbacks)
scored the same as the default at ~20% less CPU (3.5 ms vs 4.3 ms median), so it is used.
`favor_recall` gained half a point of recall on the PostgreSQL pages only, and is off: it
trades precision for recall on the open web, which the bench cannot measure.

Resource handling: lxml (under trafilatura) stops nesting at depth 255, so deep pages cost it
little. lexbor's tree builder is quadratic on deep nesting (50,000 nested ``<div>`` take ~5 s)
and on runs of formatting elements (see crawler/parse.py), so the fallback first flattens the
page in one linear regex scan (`_flatten`): invisible elements (script, style, template, ...)
go with their content, block tags become line breaks, other tags go; lexbor then only decodes
the character references of a tree one level deep.

Output: runs of whitespace become one space, each block's text is a line, no empty lines, no
NUL (PostgreSQL's text type refuses it).
"""

from __future__ import annotations

import logging
import re

import trafilatura
from selectolax.lexbor import LexborHTMLParser

from ..extract.html import NAME_END, TAG_ATTRS, decode_html, element_pattern

# trafilatura logs per-page input conditions at WARNING and ERROR ("discarding data",
# "empty HTML tree", "parsed tree length: ... not valid HTML"), i.e. on every tiny or non-HTML
# page; page_text falls back on all of them anyway, so those records are noise here.
logging.getLogger("trafilatura").setLevel(logging.CRITICAL)

# The scan follows the HTML tokenizer as crawler/parse.py's `_flatten` does, with its pieces
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
# re.split on this gives [text, block-or-None, text, ...]: group 1 is a block tag (a line
# break), anything else that matches is dropped.
_MARKUP = re.compile(
    r"<(?:"
    r"!--(?:-?>|[^-]*+(?:-(?!-!?>)[^-]*+)*+(?:--!?>)?)"
    r"|(?:!|\?|/(?![a-z]))[^>]*+>?"
    rf"|{'|'.join(element_pattern(name) for name in _HIDDEN)}"
    rf"|(/?(?:{'|'.join(_BLOCKS)}){NAME_END}{TAG_ATTRS})"
    rf"|/?[a-z]{TAG_ATTRS})",
    re.IGNORECASE | re.ASCII,
)
_SPACES = re.compile(r"\s+")


def main_text(
    html: str, url: str | None = None, *, fast: bool = True, favor_recall: bool = False
) -> str | None:
    """trafilatura's main content as plain text, tables kept; no comments, links, images or
    metadata. `fast`: its own pass only (as good as with its fallbacks on bench/text.py, ~20%
    less CPU)."""
    return trafilatura.extract(
        html, url=url, fast=fast, favor_recall=favor_recall, output_format="txt",
        include_comments=False, include_tables=True, include_links=False, include_images=False,
        include_formatting=False, with_metadata=False,
    )  # fmt: skip


def page_text(body: bytes, charset: str | None, url: str | None = None) -> str | None:
    """The page's main text (trafilatura), else its visible text, else None.

    `charset` is the Content-Type header's charset, `url` the page's URL (trafilatura uses it
    only to resolve links, which the text does not show). Never raises."""
    try:
        html = decode_html(body, charset)
    except Exception:  # decode_html does not raise; nothing may escape from here, though
        return None
    try:
        main = main_text(html, url)
    except Exception:  # lxml and trafilatura errors on odd input: fall back
        main = None
    text = normalize(main) if main else None
    if text:
        return text
    try:
        return visible_text(html)
    except Exception:
        return None


def visible_text(html: str) -> str | None:
    """The text a browser would show for the whole page, one line per block, or None."""
    # The source's own line breaks are layout: spaces first, then a line break for each block
    # tag. re.split gives text runs at even indices and block tags (or None) at odd ones.
    pieces = _MARKUP.split(_SPACES.sub(" ", html))
    flat = "".join(
        piece if i % 2 == 0 else ("\n" if piece else "") for i, piece in enumerate(pieces)
    )
    # Left is text only; a "<" in it (a stray one, or "<" + "b" after a dropped tag) must not
    # open a tag. lexbor decodes the character references.
    tree = LexborHTMLParser(flat.replace("<", "&lt;"))
    return normalize(tree.body.text()) if tree.body is not None else None


def normalize(text: str) -> str | None:
    """Spaces collapsed, one line per paragraph, no empty lines, no NUL; None if empty."""
    lines = (_SPACES.sub(" ", line).strip() for line in text.replace("\0", "").splitlines())
    return "\n".join(line for line in lines if line) or None
