"""From a response to an outcome: the page row, its links, and the URLs it leads to.

This is the crawler's per-page hot path: parse once with selectolax, then per link one
normalization (cached: `LinkTargets`); the host check and the scope rules only for targets not
stored already (`KnownURLs`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Literal, NamedTuple

from yarl import URL

from ..config import Config
from ..fetch import Response
from ..frontier.skips import Scope
from ..records import (
    AlternateRecord,
    Discovered,
    LinkRecord,
    Outcome,
    PageRecord,
    QueuedURL,
    utc_now,
)
from ..urls import host_key, normalize
from .directives import directive_list
from .fields import fields_json
from .html import (
    Alternate,
    Link,
    PageRules,
    ParsedPage,
    header_rules,
    merge_rules,
    parse_html_steps,
)
from .steps import Steps, finish
from .targets import LinkTargets

logger = logging.getLogger(__name__)

LINKS_PER_STEP = 100  # ~1 ms of resolving and scope checks for links seen for the first time


class Extractor:
    """Turns a fetched URL's response into the outcome the writer commits."""

    def __init__(self, config: Config, scope: Scope) -> None:
        self._config = config
        self.scope = scope
        self._token = config.politeness.robots_token
        self._targets = LinkTargets()
        self._known = KnownURLs()

    def parses(self, response: Response) -> bool:
        """Whether links are extracted from this response: 2xx HTML with a body."""
        status = response.status or 0
        return response.is_html and 200 <= status < 300 and bool(response.body)

    def parse(self, response: Response) -> ParsedPage | None:
        """The parsed page if `parses(response)`."""
        return finish(self.parse_steps(response))

    def parse_steps(self, response: Response) -> Steps[ParsedPage | None]:
        """parse, pausing within a long page's pre-pass (`parse_html_steps`)."""
        if not self.parses(response):
            return None
        body, fields = response.body, self._config.fields
        return (yield from parse_html_steps(body, response.charset, self._token, fields))

    def extract(self, queued: QueuedURL, response: Response) -> Outcome:
        """parse, then outcome."""
        return finish(self.extract_steps(queued, response))

    def extract_steps(self, queued: QueuedURL, response: Response) -> Steps[Outcome]:
        """extract, pausing after the parse and between slices of links."""
        parsed = yield from self.parse_steps(response)
        if parsed is not None and len(parsed.links) >= LINKS_PER_STEP:
            yield None  # a page of few links goes in one step: a pause costs a turn of the loop
        return (yield from self.outcome_steps(queued, response, parsed))

    def outcome(self, queued: QueuedURL, response: Response, parsed: ParsedPage | None) -> Outcome:
        """The outcome of a response; `parsed` is what `parse` gave for it."""
        return finish(self.outcome_steps(queued, response, parsed))

    def outcome_steps(
        self, queued: QueuedURL, response: Response, parsed: ParsedPage | None
    ) -> Steps[Outcome]:
        """outcome, pausing between slices of links."""
        page_url = URL(queued.url)
        rules = header_rules(list(response.robots_tags), self._token)
        links: list[LinkRecord] = []
        alternates: list[AlternateRecord] = []
        discovered: list[Discovered] = []
        canonical = fields = None
        status = response.status or 0
        if parsed is not None:
            rules = merge_rules(rules, parsed.rules)
            base = _base_url(page_url, parsed.base_href)
            canonical = _resolved(parsed.canonical, base)
            fields = self._fields_json(queued.url, base, parsed)
            alternates = _alternates(queued.url, base, parsed.alternates)
            links, discovered = yield from self._links(queued, base, parsed.links, rules)
        location = None
        if 300 <= status < 400 and response.location:
            target = normalize(response.location, page_url)
            location = str(target) if target is not None else response.location
            if target is not None:
                discovered.extend(self._redirect(queued, target))
        meta = parsed.robots if parsed is not None else ()
        robots = directive_list(meta, response.robots_tags, self._token)
        head = _Head(canonical, location, robots, fields)
        wants_text = parsed is not None and self._config.storage.store_text and not rules.noindex
        return Outcome(
            url=queued,
            state="done" if response.status is not None else "failed",
            page=self._page(queued, response, parsed, head, rules),
            links=links,
            discovered=self._known.news(discovered),
            text_from=(response.body, response.charset) if wants_text else None,
            alternates=alternates,
        )

    def _page(
        self,
        queued: QueuedURL,
        response: Response,
        parsed: ParsedPage | None,
        head: _Head,
        rules: PageRules,
    ) -> PageRecord:
        keep_body = self._config.storage.store_body and not rules.noindex and response.body
        not_modified = response.status == 304  # the stored version's validators stand
        return PageRecord(
            url=queued.url,
            host=queued.host,
            status=response.status,
            content_type=response.content_type,
            title=parsed.title if parsed is not None else None,
            body=response.body if keep_body else None,
            bytes=len(response.body),
            truncated=response.truncated,
            depth=queued.depth,
            fetched_at=utc_now(),
            elapsed_ms=response.elapsed_ms,
            error=response.error,
            location=head.location,
            etag=response.etag or (queued.etag if not_modified else None),
            last_modified=response.last_modified
            or (queued.last_modified if not_modified else None),
            sha256=hashlib.sha256(response.body).hexdigest() if response.status else None,
            request_head=response.request_head,
            response_head=response.response_head,
            canonical=head.canonical,
            description=parsed.description if parsed is not None else None,
            h1=parsed.h1 if parsed is not None else None,
            robots=head.robots,
            fields=head.fields,
        )

    def _fields_json(self, url: str, base: URL, parsed: ParsedPage) -> str | None:
        """The page's `fields` column: its [fields] values, href/src resolved, as JSON."""
        if parsed.fields is None:
            return None
        if parsed.tangled:
            logger.warning("%s: too tangled to build whole for [fields]; all stored null", url)
        return fields_json(self._config.fields, parsed.fields, base)

    def _links(
        self, queued: QueuedURL, base: URL, found: Sequence[Link], rules: PageRules
    ) -> Steps[tuple[list[LinkRecord], list[Discovered]]]:
        """One link row per distinct target; followed targets on allowed hosts are discovered.
        The scope's rules are asked only of targets not known already at this depth or less:
        most links of a site lead to pages found long before."""
        follow_rel = self._config.politeness.follow_nofollow
        resolve = self._targets.resolver(base)
        source = queued.url
        # Each target's row is made once, where it is first found, and replaced if a later link
        # to it changes it; `hosts` runs beside. No other record a target: a page of 100,000
        # links held 100,000 more tuples while its discovered URLs were made.
        at: dict[str, int] = {}  # url: its row in links
        links: list[LinkRecord] = []
        hosts: list[str] = []
        for n, (href, link_nofollow, text) in enumerate(found, 1):
            if n % LINKS_PER_STEP == 0:
                yield None
            target = resolve(href)
            if target is None:
                continue
            url, host = target
            nofollow = link_nofollow or rules.nofollow
            row = at.get(url)
            if row is None:
                at[url] = len(links)
                links.append((source, url, nofollow, text))
                hosts.append(host)
                continue
            _, _, seen_nofollow, seen_text = links[row]
            if (seen_nofollow and not nofollow) or (text and not seen_text):
                # Rule 5's nofollow (the least), and the first non-empty text.
                links[row] = (source, url, seen_nofollow and nofollow, seen_text or text)
        del at
        if rules.nofollow:
            return links, []
        depth = queued.depth + 1
        scope, known = self.scope, self._known
        discovered = []
        for n, ((_, url, nofollow, _), host) in enumerate(zip(links, hosts, strict=True), 1):
            if n % LINKS_PER_STEP == 0:
                yield None
            if (nofollow and not follow_rel) or url == source or known.covers(url, depth):
                continue
            if scope.allows_host(host):
                discovered.append(
                    _discovered(url, host, depth, scope.skip_reason(url, depth), source)
                )
        return links, discovered

    def _redirect(self, queued: QueuedURL, target: URL) -> list[Discovered]:
        """A redirect's target is queued like a link at the same depth, counting the hop."""
        host = host_key(target)
        if not self.scope.allows_host(host):
            return []
        key = str(target)
        hops = queued.redirects + 1
        reason = self.scope.skip_reason(key, queued.depth)
        if reason is None and hops > self._config.fetch.max_redirects:
            reason = "redirects"
        return [_discovered(key, host, queued.depth, reason, queued.url, hops)]


