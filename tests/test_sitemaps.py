"""Sitemaps as sitemaps.org has them: kinds, namespaces, gzip, caps, hostile XML, bad input."""

from __future__ import annotations

import gzip
import pickle
import random
import struct
import tracemalloc
import zlib
from collections.abc import Callable

import pytest

from crawler.sitemaps import document as sitemaps
from crawler.sitemaps.document import MAX_ENTRIES, Sitemap, SitemapEntry, SitemapKind, read_sitemap

NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
IMAGE_NS = 'xmlns:image="http://www.google.com/schemas/sitemap-image/1.1"'

# Each level ten times the one before: expanded, &lol9; would be 3 GB.
BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE urlset [\n <!ENTITY lol0 "lol">\n'
    + "".join(f' <!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">\n' for n in range(1, 10))
    + "]>\n<urlset><url><loc>http://a.test/&lol9;</loc></url></urlset>\n"
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?>\n'
    '<!DOCTYPE urlset [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    "<urlset><url><loc>http://a.test/&xxe;</loc></url></urlset>\n"
)


def urls(*pairs: str | tuple[str, str]) -> tuple[SitemapEntry, ...]:
    """Entries from URLs, or (URL, lastmod) pairs."""
    return tuple(SitemapEntry(*p) if isinstance(p, tuple) else SitemapEntry(p) for p in pairs)


