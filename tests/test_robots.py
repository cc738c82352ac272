"""robots.txt rules as RFC 9309 has them: groups, matching, encoding, leniencies, statuses."""

from __future__ import annotations

import math
import pickle
import random
import re

import pytest
from protego import Protego

from crawler.robots.matcher import RuleMatcher
from crawler.robots.origins import (
    MAX_ROBOTS_BYTES,
    RobotsBook,
    RobotsRules,
    parse_rules,
    rules_from_status,
)
from crawler.urls import normalize


def allowed(robots: str | bytes, path: str, token: str = "crawler") -> bool:
    """Whether `token` may fetch `path`, asked with the raw URL and with the crawler's
    normalized form of it, which must agree."""
    body = robots.encode() if isinstance(robots, str) else robots
    rules = parse_rules(body, token, expires=0.0)
    url = "http://site.test" + path
    verdict = rules.allows(url)
    normalized = normalize(url)
    assert normalized is not None
    assert rules.allows(str(normalized)) is verdict, "raw and normalized URL disagree"
    return verdict


# -- RFC 9309's own examples --------------------------------------------------------------

RFC_5_1 = """\
User-Agent: *
Disallow: *.gif$
Disallow: /example/
Allow: /publications/

User-Agent: foobot
Disallow:/
Allow:/example/page.html
Allow:/example/allowed.gif

User-Agent: barbot
User-Agent: bazbot
Disallow: /example/page.html

User-Agent: quxbot

EOF
"""


@pytest.mark.parametrize(
    ("token", "path", "expected"),
    [
        pytest.param("foobot", "/example/page.html", True, id="foobot-allowed-page"),
        pytest.param("foobot", "/example/allowed.gif", True, id="foobot-allowed-gif"),
        pytest.param("foobot", "/example/other.html", False, id="foobot-rest-disallowed"),
        pytest.param("foobot", "/", False, id="foobot-root-disallowed"),
        pytest.param("foobot", "/publications/x", False, id="foobot-not-star-group"),
        pytest.param("barbot", "/example/page.html", False, id="barbot-page"),
        pytest.param("barbot", "/example/page.html5", False, id="barbot-page-prefix"),
        pytest.param("barbot", "/example/other", True, id="barbot-rest-allowed"),
        pytest.param("barbot", "/a.gif", True, id="barbot-gif-allowed"),
        pytest.param("bazbot", "/example/page.html", False, id="bazbot-shares-group"),
        pytest.param("bazbot", "/x", True, id="bazbot-rest-allowed"),
        pytest.param("quxbot", "/example/page.html", True, id="quxbot-empty-group"),
        pytest.param("quxbot", "/a.gif", True, id="quxbot-gif"),
        pytest.param("otherbot", "/a.gif", False, id="star-gif-anywhere"),
        pytest.param("otherbot", "/x/y/a.gif", False, id="star-gif-deep"),
        pytest.param("otherbot", "/a.gif?x", True, id="star-gif-anchored"),
        pytest.param("otherbot", "/example/", False, id="star-example"),
        pytest.param("otherbot", "/publications/a", True, id="star-publications"),
        pytest.param("otherbot", "/other", True, id="star-no-match"),
        pytest.param("FooBot", "/example/other.html", False, id="token-case-insensitive"),
    ],
)
def test_rfc_5_1_simple_example(token: str, path: str, expected: bool) -> None:
    assert allowed(RFC_5_1, path, token) is expected


RFC_5_2 = """\
User-Agent: foobot
Allow: /example/page/
Disallow: /example/page/disallowed.gif
"""


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("/example/page/", True, id="shorter-allow"),
        pytest.param("/example/page/other.gif", True, id="allow-prefix"),
        pytest.param("/example/page/disallowed.gif", False, id="longer-disallow-wins"),
        pytest.param("/example/page/disallowed.gif?x=1", False, id="longer-disallow-query"),
    ],
)
def test_rfc_5_2_longest_match(path: str, expected: bool) -> None:
    assert allowed(RFC_5_2, path, "foobot") is expected


