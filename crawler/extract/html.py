"""Pure HTML extraction: body bytes in, title, base href, links and robots rules out.

No I/O. The crawler's hot path, so the tree is walked once, and kept small (below).

Resource handling: lexbor's tree builder follows the HTML spec, and the spec is quadratic on
deep nesting (100,000 nested ``<div>`` take ~50 s) and on runs of distinct formatting elements
(``<b id=1>x<p><b id=2>x<p>...`` clones O(n²) nodes: 4,096 tags take ~2.5 s). So `parse_html`
first drops, in one linear regex scan, everything it does not read (`_flatten`); the tree
lexbor then builds is a few levels deep whatever the input.

Error handling: nothing here raises on any input; bad bytes are replaced, unknown charsets fall
back to UTF-8, broken markup is whatever lexbor's error recovery makes of it.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from selectolax.lexbor import LexborHTMLParser

# One ``a[href]`` or ``area[href]``: (href, rel=nofollow); href stripped, not yet resolved.
# A plain tuple, not a class: a page parsed in another process can carry 100,000 of them back,
# and tuples of str and bool unpickle in C (a NamedTuple's constructor took 0.3 s for those).
Link = tuple[str, bool]


@dataclass(frozen=True, slots=True)
class PageRules:
    """Page-level robots rules (meta robots, X-Robots-Tag)."""

    nofollow: bool = False
    noindex: bool = False


@dataclass(frozen=True, slots=True)
class ParsedPage:
    """What the crawler keeps from one HTML page."""

    title: str | None
    base_href: str | None
    links: list[Link]
    rules: PageRules


_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# WHATWG Encoding: browsers decode these labels as windows-1252 and UTF-16LE.
_ALIASES = {"ascii": "cp1252", "iso8859-1": "cp1252", "utf-16": "utf-16-le"}
# Python codecs that are no web charset (WHATWG bans UTF-7: it smuggles markup past filters).
_UNFIT = frozenset({"utf-7", "idna", "punycode", "unicode-escape", "raw-unicode-escape"})
_META_CHARSET = re.compile(rb"""<meta\b[^>]*?charset[\t\n\f\r ]*=[\t\n\f\r "']*([\w.:-]+)""", re.I)

_HTML_WS = "\t\n\f\r "
_WS_RUN = re.compile(r"[\t\n\f\r ]+")
_DIRECTIVE_SEP = re.compile(r"[\t\n\f\r ,]+")
_AGENT = re.compile(r"[a-z0-9_.-]+")
_COLON_DIRECTIVES = frozenset(
    {"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"}
)

# _flatten keeps only the tags we read and the <title> element, each span as written, and
# drops the rest: other tags, text, comments, doctypes, raw text elements (<script> etc.) with
# their content. So lexbor is in its data state at the start of every kept span and tokenizes it
# exactly as _TOKEN does, which takes the HTML tokenizer's rules: a tag is "<" + ASCII letter
# (re.ASCII, else "\u017fcript" matches "script"), its name ends at whitespace, "/" or ">", a
# quote opens a value only after "=", and an unclosed quote, comment or raw text element runs to
# the end. Possessive repeats keep the scan linear. findall, not sub: before Python 3.12, sub
# expands a group template in Python for each match, which tripled the cost.
_WS = r"[\t\n\f\r ]"
NAME_END = r"(?![^\t\n\f\r />])"
TAG_ATTRS = (
    rf"(?:{_WS}|/|[^\t\n\f\r />][^\t\n\f\r />=]*+"
    rf"""(?:{_WS}*+={_WS}*+(?:"[^"]*+"?|'[^']*+'?|[^\t\n\f\r >]*+))?)*+>?"""
)


def element_pattern(name: str) -> str:
    """Pattern for a raw text or RCDATA element, from its name to its end tag or the end."""
    end = rf"</{name}{NAME_END}{TAG_ATTRS}"
    return rf"{name}{NAME_END}{TAG_ATTRS}[^<]*+(?:<(?!/{name}{NAME_END})[^<]*+)*+(?:{end})?"


_RAW_TEXT = ("script", "style", "textarea", "xmp", "iframe", "noembed", "noframes")
# Group 1 is a kept span less its "<"; every alternative starts after one literal "<", which
# lets re jump from "<" to "<".
_TOKEN = re.compile(
    r"<(?:"
    rf"(/?(?:a|area|base|meta){NAME_END}{TAG_ATTRS}|{element_pattern('title')})"
    r"|!--(?:-?>|[^-]*+(?:-(?!-!?>)[^-]*+)*+(?:--!?>)?)"
    r"|(?:!|\?|/(?![a-z]))[^>]*+>?"
    rf"|{'|'.join(element_pattern(name) for name in _RAW_TEXT)}"
    rf"|plaintext{NAME_END}[\s\S]*"
    rf"|/?[a-z]{TAG_ATTRS})",
    re.IGNORECASE | re.ASCII,
)


