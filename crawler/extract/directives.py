"""Page-level robots directives: `<meta name="robots">` (or our token's) and `X-Robots-Tag`.

Two readings of the same values: `PageRules`, what the crawler obeys (noindex, nofollow), and
`directive_list`, every directive as found (lower-cased, each once), which `pages.robots`
keeps for the report. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

_WS_RUN = re.compile(r"[\t\n\f\r ]+")
_DIRECTIVE_SEP = re.compile(r"[\t\n\f\r ,]+")
_AGENT = re.compile(r"[a-z0-9_.-]+")
_COLON_DIRECTIVES = frozenset(
    {"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"}
)
MAX_DIRECTIVES = 32  # kept per page: a header repeated 10,000 times is still one short line
MAX_DIRECTIVE = 100  # characters of one directive kept


@dataclass(frozen=True, slots=True)
class PageRules:
    """Page-level robots rules (meta robots, X-Robots-Tag)."""

    nofollow: bool = False
    noindex: bool = False


def parse_robots_directives(value: str) -> PageRules:
    """Parse an X-Robots-Tag header value or a meta robots content value into rules.
    Comma-separated directives, case-insensitive, whitespace tolerant. An X-Robots-Tag value may
    be prefixed by a user agent name ("googlebot: noindex"); the caller handles the agent prefix via
    `header_rules` below."""
    tokens = set(_DIRECTIVE_SEP.split(value.lower()))
    none = "none" in tokens
    return PageRules(nofollow=none or "nofollow" in tokens, noindex=none or "noindex" in tokens)


def _header_parts(values: Iterable[str], robots_token: str) -> Iterator[str]:
    """The comma-separated parts of X-Robots-Tag values that apply to us, agent prefix removed.

    An agent prefix scopes the directives after it up to the next prefix, so values that a proxy
    joined with commas ("noindex, otherbot: nofollow") still mean what they said."""
    token = robots_token.lower()
    for value in values:
        applies = True
        for part in value.split(","):
            agent, colon, rest = part.partition(":")
            agent = agent.strip().lower()
            if colon and _AGENT.fullmatch(agent) and agent not in _COLON_DIRECTIVES:
                applies, part = agent == token, rest
            if applies:
                yield part


def header_rules(values: list[str], robots_token: str) -> PageRules:
    """Rules from all X-Robots-Tag header values: a value with no agent prefix applies to everyone,
    a value prefixed "<token>:" applies only if token == robots_token (case-insensitive); other
    agents' values are ignored. Combine with OR."""
    rules = PageRules()
    for part in _header_parts(values, robots_token):
        rules = merge_rules(rules, parse_robots_directives(part))
    return rules


def merge_rules(a: PageRules, b: PageRules) -> PageRules:
    """Rules of both: each directive applies if either says so."""
    return PageRules(nofollow=a.nofollow or b.nofollow, noindex=a.noindex or b.noindex)


def _directives(part: str) -> list[str]:
    """The directives of one comma-separated part, lower-cased, whitespace collapsed. A part
    without a colon and with spaces is a space-separated list ("noindex nofollow"), as
    parse_robots_directives reads it; one with a colon is one ("max-snippet: 20")."""
    text = _WS_RUN.sub(" ", part[: MAX_DIRECTIVE * 4]).strip(" ").lower()
    words = text.split(" ") if ":" not in text else [text]
    return [word[:MAX_DIRECTIVE] for word in words if word]


def directive_list(meta: Iterable[str], header: Iterable[str], robots_token: str) -> str | None:
    """`pages.robots`: the directives of the meta robots contents, then of the X-Robots-Tag
    values that apply to us, each once, joined with ", "; None when there are none."""
    found: dict[str, None] = {}
    parts = [*(p for value in meta for p in value.split(",")), *_header_parts(header, robots_token)]
    for part in parts:
        for directive in _directives(part):
            if len(found) >= MAX_DIRECTIVES:
                break
            found[directive] = None
    return ", ".join(found) or None