def test_rfc_2_2_1_groups_of_one_agent_merge() -> None:
    robots = (
        "user-agent: ExampleBot\ndisallow: /foo\ndisallow: /bar\n\n"
        "user-agent: ExampleBot\ndisallow: /baz\n"
    )
    for path in ("/foo", "/bar", "/baz"):
        assert not allowed(robots, path, "examplebot"), path
    assert allowed(robots, "/qux", "examplebot")


@pytest.mark.parametrize(
    ("robots", "path", "expected"),
    [
        # 2.2.2: percent-encoding table (pattern as written, URL as crawled)
        pytest.param("/foo/bar?baz=quz", "/foo/bar?baz=quz", False, id="2.2.2-query"),
        pytest.param(
            "/foo/bar?baz=https://foo.bar",
            "/foo/bar?baz=https%3A%2F%2Ffoo.bar",
            False,
            id="2.2.2-reserved-in-query",
        ),
        pytest.param("/foo/bar/ツ", "/foo/bar/%E3%83%84", False, id="2.2.2-utf8-pattern"),
        pytest.param("/foo/bar/%E3%83%84", "/foo/bar/ツ", False, id="2.2.2-utf8-url"),
        pytest.param("/foo/bar/%e3%83%84", "/foo/bar/%E3%83%84", False, id="hex-case"),
        pytest.param("/foo/bar/%62%61%7A", "/foo/bar/baz", False, id="2.2.2-unreserved"),
        pytest.param("/foo/bar/baz", "/foo/bar/%62%61%7A", False, id="unreserved-in-url"),
        pytest.param("/foo/bar/%2F", "/foo/bar//", True, id="reserved-slash-not-decoded"),
        # 2.2.3: special characters
        pytest.param("/this/path/exactly$", "/this/path/exactly", False, id="2.2.3-dollar"),
        pytest.param("/this/path/exactly$", "/this/path/exactly/", True, id="2.2.3-dollar-end"),
        pytest.param("/this/*/exactly", "/this/a/b/exactly", False, id="2.2.3-star"),
        pytest.param("/this/*/exactly", "/this/exactly", True, id="2.2.3-star-needs-slashes"),
        pytest.param("/this/*/exactly", "/this//exactly/more", False, id="2.2.3-star-empty"),
        pytest.param("/ # comment in line", "/x", False, id="2.2.3-comment-in-line"),
        pytest.param(
            "/path/file-with-a-%2A.html",
            "/path/file-with-a-*.html",
            False,
            id="2.2.3-encoded-star",
        ),
        pytest.param("/path/file-with-a-%2A.html", "/path/file-with-a-x.html", True, id="not-*"),
        pytest.param("/path/foo-%24", "/path/foo-$", False, id="2.2.3-encoded-dollar"),
        pytest.param("/path/foo-$x", "/path/foo-$x", False, id="inner-dollar-literal"),
        pytest.param("/path/foo-$x", "/path/foo-", True, id="inner-dollar-not-anchor"),
    ],
)
def test_rfc_2_2_2_and_2_2_3_matching(robots: str, path: str, expected: bool) -> None:
    assert allowed(f"User-agent: *\nDisallow: {robots}\n", path) is expected


def test_rfc_2_2_2_robots_txt_is_always_allowed() -> None:
    rules = parse_rules(b"User-agent: *\nDisallow: /\n", "crawler", expires=0.0)
    assert rules.allows("http://site.test/robots.txt")
    assert not rules.allows("http://site.test/robots.txt.bak")


