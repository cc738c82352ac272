"""robots.txt rules per origin (RFC 9309): our own parser, and what a status code means.

The crawler does not use Protego any more, for parsing or matching (it stays installed: the
tests use it as an oracle for wildcards and longest match). Protego lets a line other than
user-agent/allow/disallow (`Unknown: x`, `Crawl-delay: 3`) end a run of user-agent lines, where
RFC 9309 2.1 ignores it, and it scans every rule on each check, milliseconds a URL on a large
file. Matching lives in matcher.py and costs the same whatever the file's size.

Parsing (RFC 9309 2.1, 2.2.1): lines `key: value`, keys case-insensitive, `#` starts a comment.
A group is one or more user-agent lines and the rules after them; only allow and disallow
lines end a run of user-agent lines (a user-agent line after a rule starts a new group), so
comments, blank lines, unknown keys, `Sitemap` and `Crawl-delay` between user-agent lines leave
them in one group. Rules before any user-agent line are ignored. Our group is every group that
names our product token (the whole token, case-insensitive: "crawl" is not "crawler"), merged;
if there is none, every `*` group, merged; if none either, no rules. An empty `Disallow:` is no
rule. `Crawl-delay`: the largest valid value (a finite number >= 0) among our groups' lines.
`Sitemap`: every absolute http(s) URL, whatever group it is in, in file order, once each.

Leniencies, where the intent is plain (as Google's open-source parser has them):
- no colon after a known key: `user-agent FooBot`, `disallow /x` (when the value is one word,
  so that prose such as "Allow me to explain" is no rule);
- whitespace before the key and around the colon;
- misspelt keys: `dissallow`, `dissalow`, `disalow`, `diasllow`, `disallaw` (disallow);
  `useragent`, `user agent` (user-agent); `crawl delay`, `crawldelay`; `site-map`;
- a user-agent value is cut at the first whitespace or `/`: `FooBot/1.0` names foobot;
- CR, LF or CRLF end a line; a UTF-8 byte-order mark is ignored; bytes that are not UTF-8
  are replaced (a pattern keeps them as %EF%BF%BD).
Not lenient: a pattern that starts with neither `/` nor `*` matches nothing (RFC 9309 2.2's
path-pattern, Google alike); `index.html` is not read as `/`.

Size (RFC 9309 2.5): the first MAX_ROBOTS_BYTES are parsed, up to the last whole line; garbage
(binary, HTML) has no user-agent line and means allow all. Parsing is pure (no clock, no I/O),
so a caller may run it in a thread or a process; the rules pickle.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from yarl import URL

from ..fetch import Response
from ..records import RobotsRecord
from .matcher import RuleMatcher

MAX_ROBOTS_BYTES = 512 * 1024  # RFC 9309 2.5: parse at least the first 500 KiB
MAX_ROBOTS_REDIRECTS = 5  # RFC 9309 2.3.1.2

_KEYS = {
    "user-agent": "user-agent",
    "useragent": "user-agent",
    "user agent": "user-agent",
    "allow": "allow",
    "disallow": "disallow",
    "dissallow": "disallow",
    "dissalow": "disallow",
    "disalow": "disallow",
    "diasllow": "disallow",
    "disallaw": "disallow",
    "crawl-delay": "crawl-delay",
    "crawl delay": "crawl-delay",
    "crawldelay": "crawl-delay",
    "sitemap": "sitemap",
    "site-map": "sitemap",
}

# A line with a known key: `key: value`, or `key value` when the value is one word (so that
# prose, "Allow me to explain", is not read as a rule). The value ends at `#`.
_RECORD = re.compile(
    r"^[ \t]*(" + "|".join(re.escape(key) for key in _KEYS) + r")"
    r"(?:[ \t]*:|[ \t]+(?=[^\s#]+[ \t]*(?:#|$)))[ \t]*([^#\n]*)",
    re.IGNORECASE | re.MULTILINE,
)
_ABSOLUTE = re.compile(r"https?://[^/?#\s]", re.IGNORECASE)  # a Sitemap value we keep

RobotsStatus = Literal["ok", "allow-all", "disallow-all", "unreachable"]


@dataclass(frozen=True, slots=True)
class RobotsRules:
    """The rules in force for one origin."""

    status: RobotsStatus
    matcher: RuleMatcher | None = None  # our group's rules; None: no rule applies
    crawl_delay: float | None = None
    sitemaps: tuple[str, ...] = ()  # every Sitemap URL of the file, whatever its group
    expires: float = math.inf  # monotonic time after which to fetch robots.txt again

    def allows(self, url: str) -> bool:
        if self.status != "ok":
            return self.status == "allow-all"
        return self.matcher is None or self.matcher.allows(url)


def robots_url(origin: str) -> str:
    return origin + "/robots.txt"


@dataclass(slots=True)
class _Group:
    agents: set[str] = field(default_factory=set)
    rules: list[tuple[bool, str]] = field(default_factory=list)  # (allow, pattern as written)
    delays: list[str] = field(default_factory=list)


def parse_rules(body: bytes, token: str, expires: float) -> RobotsRules:
    """Rules from a 2xx robots.txt body for the crawler whose product token is `token`
    (lower-case); `expires` is the monotonic time the caller wants them renewed at."""
    if len(body) >= MAX_ROBOTS_BYTES:  # a line cut by the cap could widen an Allow
        body = body[:MAX_ROBOTS_BYTES]
        body = body[: max(body.rfind(b"\n"), body.rfind(b"\r")) + 1]
    text = body.decode("utf-8-sig", errors="replace")
    token = token.lower()
    groups: list[_Group] = []
    sitemaps: dict[str, None] = {}
    group: _Group | None = None
    in_agents = False  # the last user-agent or rule line was a user-agent line
    for record in _RECORD.finditer(text.replace("\r\n", "\n").replace("\r", "\n")):
        key, value = _KEYS[record[1].lower()], record[2].strip()
        if key == "user-agent":
            if group is None or not in_agents:
                group = _Group()
                groups.append(group)
            group.agents.add(_product_token(value))
            in_agents = True
        elif key == "sitemap":
            if _ABSOLUTE.match(value):
                sitemaps[value] = None
        elif group is None:
            continue  # rules and crawl-delay before any user-agent line
        elif key == "crawl-delay":
            group.delays.append(value)
        else:
            in_agents = False
            if value:  # an empty value is no rule
                group.rules.append((key == "allow", value))
    chosen = [g for g in groups if token in g.agents] or [g for g in groups if "*" in g.agents]
    rules = [rule for g in chosen for rule in g.rules]
    return RobotsRules(
        status="ok",
        matcher=RuleMatcher(rules) if rules else None,
        crawl_delay=_crawl_delay(value for g in chosen for value in g.delays),
        sitemaps=tuple(sitemaps),
        expires=expires,
    )


def _product_token(value: str) -> str:
    words = value.split(None, 1)
    return words[0].split("/", 1)[0].lower() if words else ""


def _crawl_delay(values: Iterable[str]) -> float | None:
    delays = []
    for value in values:
        try:
            delay = float(value)
        except ValueError:
            continue
        if math.isfinite(delay) and delay >= 0:
            delays.append(delay)
    return max(delays, default=None)


def rules_from_status(
    status: int | None, body: bytes | None, token: str, expires: float
) -> RobotsRules | None:
    """The rules a final (non-redirect) robots.txt answer gives, or None when it must be retried.

    RFC 9309 2.3.1.3: 4xx (401 and 403 too) means allow all; 2.3.1.4: 5xx or no answer means
    disallow all, which the caller retries and finally turns into "unreachable".
    """
    if status is not None and 200 <= status < 300:
        return parse_rules(body or b"", token, expires)
    if status is not None and 400 <= status < 500:
        return RobotsRules(status="allow-all", expires=expires)
    return None


def redirect_target(response: Response) -> str | None:
    """The absolute URL a 3xx robots.txt answer points to, if any."""
    if response.status is None or not 300 <= response.status < 400 or not response.location:
        return None
    try:
        return str(URL(response.url).join(URL(response.location)).with_fragment(None))
    except ValueError:
        return None


class RobotsBook:
    """The rules in force per origin, and the hosts waiting for an origin's robots.txt."""

    def __init__(self) -> None:
        self._rules: dict[str, RobotsRules] = {}
        self._waiting: dict[str, set[str]] = {}  # origin -> hosts waiting for its rules

    def rules(self, origin: str, now: float) -> RobotsRules | None:
        """The origin's rules if known and not expired at `now` (monotonic)."""
        rules = self._rules.get(origin)
        return rules if rules is not None and rules.expires > now else None

    def wait(self, origin: str, host: str) -> bool:
        """Note that `host` waits for the origin's rules; True if their fetch must start now."""
        waiting = self._waiting.get(origin)
        if waiting is None:
            self._waiting[origin] = {host}
            return True
        waiting.add(host)
        return False

    def settle(self, origin: str, rules: RobotsRules) -> set[str]:
        """Put rules in force; returns the hosts that were waiting for them."""
        self._rules[origin] = rules
        return self._waiting.pop(origin, set())

    def forget(self, host: str) -> None:
        """`host` waits no more (this run lost it): an origin no one waits for any longer is
        fetched anew when next asked for, not waited on for ever."""
        for origin in [o for o, hosts in self._waiting.items() if host in hosts]:
            self._waiting[origin].discard(host)
            if not self._waiting[origin]:
                del self._waiting[origin]


