"""The `[fields]` of the config: CSS selectors read into `Field`s, checked without a page, and
evaluated on the tree `html.parse_html` builds for links (pure, no I/O).

A field is `name = "CSS selector"` with an optional ` @attr` (an attribute instead of the text)
and an optional ` []` (every match, a list, instead of the first). Values:

- text: the match's text, whitespace collapsed; `@attr`: the attribute as written (`page.py`
  makes `href` and `src` absolute against the page's base, as links are);
- single form: the first match's value, None when nothing matches (or the first match lacks the
  attribute); list form: every match's value in document order, [] when nothing matches
  (matches without the attribute are left out);
- bounded: at most MAX_VALUE characters a value and MAX_ITEMS values a list.

Resource handling: selectors need the page's real structure, which the link walk's flattened
tree drops (see html.py). lexbor's tree construction is quadratic on deep nesting and on runs
of unclosed formatting elements, so `tangled` estimates, in one linear scan, how many elements
a page leaves open; past MAX_OPEN the page is parsed flat as without fields, and its fields
are all None (logged by the caller). So is a page of more distinct tag and attribute names
than names.MAX_NAMES (lexbor's cost grows faster than their number).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from itertools import islice
from operator import itemgetter

from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError
from yarl import URL

from ..urls import normalize
from .names import NameCount, scan_tags

__all__ = [
    "MAX_ITEMS",
    "MAX_OPEN",
    "MAX_VALUE",
    "Field",
    "FieldValue",
    "evaluate",
    "fields_json",
    "parse_field",
    "tangled",
]

MAX_VALUE = 10_000  # characters of one value
MAX_ITEMS = 1_000  # values of one list field
MAX_OPEN = 200  # elements a page may leave open before it is too tangled to build whole
TAGS_PER_BATCH = 1_024  # tags whose names `tangled` counts at once
# Formatting elements left open are cloned by lexbor into every block that follows (the HTML
# spec's "reconstruct the active formatting elements"): N of them before M paragraphs build
# N x M elements. A few are common (an unclosed <b>); more than this many is a trap.
MAX_FORMATTING = 16

FieldValue = str | list[str] | None

_WS_RUN = re.compile(r"[\t\n\f\r ]+")
# "selector", then " @attr", then " []"; the selector itself is lexbor's to judge.
_FIELD = re.compile(
    r"[\t\n\f\r ]*(?P<css>.*?)(?:[\t\n\f\r ]+@(?P<attr>[^\t\n\f\r @\[\]]+))?"
    r"(?P<many>[\t\n\f\r ]+\[\])?[\t\n\f\r ]*",
    re.DOTALL,
)
_PROBE = LexborHTMLParser("<p>x</p>")  # a tiny document to try each selector on


@dataclass(frozen=True, slots=True)
class Field:
    """One `[fields]` entry: what to select on each page and what of it to keep."""

    name: str
    css: str
    attr: str | None = None  # None: the text
    many: bool = False  # every match, a list


def parse_field(name: str, spec: str) -> Field:
    """Read one `[fields]` value; ValueError (its message says what is wrong) if the selector
    does not parse."""
    match = _FIELD.fullmatch(spec)
    css = match["css"] if match is not None else ""
    if match is None or not css:
        raise ValueError(f"expected a CSS selector, got {spec!r}")
    try:
        _PROBE.css(css)
    except SelectolaxError:
        raise ValueError(f"{css!r} is not a CSS selector lexbor can parse") from None
    attr = match["attr"].lower() if match["attr"] else None  # HTML attribute names are
    return Field(name, css, attr, match["many"] is not None)


def evaluate(tree: LexborHTMLParser, fields: tuple[Field, ...]) -> dict[str, FieldValue]:
    """Each field's value on a parsed page, by name, in the config's order."""
    values: dict[str, FieldValue] = {}
    for f in fields:
        if f.many:
            values[f.name] = _all(tree, f)
        else:
            node = tree.css_first(f.css)
            values[f.name] = None if node is None else _value(node, f.attr)
    return values


def fields_json(fields: tuple[Field, ...], values: dict[str, FieldValue], base: URL) -> str:
    """The `pages.fields` column: a JSON object of the values by name, `href` and `src`
    values resolved against the page's base and normalized as links are (one that is no
    http(s) URL, such as mailto: or data:, stays as found)."""
    stored = {
        f.name: _absolute(values[f.name], base) if f.attr in _URL_ATTRS else values[f.name]
        for f in fields
    }
    return json.dumps(stored, ensure_ascii=False, separators=(",", ":"))


_URL_ATTRS = frozenset({"href", "src"})


def _absolute(value: FieldValue, base: URL) -> FieldValue:
    if isinstance(value, list):
        return [_url(v, base) for v in value]
    return None if value is None else _url(value, base)


def _url(href: str, base: URL) -> str:
    url = normalize(href, base) if href.strip() else None
    return href if url is None else str(url)


def _all(tree: LexborHTMLParser, f: Field) -> list[str]:
    found: list[str] = []
    for node in tree.css(f.css):
        value = _value(node, f.attr)
        if value is not None:
            found.append(value)
            if len(found) == MAX_ITEMS:
                break
    return found


def _value(node: LexborNode, attr: str | None) -> str | None:
    if attr is None:
        return _collapsed(node.text())
    value = node.attributes.get(attr)
    return None if value is None else value[:MAX_VALUE]


def _collapsed(text: str) -> str:
    """Whitespace runs as one space, stripped, at most MAX_VALUE characters (of the first
    8 x MAX_VALUE read: a hostile megabyte of text costs no more)."""
    return _WS_RUN.sub(" ", text[: MAX_VALUE * 8]).strip(" ")[:MAX_VALUE].rstrip(" ")


# Elements that never stay open (void), or that the next sibling closes (optional end tags):
# they build no depth, so they are not counted.
_NOT_COUNTED = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
    "source", "track", "wbr", "keygen",
    "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "rb", "rt", "rtc", "rp",
    "thead", "tbody", "tfoot", "colgroup", "caption", "html", "head", "body",
})  # fmt: skip
_FORMATTING = frozenset({
    "a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong", "tt", "u",
})  # fmt: skip
# In SVG and MathML, these start tags leave foreign content: an HTML element, "/>" or not
# (the formatting ones among the spec's breakout tags; <a> stays foreign).
_BREAKOUT = _FORMATTING - {"a"}
# ... nor are raw text elements, closed within their token.
_RAW = {"script", "style", "textarea", "xmp", "iframe", "noembed", "noframes", "title"}
_SKIPPED = _NOT_COUNTED | _RAW


def tangled(text: str) -> bool:
    """Whether a page leaves more than MAX_OPEN elements, or more than MAX_FORMATTING
    formatting elements, open at some point, counting per element name, in document order (a
    linear estimate of lexbor's stack and list of active formatting elements: deep nesting and
    unclosed `<b>`s both count); or has more names than lexbor reads in linear time
    (names.NameCount, a batch of TAGS_PER_BATCH tags at a time)."""
    open_now: dict[str, int] = {}
    total = formatting = 0
    names = NameCount()
    tags = scan_tags(text)
    while batch := list(islice(tags, TAGS_PER_BATCH)):
        if names.over(map(itemgetter(0), batch), [attributes for _, attributes in batch]):
            return True
        for tag, attributes in batch:
            end = tag[0] == "/"
            name = (tag[1:] if end else tag).lower()
            if name in _SKIPPED or (
                attributes.endswith("/>") and name not in _BREAKOUT and _foreign(open_now)
            ):
                continue  # "/>" closes an element in SVG and MathML only
            counted = 1 if name in _FORMATTING else 0
            if end:
                if open_now.get(name):
                    open_now[name] -= 1
                    total -= 1
                    formatting -= counted
            else:
                open_now[name] = open_now.get(name, 0) + 1
                total += 1
                formatting += counted
                if total > MAX_OPEN or formatting > MAX_FORMATTING:
                    return True
    return names.done()


def _foreign(open_now: dict[str, int]) -> bool:
    """Whether the scan is inside <svg> or <math>, where "/>" closes what it opens."""
    return bool(open_now.get("svg") or open_now.get("math"))
