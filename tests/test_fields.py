"""[fields] (crawler/extract/fields.py): the selector syntax and its values, pure; then a crawl of
a local site with known values on both backends, read back through the database, `crawler
export --format jsonl` and the README's own queries; a bad selector is exit 2 naming the field."""

from __future__ import annotations

import json
import logging
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from conftest import ConfigFactory, crawl, rows
from kit import HostPlan, Page, make_site, run_cli_async, write_config
from kit.lexbor import lexbor_inputs
from selectolax.lexbor import LexborHTMLParser
from yarl import URL

from crawler.extract import flatten
from crawler.extract.fields import (
    MAX_FORMATTING,
    MAX_ITEMS,
    MAX_OPEN,
    MAX_VALUE,
    Field,
    evaluate,
    fields_json,
    parse_field,
    tangled,
)
from crawler.extract.html import parse_html
from crawler.extract.packed import parse_html_packed
from crawler.extract.parse_pool import ParsePool

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")

# -- the syntax -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        pytest.param(".product .price", Field("f", ".product .price"), id="text"),
        pytest.param("img.main @src", Field("f", "img.main", "src"), id="attr"),
        pytest.param(".tags a []", Field("f", ".tags a", None, True), id="list"),
        pytest.param(".gallery img @src []", Field("f", ".gallery img", "src", True), id="both"),
        pytest.param("  a  @HREF\t[] ", Field("f", "a", "href", True), id="spaces-case"),
        pytest.param("ul > li:nth-child(2n+1)", Field("f", "ul > li:nth-child(2n+1)"), id="css"),
        pytest.param('a[href$=".pdf"] @href', Field("f", 'a[href$=".pdf"]', "href"), id="[attr]"),
    ],
)
def test_a_field_is_read(spec: str, field: Field) -> None:
    assert parse_field("f", spec) == field


@pytest.mark.parametrize(
    "spec",
    ["", "   ", ".price[", "p >", "::nope", "a[]", "@src", "a @", "##x", "img @src @alt"],
)
def test_a_selector_that_does_not_parse_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="CSS selector"):
        parse_field("f", spec)


# -- the values -------------------------------------------------------------------------------

PAGE = """<html><head><base href="/shop/"></head><body>
<div class=product><span class=price>  12.50
\tEUR </span><span class=price>9</span></div>
<img class=main src="img/a.png" alt="A">
<ul class=tags><li><a href="/t/red">red</a><li><a>big   <b>sale</b></a></ul>
<div class=gallery><img src="/g/1.jpg"><img><img src="mailto:x@y.z"></div>
<a class=more href="../next?b=1#top">More</a>
</body></html>"""
FIELDS = {
    "price": ".product .price",
    "image": "img.main @src",
    "alt": "img.main @alt",
    "tags": ".tags a []",
    "gallery": ".gallery img @src []",
    "more": ".more @href",
    "sale": ".sale",
    "badges": ".badge []",
    "nameless": "img.main @title",
}


def _fields() -> tuple[Field, ...]:
    return tuple(parse_field(name, spec) for name, spec in FIELDS.items())


def _values(origin: str) -> dict[str, Any]:
    """What FIELDS find on PAGE served at `origin`/."""
    return {
        "price": "12.50 EUR",
        "image": f"{origin}/shop/img/a.png",
        "alt": "A",
        "tags": ["red", "big sale"],
        "gallery": [f"{origin}/g/1.jpg", "mailto:x@y.z"],
        "more": f"{origin}/next?b=1",
        "sale": None,
        "badges": [],
        "nameless": None,
    }


def test_each_form_on_a_page() -> None:
    parsed = parse_html(PAGE.encode(), None, "crawler", _fields())
    assert parsed.fields is not None
    stored = fields_json(_fields(), parsed.fields, URL("http://s.test/shop/"))
    assert list(json.loads(stored).items()) == list(_values("http://s.test").items())
    # The links come from the same parse, as without fields.
    assert [href for href, _, _ in parsed.links] == ["/t/red", "../next?b=1#top"]


def test_values_and_lists_are_bounded() -> None:
    html = "<p class=long>" + "x" * (MAX_VALUE * 3) + "</p>" + "<i>1</i>" * (MAX_ITEMS + 5)
    fields = (parse_field("long", ".long"), parse_field("many", "i []"))
    values = evaluate(LexborHTMLParser(html), fields)
    assert values == {"long": "x" * MAX_VALUE, "many": ["1"] * MAX_ITEMS}


def test_no_fields_no_change() -> None:
    assert parse_html(PAGE.encode(), None, "crawler").fields is None


