"""A page's bytes to text, as a browser picks the encoding (WHATWG Encoding, simplified): the
byte order mark, then the Content-Type charset, then a <meta> charset near the top, else UTF-8.
Pure; never raises on any input (bad bytes are replaced)."""

from __future__ import annotations

import codecs
import re

HTML_WS = "\t\n\f\r "  # the HTML spec's ASCII whitespace
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# WHATWG Encoding: browsers decode these labels as windows-1252 and UTF-16LE.
_ALIASES = {"ascii": "cp1252", "iso8859-1": "cp1252", "utf-16": "utf-16-le"}
# Python codecs that are no web charset (WHATWG bans UTF-7: it smuggles markup past filters).
_UNFIT = frozenset({"utf-7", "idna", "punycode", "unicode-escape", "raw-unicode-escape"})
_META_CHARSET = re.compile(rb"""<meta\b[^>]*?charset[\t\n\f\r ]*=[\t\n\f\r "']*([\w.:-]+)""", re.I)


def _codec(label: str | None) -> str | None:
    """Python codec name for a charset label, or None if unknown or no web charset."""
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip(HTML_WS + "\"'")).name
    except (LookupError, ValueError):
        return None
    name = _ALIASES.get(name, name)
    return None if name in _UNFIT else name


def _sniff_meta(head: bytes) -> str | None:
    """Codec named by a <meta> charset in the first bytes of a page."""
    match = _META_CHARSET.search(head)
    name = _codec(match.group(1).decode("ascii")) if match else None
    # WHATWG: a page that could declare UTF-16 in ASCII is not UTF-16.
    return "utf-8" if name is not None and name.startswith("utf-16") else name


def decode_html(body: bytes, header_charset: str | None) -> str:
    """Body bytes to text: BOM first, then the Content-Type charset, then a <meta charset> /
    <meta http-equiv=Content-Type content="...charset=..."> in the first 1024 bytes, else UTF-8;
    an unknown charset name falls back to UTF-8; never raises (errors="replace")."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(name, "replace")
    name = _codec(header_charset) or _sniff_meta(body[:1024]) or "utf-8"
    try:
        return body.decode(name, "replace")
    except LookupError:  # a bytes-to-bytes codec such as "zlib" or "rot13"
        return body.decode("utf-8", "replace")
