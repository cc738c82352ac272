"""crawler.text.readable: a page's readable text, on real HTML (no mocks)."""

from __future__ import annotations

import random

import pytest

from crawler.text.readable import (
    MAX_DEPTH,
    nesting,
    nesting_bound,
    normalize,
    page_text,
    too_deep,
    visible_text,
)

STORY = (
    "The lighthouse keeper climbed the spiral stairs every evening at dusk, carrying a tin "
    "of oil and a rag, and polished the great lens until it shone like a second moon.",
    "Ships passing the northern reef counted on that beam; in forty years it had never "
    "failed, not during the storm of the long winter nor when the supply boat sank.",
    "When the automated lamp finally arrived, the keeper stayed on anyway, writing letters "
    "to the sailors he had guided home and keeping the logbook in his careful hand.",
)
NAV = ("Homepage", "Products", "Pricing", "Careers", "Contact us")
FOOTER = "Copyright 2024 Example Widgets Incorporated"


def article_page() -> bytes:
    nav = "".join(f'<li><a href="/{item.lower()}">{item}</a></li>' for item in NAV)
    paragraphs = "".join(f"<p>{p}</p>" for p in STORY)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>The keeper</title>
<style>body {{ font-family: serif; }}</style>
<script>var tracker = "analytics-secret-token";</script></head>
<body>
<header><div class="logo">Example Widgets</div>
<nav><ul>{nav}</ul></nav></header>
<main><article><h1>The last lighthouse keeper</h1>{paragraphs}</article></main>
<footer><p>{FOOTER}</p><nav><a href="/privacy">Privacy policy</a></nav></footer>
</body></html>""".encode()


def test_main_content_without_nav_and_footer() -> None:
    text = page_text(article_page(), None, "https://example.org/keeper")
    assert text is not None
    for paragraph in STORY:
        assert paragraph in text
    assert not any(item in text for item in NAV)
    assert FOOTER not in text
    assert "Privacy policy" not in text
    assert "analytics-secret-token" not in text
    assert "font-family" not in text


def test_navigation_classes_are_left_out() -> None:
    # DocBook's Prev/Up/Home/Next tables (the PostgreSQL docs), which resiliparse alone keeps.
    nav = '<table><tr><td><a href="a.html">Prev</a></td><td><a href="b.html">Next</a></td></tr>'
    html = (
        f'<html><body><div class="navheader">{nav}</table></div>'
        f'<div class="sect1">{"".join(f"<p>{p}</p>" for p in STORY)}</div>'
        f'<div id="navfooter">{nav}</table></div></body></html>'
    )
    text = page_text(html.encode(), None)
    assert text is not None
    assert text.splitlines() == list(STORY)


def test_paragraphs_are_lines() -> None:
    text = page_text(article_page(), "utf-8")
    assert text is not None
    lines = text.splitlines()
    for paragraph in STORY:
        assert paragraph in lines


def test_tiny_page_falls_back_to_visible_text() -> None:
    assert page_text(b"<p>Hello</p>", None) == "Hello"
    assert page_text(b"Hello", "utf-8") == "Hello"


def test_script_and_style_never_appear() -> None:
    html = b"""<html><head><title>Title text</title><style>.x { color: red }</style>
<script>document.write("script text")</script></head><body>
<p>Visible <b>words</b> &amp; more</p><script type="module">import "x"</script>
<style>p { margin: 0 }</style><!-- a comment --></body></html>"""
    text = page_text(html, None)
    assert text == "Visible words & more"


def test_fallback_drops_hidden_content() -> None:
    html = """<html><head><title>Title text</title><style>.x { color: red }</style>
