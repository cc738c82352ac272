"""robots.txt rules as RFC 9309 has them (group choice, wildcards, precedence, statuses)."""

from __future__ import annotations

import pytest

from crawler.robots import parse_rules, rules_from_status

ROBOTS = b"""
User-agent: crawl
Disallow: /crawl-group

User-agent: Crawler
User-agent: other
Disallow: /ours
Allow: /ours/open$
Disallow: /*.pdf$
Crawl-delay: 2

User-agent: *
Disallow: /
"""


@pytest.mark.parametrize(
    ("token", "path", "allowed"),
    [
        pytest.param("crawler", "/ours/x", False, id="own-group-disallow"),
        pytest.param("crawler", "/ours/open", True, id="allow-longer-match"),
        pytest.param("crawler", "/ours/open/more", False, id="dollar-anchor"),
        pytest.param("crawler", "/doc.pdf", False, id="star-wildcard"),
        pytest.param("crawler", "/doc.pdf?x", True, id="wildcard-with-end"),
        pytest.param("crawler", "/crawl-group", True, id="prefix-group-is-not-ours"),
        pytest.param("crawle", "/ours/open", False, id="no-own-group-star-applies"),
        pytest.param("crawle", "/anything", False, id="star-group"),
        pytest.param("other", "/ours/x", False, id="group-with-two-agents"),
    ],
)
def test_group_and_rule_matching(token: str, path: str, allowed: bool) -> None:
    rules = parse_rules(ROBOTS, token, ttl=60)
    assert rules.allows(f"http://site.test{path}") is allowed


def test_crawl_delay_of_our_group() -> None:
    assert parse_rules(ROBOTS, "crawler", ttl=60).crawl_delay == 2.0
    assert parse_rules(ROBOTS, "nobody", ttl=60).crawl_delay is None


def test_allow_wins_a_tie_and_bom_is_ignored() -> None:
    rules = parse_rules(b"\xef\xbb\xbfUser-agent: *\nDisallow: /p\nAllow: /p\n", "x", ttl=60)
    assert rules.allows("http://site.test/p")


def test_garbage_is_no_rules() -> None:
    rules = parse_rules(b"\x00\xff<html>not robots</html>\n" * 1000, "x", ttl=60)
    assert rules.allows("http://site.test/anything")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param(404, "allow-all", id="404"),
        pytest.param(401, "allow-all", id="401"),
        pytest.param(403, "allow-all", id="403"),
        pytest.param(500, None, id="500-retry"),
        pytest.param(503, None, id="503-retry"),
        pytest.param(None, None, id="no-answer-retry"),
        pytest.param(200, "ok", id="200"),
    ],
)
def test_status_meaning(status: int | None, expected: str | None) -> None:
    rules = rules_from_status(status, b"User-agent: *\nDisallow: /x\n", "bot", ttl=60)
    assert (rules.status if rules else None) == expected