@pytest.mark.parametrize(
    ("robots", "path", "expected"),
    [
        pytest.param("Allow: /p\nDisallow: /p", "/p", True, id="tie-allow-wins"),
        pytest.param("Disallow: /p\nAllow: /p", "/p", True, id="tie-allow-wins-either-order"),
        pytest.param("Disallow: /p*\nAllow: /p", "/px", False, id="star-counts-as-octet"),
        pytest.param("Disallow: /p$\nAllow: /p", "/p", False, id="dollar-counts-as-octet"),
        pytest.param("Allow: /a/*/c\nDisallow: /a/", "/a/b/c", True, id="wildcard-longer"),
        pytest.param("Allow: /a/*/c\nDisallow: /a/b/c/d", "/a/b/c/d", False, id="literal-longer"),
        pytest.param("Disallow: /*?", "/x?a", False, id="any-query"),
        pytest.param("Disallow: /*?", "/x", True, id="no-query"),
        pytest.param("Disallow: /", "/", False, id="root"),
        pytest.param("Disallow: /x", "?x", True, id="empty-path-is-slash"),
        pytest.param("Disallow: /?x", "?x", False, id="empty-path-with-query"),
        pytest.param("Disallow: /A", "/a", True, id="case-sensitive"),
        pytest.param("Disallow: x", "/x", True, id="pattern-without-slash-matches-nothing"),
        pytest.param("Disallow: *x", "/ax", False, id="pattern-starting-with-star"),
        pytest.param("Disallow: /a**b$", "/a-b", False, id="double-star"),
        pytest.param("Disallow: /a*$", "/a/b", False, id="star-dollar"),
        pytest.param("Disallow: /a*b*a$", "/a-b-a-b", True, id="anchored-needs-end"),
        pytest.param("Disallow: /a*b*a$", "/a-b-a-b-a", False, id="anchored-later-piece"),
        pytest.param("Disallow: /a b", "/a%20b", False, id="space-in-pattern"),
        pytest.param("Disallow: /x#y", "/xz", False, id="value-cut-at-hash"),
        pytest.param("Disallow: /a\nDisallow:", "/a", False, id="empty-disallow-is-no-rule"),
        pytest.param("Disallow:", "/a", True, id="empty-disallow-allows-all"),
        pytest.param("Allow:\nDisallow: /a", "/a", False, id="empty-allow-is-no-rule"),
    ],
)
def test_precedence_and_patterns(robots: str, path: str, expected: bool) -> None:
    assert allowed(f"User-agent: *\n{robots}\n", path) is expected


# -- groups (RFC 9309 2.1, 2.2.1) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("robots", "token", "path", "expected"),
    [
        pytest.param(
            "User-agent: FooBot\nUnknown: x\nUser-agent: *\nDisallow: /\n",
            "foobot",
            "/",
            False,
            id="unknown-line-does-not-split",
        ),
        pytest.param(
            "User-agent: FooBot\nSitemap: https://s.test/map.xml\nUser-agent: *\nDisallow: /\n",
            "foobot",
            "/",
            False,
            id="sitemap-does-not-split",
        ),
        pytest.param(
            "User-agent: FooBot\nCrawl-delay: 3\nUser-agent: *\nDisallow: /\n",
            "foobot",
            "/",
            False,
            id="crawl-delay-does-not-split",
        ),
        pytest.param(
            "User-agent: FooBot\n# note\n\nUser-agent: *\nDisallow: /\n",
            "foobot",
            "/",
            False,
            id="comment-and-blank-do-not-split",
        ),
        pytest.param(
            "User-agent: FooBot\nDisallow: /a\nUser-agent: BarBot\nDisallow: /b\n",
            "foobot",
            "/b",
            True,
            id="user-agent-after-rule-starts-group",
        ),
        pytest.param(
            "User-agent: FooBot\nDisallow: /a\nUser-agent: BarBot\nDisallow: /b\n",
            "barbot",
            "/a",
            True,
            id="new-group-has-own-rules",
        ),
        pytest.param(
            "User-agent: FooBot\nDisallow:\nUser-agent: BarBot\nDisallow: /b\n",
            "foobot",
            "/b",
            True,
            id="empty-disallow-ends-agent-lines",
        ),
        pytest.param(
            "Disallow: /a\nUser-agent: *\nDisallow: /b\n",
            "crawler",
            "/a",
            True,
            id="rules-before-any-agent-ignored",
        ),
        pytest.param(
            "User-agent: crawler\nDisallow: /a\nUser-agent: other\nDisallow: /b\n"
            "User-agent: CRAWLER\nDisallow: /c\n",
            "crawler",
            "/c",
            False,
            id="same-token-groups-merge",
        ),
        pytest.param(
            "User-agent: crawler\nDisallow: /a\nUser-agent: other\nDisallow: /b\n"
            "User-agent: CRAWLER\nDisallow: /c\n",
            "crawler",
            "/a",
            False,
            id="same-token-groups-merge-first",
        ),
        pytest.param(
            "User-agent: *\nDisallow: /a\nUser-agent: x\nDisallow: /\nUser-agent: *\n"
            "Disallow: /b\n",
            "crawler",
            "/b",
            False,
            id="star-groups-merge",
        ),
        pytest.param(
            "User-agent: crawl\nDisallow: /\nUser-agent: *\nAllow: /\n",
            "crawler",
            "/x",
            True,
            id="prefix-of-token-is-not-ours",
        ),
        pytest.param(
            "User-agent: crawlerbot\nDisallow: /\n",
            "crawler",
            "/x",
            True,
            id="longer-token-is-not-ours",
        ),
        pytest.param(
            "User-agent: crawler\nDisallow: /\n",
            "crawl",
            "/x",
            True,
            id="whole-token-both-ways",
        ),
        pytest.param(
            "User-agent: Crawler/1.0\nDisallow: /\n",
            "crawler",
            "/x",
            False,
            id="agent-with-version",
        ),
        pytest.param(
            "User-agent: crawler\nAllow: /x\nUser-agent: *\nDisallow: /\n",
            "crawler",
            "/y",
            True,
            id="own-group-replaces-star",
        ),
        pytest.param(
            "User-agent: other\nDisallow: /\n",
            "crawler",
            "/x",
            True,
            id="no-own-no-star-allows-all",
        ),
        pytest.param("", "crawler", "/x", True, id="empty-file"),
    ],
)
def test_groups(robots: str, token: str, path: str, expected: bool) -> None:
    assert allowed(robots, path, token) is expected


