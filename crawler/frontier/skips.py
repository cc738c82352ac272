"""Whether a URL is crawled: the skip rules, asked when a URL is found and again when its turn
comes. Pure: no I/O.

At discovery (a link, a redirect's target, a seed), `Scope` keeps out other domains (they stay
in `links` only) and gives the reasons a URL on an allowed domain is recorded as skipped:
`too-long`, `exclude`, `include`, `extension` (a file of `skip_extensions`; seeds are fetched
whatever their name: the user asked for them), `depth`, `trap` (a repeated path segment);
with `[auth]` set, first `auth-exclude`: a URL that `auth.exclude` matches is never requested,
seed, sitemap or page (a logged-in crawler must not follow "log out" or "delete").
Sitemap documents are asked only what concerns every request (the domain, robots.txt, the
host's limits): the rules above are for pages. At dequeue, just
before the request, `SkipRules.at_dequeue` asks the scope again (a resumed crawl's config may
have narrowed it since the URL was queued: `domain` and the reasons above), then what only the
frontier knows: `max-pages` (per host), `robots-unreachable`, `crawl-delay`, `robots`, and
`trap` for a path fetched with `max_query_variants` query strings already. Storage applies one
more rule of the same kind: a URL skipped for `depth` comes back when it is found nearer (the
storage contract's rule 2), with the max_depth that `Scope` uses.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from yarl import URL

from ..config import Config, CrawlConfig
from ..records import QueuedURL
from ..robots.origins import RobotsRules
from ..urls import normalize


class Scope:
    """Decides which discovered URLs are ours (allowed domains) and which of those to queue."""

    def __init__(self, crawl: CrawlConfig, auth_exclude: Iterable[str] = ()) -> None:
        domains = crawl.allowed_domains or _seed_hosts(crawl.seeds)
        self._domains = tuple(_host_of(d) for d in domains)
        self._include = _any_of(crawl.include)
        self._exclude = _any_of(crawl.exclude)
        self._auth_exclude = _any_of(auth_exclude)
        self._max_depth = crawl.max_depth
        self._max_url_length = crawl.max_url_length
        self._extensions = frozenset(e.strip(".").lower() for e in crawl.skip_extensions)
        self._seeds = frozenset(str(url) for url in map(normalize, crawl.seeds) if url is not None)
        self._host_allowed: dict[str, bool] = {}

    def allows_host(self, host: str) -> bool:
        """True when `host` is an allowed domain or a subdomain of one."""
        allowed = self._host_allowed.get(host)
        if allowed is None:
            allowed = any(host == d or host.endswith("." + d) for d in self._domains)
            if len(self._host_allowed) < 100_000:  # bounded cache: hosts are few, but not always
                self._host_allowed[host] = allowed
        return allowed

    @classmethod
    def of(cls, config: Config) -> Scope:
        """The scope of `config`: its crawl section and, with `[auth]`, auth.exclude."""
        return cls(config.crawl, config.auth.exclude if config.auth is not None else ())

    def auth_excluded(self, url: str) -> bool:
        """True when `auth.exclude` matches `url`: never to be requested."""
        return self._auth_exclude is not None and self._auth_exclude.search(url) is not None

    def skip_reason(self, url: str, depth: int) -> str | None:
        """Why an allowed-domain URL found at `depth` is not queued, or None to queue it."""
        if self.auth_excluded(url):
            return "auth-exclude"
        if len(url) > self._max_url_length:
            return "too-long"
        if self._exclude is not None and self._exclude.search(url):
            return "exclude"
        if self._include is not None and not self._include.search(url):
            return "include"
        if self._extensions and _extension(url) in self._extensions and url not in self._seeds:
            return "extension"
        if depth > self._max_depth:
            return "depth"
        return "trap" if _repeats_a_segment(url) else None


def _extension(url: str) -> str | None:
    """The lower-cased extension of the URL's last path segment (`pdf` of /a/b.PDF?x=1)."""
    name = url.split("?", 1)[0].rsplit("/", 1)[-1]
    _, dot, extension = name.rpartition(".")
    return extension.lower() if dot else None


def _repeats_a_segment(url: str) -> bool:
    """A path segment three times or more (/a/b/a/b/a/b): the mark of relative-link loops."""
    path = [segment for segment in url.split("?", 1)[0].split("/")[3:] if segment]
    if len(path) - len(set(path)) < 2:  # the common case, and cheap: no segment thrice
        return False
    return max(Counter(path).values()) >= 3


class QueryVariants:
    """Counts the pages fetched per path with a query string. Past `limit` (0: none) the path
    is a trap (session ids, endless filters): its other URLs stay on disk, never fetched."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._fetched: dict[str, int] = {}

    def over_limit(self, url: str) -> bool:
        """True if `url` would pass the limit; otherwise count it as fetched."""
        path, has_query, _ = url.partition("?")
        if not self._limit or not has_query:
            return False
        fetched = self._fetched.get(path, 0)
        if fetched >= self._limit:
            return True
        self._fetched[path] = fetched + 1
        return False


class SkipRules:
    """The rules at dequeue: the scope again, then host limits, robots.txt and query traps."""

    def __init__(self, config: Config, scope: Scope | None = None) -> None:
        self.scope = scope or Scope.of(config)
        self._per_host = config.crawl.max_pages_per_host
        self._max_crawl_delay = config.politeness.max_crawl_delay
        self._query_variants = QueryVariants(config.crawl.max_query_variants)

    def at_dequeue(self, queued: QueuedURL, host_pages: int, rules: RobotsRules) -> str | None:
        """Why `queued` is not to be fetched now that its turn came, or None to fetch it.
        `host_pages`: pages fetched from its host so far; `rules`: its origin's robots.txt."""
        if not self.scope.allows_host(queued.host):
            return "domain"
        if self.scope.auth_excluded(queued.url):
            return "auth-exclude"
        if queued.sitemap is None:
            reason = self.scope.skip_reason(queued.url, queued.depth)
            if reason is not None:
                return reason
        if self._per_host and host_pages >= self._per_host:
            return "max-pages"
        if rules.status == "unreachable":
            return "robots-unreachable"
        if (rules.crawl_delay or 0) > self._max_crawl_delay:
            return "crawl-delay"
        if not rules.allows(queued.url):
            return "robots"
        if self._query_variants.over_limit(queued.url):  # last: it counts the URLs fetched
            return "trap"
        return None


def _seed_hosts(seeds: Iterable[str]) -> tuple[str, ...]:
    return tuple(URL(seed).raw_host or "" for seed in seeds)


def _host_of(domain: str) -> str:
    """An allowed_domains entry as yarl writes hosts: lower-case, punycode, no trailing dot."""
    return URL.build(scheme="http", host=domain.strip().rstrip(".")).raw_host or domain.lower()


def _any_of(patterns: Iterable[str]) -> re.Pattern[str] | None:
    """One regex that matches where any of `patterns` does. A pattern's leading global flags
    ("(?i)log-?out") apply to it alone: they become a scoped group ("(?i:log-?out)"), since
    Python refuses global flags anywhere but at the start of the whole expression."""
    patterns = list(patterns)
    if not patterns:
        return None
    return re.compile("|".join(_scoped(p) for p in patterns))


_GLOBAL_FLAGS = re.compile(r"\(\?([aiLmsux]+)\)")


def _scoped(pattern: str) -> str:
    flags = _GLOBAL_FLAGS.match(pattern)
    if flags is None:
        return f"(?:{pattern})"
    return f"(?{flags.group(1)}:{pattern[flags.end() :]})"
