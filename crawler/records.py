"""The records that flow between the pipeline's stages and into storage.

frontier → QueuedURL → worker (fetch, extract) → Outcome / RobotsRecord → writer → Storage
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, NamedTuple

UrlState = Literal["queued", "done", "failed", "skipped"]


def utc_now() -> str:
    """The current time as ISO-8601 UTC with milliseconds, the format of every stored time."""
    return utc_at(time.time())


def utc_at(timestamp: float) -> str:
    """A POSIX timestamp in the format of every stored time."""
    second = math.floor(timestamp)
    micros = round((timestamp - second) * 1e6)  # as datetime rounds, then cut to milliseconds
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    return f"{_utc_second(second)}.{micros // 1000:03d}Z"


@functools.lru_cache(maxsize=4)
def _utc_second(second: int) -> str:
    # strftime is most of the cost, and every page of one second shares its result.
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass(slots=True)
class QueuedURL:
    """A frontier row taken for fetching."""

    id: int
    url: str
    host: str
    depth: int
    redirects: int = 0  # redirect hops that led here
    sitemap: int | None = None  # a sitemap document: how deep in sitemap indexes; None: a page
    etag: str | None = None  # validators of the version stored (a recrawl asks if it changed)
    last_modified: str | None = None
    attempts: int = 0  # tries so far in this process (a retry is the same fetch)
    claim: int = 0  # the claim of its host it was taken under (storage checks it at save)


class Discovered(NamedTuple):
    """A URL on an allowed domain found on a page (or as a seed, a redirect target, a sitemap
    or a sitemap's entry). Tuples, as LinkRecord: pages make many, and storage binds them as
    they are."""

    url: str
    host: str
    depth: int
    state: Literal["queued", "skipped"]
    reason: str | None = None
    discovered_from: str | None = None
    redirects: int = 0
    sitemap: int | None = None  # a sitemap document (QueuedURL.sitemap)
    lastmod: str | None = None  # a sitemap entry's <lastmod>, as written


# One row of the public `links` table: (src_url, dst_url, nofollow, text). A plain tuple:
# pages make dozens each, and a NamedTuple's constructor is a Python call (5% of extraction's
# instructions on the 64-host site). text: the anchor text ("" for none).
LinkRecord = tuple[str, str, bool, str]
# One row of the public `alternates` table: (src_url, hreflang, dst_url).
AlternateRecord = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class PageRecord:
    """One row of the public `pages` table."""

    url: str
    host: str
    status: int | None
    content_type: str | None
    title: str | None
    body: bytes | None
    bytes: int
    truncated: bool
    depth: int
    fetched_at: str
    elapsed_ms: int
    error: str | None
    location: str | None
    etag: str | None = None
    last_modified: str | None = None
    sha256: str | None = None  # of the body as fetched (stored or not): what a recrawl compares
    text: str | None = None  # the readable text (text/pool.py fills it in before the save)
    request_head: str | None = None  # the request line and headers as sent
    response_head: str | None = None  # the status line and headers as received
    canonical: str | None = None  # <link rel=canonical>, resolved and normalized
    description: str | None = None  # <meta name=description>, whitespace collapsed
    h1: str | None = None  # the first <h1>'s text, whitespace collapsed
    robots: str | None = None  # meta robots then X-Robots-Tag directives, as found ("a, b")
    fields: str | None = None  # [fields]' values, a JSON object; None: no fields or not parsed


# What a fetch of a page was, against the version stored before (`fetches.change`).
Change = Literal["new", "changed", "unchanged", "gone"]


@dataclass(slots=True)
class Outcome:
    """Everything one taken URL produced; storage commits it in one transaction."""

    url: QueuedURL
    state: UrlState
    reason: str | None = None
    page: PageRecord | None = None
    links: list[LinkRecord] = field(default_factory=list)
    discovered: list[Discovered] = field(default_factory=list)
    sitemap: SitemapRecord | None = None  # what a sitemap document listed
    # The body and charset to extract the page's readable text from (text.pool.TextStage),
    # when it wants text; None after, or when it wants none.
    text_from: tuple[bytes, str | None] | None = None
    alternates: list[AlternateRecord] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SitemapRecord:
    """One sitemap document as read (the `sitemaps` table)."""

    url: str
    kind: str  # urlset, index, text, unknown
    entries: int  # entries read (before scope and dedup)
    left_out: str | None  # why reading stopped before the end, or None
    listed: tuple[str, ...] = ()  # the pages it lists in scope, normalized, each once


@dataclass(frozen=True, slots=True)
class RobotsRecord:
    """A robots.txt answer for one origin, kept so a resumed crawl need not fetch it again."""

    origin: str
    host: str
    status: int | None
    body: bytes | None
    error: str | None
    fetched_at: str
    sitemaps: tuple[Discovered, ...] = ()  # its Sitemap lines to read (crawl.robots_sitemaps)


@dataclass(frozen=True, slots=True)
class HostRecord:
    """A snapshot of one host's politeness state and counters (the `hosts` table)."""

    host: str
    delay: float
    delay_reason: str
    crawl_delay: float | None
    robots_status: str | None
    robots_fetched_at: str | None
    requests: int
    errors: int
    min_gap_ms: float | None
    retry_after_until: str | None = None  # ISO-8601 UTC: no request to the host before then
    backoff: float = 0.0  # seconds of back-off delay in force (repeated errors)
    next_start_at: str | None = None  # ISO-8601 UTC: the earliest next request (wall clock)
    claim: int = 0  # which claim of the host this is (from claim_hosts; never written)
    pages: int = 0  # pages fetched from it so far, by every run (from claim_hosts)
