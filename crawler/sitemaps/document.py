"""Sitemaps (the sitemaps.org protocol): what one fetched sitemap document lists.

read_sitemap(body) takes a body as fetched, gzip or not (told by its magic bytes, whatever the
URL or content type say). The root element decides the kind: `<urlset>` lists pages, the
`<loc>` and `<lastmod>` of each `<url>`; `<sitemapindex>` lists child sitemaps, those of each
`<sitemap>`. Elements count in the sitemaps.org namespace (http or https) or in none, and only
`<loc>` and `<lastmod>` directly inside an entry directly inside the root (an `<image:loc>` is
no page). A document that does not start with `<` (after a UTF-8 BOM and whitespace) is plain
text: each line that starts with http:// or https:// (any case) is a page. Text is stripped,
an empty `<loc>` skipped; URLs are neither normalized nor deduplicated (the caller's job).

Reading streams: gzip is inflated CHUNK bytes at a time, each piece parsed by expat as it comes;
neither the inflated document nor a tree of it is ever held. Reading may stop early, keeping
the entries completed before; `left_out` says why, in this vocabulary:
- "entries": more than max_entries entries;
- "size": more than max_bytes bytes, uncompressed (a text line cut by the cap is not taken);
- "doctype": XML with a DOCTYPE, refused as it opens;
- "entity": an entity declaration (a backstop: the DOCTYPE is refused first);
- "not a sitemap: root <name>": another root (`<{namespace}name>` if namespaced);
- "malformed: <expat message> at line <n>": XML not well formed, or cut short;
- "malformed: unsupported encoding": an XML declaration naming one expat cannot read;
- "gzip: <zlib message>", "gzip: truncated": bad or cut-short compressed data.

Pure (no I/O, clock or logging), so a caller may run it in a worker process: the function and
its result pickle.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal
from xml.parsers import expat

SITEMAP_NAMESPACE = "http://www.sitemaps.org/schemas/sitemap/0.9"
# None, the protocol's, and the protocol's spelt with https (site owners write it, and the
# big search engines read it).
_NAMESPACES = ("", SITEMAP_NAMESPACE, SITEMAP_NAMESPACE.replace("http:", "https:"))
MAX_ENTRIES = 50_000  # sitemaps.org: at most 50,000 URLs a sitemap
MAX_BYTES = 50_000_000  # sitemaps.org: at most 50 MB (52,428,800 bytes) uncompressed
CHUNK = 64 * 1024  # bytes inflated and parsed at a time

SitemapKind = Literal["urlset", "index", "text", "unknown"]

_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
_ROOTS: dict[str, tuple[SitemapKind, str]] = {  # root -> (kind, the element of one entry)
    "urlset": ("urlset", "url"),
    "sitemapindex": ("index", "sitemap"),
}


@dataclass(frozen=True, slots=True)
class SitemapEntry:
    url: str  # as written, stripped
    lastmod: str | None = None  # as written, stripped; None when absent or empty


@dataclass(frozen=True, slots=True)
class Sitemap:
    """What one document lists. kind "unknown": XML whose root is not a sitemap, or a document
    that ended (see left_out) before its kind showed."""

    kind: SitemapKind
    entries: tuple[SitemapEntry, ...]  # pages (urlset, text) or child sitemaps (index)
    left_out: str | None = None  # why reading stopped early (the module docstring's vocabulary)
    bytes_read: int = 0  # uncompressed bytes read: max_bytes at most


def read_sitemap(
    body: bytes, *, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES
) -> Sitemap:
    """The entries of one sitemap document, `body` as fetched (gzip or not).

    Never raises on bad input: `left_out` tells what could not be read, and why."""
    found = _Found(max_entries)
    reader = _Reader(found)
    read = 0
    left_out = None
    try:
        for chunk in _chunks(body, max_bytes):
            read += len(chunk)
            reader.feed(chunk)
        reader.close()
    except _Stop as stop:
        left_out = str(stop)
    return Sitemap(found.kind, tuple(found.entries), left_out, read)


class _Stop(Exception):
    """Ends the reading, with its reason; raised by the input, the readers, expat's handlers."""


def _chunks(body: bytes, max_bytes: int) -> Iterator[bytes]:
    """The document in chunks, inflated if it is gzip, max_bytes in all; past them, _Stop."""
    if body.startswith(_GZIP_MAGIC):
        source = _gunzip(body, max_bytes + 1)  # a byte past the cap tells that there is more
    else:
        source = (body[start : start + CHUNK] for start in range(0, len(body), CHUNK))
    left = max_bytes
    for chunk in source:
        if len(chunk) > left:
            if left:
                yield chunk[:left]
            raise _Stop("size")
        left -= len(chunk)
        yield chunk