# rules_from_status off the event loop: a 512 KiB robots.txt takes 20 ms or more to parse.
RobotsParser = Callable[[int | None, bytes | None, str, float], Awaitable[RobotsRules | None]]


async def parse_in_thread(
    status: int | None, body: bytes | None, token: str, expires: float
) -> RobotsRules | None:
    """A RobotsParser (the engine gives the frontier a better one: big files in a process)."""
    return await asyncio.to_thread(rules_from_status, status, body, token, expires)


@dataclass(slots=True)
class RobotsFetch:
    """One request of an origin's robots.txt: the file itself, a redirect hop, or a retry."""

    origin: str
    url: str
    hops: int = 0
    attempts: int = 0


class RobotsLife:
    """Each origin's robots.txt through its life (RFC 9309 2.3, 2.4): asked for before the
    first URL of the origin, fetched (redirects followed, failures retried, then unreachable),
    parsed off the event loop, in force until robots_ttl, and put back from storage for a
    resumed run or a claimed host. Which host's pacing a fetch goes out on is the frontier's
    business; the times here are monotonic seconds the caller reads from its clock."""

    def __init__(self, token: str, ttl: float, retries: int, parse: RobotsParser) -> None:
        self._token = token
        self._ttl = ttl
        self._retries = retries
        self._parse = parse
        self._book = RobotsBook()

    def rules(self, origin: str, now: float) -> RobotsRules | None:
        """The origin's rules in force at `now`, if any."""
        return self._book.rules(origin, now)

    def ask(self, origin: str, host: str) -> RobotsFetch | None:
        """`host` needs the origin's rules: the fetch to start, or None if one is under way."""
        if self._book.wait(origin, host):
            return RobotsFetch(origin, robots_url(origin))
        return None

    async def answered(
        self, fetch: RobotsFetch, response: Response, now: float, *, may_retry: bool
    ) -> RobotsFetch | RobotsRules:
        """What an answer leads to: the next fetch (a redirect hop, a retry), or the rules it
        gives (in force once `settle`d)."""
        target = redirect_target(response)
        if target is not None and fetch.hops < MAX_ROBOTS_REDIRECTS:
            return RobotsFetch(fetch.origin, target, fetch.hops + 1)
        expires = now + self._ttl
        rules = await self._parse(response.status, response.body, self._token, expires)
        if rules is None and target is not None:
            return RobotsRules(status="allow-all", expires=expires)  # RFC 9309 2.3.1.2
        if rules is None and fetch.attempts < self._retries and may_retry:
            return RobotsFetch(fetch.origin, fetch.url, fetch.hops, fetch.attempts + 1)
        return rules or RobotsRules(status="unreachable", expires=expires)

    def settle(self, origin: str, rules: RobotsRules) -> set[str]:
        """Put rules in force; returns the hosts that were waiting for them."""
        return self._book.settle(origin, rules)

    def forget(self, host: str) -> None:
        """`host` is no longer this run's: it waits for no origin's rules any more."""
        self._book.forget(host)

    async def restore(
        self, saved: Iterable[RobotsRecord], now: float, wall: float
    ) -> list[tuple[RobotsRecord, RobotsRules]]:
        """Answers fetched before (by an earlier run, or another process) stay in force until
        robots_ttl after their fetch: those still within it, parsed and in force."""
        restored = []
        for record in saved:
            age = wall - datetime.fromisoformat(record.fetched_at).timestamp()
            if age >= self._ttl:
                continue
            expires = now + self._ttl - age
            rules = await self._parse(record.status, record.body, self._token, expires)
            if rules is not None:
                self._book.settle(record.origin, rules)
                restored.append((record, rules))
        return restored