def urlset_of(count: int) -> bytes:
    entries = "".join(
        f"  <url>\n    <loc>https://a.test/page/{i}</loc>\n  </url>\n" for i in range(count)
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset {NS}>\n{entries}</urlset>\n'.encode()


def text_of(count: int) -> bytes:
    return "".join(f"https://a.test/page/{i}\r\n" for i in range(count)).encode()


def gzip_of_repeats(head: bytes, pad: bytes, times: int, tail: bytes) -> bytes:
    """A valid gzip file of head + pad * times + tail, made without compressing pad `times`
    times: after a full flush, deflate refers to nothing before it, so the compressed pad is
    the same bytes each time."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    start = deflate.compress(head) + deflate.flush(zlib.Z_FULL_FLUSH)
    block = deflate.compress(pad) + deflate.flush(zlib.Z_FULL_FLUSH)
    end = deflate.compress(tail) + deflate.flush()
    crc = zlib.crc32(head)
    for _ in range(times):
        crc = zlib.crc32(pad, crc)
    size = len(head) + len(pad) * times + len(tail)
    trailer = struct.pack("<II", zlib.crc32(tail, crc), size & 0xFFFFFFFF)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, no mtime
    return header + start + block * times + end + trailer


def peak_memory(body: bytes, **caps: int) -> tuple[Sitemap, int]:
    """The sitemap read from body, and the most memory Python held at once while reading."""
    tracemalloc.start()
    try:
        sitemap = read_sitemap(body, **caps)
        return sitemap, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# -- documents, read alike plain and gzipped ----------------------------------------------------


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize(
    ("document", "kind", "entries", "left_out"),
    [
        pytest.param(
            f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset {NS}>\n'
            "<url><loc>http://a.test/1</loc><lastmod>2024-05-01</lastmod></url>\n"
            "<url><loc>http://a.test/2</loc></url>\n</urlset>\n",
            "urlset",
            urls(("http://a.test/1", "2024-05-01"), "http://a.test/2"),
            None,
            id="urlset-namespaced",
        ),
        pytest.param(
            "<urlset><url><lastmod>2024-05-01T10:00:00+00:00</lastmod>"
            "<loc>http://a.test/1</loc></url><url><loc>http://a.test/2</loc></url></urlset>",
            "urlset",
            urls(("http://a.test/1", "2024-05-01T10:00:00+00:00"), "http://a.test/2"),
            None,
            id="urlset-no-namespace",
        ),
        pytest.param(
            '<s:urlset xmlns:s="http://www.sitemaps.org/schemas/sitemap/0.9">'
            "<s:url><s:loc>http://a.test/1</s:loc></s:url></s:urlset>",
            "urlset",
            urls("http://a.test/1"),
            None,
            id="urlset-prefixed",
        ),
        pytest.param(
            f"<sitemapindex {NS}>\n"
            "<sitemap><loc>http://a.test/s1.xml.gz</loc><lastmod>2024-05-01</lastmod></sitemap>\n"
            "<sitemap><loc>http://a.test/s2.xml</loc></sitemap>\n"
            "<url><loc>http://a.test/not-in-an-index</loc></url>\n</sitemapindex>",
            "index",
            urls(("http://a.test/s1.xml.gz", "2024-05-01"), "http://a.test/s2.xml"),
            None,
            id="sitemapindex",
        ),
        pytest.param(
            f"<urlset {NS}><sitemap><loc>http://a.test/s.xml</loc></sitemap>"
            "<url><loc>http://a.test/1</loc></url></urlset>",
            "urlset",
            urls("http://a.test/1"),
            None,
            id="sitemap-in-urlset-ignored",
        ),
        pytest.param(
            "http://a.test/1\r\n\r\nnot a url\n  https://a.test/2  \r\n"
            "ftp://a.test/3\n# http://a.test/4\rHTTP://a.test/5\r\n\n \nhttp://a.test/6",
            "text",
            urls("http://a.test/1", "https://a.test/2", "HTTP://a.test/5", "http://a.test/6"),
            None,
            id="text",
        ),
        pytest.param(
            "\ufeff<?xml version='1.0'?><urlset><url><loc>http://a.test/1</loc></url></urlset>",
            "urlset",
            urls("http://a.test/1"),
            None,
            id="bom-xml",
        ),
        pytest.param(
            "\ufeffhttp://a.test/1\nhttp://a.test/2\n",
            "text",
            urls("http://a.test/1", "http://a.test/2"),
            None,
            id="bom-text",
        ),
        pytest.param(
            "\n  \t\n<?xml version='1.0'?><urlset><url><loc>http://a.test/1</loc></url></urlset>",
            "urlset",
            urls("http://a.test/1"),
            None,
            id="whitespace-before-xml-declaration",
        ),
        pytest.param(
            '<?xml version="1.0" encoding="ISO-8859-1"?>'
            "<urlset><url><loc>http://a.test/caf\xe9</loc></url></urlset>",
            "urlset",
            urls("http://a.test/caf\xe9"),
            None,
            id="declared-encoding",
        ),
        pytest.param(
            f"<urlset {NS} {IMAGE_NS}>\n<url><loc>http://a.test/1</loc><image:image>"
            "<image:loc>http://a.test/photo.jpg</image:loc></image:image></url>\n"
            "<url><image:loc>http://a.test/lone.jpg</image:loc></url>\n</urlset>",
            "urlset",
            urls("http://a.test/1"),
            None,
            id="image-loc-not-a-page",
        ),
        pytest.param(
            f'<urlset {NS} xmlns:x="http://x.test/ns"><url><x:loc>http://a.test/x</x:loc>'
            "<loc>http://a.test/1</loc></url><x:url><loc>http://a.test/in-x-url</loc></x:url>"
            "</urlset>",
            "urlset",
            urls("http://a.test/1"),
            None,
            id="foreign-namespace-elements-ignored",
        ),
        pytest.param(
            "<urlset><loc>http://a.test/in-urlset</loc><url><loc>http://a.test/1</loc>"
            "<x><loc>http://a.test/nested</loc></x></url>"
            "<x><url><loc>http://a.test/deeper</loc></url></x></urlset>",
            "urlset",
            urls("http://a.test/1"),
            None,
            id="loc-outside-url-ignored",
        ),
        pytest.param(
            "<urlset><url><loc>http://a.test/?a=1&amp;b=2&#38;c=&lt;3&#x3e;</loc></url>"
            "<url><loc><![CDATA[http://a.test/?d=4&e=5]]></loc></url></urlset>",
            "urlset",
            urls("http://a.test/?a=1&b=2&c=<3>", "http://a.test/?d=4&e=5"),
            None,
            id="entities-and-cdata-decoded",
        ),
        pytest.param(
            "<urlset><url><loc>\n    http://a.test/1\t\n  </loc>"
            "<lastmod>  2024-05-01\n</lastmod></url></urlset>",
            "urlset",
            urls(("http://a.test/1", "2024-05-01")),
            None,
            id="whitespace-stripped",
        ),
        pytest.param(
            "<urlset><url><loc>  </loc><lastmod>2024-05-01</lastmod></url><url></url>"
            "<url><lastmod>2024-05-01</lastmod></url>"
            "<url><loc>http://a.test/1</loc><lastmod> </lastmod></url></urlset>",
            "urlset",
            urls("http://a.test/1"),
            None,
            id="empty-loc-skipped-empty-lastmod-none",
        ),
        pytest.param("", "text", (), None, id="empty"),
        pytest.param(" \r\n\t\n", "text", (), None, id="whitespace-only"),
        pytest.param(
            "<html><body><loc>http://a.test/1</loc></body></html>",
            "unknown",
            (),
            "not a sitemap: root <html>",
            id="html",
        ),
        pytest.param(
            '<urlset xmlns="http://example.org/schemas/sitemap/0.9"/>',
            "unknown",
            (),
            "not a sitemap: root <{http://example.org/schemas/sitemap/0.9}urlset>",
            id="urlset-in-another-namespace",
        ),
        pytest.param(
            '<urlset xmlns="https://www.sitemaps.org/schemas/sitemap/0.9">'
            "<url><loc>http://a.test/1</loc></url></urlset>",
            "urlset",
            (SitemapEntry("http://a.test/1"),),
            None,
            id="the-namespace-with-https",
        ),
        pytest.param(
            "<urlset><url><loc>http://a.test/1</loc></url>\n"
            "<url><loc>http://a.test/2</loc></oops></url>\n"
            "<url><loc>http://a.test/3</loc></url></urlset>",
            "urlset",
            urls("http://a.test/1"),
            "malformed: mismatched tag at line 2",
            id="malformed-keeps-entries-before",
        ),
        pytest.param(
            "<urlset>\n<url><loc>http://a.test/1</loc></url>\n<url><loc>http://a.test/2</lo",
            "urlset",
            urls("http://a.test/1"),
            "malformed: unclosed token at line 3",
            id="truncated-keeps-complete-entries",
        ),
        pytest.param(
            "<urlset>\n<url><loc>http://a.test/1</loc></url>\n<url><loc>http://a.test/2</loc>",
            "urlset",
            urls("http://a.test/1"),
            "malformed: no element found at line 3",
            id="truncated-in-an-entry",
        ),
        pytest.param(
            "<urlset><url><loc>http://a.test/1</loc></url><url><loc>&xxe;</loc></url></urlset>",
            "urlset",
            urls("http://a.test/1"),
            "malformed: undefined entity at line 1",
            id="undeclared-entity",
        ),
        pytest.param(
            '<?xml version="1.0" encoding="klingon"?><urlset/>',
            "unknown",
            (),
            "malformed: unsupported encoding",
            id="unknown-encoding",
        ),
        pytest.param(
            '<?xml version="1.0" encoding="Shift_JIS"?><urlset/>',
            "unknown",
            (),
            "malformed: unsupported encoding",
            id="multi-byte-encoding",
        ),
        pytest.param(
            "<!DOCTYPE urlset><urlset><url><loc>http://a.test/1</loc></url></urlset>",
            "unknown",
            (),
            "doctype",
            id="doctype",
        ),
        pytest.param(
            '<!DOCTYPE urlset SYSTEM "http://a.test/sitemap.dtd"><urlset/>',
            "unknown",
            (),
            "doctype",
            id="doctype-external-dtd",
        ),
        pytest.param("<!DOCTYPE html>\n<html></html>", "unknown", (), "doctype", id="html5"),
        pytest.param(BILLION_LAUGHS, "unknown", (), "doctype", id="billion-laughs"),
        pytest.param(EXTERNAL_ENTITY, "unknown", (), "doctype", id="external-entity"),
    ],
)
def test_documents(
    document: str,
    kind: SitemapKind,
    entries: tuple[SitemapEntry, ...],
    left_out: str | None,
    gzipped: bool,
) -> None:
    raw = document.encode("latin-1" if "ISO-8859-1" in document else "utf-8")
    body = gzip.compress(raw) if gzipped else raw
    assert read_sitemap(body) == Sitemap(kind, entries, left_out, bytes_read=len(raw))


def test_result_and_function_pickle() -> None:
    """The crawler reads big sitemaps in a worker process."""
    sitemap = read_sitemap(b"<urlset><url><loc>http://a.test/1</loc></url><oops></urlset>")
    assert pickle.loads(pickle.dumps(sitemap)) == sitemap
    assert sitemap.entries == urls("http://a.test/1")
    assert pickle.loads(pickle.dumps(read_sitemap)) is read_sitemap


# -- gzip --------------------------------------------------------------------------------------

DOCUMENT = (
    b"<urlset>"
    + b"".join(b"<url><loc>http://a.test/%d</loc></url>" % i for i in range(3))
    + b"</urlset>"
)
GZIPPED = gzip.compress(DOCUMENT, mtime=0)


@pytest.mark.parametrize(
    ("body", "kind", "entries", "left_out"),
    [
        pytest.param(b"\x1f\x8b", "unknown", 0, "gzip: truncated", id="magic-only"),
        pytest.param(
            b"\x1f\x8bnot gzip", "unknown", 0, "gzip: unknown compression method", id="method"
        ),
        pytest.param(
            GZIPPED[:10] + b"\xff" * 20, "unknown", 0, "gzip: invalid block type", id="deflate"
        ),
        pytest.param(
            GZIPPED[:-8] + bytes(b ^ 0xFF for b in GZIPPED[-8:-4]) + GZIPPED[-4:],
            "unknown",
            0,  # the last call, which made the whole document, failed the check
            "gzip: incorrect data check",
            id="crc",
        ),
        pytest.param(GZIPPED[:-8], "urlset", 3, "gzip: truncated", id="no-trailer"),
        pytest.param(GZIPPED + b"\0\0\0", "urlset", 3, None, id="trailing-garbage-ignored"),
        pytest.param(
            GZIPPED + gzip.compress(b"<urlset><url><loc>http://a.test/4</loc></url></urlset>"),
            "urlset",
            3,
            None,
            id="second-member-ignored",
        ),
    ],
)
def test_gzip(body: bytes, kind: SitemapKind, entries: int, left_out: str) -> None:
    sitemap = read_sitemap(body)
    assert (sitemap.kind, sitemap.left_out) == (kind, left_out)
    assert sitemap.entries == urls(*(f"http://a.test/{i}" for i in range(entries)))


def test_gzip_cut_short_keeps_the_entries_before() -> None:
    document = urlset_of(2000)
    body = gzip.compress(document)[:-5000]
    sitemap = read_sitemap(body)
    assert sitemap.left_out == "gzip: truncated"
    assert 0 < len(sitemap.entries) < 2000
    assert sitemap.entries == read_sitemap(document).entries[: len(sitemap.entries)]


# -- caps ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [urlset_of, text_of], ids=["urlset", "text"])
def test_entries_cap(make: Callable[[int], bytes]) -> None:
    """sitemaps.org: 50,000 URLs at most; the first 50,000 are kept."""
    sitemap = read_sitemap(make(60_000))
    assert MAX_ENTRIES == 50_000
    assert sitemap.entries == urls(*(f"https://a.test/page/{i}" for i in range(50_000)))
    assert sitemap.left_out == "entries"


@pytest.mark.parametrize(
    ("count", "max_entries", "kept", "left_out"),
    [
        pytest.param(3, 3, 3, None, id="at-the-cap"),
        pytest.param(4, 3, 3, "entries", id="past-the-cap"),
        pytest.param(1, 0, 0, "entries", id="zero"),
        pytest.param(0, 0, 0, None, id="zero-of-none"),
    ],
)
def test_entries_cap_custom(count: int, max_entries: int, kept: int, left_out: str | None) -> None:
    for body in (urlset_of(count), text_of(count)):
        sitemap = read_sitemap(body, max_entries=max_entries)
        assert sitemap.entries == urls(*(f"https://a.test/page/{i}" for i in range(kept)))
        assert sitemap.left_out == left_out


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize(
    ("document", "cut_after", "entries", "left_out"),
    [
        pytest.param(b"http://a.test/1\nhttp://a.test/2\n", None, 2, None, id="text-whole"),
        # A line cut by the cap could be a URL cut short: it is not taken.
        pytest.param(b"http://a.test/1\nhttp://a.test/2\n", b"/2", 1, "size", id="text-cut"),
        pytest.param(
            b"<urlset><url><loc>http://a.test/1</loc></url><url><loc>http://a.test/2</loc>"
            b"</url></urlset>",
            b"</url>",
            1,
            "size",
            id="xml-cut",
        ),
        pytest.param(b"<urlset/>   \n", b"<urlset/>  ", 0, "size", id="xml-cut-in-whitespace"),
    ],
)
def test_size_cap(
    document: bytes, cut_after: bytes | None, entries: int, left_out: str | None, gzipped: bool
) -> None:
    """max_bytes counts uncompressed bytes: exactly that many are read, the rest not."""
    max_bytes = len(document) if cut_after is None else document.index(cut_after) + len(cut_after)
    body = gzip.compress(document) if gzipped else document
    sitemap = read_sitemap(body, max_bytes=max_bytes)
    assert sitemap.entries == urls(*(f"http://a.test/{i}" for i in range(1, entries + 1)))
    assert (sitemap.left_out, sitemap.bytes_read) == (left_out, max_bytes)


# What reading holds at once (a chunk or two, expat's buffer, zlib's window) is well under
# 1 MB; far below the 200 MiB bomb, the 40 MiB document, the 3.6 MB body below, and the 64 MB
# that one unbounded inflate of a 64 KiB input chunk of spaces would make.
PEAK = 2_000_000


def test_gzip_bomb_stops_at_the_size_cap() -> None:
    head = b"<urlset><url><loc>http://a.test/1</loc></url>"
    tail = b"<url><loc>http://a.test/2</loc></url></urlset>"
    body = gzip_of_repeats(head, b" " * 2**20, 200, tail)  # 200 MiB of spaces
    assert len(body) < 300_000
    sitemap, peak = peak_memory(body, max_bytes=1_000_000)
    assert sitemap == Sitemap("urlset", urls("http://a.test/1"), "size", bytes_read=1_000_000)
    assert peak < PEAK


def test_gzip_is_read_as_a_stream() -> None:
    """A document under the cap is read whole, never held whole."""
    head = b"<urlset><url><loc>http://a.test/1</loc></url>"
    tail = b"<url><loc>http://a.test/2</loc></url></urlset>"
    body = gzip_of_repeats(head, (b" " * 1023 + b"\n") * 1024, 40, tail)  # 40 MiB of whitespace
    size = len(head) + 40 * 2**20 + len(tail)
    sitemap, peak = peak_memory(body)
    assert sitemap == Sitemap("urlset", urls("http://a.test/1", "http://a.test/2"), None, size)
    assert peak < PEAK


# -- entity guards --------------------------------------------------------------------------------


def test_entity_declarations_are_refused_without_the_doctype_guard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The backstop: were a DOCTYPE let through, its first entity declaration ends the read."""
    monkeypatch.setattr(sitemaps, "_refuse_doctype", lambda *args: None)
    for document in (BILLION_LAUGHS, EXTERNAL_ENTITY):
        assert read_sitemap(document.encode()) == Sitemap(
            "unknown", (), "entity", bytes_read=len(document)
        )


def test_external_entities_load_nothing_without_any_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under both guards: expat is never asked to load an external entity, so it skips it."""
    monkeypatch.setattr(sitemaps, "_refuse_doctype", lambda *args: None)
    monkeypatch.setattr(sitemaps, "_refuse_entity", lambda *args: None)
    sitemap = read_sitemap(EXTERNAL_ENTITY.encode())
    assert sitemap.entries == urls("http://a.test/")
    assert sitemap.left_out is None


def test_compressed_input_is_read_in_chunks_too() -> None:
    """zlib copies the input it has not consumed yet on each call: fed the whole body each
    time, reading a 50 MB document would copy gigabytes."""
    hexes = random.Random(1).randbytes(3_000_000).hex()
    document = "".join(f"x{hexes[i : i + 63]}\n" for i in range(0, len(hexes), 63)).encode()
    body = gzip.compress(document, compresslevel=1)
    assert len(body) > 3_000_000
    sitemap, peak = peak_memory(body)
    assert sitemap == Sitemap("text", (), None, bytes_read=len(document))
    assert peak < PEAK