def test_protego_splits_the_group_we_do_not() -> None:
    """Why we parse ourselves: Protego lets an unknown line end a run of user-agent lines."""
    robots = "User-agent: FooBot\nUnknown: x\nUser-agent: *\nDisallow: /\n"
    assert Protego.parse(robots).can_fetch("http://site.test/", "foobot")
    assert not allowed(robots, "/", "foobot")


# -- leniencies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "robots",
    [
        pytest.param("user-agent crawler\nDisallow: /x", id="user-agent-no-colon"),
        pytest.param("User-agent: crawler\ndisallow /x", id="disallow-no-colon"),
        pytest.param("useragent: crawler\nDisallow: /x", id="useragent"),
        pytest.param("user agent: crawler\nDisallow: /x", id="user-space-agent"),
        pytest.param("user agent crawler\nDisallow: /x", id="user-space-agent-no-colon"),
        pytest.param("User-agent: crawler\ndissallow: /x", id="dissallow"),
        pytest.param("User-agent: crawler\ndissalow: /x", id="dissalow"),
        pytest.param("User-agent: crawler\ndisalow: /x", id="disalow"),
        pytest.param("User-agent: crawler\ndiasllow: /x", id="diasllow"),
        pytest.param("User-agent: crawler\ndisallaw: /x", id="disallaw"),
        pytest.param("  User-Agent  :  crawler  \n\tDISALLOW\t:\t/x\t", id="whitespace"),
        pytest.param("User-agent:crawler\r\nDisallow:/x\r\n", id="crlf"),
        pytest.param("User-agent: crawler\rDisallow: /x\r", id="cr"),
        pytest.param("User-agent: crawler # us\nDisallow: /x # private", id="comments"),
    ],
)
def test_leniencies(robots: str) -> None:
    assert not allowed(robots, "/x/y")
    assert allowed(robots, "/y")


@pytest.mark.parametrize(
    "robots",
    [
        pytest.param("User-agent: *\nDisallow all of /x", id="prose-is-no-rule"),
        pytest.param("User-agent: *\nDisallowed: /x", id="other-key"),
        pytest.param("User-agent: *\nDis allow: /x", id="split-key"),
        pytest.param("User-agent: *\n: /x", id="no-key"),
    ],
)
def test_not_lenient(robots: str) -> None:
    assert allowed(robots, "/x")


