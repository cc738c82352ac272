"""URL normalization and crawl scope. Pure: no I/O.

Normalization follows SPEC.md "URLs": yarl already lower-cases scheme and host, encodes IDN
hosts to punycode, drops default ports, removes dot-segments, gives an empty path `/`, decodes
percent-encoded unreserved characters and upper-cases percent-encoding hex; we add dropping the
fragment and refusing everything but http and https.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from yarl import URL

from .config import CrawlConfig

FOLLOWED_SCHEMES = frozenset({"http", "https"})
# A host name as yarl writes it (lower-case, punycode) or an IP literal; anything else is junk.
_HOST = re.compile(r"[a-z0-9_.-]+|[0-9a-f:.]+")


def normalize(href: str, base: URL | None = None) -> URL | None:
    """The normalized absolute URL of `href` (resolved against `base`), or None when it is not
    an http(s) URL with a host, or cannot be parsed."""
    href = href.strip()
    if base is None and not href:
        return None
    try:
        url = URL(href)
        if base is not None and not url.scheme:
            url = _folder_of(base, url).join(url)
        if url.scheme not in FOLLOWED_SCHEMES or not _HOST.fullmatch(url.raw_host or ""):
            return None
        if url.raw_fragment:
            url = url.with_fragment(None)
        if url.raw_path == "/" and not url.raw_query_string:
            text = str(url)
            if not text.endswith("/"):
                return URL(text + "/")  # yarl writes "http://h" without its path; SPEC: "http://h/"
        return url
    except (ValueError, TypeError, UnicodeError):
        return None


def _folder_of(base: URL, ref: URL) -> URL:
    """The base a reference resolves against: for a relative path, `base` cut after the last
    "/" of its path. yarl merges such a path with the base's *decoded* segments, so that
    "e" against "/x%2Fy/z" gave "/x/y/e" and against "/x%3Fy/z" a query; against a base that
    ends in "/" it keeps the encoded path, as RFC 3986 5.2.3 wants."""
    path = ref.raw_path
    if not path or path[0] == "/" or ref.raw_authority or base.raw_path.endswith("/"):
        return base
    folder = base.raw_path[: base.raw_path.rfind("/") + 1] or "/"
    return base.with_path(folder, encoded=True)


def host_key(url: URL) -> str:
    """The politeness key: the lower-cased host name, port ignored."""
    return url.raw_host or ""


def origin(url: URL) -> str:
    """The robots.txt origin: scheme, host and port (explicit only when not the default)."""
    return str(url.origin())


class Scope:
    """Decides which discovered URLs are ours (allowed domains) and which of those to queue."""

    def __init__(self, crawl: CrawlConfig) -> None:
        domains = crawl.allowed_domains or _seed_hosts(crawl.seeds)
        self._domains = tuple(_host_of(d) for d in domains)
        self._include = _any_of(crawl.include)
        self._exclude = _any_of(crawl.exclude)
        self._max_depth = crawl.max_depth
        self._max_url_length = crawl.max_url_length
        self._host_allowed: dict[str, bool] = {}

    def allows_host(self, host: str) -> bool:
        """True when `host` is an allowed domain or a subdomain of one."""
        allowed = self._host_allowed.get(host)
        if allowed is None:
            allowed = any(host == d or host.endswith("." + d) for d in self._domains)
            if len(self._host_allowed) < 100_000:  # bounded cache: hosts are few, but not always
                self._host_allowed[host] = allowed
        return allowed

    def skip_reason(self, url: str, depth: int) -> str | None:
        """Why an allowed-domain URL found at `depth` is not queued, or None to queue it."""
        if len(url) > self._max_url_length:
            return "too-long"
        if self._exclude is not None and self._exclude.search(url):
            return "exclude"
        if self._include is not None and not self._include.search(url):
            return "include"
        if depth > self._max_depth:
            return "depth"
        return "trap" if _repeats_a_segment(url) else None


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


def _seed_hosts(seeds: Iterable[str]) -> tuple[str, ...]:
    return tuple(URL(seed).raw_host or "" for seed in seeds)


def _host_of(domain: str) -> str:
    """An allowed_domains entry as yarl writes hosts: lower-case, punycode, no trailing dot."""
    return URL.build(scheme="http", host=domain.strip().rstrip(".")).raw_host or domain.lower()


def _any_of(patterns: Iterable[str]) -> re.Pattern[str] | None:
    patterns = list(patterns)
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns))