@pytest.mark.parametrize(
    "html",
    [
        pytest.param("<div>" * 100_000 + "<h1>x</h1><a href=/end>e</a>", id="nested"),
        pytest.param("".join(f"<b id={i}>x<p>" for i in range(20_000)) + "<a href=/end>", id="b"),
        pytest.param("<div/>" * 100_000 + "<a href=/end>", id="html-self-closing"),
        pytest.param(
            "".join(f"<b id={i}>" for i in range(150)) + "<p>x" * 100_000 + "<a href=/end>",
            id="formatting-cloned-into-every-paragraph",
        ),
    ],
)
def test_a_tangled_page_reaches_lexbor_flat_with_its_fields_null(
    html: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = lexbor_inputs(monkeypatch)
    parsed = parse_html(html.encode(), None, "crawler", (parse_field("h", "h1"),))
    assert [href for href, _, _ in parsed.links] == ["/end"]
    assert parsed.fields == {"h": None}
    assert parsed.tangled
    assert given == [flatten.flatten(html)]


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        pytest.param("<div>" * MAX_OPEN, False, id="at-the-bound"),
        pytest.param("<div>" * (MAX_OPEN + 1), True, id="past-it"),
        pytest.param("<div></div>" * 10_000, False, id="closed"),
        pytest.param("<ul>" + "<li>x<p>y" * 10_000 + "</ul>", False, id="optional-ends"),
        pytest.param("<img><br><hr>" * 10_000, False, id="void"),
        pytest.param("<svg>" + '<path d="M0"/>' * 10_000 + "</svg>", False, id="svg"),
        pytest.param("<script>" + "<div>" * 10_000 + "</script>", False, id="script"),
        pytest.param("<!--" + "<div>" * 10_000 + "-->", False, id="comment"),
        pytest.param("<div>" + "</span>" * 10_000 + "<div>" * MAX_OPEN, True, id="other-ends"),
        pytest.param("<b>" * MAX_FORMATTING + "<p>x" * 1000, False, id="formatting-at-bound"),
        pytest.param("<b><i>" * MAX_FORMATTING, True, id="formatting-past-it"),
        pytest.param("<b>x</b>" * 10_000, False, id="formatting-closed"),
        pytest.param("<svg><a/></svg>" * 10_000, False, id="svg-a-closed"),
        # <b> leaves SVG and MathML as an HTML element: "/>" does not close it.
        pytest.param("<svg><b/>x</svg>" * (MAX_FORMATTING + 1), True, id="svg-breakout"),
        pytest.param("<math><i/>x</math>" * (MAX_FORMATTING + 1), True, id="math-breakout"),
    ],
)
def test_tangled(html: str, expected: bool) -> None:
    assert tangled(html) is expected


# Pages the linear check lets through whole, whose trees grow with the square of their length:
# the tree builder ignores a </b> inside a <table> or an <object> (it stays open where the check
# counts it closed); each </div> then takes it out of the open elements but not out of the
# active formatting ones, and every later start tag clones all of those back in.
CLONING = [
    pytest.param("".join(f"<div><b id={i}><table></b></table>x</div>" for i in range(2_000)),
                 id="table"),
    pytest.param("".join(f"<div><b id={i}><object></b></object>x</div>" for i in range(2_000)),
                 id="object"),
    pytest.param("".join(f"<p><b id={i}><table></b></table>x<p>y" for i in range(2_000)),
                 id="paragraphs"),
]  # fmt: skip


@pytest.mark.parametrize("cloning", CLONING)
async def test_a_tree_past_its_memory_cap_is_parsed_flat_in_the_same_parse_process(
    cloning: str,
) -> None:
    assert not tangled(cloning)  # the check lets it through: the cap is what holds
    bomb = f"<html><body>{cloning}<a href=/end>end</a>".encode()
    fields = (parse_field("h", "h1"),)
    async with ParsePool() as pool:
        parsed = await pool.run(parse_html_packed, bomb, None, "crawler", fields)
        assert parsed.tangled
        assert parsed.fields == {"h": None}
        assert [href for href, _, _ in parsed.links] == ["/end"]
        helper = pool.pid
        page = await pool.run(parse_html_packed, PAGE.encode(), None, "crawler", _fields())
        assert (pool.pid, pool.restarts) == (helper, 0)  # the helper lived, and its cap went
        assert page.fields == parse_html(PAGE.encode(), None, "crawler", _fields()).fields
        assert not page.tangled


def test_a_page_of_people_goes_to_lexbor_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    given = lexbor_inputs(monkeypatch)
    parse_html(PAGE.encode(), None, "crawler", _fields())
    assert given == [PAGE]


# -- a crawl, on both backends ----------------------------------------------------------------

SECOND = """<html><body><div class=product><span class=price>3</span></div>
<ul class=tags></ul><a href="/">home</a></body></html>"""