# -- crawl-delay and sitemaps -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("robots", "token", "delay"),
    [
        pytest.param("User-agent: crawler\nCrawl-delay: 2\n", "crawler", 2.0, id="own-group"),
        pytest.param("User-agent: *\nCrawl-delay: 0.5\n", "crawler", 0.5, id="star-group"),
        pytest.param(
            "User-agent: crawler\nDisallow: /a\nUser-agent: *\nCrawl-delay: 9\n",
            "crawler",
            None,
            id="own-group-without-delay",
        ),
        pytest.param(
            "User-agent: crawler\nCrawl-delay: 5\nUser-agent: *\nDisallow: /\n",
            "crawler",
            5.0,
            id="between-agent-lines",
        ),
        pytest.param(
            "User-agent: crawler\nCrawl-delay: 5\nUser-agent: *\nDisallow: /\n",
            "other",
            5.0,
            id="between-agent-lines-star",
        ),
        pytest.param(
            "User-agent: crawler\nCrawl-delay: 1\nUser-agent: x\nDisallow: /\n"
            "User-agent: crawler\nCrawl-delay: 4\n",
            "crawler",
            4.0,
            id="merged-groups-largest",
        ),
        pytest.param("Crawl-delay: 7\nUser-agent: *\nDisallow: /a\n", "x", None, id="before-ua"),
        pytest.param("User-agent: *\nCrawl delay: 3\n", "x", 3.0, id="crawl-space-delay"),
        pytest.param("User-agent: *\nCrawl-delay: soon\n", "x", None, id="not-a-number"),
        pytest.param("User-agent: *\nCrawl-delay: -1\n", "x", None, id="negative"),
        pytest.param("User-agent: *\nCrawl-delay: nan\n", "x", None, id="nan"),
        pytest.param("User-agent: *\nCrawl-delay: inf\n", "x", None, id="infinite"),
        pytest.param("User-agent: *\nCrawl-delay: x\nCrawl-delay: 1\n", "x", 1.0, id="bad-then-ok"),
    ],
)
def test_crawl_delay(robots: str, token: str, delay: float | None) -> None:
    assert parse_rules(robots.encode(), token, expires=0.0).crawl_delay == delay


def test_sitemaps_are_collected_from_everywhere() -> None:
    robots = b"""\
Sitemap: https://site.test/before.xml
User-agent: other
Sitemap: https://site.test/in-other.xml
Disallow: /
User-agent: *
site-map: http://site.test/misspelt.xml
Sitemap https://site.test/no-colon.xml
Sitemap: /relative.xml
Sitemap:
Sitemap: https://site.test/before.xml
sitemap: HTTPS://Site.test/Case.xml # comment
"""
    assert parse_rules(robots, "crawler", expires=0.0).sitemaps == (
        "https://site.test/before.xml",
        "https://site.test/in-other.xml",
        "http://site.test/misspelt.xml",
        "https://site.test/no-colon.xml",
        "HTTPS://Site.test/Case.xml",
    )


# -- the body: BOM, garbage, size -----------------------------------------------------------


def test_bom_is_ignored() -> None:
    assert not allowed(b"\xef\xbb\xbfUser-agent: *\nDisallow: /p\n", "/p")


def test_bad_bytes_are_replaced() -> None:
    robots = b"User-agent: *\nDisallow: /\xff\xfe\nDisallow: /\xe3\x83\x84\n"
    assert not allowed(robots, "/%EF%BF%BD%EF%BF%BD")
    assert not allowed(robots, "/ツ")
    assert allowed(robots, "/x")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(bytes(range(256)) * 400, id="binary"),
        pytest.param(b"\x00\xff<html>not robots</html>\n" * 1000, id="binary-html"),
        pytest.param(
            b"<html><body><pre>\nDisallow: /\n</pre><p>User-agent: *</p></body></html>",
            id="html-page",
        ),
    ],
)
def test_garbage_is_no_rules(body: bytes) -> None:
    rules = parse_rules(body, "crawler", expires=0.0)
    assert rules.status == "ok"
    assert rules.allows("http://site.test/anything")


