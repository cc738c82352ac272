"""robots.txt rules per origin (RFC 9309), parsed by Protego.

Protego (Scrapy's parser) does `*` and `$` wildcards, longest match and Allow-wins-ties; this
module adds what RFC 9309 leaves to the crawler: what a status code means, the byte-order mark,
the size cap, and when the rules expire. It also picks the group itself: Protego would let a
group named "crawl" match our token "crawler", where RFC 9309 2.2.1 wants the whole token.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Literal

from protego import Protego
from yarl import URL

from .fetch import Response

MAX_ROBOTS_BYTES = 512 * 1024  # RFC 9309 2.5: parse at least the first 500 KiB
MAX_ROBOTS_REDIRECTS = 5  # RFC 9309 2.3.1.2

_USER_AGENT_LINE = re.compile(r"^[ \t]*user-agent[ \t]*:[ \t]*([^\s#]+)", re.I | re.M)

RobotsStatus = Literal["ok", "allow-all", "disallow-all", "unreachable"]


@dataclass(frozen=True, slots=True)
class RobotsRules:
    """The rules in force for one origin."""

    status: RobotsStatus
    parser: Protego | None = None
    agent: str = "*"  # the group that applies: our product token if it has a group, else "*"
    crawl_delay: float | None = None
    expires: float = float("inf")  # time.monotonic() after which to fetch robots.txt again

    def allows(self, url: str) -> bool:
        if self.status == "ok" and self.parser is not None:
            return bool(self.parser.can_fetch(url, self.agent))
        return self.status == "allow-all"


def robots_url(origin: str) -> str:
    return origin + "/robots.txt"


def parse_rules(body: bytes, token: str, ttl: float) -> RobotsRules:
    """Rules from a 2xx robots.txt body; a leading UTF-8 BOM is ignored, bad bytes replaced."""
    text = body[:MAX_ROBOTS_BYTES].decode("utf-8-sig", errors="replace")
    parser = Protego.parse(text)
    groups = {name.lower() for name in _USER_AGENT_LINE.findall(text)}
    agent = token if token in groups else "*"
    delay = parser.crawl_delay(agent)
    return RobotsRules(
        status="ok",
        parser=parser,
        agent=agent,
        crawl_delay=float(delay) if delay is not None else None,
        expires=time.monotonic() + ttl,
    )


def rules_from_status(
    status: int | None, body: bytes | None, token: str, ttl: float
) -> RobotsRules | None:
    """The rules a final (non-redirect) robots.txt answer gives, or None when it must be retried.

    RFC 9309 2.3.1.3: 4xx (401 and 403 too) means allow all; 2.3.1.4: 5xx or no answer means
    disallow all, which the caller retries and finally turns into "unreachable".
    """
    if status is not None and 200 <= status < 300:
        return parse_rules(body or b"", token, ttl)
    if status is not None and 400 <= status < 500:
        return RobotsRules(status="allow-all", expires=time.monotonic() + ttl)
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

    def rules(self, origin: str) -> RobotsRules | None:
        """The origin's rules if known and not expired."""
        rules = self._rules.get(origin)
        return rules if rules is not None and rules.expires > time.monotonic() else None

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
