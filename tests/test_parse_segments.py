"""A page of megabytes is built into lexbor trees one segment at a time (flatten.SEGMENT), and
parses exactly as in one tree: same links in the same order with the same anchor texts, same
title, h1, base, description and robots rules. Its links come back from the parse process
packed (packed.PackedLinks): the same links, and the same outcome."""

from __future__ import annotations

import dataclasses
import pickle
import random
from pathlib import Path

import pytest
from kit.lexbor import lexbor_inputs

from crawler.config import Config
from crawler.extract import flatten, html
from crawler.extract.flatten import FLATTEN_BATCH
from crawler.extract.html import Link, ParsedPage, parse_html
from crawler.extract.packed import PackedLinks, parse_html_packed
from crawler.extract.page import Extractor
from crawler.fetch import Response
from crawler.frontier.skips import Scope
from crawler.records import QueuedURL


def _in_one_tree(body: bytes, monkeypatch: pytest.MonkeyPatch) -> ParsedPage:
    with monkeypatch.context() as patch:
        patch.setattr(html, "SEGMENT", len(body) + 1)
        return parse_html(body, None, "crawler")


def test_a_page_of_100000_links_is_built_in_segments_with_the_links_of_one_tree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    head = '<title>many</title><meta name="robots" content="noarchive"><h1>All <b>links</b></h1>'
    links = "".join(f'<a href="/many/{n}">{n} <i>x</i></a>\n' for n in range(100_000))
    body = (head + links).encode()
    assert len(body) > FLATTEN_BATCH
    whole = _in_one_tree(body, monkeypatch)
    given = lexbor_inputs(monkeypatch)
    parsed = parse_html(body, None, "crawler")
    assert len(given) >= len(body) // flatten.SEGMENT
    assert max(map(len, given)) < 2 * flatten.SEGMENT
    assert parsed == whole
    assert len(parsed.links) == 100_000
    assert parsed.links[99_999] == ("/many/99999", False, "99999 x")
    assert (parsed.title, parsed.h1, parsed.robots) == ("many", "All links", ("noarchive",))


