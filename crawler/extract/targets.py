"""Where each link of a page leads: its href resolved against the page's base and normalized,
with the target's host, cached across pages (`LinkTargets`); the hot path of link extraction.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from yarl import URL

from ..urls import host_key, normalize


class Target(NamedTuple):
    """Where a link leads: its normalized URL and its host."""

    url: str
    host: str


class LinkTargets:
    """normalize(href, base) and the result's host, cached by (base, href).

    The key is not the whole base URL, or no two pages would share an entry: a relative path
    resolves against the base's folder only and a path starting with "/" against its origin
    (RFC 3986 5.2.2), so the navigation links that every page of a folder repeats are resolved
    once; an absolute URL does not depend on the base at all. "" and "#fragment" are the base
    itself. "?query" depends on the whole base, and yarl resolves "//" (no host) to the base
    itself: those, and "//host/path", are not cached.
    """

    def __init__(self, size: int = 20_000) -> None:
        self._size = size
        self._cache: dict[tuple[str, str], Target | None] = {}

    def resolver(self, base: URL) -> Callable[[str], Target | None]:
        """The target of each href found on a page whose links resolve against `base`."""
        text = str(base)
        path_start = text.find("/", text.find("//") + 2) % (len(text) + 1)  # -1: no path
        origin = text[:path_start]
        host = host_key(base)
        path_end = len(text.partition("?")[0])
        folder = text[: text.rfind("/", path_start, path_end) + 1] or origin + "/"
        cache, size, unknown = self._cache, self._size, _UNKNOWN
        itself = Target(text, host)

        def resolve(href: str) -> Target | None:
            href = href.strip()  # as normalize() does
            if not href or href[0] == "#":
                return itself  # the base without its fragment, which it has not (RFC 3986 5.2.2)
            if href[0] == "?" or href.startswith("//"):
                return self._target(href, base)
            if href[0] == "/":
                key = (origin, href)
            elif href.startswith(("http://", "https://")):
                key = ("", href)  # absolute: the base plays no part
            else:
                key = (folder, href)
            target = cache.get(key, unknown)
            if target is unknown:
                if len(cache) >= size:
                    cache.clear()  # cheaper than LRU bookkeeping, and misses are not costly
                simple = _simple_url(href, origin, folder)
                if simple is not None:
                    target = Target(simple, host if key[0] else _host_of(simple))
                else:
                    target = self._target(href, base)
                cache[key] = target
            return target

        return resolve

    def _target(self, href: str, base: URL) -> Target | None:
        url = normalize(href, base)
        return None if url is None else Target(str(url), host_key(url))


_UNKNOWN = Target("", "")  # a cache miss (None: not a URL)

# Most links are simple: a path of unreserved characters and "/" ("." and ".." segments too),
# relative, root-relative or absolute with a lower-case host name, perhaps with a #fragment.
# Normalizing one is string work (RFC 3986: merge, remove dot segments, drop the fragment and
# a default port), five times cheaper than yarl's parse and join. Anything else goes to yarl.
_SIMPLE = re.compile(
    r"(?:(https?)://([a-z0-9-]+(?:\.[a-z0-9-]+)*)(?::([1-9][0-9]{0,4}))?)?([\w.~/-]*)(?:#.*)?",
    re.ASCII | re.DOTALL,
)
_DEFAULT_PORT = {"http": "80", "https": "443"}


def _simple_url(href: str, origin: str, folder: str) -> str | None:
    """normalize(href, base) for a simple href (see _SIMPLE), or None for any other href.
    `origin` and `folder` are the base's, as LinkTargets.resolver cuts them; href does not
    start with "//", "?" or "#"."""
    match = _SIMPLE.fullmatch(href)
    if match is None:
        return None
    scheme, host, port, path = match.groups()
    if scheme is None:
        merged = path if path.startswith("/") else folder[len(origin) :] + path
        return origin + _without_dot_segments(merged)
    if (path and path[0] != "/") or (port and int(port) > 65535):
        return None
    authority = host if port in (None, _DEFAULT_PORT[scheme]) else f"{host}:{port}"
    return f"{scheme}://{authority}{_without_dot_segments(path or '/')}"


def _without_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4 for an absolute path: "/a/b/../c/." is "/a/c/"."""
    if "/." not in path:  # every dot segment follows a "/"
        return path
    segments = path.split("/")
    kept = [""]
    for segment in segments[1:]:
        if segment == "..":
            if len(kept) > 1:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    if segments[-1] in (".", ".."):
        kept.append("")  # "/a/b/.." is "/a/", with its slash
    return "/".join(kept) or "/"


def _host_of(url: str) -> str:
    """The host of an absolute simple URL: between "//" and the port or path."""
    authority = url[url.index("//") + 2 :].partition("/")[0]
    return authority.partition(":")[0]