<script>document.write("script text")</script></head><body>
<noscript>noscript text</noscript><template><p>template text</p></template>
<p>Visible <b>words</b> &amp; more</p><script type="module">import "x"</script>
<style>p { margin: 0 }</style><!-- a comment --><textarea>typed</textarea></body></html>"""
    assert visible_text(html) == "Visible words & more"


def test_latin1_page_declared_by_meta() -> None:
    html = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">'
        "</head><body><p>Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e, \u00bd prix</p></body></html>"
    ).encode("latin-1")
    assert page_text(html, None) == "Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e, \u00bd prix"
    # The header's charset wins over the meta.
    assert page_text("<p>\u00e9t\u00e9</p>".encode("utf-16-le"), "utf-16-le") == "\u00e9t\u00e9"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"   \n\t ", id="blank"),
        pytest.param(b"<html><body></body></html>", id="no-text"),
        pytest.param(b"<script>only()</script><style>a{}</style>", id="only-script"),
        pytest.param(b"\x00\x00\x00", id="nul"),
    ],
)
def test_no_text_is_none(body: bytes) -> None:
    assert page_text(body, None) is None


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(random.Random(1).randbytes(100_000), id="random"),
        pytest.param(b"\xff\xfe" + random.Random(2).randbytes(5_001), id="utf16-bom-odd"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40, id="png-ish"),
        pytest.param(b"%PDF-1.7\n" + b"<< /Type /Page >>\nstream\n\x00\x01\x02", id="pdf-ish"),
        pytest.param(b"<" * 10_000 + b"<a" * 10_000 + b"<!--", id="unclosed-markup"),
        pytest.param(b'<?xml version="1.0" encoding="UTF-8"?><p>x</p>', id="xml-decl"),
        pytest.param(b"<html><body>" + b"<b id=1>x<p>" * 4096, id="formatting-runs"),
    ],
)
def test_garbage_never_raises(body: bytes) -> None:
    for charset in (None, "utf-8", "zlib", "no-such-charset"):
        text = page_text(body, charset)
        assert text is None or (isinstance(text, str) and text and "\0" not in text)


def test_nesting_estimate() -> None:
    assert nesting("") == 0
    assert nesting("<html><body><div><span>a</span><div>b</div></div></body></html>") == 4
    # Void, self-closed and optional-end elements do not count, in any case.
    assert nesting("<div>" + "<BR><img src=x><p>a<li>b<svg/><path d='1'/>" * 100 + "</div>") == 1
    assert nesting("<div>" * 5 + "</div>" * 5 + "<x-y>" * 3) == 5
    # The cheap bound counts the void elements; the estimate decides.
    many_breaks = "<div>" + "<br>" * (2 * MAX_DEPTH) + "</div>"
    assert nesting(many_breaks) == 1
    assert not too_deep(many_breaks)
    assert too_deep("<div>" * (MAX_DEPTH + 1))
    assert not too_deep("<div>" * MAX_DEPTH)


def test_stray_end_tags_do_not_hide_nesting() -> None:
    # An end tag with nothing open closes nothing: the depth does not go below 0, so end tags
    # before the nesting cannot pay for it.
    html = "</div>" * (3 * MAX_DEPTH) + "<div>" * (2 * MAX_DEPTH)
    assert nesting(html) == 2 * MAX_DEPTH
    assert nesting_bound(html) >= 2 * MAX_DEPTH
    assert too_deep(html)


def test_nesting_bound_is_an_upper_bound() -> None:
    # Where every end tag is one `nesting` counts, the character counts bound it from above,
    # however the chunks cut the tags.
    pieces = ("<div>", "</div>", "<span class='a b'>", "</span>", "<br>", "words ", "<b/>")
    rng = random.Random(7)
    for _ in range(200):
        weights = [rng.random() for _ in pieces]
        html = "".join(rng.choices(pieces, weights, k=rng.randrange(1, 3_000)))
        assert nesting_bound(html) >= nesting(html)


def test_deep_nesting_is_read() -> None:
    # 50,000 nested <div> take lexbor's tree builder (resiliparse's) ~100 s of CPU: a page
    # nested deeper than MAX_DEPTH gets the flattened visible text. (In a crawl the text
    # helper's time limit bounds any page; pytest-timeout bounds this one.)
    depth = 50_000
    html = f"<html><body>{'<div>' * depth}deep words{'</div>' * depth}</body></html>"
    assert nesting(html) == depth + 2 > MAX_DEPTH
    assert too_deep(html)
    assert page_text(html.encode(), None) == "deep words"
    assert visible_text(html) == "deep words"


def test_large_page() -> None:
    paragraph = "<p>" + " ".join(STORY) + "</p>\n"
    html = "<html><body><main>" + paragraph * (5_000_000 // len(paragraph)) + "</main>"
    text = page_text(html.encode(), None)
    assert text is not None
    assert STORY[0] in text


def test_visible_text_blocks_and_references() -> None:
    html = (
        "<body><nav><a>One</a><a>Two</a></nav><div>Block <i>one</i>\n   continues</div>"
        "<table><tr><td>a &lt;b&gt;</td><td>c</td></tr></table>x < y <br>last&nbsp;line</body>"
    )
    assert visible_text(html) == "OneTwo\nBlock one continues\na <b>\nc\nx < y\nlast line"


def test_normalize() -> None:
    assert normalize("  a \t b \n\n\n c\u00a0\u00a0d \r\n\0") == "a b\nc d"
    assert normalize(" \n \n") is None
