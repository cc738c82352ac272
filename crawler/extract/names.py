"""The names a page gives lexbor: counted, bounded, and the HTML tokenizer's pieces of a tag
that read them (pure, no I/O).

lexbor checks each attribute of an element against the element's others, and interns every
tag and attribute name of a document in a table whose cost grows faster than their number: one
``<a>`` of 8,000 distinct attributes takes 130 ms to parse, of 80,000 14 s; 20,000 distinct
attribute names over many tags ~55 ms, 100,000 ~1.2 s, 200,000 ~10 s (distinct end tag names
alike). flatten.py's pre-pass keeps a few tag names but their attributes as written, and a
`[fields]` page goes to lexbor whole: each keeps one tree under MAX_ATTRIBUTES an element and
MAX_NAMES in all (docs/hostile-input.md).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator

__all__ = [
    "MAX_ATTRIBUTES",
    "MAX_NAMES",
    "NAME_END",
    "TAG_ATTRS",
    "TAG_NAME",
    "NameCount",
    "SpanNames",
    "element_pattern",
    "scan_tags",
    "trimmed",
]

# The HTML tokenizer's tag, from after its name (re.ASCII): an attribute name starts with any
# character but whitespace, "/" or ">" ("=" too) and runs to whitespace, "/", ">" or "="; a
# quote opens a value only after "="; an unclosed quote runs to the end. Possessive repeats
# keep each scan linear.
_WS = r"[\t\n\f\r ]"
NAME_END = r"(?![^\t\n\f\r />])"
_ATTR_NAME = r"[^\t\n\f\r />][^\t\n\f\r />=]*+"
_ATTR_VALUE = rf"""(?:{_WS}*+={_WS}*+(?:"[^"]*+"?|'[^']*+'?|[^\t\n\f\r >]*+))?"""
_ATTRS_BODY = rf"(?:{_WS}|/|{_ATTR_NAME}{_ATTR_VALUE})*+"
TAG_ATTRS = rf"{_ATTRS_BODY}>?"
# A tag's name, from its letter to whitespace, "/" or ">" ("=" and quotes too are in it): what
# follows is TAG_ATTRS. (Read as TAG_ATTRS from its second letter, `<div ="x>` took "=" for the
# start of a value, where the tokenizer starts an attribute named `="x` and ends the tag at ">".)
TAG_NAME = r"[a-z][^\t\n\f\r />]*+"


def element_pattern(name: str) -> str:
    """Pattern for a raw text or RCDATA element, from its name to its end tag or the end."""
    end = rf"</{name}{NAME_END}{TAG_ATTRS}"
    return rf"{name}{NAME_END}{TAG_ATTRS}[^<]*+(?:<(?!/{name}{NAME_END})[^<]*+)*+(?:{end})?"


MAX_NAMES = 40_000  # distinct names in one tree (as a bound): ~150 ms of lexbor at most
# attributes of one element: lexbor checks each against the others (8,000 take 130 ms)
MAX_ATTRIBUTES = 1_024
# What follows a tag's name up to its ">"; one attribute with what precedes it (group 1: its
# name, which starts where the attribute does).
_ATTRIBUTES = re.compile(_ATTRS_BODY, re.ASCII)
_NAMES = re.compile(rf"[\t\n\f\r /]*+({_ATTR_NAME}){_ATTR_VALUE}", re.ASCII)
_HEAD = re.compile(r"/?[^\t\n\f\r />]+")  # "/"? and a tag's name (it starts with a letter)
_TITLE_END = re.compile(rf"</title{NAME_END}", re.IGNORECASE | re.ASCII)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def trimmed(span: str, keep: frozenset[str]) -> str:
    """A tag less its "<" (or a <title> element: its start tag, text and end tag), as lexbor
    would read it, with the attributes named in `keep` only (lower-case), each its first time
    (the tokenizer drops a repeat), and none on an end tag (the tree builder ignores them).
    "<" included; " " for a tag the text ends in (the tokenizer emits no such tag)."""
    head = _HEAD.match(span)
    start = head.end() if head is not None else 0
    end = _end(span, start)
    if end == len(span):
        return " "
    kept = ["<", span[:start]]
    if span[:1] != "/":
        seen: set[str] = set()
        for attribute in _NAMES.finditer(span, start, end):
            name = attribute[1].translate(_ASCII_LOWER)
            if name in keep and name not in seen:
                seen.add(name)
                kept.append(" " + span[attribute.start(1) : attribute.end()])
    kept.append(">")
    rest = span[end + 1 :]
    if rest:  # a <title>'s text and end tag
        close = _TITLE_END.search(rest)
        if close is None or close.end() == len(rest):  # "</title" and the end is text
            kept.append(rest)
        else:
            kept.append(rest[: close.start()])
            if _end(rest, close.end()) < len(rest):
                kept.append("</title>")
    return "".join(kept)


def _end(tag: str, start: int) -> int:
    """Where the tag whose attributes start at `start` ends: its ">", or the text's end."""
    attributes = _ATTRIBUTES.match(tag, start)
    return start if attributes is None else attributes.end()


# Comments, bogus comments, raw text elements (groups 1-4: the start tag's name and what
# follows it, the end tag's, which names the same element), <plaintext>, and every other tag
# (groups 5-6), as flatten.token_pattern reads them. Compiled on first use: only [fields] needs it.
@functools.cache
def _scan() -> re.Pattern[str]:
    raw = "script|style|textarea|xmp|iframe|noembed|noframes|title"
    return re.compile(
        r"<(?:"
        r"!--(?:-?>|[^-]*+(?:-(?!-!?>)[^-]*+)*+(?:--!?>)?)"
        r"|(?:!|\?|/(?![a-z]))[^>]*+>?"
        rf"|((?:{raw}){NAME_END})({TAG_ATTRS})"
        rf"[^<]*+(?:<(?!/\1{NAME_END})[^<]*+)*+(?:</(\1{NAME_END})({TAG_ATTRS}))?"
        rf"|plaintext{NAME_END}[\s\S]*"
        rf"|(/?{TAG_NAME})({TAG_ATTRS}))",
        re.IGNORECASE | re.ASCII,
    )


class SpanNames:
    """Whether the kept spans of one tree (flatten.py's pre-pass) may go to lexbor as written.
    Each attribute takes two characters at least, so a text's length bounds them for free,
    up to half MAX_NAMES; past that, the distinct names of each step's spans are counted (as
    written: an upper bound), up to the rest."""

    def __init__(self) -> None:
        self.free = MAX_NAMES // 2  # attributes, bounded by length
        self.counted = MAX_NAMES - self.free  # distinct names, past the free bound
        self.names: set[str] = set()

    def fit(self, text: str, spans: Iterable[str | None]) -> bool:
        """Whether the kept `spans` (of `text`, a step or a span) fit as written."""
        if len(text) // 2 <= self.free:  # the step's length: free
            self.free -= len(text) // 2
            return True
        kept = [span for span in spans if span]
        bound = sum(map(len, kept)) // 2  # the kept spans' length: closer, still cheap
        if bound <= self.free:
            self.free -= bound
            return True
        self.free = -1  # count from here on
        if len(self.names) > self.counted:
            return False
        tags: list[str] = []
        for span in kept:
            if span[0] in "tT" and span[:5].lower() == "title":
                # its text could hide its end tag's attributes from the scan below
                self.names.update(_title_names(span))
            else:
                tags.append(span)
        # The separator ends a quoted value a span ends in, so none runs into the next span.
        self.names.update(_NAMES.findall("\"'>".join(tags)))
        return len(self.names) <= self.counted


def _title_names(span: str) -> list[str]:
    """The attribute names of a <title> element's start and end tags ("title" less its "<"
    first), which its text does not hide here."""
    end = _end(span, 5)
    names: list[str] = _NAMES.findall(span, 5, end)
    close = _TITLE_END.search(span, end)
    if close is not None:
        names += _NAMES.findall(span, close.end(), _end(span, close.end()))
    return names


def scan_tags(html: str) -> Iterator[tuple[str, str]]:
    """Each tag of `html` as the tokenizer reads it, those that open and close raw text
    elements included: ("/"? and its name as written, what follows the name to its ">")."""
    for match in _scan().finditer(html):
        raw_start, raw_attributes, raw_end, raw_end_attributes, name, attributes = match.groups()
        if name is not None:
            yield name, attributes
        elif raw_start is not None:
            yield raw_start, raw_attributes
            if raw_end is not None:
                yield "/" + raw_end, raw_end_attributes


class NameCount:
    """The distinct tag and attribute names of a page, a batch of tags at a time (`scan_tags`):
    whether they are more than MAX_NAMES, or one tag has more than MAX_ATTRIBUTES attributes.
    Names are counted as written (an upper bound: lexbor lower-cases them), and attributes only
    once their text is long enough to hold too many (each takes two characters at least)."""

    def __init__(self) -> None:
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.pending: list[str] = []  # the attributes of tags not counted yet
        self.size = 0  # their length

    def over(self, tags: Iterable[str], attributes: list[str]) -> bool:
        """Count a batch of tags (their names, and what follows each name); whether the page is
        now past a bound. In C but for the tags long enough to hold too many attributes."""
        self.tags.update(tags)
        sizes = list(map(len, attributes))
        if max(sizes, default=0) > 2 * MAX_ATTRIBUTES and any(
            size > 2 * MAX_ATTRIBUTES and _count(text) > MAX_ATTRIBUTES
            for size, text in zip(sizes, attributes, strict=True)
        ):
            return True
        self.pending += attributes
        self.size += sum(sizes)
        return self.size > 2 * MAX_NAMES and self.done()

    def done(self) -> bool:
        """Whether the page is past a bound, counting the attributes not counted yet when
        their length leaves it open."""
        if self._bound() > MAX_NAMES:
            self.attributes.update(_NAMES.findall("".join(self.pending)))
            self.pending.clear()
            self.size = 0
        return self._bound() > MAX_NAMES

    def _bound(self) -> int:
        return len(self.tags) + len(self.attributes) + self.size // 2


def _count(attributes: str) -> int:
    return len(_NAMES.findall(attributes))