def _discovered(
    url: str, host: str, depth: int, reason: str | None, source: str, redirects: int = 0
) -> Discovered:
    state: Literal["queued", "skipped"] = "queued" if reason is None else "skipped"
    return Discovered(url, host, depth, state, reason, source, redirects)


class _Head(NamedTuple):
    """What a page row gets from the response's head and the page's <head>, resolved."""

    canonical: str | None
    location: str | None
    robots: str | None
    fields: str | None  # the JSON of the page's [fields]


def _resolved(href: str | None, base: URL) -> str | None:
    """An href of the page resolved against its base and normalized, as links are."""
    url = normalize(href, base) if href else None
    return None if url is None else str(url)


def _alternates(source: str, base: URL, found: tuple[Alternate, ...]) -> list[AlternateRecord]:
    """The page's hreflang alternates: (src_url, hreflang, dst_url), each once, in page order."""
    rows: dict[AlternateRecord, None] = {}
    for hreflang, href in found:
        target = _resolved(href, base)
        if target is not None:
            rows[source, hreflang, target] = None
    return list(rows)


def _base_url(page_url: URL, base_href: str | None) -> URL:
    """The URL relative links resolve against: the page's, or its <base href> if valid."""
    if base_href:
        base = normalize(base_href, page_url)
        if base is not None:
            return base
    return page_url


class KnownURLs:
    """URLs already handed to storage, with the least depth each was found at.

    Finding a URL again no deeper changes nothing in the database (its upsert only lowers a
    depth), and most links of a site lead to pages found long before: those are not sent to
    storage again, which halves what the writer does per page. Bounded: once `limit` URLs are
    known it learns no more, and the rest go to storage as before.
    """

    def __init__(self, limit: int = 50_000) -> None:
        self._limit = limit
        self._depth: dict[str, int] = {}

    def covers(self, url: str, depth: int) -> bool:
        """Whether `url` was handed to storage already, found at `depth` or less."""
        known = self._depth.get(url)
        return known is not None and known <= depth

    def news(self, found: list[Discovered]) -> list[Discovered]:
        """The URLs of `found` that are new, or found at a lesser depth than before."""
        depths, fresh = self._depth, []
        for url in found:
            if self.covers(url.url, url.depth):
                continue
            fresh.append(url)
            if url.url in depths or len(depths) < self._limit:
                depths[url.url] = url.depth
        return fresh
