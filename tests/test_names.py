"""The names a page gives lexbor stay bounded (crawler/extract/names.py): one element of tens of
thousands of attributes, or tens of thousands of distinct attribute names over many tags, cost
lexbor seconds to minutes (quadratic), so what reaches it keeps at most MAX_ATTRIBUTES
attributes an element and about MAX_NAMES names a tree, and parses as the page would have
(the attributes dropped are ones the crawler does not read). Asserted on what lexbor is given,
never on time."""

from __future__ import annotations

import random
import re

import pytest
from kit.lexbor import lexbor_inputs

from crawler.extract import flatten
from crawler.extract.fields import TAGS_PER_BATCH, parse_field, tangled
from crawler.extract.flatten import READ_ATTRIBUTES
from crawler.extract.html import parse_html
from crawler.extract.names import MAX_ATTRIBUTES, MAX_NAMES, scan_tags, trimmed

TOKEN = "crawler"
# An attribute's name as these tests write them: after whitespace, before "=" or ">" or space.
_NAME = re.compile(r"[\t\n\f\r ]([^\t\n\f\r />=]+)")


def _attributes(n: int, prefix: str = "x") -> str:
    return " ".join(f"{prefix}{i}=1" for i in range(n))


def _most_in_a_tag(text: str) -> int:
    return max((len(_NAME.findall(tag)) for tag in re.findall(r"<[^>]*>", text)), default=0)


def _distinct(text: str) -> int:
    return len({name.lower() for name in _NAME.findall(text)})