def test_size_cap() -> None:
    head = b"User-agent: *\nDisallow: /early\n"
    last = b"Disallow: /last\n"
    filler = b"# " + b"x" * 97 + b"\n"
    cut = b"Allow: /early/but-cut-off-here\n"  # the cap falls after "Allow: /early/"
    lines, rest = divmod(MAX_ROBOTS_BYTES - 14 - len(head) - len(last), len(filler))
    body = head + filler * lines + b"#" * (rest - 1) + b"\n" + last
    assert len(body) == MAX_ROBOTS_BYTES - len(b"Allow: /early/")
    past = b"Disallow: /late\n"
    robots = body + cut + past
    assert not allowed(robots, "/early/x")  # the Allow cut by the cap would read "/early/"
    assert not allowed(robots, "/last")
    assert allowed(robots, "/late")


# -- statuses, expiry, the book, pickling -----------------------------------------------------


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
    rules = rules_from_status(status, b"User-agent: *\nDisallow: /x\n", "bot", expires=12.5)
    assert (rules.status if rules else None) == expected
    if rules is not None:
        assert rules.expires == 12.5


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param("allow-all", True, id="allow-all"),
        pytest.param("disallow-all", False, id="disallow-all"),
        pytest.param("unreachable", False, id="unreachable"),
    ],
)
def test_rules_without_a_file(status: str, expected: bool) -> None:
    rules = RobotsRules(status=status)  # type: ignore[arg-type]
    assert rules.allows("http://site.test/x") is expected
    assert rules.expires == math.inf


def test_book_expires_by_the_clock_it_is_given() -> None:
    book = RobotsBook()
    assert book.wait("http://a.test", "a.test")
    assert not book.wait("http://a.test", "www.a.test")
    rules = RobotsRules(status="allow-all", expires=100.0)
    assert book.settle("http://a.test", rules) == {"a.test", "www.a.test"}
    assert book.rules("http://a.test", now=99.9) is rules
    assert book.rules("http://a.test", now=100.0) is None
    assert book.rules("http://b.test", now=0.0) is None


@pytest.mark.parametrize("token", ["foobot", "otherbot"])
def test_rules_pickle(token: str) -> None:
    """Rules may be built in another process: they pickle, and the copy answers alike."""
    robots = RFC_5_1 + "Sitemap: https://s.test/m.xml\nUser-agent: *\nDisallow: /*/x*y$\n"
    rules = parse_rules(robots.encode(), token, expires=3.0)
    copy = pickle.loads(pickle.dumps(rules))
    assert copy.sitemaps == rules.sitemaps == ("https://s.test/m.xml",)
    assert copy.expires == 3.0
    verdicts = []
    for path in ("/example/page.html", "/example/allowed.gif", "/a.gif", "/a/x-y", "/a/x-y/"):
        url = "http://site.test" + path
        assert copy.allows(url) is rules.allows(url), path
        verdicts.append(rules.allows(url))
    assert len(set(verdicts)) == 2


# -- the matcher against references, on random rule sets ------------------------------------


class Reference:
    """Brute force: every rule as a regex, longest pattern wins, Allow wins a tie."""

    def __init__(self, rules: list[tuple[bool, str]]) -> None:
        self._rules = []
        for allow, pattern in rules:
            anchored = pattern.endswith("$")
            body = pattern[:-1] if anchored else pattern
            regex = ".*".join(re.escape(piece) for piece in body.split("*"))
            compiled = re.compile(regex + (r"\Z" if anchored else ""), re.DOTALL)
            self._rules.append((len(pattern), allow, compiled))

    def allows(self, path: str) -> bool:
        best = max(((n, allow) for n, allow, rx in self._rules if rx.match(path)), default=None)
        return best is None or best[1]


def _random_pattern(rng: random.Random) -> str:
    pattern = rng.choice("/*") + "".join(rng.choice("ab/*.?=") for _ in range(rng.randint(0, 6)))
    return pattern + "$" if rng.random() < 0.25 else pattern


