"""The link-target cache gives exactly what normalize() gives, page after page; a page of
many links is extracted in steps, with the same outcome; what a page row keeps for the report
(canonical, alternates, robots, anchor text) is resolved and normalized like links."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from yarl import URL

from crawler.config import Config
from crawler.extract.page import LINKS_PER_STEP, Extractor, KnownURLs
from crawler.extract.targets import LinkTargets
from crawler.fetch import Response
from crawler.frontier.skips import Scope
from crawler.records import Discovered, Outcome, QueuedURL
from crawler.urls import host_key, normalize

SEGMENTS = ["", ".", "..", "a", "b", "c%41", "d;p", "e.html", "%2e%2E", "x%2Fy", "ü", "a:b", "\\"]
HOSTS = ["a.test", "b.a.test", "A.Test:8080", "c.test", "[::1]", "127.0.0.1:81"]


def _path(rng: random.Random) -> str:
    return "/".join(rng.choice(SEGMENTS) for _ in range(rng.randint(0, 4)))


def _base(rng: random.Random) -> URL | None:
    query = rng.choice(["", "?q=1", "?", "?a/b"])
    scheme = rng.choice(["http", "https"])
    return normalize(f"{scheme}://{rng.choice(HOSTS)}/{_path(rng)}{query}")


def _absolute(rng: random.Random, path: str) -> str:
    scheme = rng.choice(["http", "https", "HTTP"])
    host = rng.choice(["a.test", "B.a.test", "x-y.test", "127.0.1.5", "a..test", "-a.test"])
    port = rng.choice(["", ":80", ":443", ":8080", ":0", ":080", ":99999", ":65535"])
    tail = rng.choice(["", "#f", "#", "?q", "/#x/../"])
    return f"{scheme}://{host}{port}/{path}{tail}"


def _href(rng: random.Random) -> str:
    path = _path(rng)
    odd = ["", ".", "..", "./", "../..", "mailto:x", "http://", "//", "\u3000" + path, "/\\" + path]
    return rng.choice(
        [
            path,
            "/" + path,
            "//" + rng.choice(["a.test", "x.test", ""]) + "/" + path,
            "?" + path,
            "#" + path,
            "http:" + path,
            "https://a.test/" + path,
            _absolute(rng, path),
            path + rng.choice(["#", "#a/../b", "/..", "/.", "/../.."]),
            " " + path + "\t",
            rng.choice(odd),
        ]
    )


def test_cached_targets_equal_normalize() -> None:
    targets = LinkTargets(size=300)  # small: the cache fills and is cleared many times
    rng = random.Random(2026)
    checked = 0
    for _ in range(2000):
        base = _base(rng)
        if base is None:
            continue
        resolve = targets.resolver(base)
        for _ in range(20):
            href = _href(rng)
            target, expected = resolve(href), normalize(href, base)
            checked += 1
            if expected is None:
                assert target is None, (str(base), href)
                continue
            assert target is not None, (str(base), href)
            assert target.url == str(expected), (str(base), href)
            assert target.host == host_key(expected)
    assert checked > 30_000


def test_known_urls_pass_on_only_new_or_shallower_finds() -> None:
    known = KnownURLs(limit=2)
    a1, b1, c1 = (Discovered(f"http://a.test/{n}", "a.test", 1, "queued") for n in "abc")
    assert known.news([a1, b1]) == [a1, b1]
    assert known.covers(a1.url, 1)
    assert known.covers(a1.url, 2)
    assert not known.covers(a1.url, 0)
    assert known.news([a1, b1._replace(depth=2)]) == []  # no deeper: nothing would change
    shallower = a1._replace(depth=0)
    assert known.news([shallower]) == [shallower]  # a lesser depth is news (and remembered)
    assert known.news([a1]) == []
    assert known.news([c1]) == [c1]  # full: c is passed on, not remembered
    assert known.news([c1]) == [c1]


def _extractor() -> Extractor:
    config = Config.from_dict({"crawl": {"seeds": ["http://a.test/"]}}, source=Path("t.toml"))
    return Extractor(config, Scope(config.crawl))


def _html_response(
    body: str, robots_tags: tuple[str, ...] = (), content_type: str = "text/html"
) -> Response:
    return Response(
        url="http://a.test/",
        status=200,
        content_type=content_type,
        charset="utf-8",
        location=None,
        retry_after=None,
        robots_tags=robots_tags,
        body=body.encode(),
        truncated=False,
        elapsed_ms=1,
        answered_at=0.0,
    )


def test_a_page_of_many_links_is_extracted_in_steps_of_a_slice_each() -> None:
    links = 5 * LINKS_PER_STEP + 7
    body = "".join(f'<a href="/p/{n}">{n}</a>' for n in range(links))
    page, response = QueuedURL(1, "http://a.test/", "a.test", 0), _html_response(body)
    steps = _extractor().extract_steps(page, response)
    pauses = 0
    while True:
        try:
            next(steps)
        except StopIteration as done:
            stepped = done.value
            break
        pauses += 1
    # After the parse, then within each of the two passes over the links.
    assert pauses == 1 + 2 * (links // LINKS_PER_STEP)
    whole = _extractor().extract(page, response)
    assert stepped.links == whole.links
    assert stepped.discovered == whole.discovered
    assert [d.url for d in whole.discovered] == [f"http://a.test/p/{n}" for n in range(links)]


def test_a_page_of_few_links_is_extracted_in_one_step() -> None:
    body = "".join(f'<a href="/p/{n}">{n}</a>' for n in range(LINKS_PER_STEP - 1))
    page, response = QueuedURL(1, "http://a.test/", "a.test", 0), _html_response(body)
    with pytest.raises(StopIteration) as done:
        next(_extractor().extract_steps(page, response))
    assert len(done.value.value.discovered) == LINKS_PER_STEP - 1


PAGE = "http://a.test/dir/page.html"


def _outcome(
    body: str, robots_tags: tuple[str, ...] = (), content_type: str = "text/html"
) -> Outcome:
    queued = QueuedURL(1, PAGE, "a.test", 0)
    return _extractor().extract(queued, _html_response(body, robots_tags, content_type))


@pytest.mark.parametrize(
    ("head", "canonical"),
    [
        pytest.param("", None, id="none"),
        pytest.param('<link rel="canonical" href="other.html#top">', "http://a.test/dir/other.html",
                     id="relative"),
        pytest.param('<base href="/b/"><link rel="canonical" href="c">', "http://a.test/b/c",
                     id="relative-to-base-href"),
        pytest.param('<link rel="canonical" href="HTTP://A.TEST:80/x/../y">', "http://a.test/y",
                     id="normalized"),
        pytest.param('<link rel="canonical" href="page.html">', PAGE, id="itself"),
        pytest.param('<link rel="canonical" href="mailto:x@a.test">', None, id="not-http"),
        pytest.param('<link rel="canonical" href="">', None, id="empty"),
    ],
)  # fmt: skip
def test_canonical_is_resolved_and_normalized(head: str, canonical: str | None) -> None:
    outcome = _outcome(f"<head>{head}</head><p>x")
    assert outcome.page is not None
    assert outcome.page.canonical == canonical


def test_alternates_are_resolved_against_the_base_and_kept_once() -> None:
    body = (
        '<base href="https://b.test/en/"><link rel="alternate" hreflang="de" href="../de/">'
        '<link rel="alternate" hreflang="de" href="https://B.test/de/#x">'
        '<link rel="alternate" hreflang="fr" href="javascript:x">'
        '<link rel="alternate" hreflang="x-default" href="/">'
    )
    assert _outcome(body).alternates == [
        (PAGE, "de", "https://b.test/de/"),
        (PAGE, "x-default", "https://b.test/"),
    ]


@pytest.mark.parametrize(
    ("body", "headers", "robots"),
    [
        pytest.param("<p>x", (), None, id="none"),
        pytest.param('<meta name="robots" content="NOINDEX, Follow">', (), "noindex, follow",
                     id="meta-lower-cased"),
        pytest.param("<p>x", ("NoArchive",), "noarchive", id="header"),
        pytest.param('<meta name="robots" content="noindex">', ("noindex, nosnippet",),
                     "noindex, nosnippet", id="meta-then-header-each-once"),
        pytest.param('<meta name="crawler" content="nofollow">', ("otherbot: noindex",
                     "crawler: noarchive"), "nofollow, noarchive", id="ours-only"),
        pytest.param('<meta name="robots" content="max-snippet:  20 ,noindex  nofollow">', (),
                     "max-snippet: 20, noindex, nofollow", id="colon-and-space-separated"),
    ],
)  # fmt: skip
def test_robots_directives_as_found(
    body: str, headers: tuple[str, ...], robots: str | None
) -> None:
    outcome = _outcome(body, headers)
    assert outcome.page is not None
    assert outcome.page.robots == robots


def test_a_non_html_page_keeps_only_its_header_directives() -> None:
    outcome = _outcome('<link rel="canonical" href="/c"><h1>h</h1>', ("noindex",), "text/plain")
    assert outcome.page is not None
    page = outcome.page
    assert (page.canonical, page.description, page.h1, page.robots) == (None, None, None, "noindex")
    assert outcome.links == []
    assert outcome.alternates == []


def test_link_rows_carry_the_first_non_empty_anchor_text_and_the_least_nofollow() -> None:
    body = (
        '<a href="/x" rel="nofollow"></a><a href="/x#frag">  To <b>X</b> </a>'
        '<a href="/x">again</a><a href="other.html"><img src="i"></a>'
    )
    assert _outcome(body).links == [
        (PAGE, "http://a.test/x", False, "To X"),
        (PAGE, "http://a.test/dir/other.html", False, ""),
    ]