@pytest.mark.parametrize("tag", ["a", "area", "meta", "link", "base", "h1", "/a", "title"])
def test_a_kept_tag_of_many_attributes_reaches_lexbor_with_those_read_only(
    tag: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = lexbor_inputs(monkeypatch)
    page = (
        f'<a href="/before">b</a><{tag} {_attributes(40_000)} href="/x" rel=nofollow '
        f'name=description content=d HREF="/second">t</{tag.lstrip("/")}><a href="/after">a</a>'
    )
    parsed = parse_html(page.encode(), None, TOKEN)
    assert len(given) == 1
    assert _most_in_a_tag(given[0]) <= len(READ_ATTRIBUTES)
    hrefs = [href for href, _, _ in parsed.links]
    if tag in ("a", "area"):
        assert hrefs == ["/before", "/x", "/after"]
        assert parsed.links[1][1] is True  # its rel kept
    else:
        assert hrefs == ["/before", "/after"]
    assert parsed.description == ("d" if tag == "meta" else None)


def test_many_distinct_names_over_many_tags_reach_lexbor_as_a_bounded_few(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    given = lexbor_inputs(monkeypatch)
    n = 3 * MAX_NAMES
    page = "".join(f'<a x{i}=1 href="/{i}">{i}</a>' for i in range(n))
    parsed = parse_html(page.encode(), None, TOKEN)
    assert [href for href, _, _ in parsed.links] == [f"/{i}" for i in range(n)]
    assert all(_distinct(tree) <= MAX_NAMES + 1 for tree in given)  # + href


def test_a_page_of_megabytes_bounds_each_segment_and_every_tag_alike(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    given = lexbor_inputs(monkeypatch)
    n = 150_000  # over flatten.FLATTEN_BATCH: built in segments
    page = '<a href="/a">a</a>' + "".join(f"<meta x{i}=1>" for i in range(n)) + "<a href=/b>b</a>"
    assert len(page) > flatten.FLATTEN_BATCH
    parsed = parse_html(page.encode(), None, TOKEN)
    assert [href for href, _, _ in parsed.links] == ["/a", "/b"]
    assert all(_distinct(tree) <= MAX_NAMES for tree in given)


TRIMMED = {
    "first-kept": ('a A=1 HREF="x>" href=2 rel=x/>', '<a HREF="x>" rel=x/>'),
    "title": ('title a=1 href="x>">Hi</title b=2>', '<title href="x>">Hi</title>'),
    "meta": ('meta content="a b" name=robots x>', '<meta content="a b" name=robots>'),
    "spaces": ("link\thref = 'y' rel\n=c>", "<link href = 'y' rel\n=c>"),
    "end-tag-none": ("/a x y>", "</a>"),
    "never-ends": ('a href="x>', " "),
    "title-end-never-ends": ("title>abc</title x='", "<title>abc"),
    "title-end-is-text-at-the-end": ("title>abc</title", "<title>abc</title"),
    "title-to-the-end": ("title>abc", "<title>abc"),
}


@pytest.mark.parametrize(("span", "expected"), TRIMMED.values(), ids=TRIMMED.keys())
def test_trimmed(span: str, expected: str) -> None:
    assert trimmed(span, READ_ATTRIBUTES) == expected


ATTRIBUTE_PIECES = [
    " ", "\t", "/", "=", '"', "'", ">", "<", "x", "href", "HREF", "rel", "nofollow", "name",
    "robots", "content", "noindex", "hreflang", "de", "class", "id", "=/p", '="/q"', "='/r'",
    "<a ", "</a ", "<link ", "<meta ", "<title ", "</title", "<area ", "<base ", "<h1 ", "</h1",
    "text", "<div ", "<!--", "-->", "<script>", "</script>", "canonical", "alternate",
]  # fmt: skip


def test_trimming_every_kept_span_reads_what_the_spans_as_written_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The attributes dropped are only those parse_html does not read: a page parses the same
    # with every span trimmed (LONG_SPAN 0) as with none.
    rng = random.Random(5)
    for _ in range(3_000):
        page = "".join(rng.choice(ATTRIBUTE_PIECES) for _ in range(rng.randint(1, 50)))
        body = page.encode()
        as_written = parse_html(body, None, TOKEN)
        with monkeypatch.context() as patch:
            patch.setattr(flatten, "LONG_SPAN", 0)
            assert parse_html(body, None, TOKEN) == as_written, page


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        pytest.param(f"<br {_attributes(MAX_ATTRIBUTES)}>", False, id="attributes-at-the-bound"),
        pytest.param(f"<br {_attributes(MAX_ATTRIBUTES + 1)}>", True, id="attributes-past-it"),
        pytest.param(f"<script {_attributes(MAX_ATTRIBUTES + 1)}></script>", True, id="raw"),
        pytest.param(f"<p>x</p {_attributes(MAX_ATTRIBUTES + 1)}>", True, id="end-tag"),
        pytest.param("".join(f"<br x{i}>" for i in range(MAX_NAMES - 1)), False, id="names-at"),
        pytest.param("".join(f"<br x{i}>" for i in range(MAX_NAMES)), True, id="names-past"),
        pytest.param("".join(f"</x{i}>" for i in range(MAX_NAMES + 1)), True, id="end-names"),
        pytest.param("<br x=1>" * (2 * MAX_NAMES), False, id="repeated-names"),
        pytest.param(
            "<br>" * (2 * TAGS_PER_BATCH + 1) + f"<br {_attributes(MAX_ATTRIBUTES + 1)}>",
            True,
            id="attributes-in-a-later-batch",
        ),
    ],
)
def test_a_fields_page_of_too_many_names_is_tangled(page: str, expected: bool) -> None:
    # Names are counted as the tokenizer reads them: attribute names are the "x..." and one
    # tag name ("br"), so MAX_NAMES - 1 attributes make MAX_NAMES names.
    assert tangled(page) is expected


def test_a_fields_page_of_too_many_names_reaches_lexbor_flat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    given = lexbor_inputs(monkeypatch)
    page = f'<h1 {_attributes(20_000)}>T</h1><a href="/x">x</a>'
    parsed = parse_html(page.encode(), None, TOKEN, (parse_field("h", "h1"),))
    assert parsed.tangled
    assert parsed.fields == {"h": None}
    assert parsed.links == [("/x", False, "x")]
    assert given == ['<h1>T</h1><a href="/x">x</a>']


def test_tags_are_read_as_the_tokenizer_reads_them() -> None:
    # A raw text element ends at its own end tag only; a quote opens a value only after "=".
    page = "<SCRIPT a=1>x</style><b c=2></Script d=3><p title='>'>y<!-- <i z> --><br/>"
    assert list(scan_tags(page)) == [
        ("SCRIPT", " a=1>"), ("/Script", " d=3>"), ("p", " title='>'>"), ("br", "/>"),
    ]  # fmt: skip