def _random_path(rng: random.Random) -> str:
    return "/" + "".join(rng.choice("ab/.?=") for _ in range(rng.randint(0, 9)))


def test_matcher_agrees_with_brute_force_and_protego() -> None:
    rng = random.Random(9309)
    checked = 0
    for _ in range(3000):
        rules = [(rng.random() < 0.4, _random_pattern(rng)) for _ in range(rng.randint(1, 8))]
        matcher = RuleMatcher(rules)
        text = "User-agent: *\n" + "".join(
            f"{'Allow' if allow else 'Disallow'}: {pattern}\n" for allow, pattern in rules
        )
        protego = Protego.parse(text)
        ours = parse_rules(text.encode(), "crawler", expires=0.0)
        reference = Reference(rules)
        for _ in range(6):
            path = _random_path(rng)
            expected = reference.allows(path)
            assert matcher.allows(path) is expected, (rules, path)
            assert ours.allows("http://site.test" + path) is expected, (rules, path)
            if "?" not in path and path != "/robots.txt":  # Protego quotes "?" differently
                assert protego.can_fetch("http://site.test" + path, "crawler") is expected, (
                    rules,
                    path,
                )
            checked += 1
    assert checked == 18_000


def test_matcher_agrees_with_brute_force_on_big_rule_sets() -> None:
    """Many rules at once, so that the bins (by head, by piece slice) fill up and are pruned."""
    rng = random.Random(2022)
    words = ["ab", "ba", "abc", "cab", "x=1", "?q", "/a/", ".pdf", "&s="]
    for _ in range(20):
        rules = []
        for _ in range(300):
            pieces = [rng.choice(words) for _ in range(rng.randint(1, 4))]
            joiners = [rng.choice(["", "", "*"]) for _ in pieces]
            pattern = "/" + "".join(j + p for j, p in zip(joiners, pieces, strict=True))
            rules.append((rng.random() < 0.3, pattern + ("$" if rng.random() < 0.2 else "")))
        matcher, reference = RuleMatcher(rules), Reference(rules)
        for _ in range(200):
            path = "/" + "".join(rng.choice(words) for _ in range(rng.randint(0, 6)))
            assert matcher.allows(path) is reference.allows(path), path


def test_patterns_match_the_urls_they_name_however_encoded() -> None:
    """A rule naming a path, written with any mix of escapes, literal characters and
    non-ASCII, disallows that path as the crawler normalizes it, and nothing shorter."""
    rng = random.Random(3986)
    alphabet = [
        *"ab/~-_:@!&'(),;=+*$",
        "x.y",  # no lone "." or ".." segment: yarl removes dot-segments
        "ツ",
        "é",
        "%41",
        "%7e",
        "%7E",
        "%2F",
        "%2f",
        "%3A",
        "%24",
        "%2A",
        "%26",
        "%3D",
        "%2B",
        "%3F",
        "%25",
        "%zz",
        "%",
        "[",
        "]",
        "|",
        '"',
    ]
    for _ in range(2000):
        path = "/" + "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
        if rng.random() < 0.5:
            path += "?" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        if path.endswith(("$", "?")):
            path += "a"  # a final "$" would be the anchor; yarl drops an empty query
        url = normalize("http://site.test" + path)
        assert url is not None
        rules = parse_rules(f"User-agent: *\nDisallow: {path}$\n".encode(), "c", expires=0.0)
        assert not rules.allows(str(url)), (path, str(url))
        assert not rules.allows("http://site.test" + path), path
        if "*" not in path:
            assert rules.allows(str(url) + "b"), (path, str(url))


def test_a_host_that_waits_no_more_lets_the_next_ask_fetch() -> None:
    book = RobotsBook()
    assert book.wait("http://a.test", "a.test")  # the first asks: it fetches
    assert not book.wait("http://a.test", "a.test")  # under way: wait
    book.forget("a.test")  # the run lost the host, and its fetch with it
    assert book.wait("http://a.test", "a.test")  # asked again: fetched anew, not waited on
