"""URL normalization. Pure: no I/O. (Which URLs are crawled: `skips`.)

Normalization follows SPEC.md "URLs": yarl already lower-cases scheme and host, encodes IDN
hosts to punycode, drops default ports, removes dot-segments, gives an empty path `/`, decodes
percent-encoded unreserved characters and upper-cases percent-encoding hex; we add dropping the
fragment and refusing everything but http and https.
"""

from __future__ import annotations

import re

from yarl import URL

FOLLOWED_SCHEMES = frozenset({"http", "https"})
# A host name as yarl writes it (lower-case, punycode) or an IP literal; anything else is junk.
_HOST = re.compile(r"[a-z0-9_.-]+|[0-9a-f:.]+")


def normalize(href: str, base: URL | None = None) -> URL | None:
    """The normalized absolute URL of `href` (resolved against `base`), or None when it is not
    an http(s) URL with a host, or cannot be parsed."""
    href = href.strip()
    if base is None and not href:
        return None
    try:
        url = URL(href)
        if base is not None and not url.scheme:
            url = _folder_of(base, url).join(url)
        if url.scheme not in FOLLOWED_SCHEMES or not _HOST.fullmatch(url.raw_host or ""):
            return None
        if url.raw_fragment:
            url = url.with_fragment(None)
        if url.raw_path == "/" and not url.raw_query_string:
            text = str(url)
            if not text.endswith("/"):
                return URL(text + "/")  # yarl writes "http://h" without its path; SPEC: "http://h/"
        return url
    except (ValueError, TypeError, UnicodeError):
        return None


def _folder_of(base: URL, ref: URL) -> URL:
    """The base a reference resolves against: for a relative path, `base` cut after the last
    "/" of its path. yarl merges such a path with the base's *decoded* segments, so that
    "e" against "/x%2Fy/z" gave "/x/y/e" and against "/x%3Fy/z" a query; against a base that
    ends in "/" it keeps the encoded path, as RFC 3986 5.2.3 wants."""
    path = ref.raw_path
    if not path or path[0] == "/" or ref.raw_authority or base.raw_path.endswith("/"):
        return base
    folder = base.raw_path[: base.raw_path.rfind("/") + 1] or "/"
    return base.with_path(folder, encoded=True)


def host_key(url: URL) -> str:
    """The politeness key: the lower-cased host name, port ignored."""
    return url.raw_host or ""


def origin(url: URL) -> str:
    """The robots.txt origin: scheme, host and port (explicit only when not the default)."""
    return str(url.origin())
