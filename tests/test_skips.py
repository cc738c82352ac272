"""The skip rules: which URLs are crawled, at discovery and again at dequeue."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.config import Config
from crawler.frontier.skips import QueryVariants, Scope, SkipRules
from crawler.records import QueuedURL
from crawler.robots.origins import RobotsRules, parse_rules


def _scope(**crawl: object) -> Scope:
    raw = {"crawl": {"seeds": ["http://site.test/"], **crawl}}
    return Scope(Config.from_dict(raw, source=Path("c.toml")).crawl)


def test_scope_defaults_to_seed_hosts_and_their_subdomains() -> None:
    scope = _scope()
    assert scope.allows_host("site.test")
    assert scope.allows_host("sub.site.test")
    assert not scope.allows_host("other.test")
    assert not scope.allows_host("test")


def test_scope_allowed_domains_cover_subdomains() -> None:
    scope = _scope(allowed_domains=["Site.Test"])
    assert scope.allows_host("site.test")
    assert scope.allows_host("a.b.site.test")
    assert not scope.allows_host("notsite.test")
    assert not scope.allows_host("site.test.evil.test")


@pytest.mark.parametrize(
    ("crawl", "url", "depth", "reason"),
    [
        pytest.param({}, "http://site.test/a", 10, None, id="in-scope"),
        pytest.param({}, "http://site.test/a", 11, "depth", id="too-deep"),
        pytest.param({"max_url_length": 20}, "http://site.test/abcdefgh", 0, "too-long", id="long"),
        pytest.param({"exclude": [r"\.pdf$"]}, "http://site.test/a.pdf", 0, "exclude", id="ex"),
        pytest.param({"include": ["/docs/"]}, "http://site.test/blog/", 0, "include", id="inc"),
        pytest.param({"include": ["/docs/"]}, "http://site.test/docs/x", 0, None, id="inc-ok"),
        pytest.param(
            {"include": ["/docs/"], "exclude": ["draft"]},
            "http://site.test/docs/draft",
            0,
            "exclude",
            id="exclude-wins",
        ),
        pytest.param(
            {"exclude": ["(?i)DRAFT", r"\.pdf$"]},
            "http://site.test/docs/Draft",
            0,
            "exclude",
            id="flags-of-one-pattern",
        ),
        pytest.param(
            {"exclude": ["(?i)DRAFT", r"\.PHP$"]},
            "http://site.test/a.php",
            0,
            None,
            id="flags-stay-with-their-pattern",
        ),
        pytest.param(
            {"include": ["(?i)/DOCS/", "(?s)/blog/"]},
            "http://site.test/docs/x",
            0,
            None,
            id="include-with-flags",
        ),
    ],
)
def test_scope_skip_reason(crawl: dict[str, object], url: str, depth: int, reason: str) -> None:
    assert _scope(**crawl).skip_reason(url, depth) == reason


@pytest.mark.parametrize(
    ("crawl", "url", "depth", "reason"),
    [
        pytest.param({}, "http://site.test/a.pdf", 1, "extension", id="pdf"),
        pytest.param({}, "http://site.test/img/A.PNG?size=2", 1, "extension", id="upper-query"),
        pytest.param({}, "http://site.test/dist/x.tar.gz", 1, "extension", id="last-dot"),
        pytest.param({}, "http://site.test/a.pdf", 0, "extension", id="depth-0"),
        pytest.param({"seeds": ["http://site.test/a.PDF"]}, "http://site.test/a.PDF", 0, None,
                     id="a-seed"),
        pytest.param({}, "http://site.test/a.html", 1, None, id="html"),
        pytest.param({}, "http://site.test/v1.2/", 1, None, id="dot-in-directory"),
        pytest.param({}, "http://site.test/s?f=a.pdf", 1, None, id="dot-in-query"),
        pytest.param({}, "http://files.site.test/", 1, None, id="dot-in-host"),
        pytest.param({"skip_extensions": [".PDF"]}, "http://site.test/a.pdf", 1, "extension",
                     id="configured"),
        pytest.param({"skip_extensions": ["pdf"]}, "http://site.test/a.png", 1, None,
                     id="configured-only"),
        pytest.param({"skip_extensions": []}, "http://site.test/a.pdf", 1, None, id="none"),
    ],
)  # fmt: skip
def test_scope_skips_extensions(
    crawl: dict[str, object], url: str, depth: int, reason: str | None
) -> None:
    assert _scope(**crawl).skip_reason(url, depth) == reason


def test_query_variants_cap_each_path() -> None:
    variants = QueryVariants(limit=2)
    assert not variants.over_limit("http://a.test/s?sid=1")
    assert not variants.over_limit("http://a.test/s?sid=2")
    assert variants.over_limit("http://a.test/s?sid=3")
    assert not variants.over_limit("http://a.test/other?sid=3")  # another path
    assert not variants.over_limit("http://a.test/s")  # no query: not a variant
    assert not QueryVariants(limit=0).over_limit("http://a.test/s?sid=9")  # 0: no limit


def _rules(**crawl: object) -> SkipRules:
    raw = {"crawl": {"seeds": ["http://site.test/"], **crawl}, "politeness": {"max_crawl_delay": 5}}
    return SkipRules(Config.from_dict(raw, source=Path("c.toml")))


ALLOW = RobotsRules(status="allow-all")


def _queued(url: str, host: str = "site.test", depth: int = 0) -> QueuedURL:
    return QueuedURL(1, url, host, depth)


@pytest.mark.parametrize(
    ("crawl", "queued", "pages", "rules", "reason"),
    [
        pytest.param({}, _queued("http://site.test/a"), 0, ALLOW, None, id="fetch"),
        pytest.param({}, _queued("http://x.test/a", "x.test"), 0, ALLOW, "domain", id="domain"),
        pytest.param({"max_depth": 1}, _queued("http://site.test/a", depth=2), 0, ALLOW, "depth",
                     id="scope-again"),
        pytest.param({"max_pages_per_host": 3}, _queued("http://site.test/a"), 3, ALLOW,
                     "max-pages", id="per-host"),
        pytest.param({}, _queued("http://site.test/a"), 0, RobotsRules(status="unreachable"),
                     "robots-unreachable", id="unreachable"),
        pytest.param({}, _queued("http://site.test/a"), 0,
                     parse_rules(b"User-agent: *\nCrawl-delay: 9\n", "crawler", 1.0),
                     "crawl-delay", id="crawl-delay"),
        pytest.param({}, _queued("http://site.test/a"), 0,
                     parse_rules(b"User-agent: *\nDisallow: /a\n", "crawler", 1.0),
                     "robots", id="robots"),
    ],
)  # fmt: skip
def test_at_dequeue(
    crawl: dict[str, object], queued: QueuedURL, pages: int, rules: RobotsRules, reason: str
) -> None:
    assert _rules(**crawl).at_dequeue(queued, pages, rules) == reason


def test_query_variants_are_counted_only_for_urls_otherwise_fetched() -> None:
    rules = _rules(max_query_variants=1)
    disallow = parse_rules(b"User-agent: *\nDisallow: /s?x\n", "crawler", 1.0)
    assert rules.at_dequeue(_queued("http://site.test/s?x=1"), 0, disallow) == "robots"
    assert rules.at_dequeue(_queued("http://site.test/s?y=1"), 0, ALLOW) is None
    assert rules.at_dequeue(_queued("http://site.test/s?y=2"), 0, ALLOW) == "trap"


def test_sitemaps_are_asked_only_what_every_request_is() -> None:
    rules = _rules(include=["/docs/"], max_pages_per_host=3)
    sitemap = QueuedURL(1, "http://site.test/sitemap.xml.gz", "site.test", 0, sitemap=0)
    disallow = parse_rules(b"User-agent: *\nDisallow: /sitemap\n", "crawler", 1.0)
    assert rules.at_dequeue(sitemap, 0, ALLOW) is None  # not include's, not extension's
    assert rules.at_dequeue(sitemap, 0, disallow) == "robots"
    assert rules.at_dequeue(sitemap, 3, ALLOW) == "max-pages"
    page = QueuedURL(2, "http://site.test/sitemap.xml.gz", "site.test", 0)
    assert rules.at_dequeue(page, 0, ALLOW) == "include"