def _flatten(text: str) -> str:
    """The tags parse_html reads and the <title> element, without anything else."""
    kept = [span for span in _TOKEN.findall(text) if span]
    return "<" + "<".join(kept) if kept else ""


def _codec(label: str | None) -> str | None:
    """Python codec name for a charset label, or None if unknown or no web charset."""
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip(_HTML_WS + "\"'")).name
    except (LookupError, ValueError):
        return None
    name = _ALIASES.get(name, name)
    return None if name in _UNFIT else name


def _sniff_meta(head: bytes) -> str | None:
    """Codec named by a <meta> charset in the first bytes of a page."""
    match = _META_CHARSET.search(head)
    name = _codec(match.group(1).decode("ascii")) if match else None
    # WHATWG: a page that could declare UTF-16 in ASCII is not UTF-16.
    return "utf-8" if name is not None and name.startswith("utf-16") else name


def decode_html(body: bytes, header_charset: str | None) -> str:
    """Body bytes to text: BOM first, then the Content-Type charset, then a <meta charset> /
    <meta http-equiv=Content-Type content="...charset=..."> in the first 1024 bytes, else UTF-8;
    an unknown charset name falls back to UTF-8; never raises (errors="replace")."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(name, "replace")
    name = _codec(header_charset) or _sniff_meta(body[:1024]) or "utf-8"
    try:
        return body.decode(name, "replace")
    except LookupError:  # a bytes-to-bytes codec such as "zlib" or "rot13"
        return body.decode("utf-8", "replace")


def parse_robots_directives(value: str) -> PageRules:
    """Parse an X-Robots-Tag header value or a meta robots content value into rules.
    Comma-separated directives, case-insensitive, whitespace tolerant. An X-Robots-Tag value may
    be prefixed by a user agent name ("googlebot: noindex"); the caller handles the agent prefix via
    `header_rules` below."""
    tokens = set(_DIRECTIVE_SEP.split(value.lower()))
    none = "none" in tokens
    return PageRules(nofollow=none or "nofollow" in tokens, noindex=none or "noindex" in tokens)


def header_rules(values: list[str], robots_token: str) -> PageRules:
    """Rules from all X-Robots-Tag header values: a value with no agent prefix applies to everyone,
    a value prefixed "<token>:" applies only if token == robots_token (case-insensitive); other
    agents' values are ignored. Combine with OR.

    An agent prefix scopes the directives after it up to the next prefix, so values that a proxy
    joined with commas ("noindex, otherbot: nofollow") still mean what they said."""
    rules = PageRules()
    for value in values:
        applies = True
        for part in value.split(","):
            agent, colon, rest = part.partition(":")
            agent = agent.strip().lower()
            if colon and _AGENT.fullmatch(agent) and agent not in _COLON_DIRECTIVES:
                applies, part = agent == robots_token.lower(), rest
            if applies:
                rules = merge_rules(rules, parse_robots_directives(part))
    return rules


def merge_rules(a: PageRules, b: PageRules) -> PageRules:
    """Rules of both: each directive applies if either says so."""
    return PageRules(nofollow=a.nofollow or b.nofollow, noindex=a.noindex or b.noindex)


def parse_html(body: bytes, header_charset: str | None, robots_token: str) -> ParsedPage:
    """Parse a page. robots_token is our crawler's product token, lower-cased (e.g. "crawler")."""
    tree = LexborHTMLParser(_flatten(decode_html(body, header_charset)))
    title: str | None = None
    base_href: str | None = None
    # Repeats are dropped here (order kept): a page of 600,000 links to 1,000 places costs
    # 1,000 links downstream, and is cheap to send back from a parsing process.
    links: dict[Link, None] = {}
    rules, names = PageRules(), ("robots", robots_token.lower())
    # One walk over the flattened tree, which holds little more than the elements read here:
    # a CSS query per kind of element cost as much again (each walks the tree too).
    for node in tree.root.traverse() if tree.root is not None else ():
        tag = node.tag
        if tag == "a" or tag == "area":
            attrs = node.attributes  # one dict per node: cheaper than node.attrs.get per attribute
            if "href" in attrs:
                href = (attrs["href"] or "").strip(_HTML_WS)
                links[href, _has_nofollow(attrs.get("rel"))] = None
        elif tag == "meta":
            attrs = node.attributes
            if "content" in attrs and (attrs.get("name") or "").strip(_HTML_WS).lower() in names:
                rules = merge_rules(rules, parse_robots_directives(attrs["content"] or ""))
        elif tag == "title" and title is None:
            title = _WS_RUN.sub(" ", node.text()).strip(" ")
        elif tag == "base" and base_href is None:
            attrs = node.attributes
            if "href" in attrs:
                base_href = (attrs["href"] or "").strip(_HTML_WS)
    return ParsedPage(title=title or None, base_href=base_href, links=list(links), rules=rules)


def _has_nofollow(rel: str | None) -> bool:
    """Whether a rel attribute's token list holds "nofollow"."""
    return rel is not None and "nofollow" in rel.lower().split()
