from __future__ import annotations

import pytest
from yarl import URL

from crawler.urls import host_key, normalize, origin

BASE = URL("http://site.test/dir/page.html")


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        pytest.param("HTTP://Host:80/a/./b#x", "http://host/a/b", id="case-port-dots-fragment"),
        pytest.param("http://host/a/b", "http://host/a/b", id="already-normal"),
        pytest.param("https://Example.COM:443", "https://example.com/", id="https-default-port"),
        pytest.param("http://a.test:8080/p", "http://a.test:8080/p", id="other-port-kept"),
        pytest.param("http://a.test", "http://a.test/", id="empty-path"),
        pytest.param("http://a.test?q=1", "http://a.test/?q=1", id="empty-path-with-query"),
        pytest.param("http://a.test/%7euser/%7Efile", "http://a.test/~user/~file", id="unreserved"),
        pytest.param("http://a.test/a%2fb%3f", "http://a.test/a%2Fb%3F", id="hex-upper-case"),
        pytest.param("http://a.test/a b", "http://a.test/a%20b", id="space-encoded"),
        pytest.param("http://bücher.test/", "http://xn--bcher-kva.test/", id="idn-punycode"),
        pytest.param("http://a.test/a/../../b/./c/", "http://a.test/b/c/", id="dot-segments"),
        pytest.param("../other/x.html", "http://site.test/other/x.html", id="relative-up"),
        pytest.param("./x.html#frag", "http://site.test/dir/x.html", id="relative-dot"),
        pytest.param("?q=%7e", "http://site.test/dir/page.html?q=~", id="query-only"),
        pytest.param("#top", "http://site.test/dir/page.html", id="fragment-only"),
        pytest.param("", "http://site.test/dir/page.html", id="empty-href"),
        pytest.param("//Other.test/x", "http://other.test/x", id="scheme-relative"),
        pytest.param("  /padded  ", "http://site.test/padded", id="whitespace"),
    ],
)
def test_normalize(href: str, expected: str) -> None:
    url = normalize(href, BASE)
    assert url is not None
    assert str(url) == expected


@pytest.mark.parametrize(
    ("base", "href", "expected"),
    [
        pytest.param("http://a.test/x%2Fy/z", "e", "http://a.test/x%2Fy/e", id="slash"),
        pytest.param("http://a.test/x%3Fy/z", "e", "http://a.test/x%3Fy/e", id="question-mark"),
        pytest.param("http://a.test/x%25y/z", "e?q#f", "http://a.test/x%25y/e?q", id="percent"),
        pytest.param("http://a.test/%C3%BC/z", "e", "http://a.test/%C3%BC/e", id="non-ascii"),
        pytest.param("http://a.test/%5C/z", "./", "http://a.test/%5C/", id="backslash"),
        pytest.param("http://a.test/x%2Fy/z", "../e", "http://a.test/e", id="dot-dot"),
    ],
)
def test_relative_links_keep_the_base_folder_encoded(base: str, href: str, expected: str) -> None:
    # yarl merges a relative path with the base's decoded segments: "/x%2Fy/z" + "e" gave
    # "/x/y/e", another page; the same link from two pages got two spellings.
    assert str(normalize(href, URL(base))) == expected


@pytest.mark.parametrize(
    "href",
    [
        pytest.param("mailto:someone@site.test", id="mailto"),
        pytest.param("javascript:void(0)", id="javascript"),
        pytest.param("data:text/plain,hi", id="data"),
        pytest.param("ftp://site.test/file", id="ftp"),
        pytest.param("tel:+123", id="tel"),
        pytest.param("http://a b.test/", id="space-in-host"),
        pytest.param("http://%zz/", id="junk-host"),
        pytest.param("http://[::1/", id="broken-ipv6"),
    ],
)
def test_normalize_refuses(href: str) -> None:
    assert normalize(href, BASE) is None


def test_normalized_spellings_are_equal() -> None:
    spellings = ["HTTP://Site.Test:80/a/./b#x", "http://site.test/a/b", "/x/../a/%62"]
    assert {str(normalize(s, BASE)) for s in spellings} == {"http://site.test/a/b"}


def test_host_key_and_origin() -> None:
    url = URL("https://Docs.Site.Test:8443/x")
    assert host_key(url) == "docs.site.test"
    assert origin(url) == "https://docs.site.test:8443"
    assert origin(URL("http://site.test/x")) == "http://site.test"