def _gunzip(body: bytes, limit: int) -> Iterator[bytes]:
    """The first gzip member of body, inflated CHUNK bytes at a time, `limit` bytes at most.

    Output is bounded each call (max_length), so a bomb allocates nothing past the limit; input
    too, so the unconsumed tail zlib copies each call stays small. Members after the first (a
    gzip file may be several, end to end) are ignored: sitemap writers make one."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip header and trailer only
    offset = 0
    while limit > 0 and not inflater.eof:
        data = inflater.unconsumed_tail
        if not data:
            data = body[offset : offset + CHUNK]
            offset += len(data)
        try:
            chunk = inflater.decompress(data, min(CHUNK, limit))
        except zlib.error as exc:  # "Error -3 while decompressing data: invalid ..."
            raise _Stop("gzip: " + str(exc).rpartition(": ")[2]) from None
        if not chunk and not data and not inflater.eof:
            raise _Stop("gzip: truncated")
        limit -= len(chunk)
        if chunk:
            yield chunk


@dataclass(slots=True)
class _Found:
    """What the reading found so far."""

    max_entries: int
    kind: SitemapKind = "unknown"
    entries: list[SitemapEntry] = field(default_factory=list)

    def add(self, url: str, lastmod: str | None) -> None:
        if len(self.entries) >= self.max_entries:
            raise _Stop("entries")
        self.entries.append(SitemapEntry(url, lastmod))


class _Reader:
    """Hands the chunks to the XML or the text reader, as the document's first byte says."""

    def __init__(self, found: _Found) -> None:
        self._found = found
        self._head = b""  # the start of a BOM, cut by the end of a chunk
        self._body: _XmlReader | _TextReader | None = None

    def feed(self, chunk: bytes) -> None:
        if self._body is None:
            chunk = self._start(chunk)
        if self._body is not None and chunk:
            self._body.feed(chunk)

    def close(self) -> None:
        if self._body is None:  # empty, or whitespace only: a text without lines
            self._body = _TextReader(self._found)
        self._body.feed(b"", final=True)

    def _start(self, chunk: bytes) -> bytes:
        head = self._head + chunk
        if len(head) < len(_BOM) and _BOM.startswith(head):
            self._head = head
            return b""
        self._head = b""
        # Leading whitespace goes too: expat refuses it before an XML declaration.
        head = head.removeprefix(_BOM).lstrip()
        if head:
            found = self._found
            self._body = _XmlReader(found) if head.startswith(b"<") else _TextReader(found)
        return head


class _TextReader:
    """A plain-text sitemap: one URL a line; CR, LF or CRLF end a line."""

    def __init__(self, found: _Found) -> None:
        found.kind = "text"
        self._found = found
        self._partial: list[bytes] = []  # a line cut by the end of a chunk (a list: no O(n²))

    def feed(self, chunk: bytes, final: bool = False) -> None:
        for piece in chunk.splitlines(keepends=True):
            self._partial.append(piece)
            if piece.endswith((b"\n", b"\r")):
                self._line(b"".join(self._partial))
                self._partial.clear()
        if final:
            self._line(b"".join(self._partial))

    def _line(self, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").strip()
        if line[:8].lower().startswith(("http://", "https://")):
            self._found.add(line, None)


class _XmlReader:
    """A urlset or sitemapindex, read by expat as it comes: no tree, no DTD."""

    def __init__(self, found: _Found) -> None:
        elements = _Elements(found)  # holds no parser: no reference cycle
        parser = expat.ParserCreate(namespace_separator=" ")
        parser.buffer_text = True  # text in pieces of buffer_size, not a call a line
        parser.buffer_size = CHUNK
        # Entity expansion (billion laughs; external entities such as file:///etc/passwd) needs
        # a DOCTYPE: it is refused as it opens, before any declaration in it is read. External
        # DTDs and parameter entities are never read; with no ExternalEntityRefHandler, expat
        # loads nothing.
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.StartDoctypeDeclHandler = _refuse_doctype
        parser.EntityDeclHandler = _refuse_entity
        parser.StartElementHandler = elements.start
        parser.EndElementHandler = elements.end
        parser.CharacterDataHandler = elements.text
        self._parser = parser

    def feed(self, chunk: bytes, final: bool = False) -> None:
        try:
            self._parser.Parse(chunk, final)
        except expat.ExpatError as exc:
            message = expat.ErrorString(exc.code)
            raise _Stop(f"malformed: {message} at line {exc.lineno}") from None
        except (LookupError, ValueError):  # pyexpat's codec lookup for the declared encoding
            raise _Stop("malformed: unsupported encoding") from None


def _refuse_doctype(name: str, system: str | None, public: str | None, subset: bool) -> None:
    raise _Stop("doctype")


def _refuse_entity(name: str, *declaration: object) -> None:
    raise _Stop("entity")


@dataclass(slots=True)
class _Elements:
    """expat's element handlers: the entries, as elements open and close."""

    found: _Found
    entry: str = ""  # the element of one entry, told by the root
    depth: int = 0  # of the element open; the root is at 1
    fields: dict[str, str] | None = None  # within an entry: its loc and lastmod so far
    reading: str | None = None  # within an entry's loc or lastmod: which
    pieces: list[str] = field(default_factory=list)  # of its text

    def start(self, name: str, attributes: dict[str, str]) -> None:
        self.depth += 1
        local = _local_name(name)
        if self.depth == 1:
            self._root(name, local)
        elif self.depth == 2:
            self.fields = {} if local == self.entry else None
        elif self.depth == 3 and self.fields is not None and local in ("loc", "lastmod"):
            self.reading = local
            self.pieces = []

    def end(self, name: str) -> None:
        if self.depth == 3 and self.fields is not None and self.reading is not None:
            self.fields[self.reading] = "".join(self.pieces).strip()
            self.reading = None
        elif self.depth == 2 and self.fields is not None:
            if url := self.fields.get("loc"):
                self.found.add(url, self.fields.get("lastmod") or None)
            self.fields = None
        self.depth -= 1

    def text(self, data: str) -> None:
        if self.depth == 3 and self.reading is not None:
            self.pieces.append(data)

    def _root(self, name: str, local: str | None) -> None:
        root = _ROOTS.get(local) if local is not None else None
        if root is None:
            shown = "{" + name.replace(" ", "}") if " " in name else name
            raise _Stop(f"not a sitemap: root <{shown}>")
        self.found.kind, self.entry = root


def _local_name(name: str) -> str | None:
    """An element's local name if it is in the sitemaps namespace or none; None otherwise.
    expat gives "namespace local" (our separator), or "local" alone."""
    namespace, _, local = name.rpartition(" ")
    return local if namespace in _NAMESPACES else None
