"""Which URLs sitemaps lead to: the sitemaps that the config names, and the entries of a sitemap
read (`document`), through the crawl's scope. (The sitemaps a robots.txt names are the
frontier's: `frontier.robots_first`, which records them with the robots.txt answer.)

A sitemap document is a URL of the frontier like any other (robots.txt, pacing, retries and
resume apply), marked with how deep in sitemap indexes it was found: 0 for one the config or a
robots.txt names, one more for each index above it. Its entries are found at depth 0, whatever
their link depth (a sitemap is the site owner's list of pages), from the sitemap's URL
(`discovered_from`), each with its `<lastmod>`; they go through the scope like links. Child
sitemaps of an index past MAX_NESTING are skipped, reason `sitemap-depth`; an index that lists
itself, or a loop of indexes, ends because each URL is fetched once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal

from ..extract.page import Extractor
from ..extract.steps import Steps, run_steps
from ..fetch import Response
from ..frontier.skips import Scope
from ..records import Discovered, Outcome, QueuedURL, SitemapRecord
from ..urls import host_key, normalize
from .document import Sitemap

logger = logging.getLogger(__name__)

MAX_NESTING = 5  # levels of sitemap indexes below a named sitemap
ENTRIES_PER_STEP = 500  # ~2 ms of normalizing and scope checks between two turns of the loop


def configured_sitemaps(urls: Sequence[str]) -> list[Discovered]:
    """crawl.sitemaps, queued with the seeds (the scope is asked when their turn comes)."""
    found = []
    for text in urls:
        url = normalize(text)
        if url is not None:
            found.append(Discovered(str(url), host_key(url), 0, "queued", sitemap=0))
    return found


def entry_steps(
    queued: QueuedURL, sitemap: Sitemap, scope: Scope
) -> Steps[tuple[list[Discovered], SitemapRecord]]:
    """The URLs a sitemap read lists (child sitemaps of an index, pages otherwise), and its
    `sitemaps` row with the pages it lists in scope (`SitemapRecord.listed`, whether or not
    they were found before; child sitemaps of an index are no pages); pausing every
    ENTRIES_PER_STEP entries."""
    level = (queued.sitemap or 0) + 1 if sitemap.kind == "index" else None
    found = []
    listed: dict[str, None] = {}  # the pages listed in scope (`sitemap_entries`)
    for n, entry in enumerate(sitemap.entries, 1):
        if n % ENTRIES_PER_STEP == 0:
            yield None
        url = normalize(entry.url)  # absolute, as sitemaps.org requires: else None
        if url is None or not scope.allows_host(host := host_key(url)):
            continue
        key = str(url)
        if level is None:
            reason = scope.skip_reason(key, 0)
            if reason is None:
                listed[key] = None
        else:
            reason = "sitemap-depth" if level > MAX_NESTING else None
        state: Literal["queued", "skipped"] = "queued" if reason is None else "skipped"
        found.append(Discovered(key, host, 0, state, reason, queued.url, 0, level, entry.lastmod))
    record = SitemapRecord(
        queued.url, sitemap.kind, len(sitemap.entries), sitemap.left_out, tuple(listed)
    )
    return found, record


async def sitemap_outcome(
    queued: QueuedURL,
    response: Response,
    extractor: Extractor,
    read: Callable[[bytes], Awaitable[Sitemap]],
) -> Outcome:
    """The outcome of a fetched sitemap document: its page row, and what it lists if it was
    answered 2xx (`read` parses the body off the event loop)."""
    # In a thread: hashing a body of up to 50 MB would hold the loop for a tenth of a second.
    outcome = await asyncio.to_thread(extractor.outcome, queued, response, None)
    # A sitemap that redirects: its target is the sitemap, whatever it looks like.
    outcome.discovered = [
        d._replace(sitemap=queued.sitemap, state="queued", reason=None)
        if d.reason != "redirects"
        else d
        for d in outcome.discovered
    ]
    if not (200 <= (response.status or 0) < 300 and response.body):
        return outcome
    sitemap = await read(response.body)
    if sitemap.left_out:
        logger.warning("sitemap %s: read in part (%s)", queued.url, sitemap.left_out)
    # the loop runs between two slices of entries
    found, outcome.sitemap = await run_steps(entry_steps(queued, sitemap, extractor.scope))
    outcome.discovered.extend(found)
    return outcome