# Where an <h1> is open, or was opened inside an <a>, a tree started afresh at the next <a>
# would differ: these pages are cut only where nothing is open (or not at all).
@pytest.mark.parametrize(
    ("first", "rest"),
    [
        pytest.param("<h1>x<a href=/1>y", "<a href=/2>z</h1>w<a href=/3>v", id="a-in-open-h1"),
        pytest.param("<a href=/1>x<h1>y", "<a href=/2>z", id="h1-in-open-a"),
        pytest.param("<h1>x", "<a href=/2>z</h1>w", id="open-h1"),
        pytest.param("<H1 class=t>x<p>", "<A href=/2>z</h1 >w", id="upper-case"),
        pytest.param("<a href=/1>x<h1>y</h1>w", "<a href=/2>z</h1>u", id="closed-h1-in-a"),
    ],
)
def test_no_segment_starts_where_an_element_it_would_add_to_is_open(
    first: str, rest: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = (first + rest + "<a href=/9>n</a>" * 3).encode()
    whole = _in_one_tree(body, monkeypatch)
    monkeypatch.setattr(html, "FLATTEN_BATCH", 0)
    monkeypatch.setattr(html, "SEGMENT", 1)
    given = lexbor_inputs(monkeypatch)
    assert parse_html(body, None, "crawler") == whole
    assert not any(text.startswith(rest) for text in given[1:])


def test_segments_start_at_an_a_where_nothing_is_open(monkeypatch: pytest.MonkeyPatch) -> None:
    body = b"<h1><a href=/1>x</h1><a href=/2>y</a><h1>t</h1>z<a href=/3>w"
    whole = _in_one_tree(body, monkeypatch)
    monkeypatch.setattr(html, "FLATTEN_BATCH", 0)
    monkeypatch.setattr(html, "SEGMENT", 1)
    given = lexbor_inputs(monkeypatch)
    assert parse_html(body, None, "crawler") == whole
    assert given == ["<h1><a href=/1>x</h1>", "<a href=/2>y</a><h1>t</h1>z", "<a href=/3>w"]


_PIECES = (
    '<a href="/x{}">', "</a>", "<h1>", "</h1>", "text{} ", " ", "<title>T{}</title>", "<p>",
    '<meta name=description content="d{}">', '<area href="/ar{}">', "<b>", "</b>", "<td>",
    '<base href="/b{}/">', "<A HREF=/y{}>", "<h1/>", "\x00", "<a href=/z{}/>", "</A >",
    "<link rel=canonical href=/c{}>", "<h1 class=x>", "</h1 >", "<table>", "<!-- c -->",
)  # fmt: skip


@pytest.mark.parametrize("seed", range(8))
def test_random_markup_parses_in_segments_as_in_one_tree(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    cut = 0
    for _ in range(200):
        weights = [rng.random() for _ in _PIECES]
        pieces = rng.choices(_PIECES, weights, k=rng.randrange(5, 60))
        body = "".join(p.format(rng.randrange(20)) for p in pieces).encode()
        whole = _in_one_tree(body, monkeypatch)
        with monkeypatch.context() as patch:
            patch.setattr(html, "FLATTEN_BATCH", 0)
            patch.setattr(html, "SEGMENT", rng.randrange(1, 40))
            given = lexbor_inputs(patch)
            assert parse_html(body, None, "crawler") == whole, body
        cut += len(given) - 1
    assert cut > 100  # the cases cut often


_LINKS: list[Link] = [
    ("/a", False, "A"), ("", True, ""), ("/a#x", True, "é ü"), ("http://b.test/", False, ""),
    ("/a", True, "again"), ("?q=1", False, "q" * 200), ("/é", False, "x"),
]  # fmt: skip


def test_packed_links_are_the_links_they_were_made_of_also_unpickled() -> None:
    packed = PackedLinks.of(_LINKS)
    again = pickle.loads(pickle.dumps(packed, pickle.HIGHEST_PROTOCOL))
    for links in (packed, again):
        assert list(links) == _LINKS
        assert len(links) == len(_LINKS)
        assert [links[n] for n in range(-len(_LINKS), len(_LINKS))] == _LINKS + _LINKS
        assert links[1:3] == _LINKS[1:3]
        assert ("/a", True, "again") in links
        with pytest.raises(IndexError):
            links[len(_LINKS)]
    assert list(PackedLinks.of([])) == []


def test_a_page_parsed_with_packed_links_has_the_outcome_of_a_page_with_a_list() -> None:
    body = (
        '<base href="/dir/"><a href="/x" rel="nofollow"></a><a href="/x#f"> To <b>X</b> </a>'
        '<a href="/x">again</a><a href="other.html" rel=nofollow>o</a><a href="other.html">p</a>'
        '<a href="/nf" rel="nofollow">nf</a>'
        + "".join(f'<a href="n{n % 300}">{n}</a>' for n in range(1_000))
    ).encode()
    config = Config.from_dict({"crawl": {"seeds": ["http://a.test/"]}}, source=Path("t.toml"))
    response = Response(
        "http://a.test/p", 200, "text/html", "utf-8", None, None, (), body, False, 1, 0.0
    )
    queued = QueuedURL(1, "http://a.test/p", "a.test", 0)
    packed = parse_html_packed(body, "utf-8", "crawler")
    assert isinstance(packed.links, PackedLinks)
    as_list = Extractor(config, Scope(config.crawl)).outcome(
        queued, response, parse_html(body, "utf-8", "crawler")
    )
    from_packed = Extractor(config, Scope(config.crawl)).outcome(queued, response, packed)
    assert (from_packed.links, from_packed.discovered) == (as_list.links, as_list.discovered)
    assert from_packed.page is not None
    assert as_list.page is not None
    assert dataclasses.replace(from_packed.page, fetched_at=as_list.page.fetched_at) == (
        as_list.page
    )
    assert len(as_list.links) == 303
    assert len(as_list.discovered) == 302  # all but /nf, nofollow wherever it is linked
    assert as_list.links[:2] == [
        ("http://a.test/p", "http://a.test/x", False, "To X"),
        ("http://a.test/p", "http://a.test/dir/other.html", False, "o"),
    ]