def _site() -> Any:
    routes = {
        "/": Page(PAGE.replace("</body>", '<a href="/second">2</a><a href="/plain">p</a></body>')),
        "/next": Page(PAGE.replace('class=more href="../next?b=1#top"', "")),
        "/second": Page(SECOND),
        "/plain": Page("<div class=product><b class=price>1</b></div>", content_type="text/plain"),
        "/t/red": Page(PAGE, status=404),
    }  # fmt: skip
    return make_site({"site.test": HostPlan(pages=0, routes=routes)})


def _readme_query(marker: str) -> str:
    """The SQL of the README's query line that holds `marker`."""
    (line,) = [line for line in README.splitlines() if "crawler query" in line and marker in line]
    return shlex.split(line)[3]


async def test_a_crawl_keeps_each_pages_fields(
    backend: Backend, aiohttp_server: Any, tmp_path: Path
) -> None:
    server = await aiohttp_server(_site())
    origin = f"http://site.test:{server.port}"
    conf = write_config(
        tmp_path / "config.toml", [f"{origin}/"], hosts=("site.test",), **backend.where,
        fields=FIELDS,
    )  # fmt: skip
    assert (await run_cli_async("crawl", str(conf), "--quiet")).code == 0

    rows = dict(await backend.rows("SELECT url, fields FROM pages"))
    first = _values(origin)
    assert json.loads(rows[f"{origin}/"]) == first
    assert json.loads(rows[f"{origin}/next?b=1"]) == {**first, "more": None}
    second = dict.fromkeys(FIELDS) | {"price": "3", "tags": [], "gallery": [], "badges": []}
    assert json.loads(rows[f"{origin}/second"]) == second
    # Not HTML, not 2xx (a 404 of the same HTML): no fields at all.
    assert rows[f"{origin}/plain"] is None
    assert rows[f"{origin}/t/red"] is None

    db = backend.location
    ran = await run_cli_async("export", db, "--format", "jsonl")
    assert ran.code == 0, ran.err
    exported = {obj["url"]: obj["fields"] for obj in map(json.loads, ran.out.splitlines())}
    assert exported == {
        url: None if text is None else json.loads(text) for url, text in rows.items()
    }

    marker = "json_extract(fields" if backend.kind == "sqlite" else "fields::json->>"
    sql = _readme_query(marker) + " ORDER BY url"
    ran = await run_cli_async("query", db, sql, "--format", "json")
    assert ran.code == 0, ran.err
    prices = [(row["url"], row["price"]) for row in json.loads(ran.out)]
    assert prices == [(f"{origin}/", "12.50 EUR"), (f"{origin}/next?b=1", "12.50 EUR"),
                      (f"{origin}/second", "3")]  # fmt: skip


async def test_with_fields_every_html_page_is_parsed_in_the_parse_process(
    aiohttp_server: Any, make_config: ConfigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    routes = {
        "/": Page(PAGE.replace("</body>", '<a href="/second">2</a><a href="/c">c</a></body>')),
        "/second": Page(SECOND),
        "/c": Page(f"<html><body>{CLONING[0].values[0]}</body></html>"),
        "/plain": Page("<b class=price>1</b>", content_type="text/plain"),
    }
    server = await aiohttp_server(make_site({"site.test": HostPlan(pages=0, routes=routes)}))
    origin = f"http://site.test:{server.port}"
    config = make_config([f"{origin}/", f"{origin}/plain"], hosts=("site.test",), fields=FIELDS)
    with caplog.at_level(logging.WARNING, logger="crawler.extract.page"):
        result = await crawl(config)
    values = {
        url: json.loads(text or "null")
        for url, text in rows(config, "SELECT url, fields FROM pages")
    }
    # The 2xx HTML pages in the parse process; the others (text/plain, 404s) in the event loop.
    parsed = sum(value is not None for value in values.values())
    assert result.extracted_in == {"process": parsed, "loop": len(values) - parsed}
    assert parsed == 3
    assert values[f"{origin}/"] == _values(origin)
    assert values[f"{origin}/second"]["price"] == "3"
    assert values[f"{origin}/c"] == dict.fromkeys(FIELDS)
    assert f"{origin}/c: too tangled" in caplog.text
    assert values[f"{origin}/plain"] is None


async def test_a_bad_selector_is_exit_2_naming_the_field(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    server = await aiohttp_server(_site())
    origin = f"http://site.test:{server.port}"
    conf = write_config(
        tmp_path / "config.toml", [f"{origin}/"], hosts=("site.test",),
        fields={"price": ".product .price", "image": "img.main[ @src"},
    )  # fmt: skip
    ran = await run_cli_async("crawl", str(conf))
    assert ran.code == 2
    assert re.fullmatch(
        r".*config\.toml: fields\.image: 'img\.main\[' is not a CSS selector.*\n", ran.err
    )
    assert "Traceback" not in ran.err
    assert not (tmp_path / "crawl.db").exists()  # nothing was started, no request went out
