"""Ground truth for the benchmark sites: every URL a crawl must fetch, its depth and what nginx
answers for it, computed from the files alone.

    .venv/bin/python bench/truth.py    # self-check: a 4-host site of 50 pages a host

Nothing of the crawler's fetch or parse code is used: links come from the files through
html.parser (`a[href]`, `area[href]`, `<base href>`, rel=nofollow and meta robots nofollow
respected, as SPEC.md says), are resolved with urllib.parse.urljoin and spelled as the crawler
stores them with `crawler.urls.normalize`. What nginx answers is derived from the files the way
a static nginx server maps them (`nginx_target`), and robots.txt is read from the document root
with Protego. Breadth-first from all seeds at depth 0; a redirect's target keeps its depth.

Not modelled: the crawler's trap guard, query-variant limit and URL length limit (the generated
sites never reach them), and any server but a static nginx with `index index.html;` and
autoindex off.
"""

from __future__ import annotations

import functools
import os
import posixpath
import re
import stat
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

from protego import Protego

from crawler.urls import normalize

RootOf = Callable[[str, int], Path | None]  # (host, port) -> nginx's document root, or None
HTML_SUFFIXES = (".html", ".htm")
URI_SAFE = "/:@!$&'()*+,;=-._~"  # left as they are in a Location nginx writes
NOFOLLOW = re.compile(r"\b(nofollow|none)\b")  # in meta robots content


@dataclass
class Truth:
    """What a complete crawl finds: `pages` and `depth` have the same keys (normalized URLs)."""

    pages: dict[str, int | None] = field(default_factory=dict)  # url -> status; None: no server
    depth: dict[str, int] = field(default_factory=dict)  # url -> shortest link distance
    disallowed: set[str] = field(default_factory=set)  # found, in scope, robots says no

    def requests(self) -> Counter[str]:
        """The requests nginx should log, one per page (robots.txt aside), keyed
        "host path": the host without its port, the path (and ?query) as the crawler sends it."""
        return Counter(request_key(url) for url, status in self.pages.items() if status)

    def statuses(self) -> Counter[int | None]:
        return Counter(self.pages.values())


def request_key(url: str) -> str:
    parts = urlsplit(url)
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.hostname} {parts.path or '/'}{query}"


# --------------------------------------------------------------------------------------- nginx


@dataclass
class Target:
    """What nginx answers for one URL."""

    status: int | None
    file: Path | None = None  # the file it sends, for 200
    location: str | None = None  # absolute, for 301


def nginx_uri(raw_path: str) -> str:
    """The path as nginx maps it to a file: percent-decoded, slashes merged, dot-segments
    resolved, a trailing slash kept."""
    path = re.sub("/{2,}", "/", unquote(raw_path or "/"))
    resolved = posixpath.normpath(path)
    return resolved + "/" if path.endswith("/") and resolved != "/" else resolved


def nginx_target(url: str, root_of: RootOf) -> Target:
    """What a static nginx answers for `url`: the file (200), a folder without its slash (301
    to the slash form, query kept), a folder with one and an index.html (200), without one (403),
    anything else (404). The query plays no part in finding the file."""
    parts = urlsplit(url)
    root = root_of(parts.hostname or "", parts.port or 80) if parts.scheme == "http" else None
    if root is None:
        return Target(None)  # in scope, but nothing serves it (https: no TLS here)
    uri = nginx_uri(parts.path)
    file = os.path.join(root, uri.lstrip("/"))
    if uri.endswith("/"):
        index = os.path.join(file, "index.html")
        if file_kind(index) == "file":
            return Target(200, Path(index))
        return Target(403 if file_kind(file) == "dir" else 404)
    kind = file_kind(file)
    if kind == "dir":
        query = f"?{parts.query}" if parts.query else ""
        return Target(301, location=urljoin(url, quote(uri + "/", safe=URI_SAFE) + query))
    return Target(200, Path(file)) if kind == "file" else Target(404)


def file_kind(path: str) -> str | None:
    """One stat, as nginx does: "file", "dir", or None (missing, or a path through a file)."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    return "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else None


# -------------------------------------------------------------------------------------- robots


class Robots:
    """Each origin's robots.txt rules, read from its document root."""

    def __init__(self, root_of: RootOf, user_agent: str) -> None:
        self._root_of = root_of
        self._user_agent = user_agent
        self._rules: dict[str, Protego | bool] = {}  # origin -> rules, or allow all / none

    def allows(self, url: str) -> bool:
        """Whether robots.txt lets us fetch `url` (a normalized URL: scheme://host[:port]/...)."""
        origin = url[: url.index("/", url.index("//") + 2)]
        rules = self._rules.get(origin)
        if rules is None:
            rules = self._rules[origin] = self._load(origin)
        if isinstance(rules, bool):
            return rules
        return bool(rules.can_fetch(url, self._user_agent))

    def _load(self, origin: str) -> Protego | bool:
        target = nginx_target(f"{origin}/robots.txt", self._root_of)
        if target.status is None:
            return False  # RFC 9309 2.3.1.4: unreachable, disallow all
        if target.status == 200 and target.file is not None:
            return Protego.parse(target.file.read_bytes().decode("utf-8", errors="replace"))
        return True  # 2.3.1.3: 4xx, allow all (also a folder named robots.txt: 301, then 403)


# ----------------------------------------------------------------------------------- the links


class LinkParser(HTMLParser):
    """The hrefs a crawler follows from one page: `a[href]` and `area[href]` without
    rel=nofollow, none at all under meta robots nofollow (or none); and the first `<base href>`."""

    def __init__(self, token: str) -> None:
        super().__init__(convert_charrefs=True)
        self.token = token  # a meta named after our product token counts as meta robots
        self.hrefs: list[str] = []
        self.base: str | None = None
        self.nofollow = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag in ("a", "area") and "href" in values:
            if "nofollow" not in values.get("rel", "").lower().split():
                self.hrefs.append(values["href"])
        elif tag == "base" and "href" in values and self.base is None:
            self.base = values["href"]
        elif tag == "meta" and values.get("name", "").lower() in ("robots", self.token):
            self.nofollow |= bool(NOFOLLOW.search(values.get("content", "").lower()))


def page_hrefs(file: Path, token: str) -> tuple[str | None, list[str]]:
    """The `<base href>` (or None) and the hrefs the crawler follows from `file`."""
    parser = LinkParser(token)
    parser.feed(file.read_bytes().decode("utf-8", errors="replace"))
    parser.close()
    return parser.base, [] if parser.nofollow else parser.hrefs


class Scope:
    """Which found links are the crawl's, resolved and spelled as the crawler spells them."""

    def __init__(self, allowed_hosts: Iterable[str], cache_size: int = 200_000) -> None:
        self._hosts = tuple(host.lower().rstrip(".") for host in allowed_hosts)
        # (base folder, href) -> admitted URL: pages of one folder share most of their links
        # (nav, footer), and resolving them is a third of the time.
        self._cache: dict[tuple[str, str], str | None] = {}
        self._cache_size = cache_size

    def links(self, url: str, base: str | None, hrefs: list[str]) -> list[str]:
        """The admitted URLs of `hrefs`, found on the page at `url`."""
        base = urljoin(url, base.strip()) if base else url
        parts = urlsplit(base)
        folder = urlunsplit((parts.scheme, parts.netloc, parts.path.rpartition("/")[0], "", ""))
        found = []
        for href in hrefs:
            href = href.strip()
            if not href or href[0] in "?#":
                admitted = self.admit(urljoin(base, href))  # these depend on the whole base
            elif (folder, href) in self._cache:
                admitted = self._cache[folder, href]
            else:
                admitted = self.admit(urljoin(base, href))
                if len(self._cache) >= self._cache_size:
                    self._cache.clear()  # bounded: the million-URL site never hits it
                self._cache[folder, href] = admitted
            if admitted is not None:
                found.append(admitted)
        return found

    def admit(self, raw: str) -> str | None:
        """The normalized URL when `raw` is http(s) on an allowed host (or a subdomain of one),
        else None."""
        url = normalize(raw)  # None unless http or https
        if url is None:
            return None
        host = url.raw_host or ""
        return str(url) if any(host == h or host.endswith("." + h) for h in self._hosts) else None


# -------------------------------------------------------------------------------- ground truth


def ground_truth(
    seeds: list[str],
    root_of: RootOf,
    allowed_hosts: set[str],
    obey_robots: bool = True,
    max_depth: int = 1000,
    user_agent: str = "crawler",
) -> Truth:
    """Every URL a complete crawl from `seeds` fetches, with nginx's status and its depth (the
    shortest link distance; a redirect's target keeps the depth of the redirect)."""
    root_of = functools.lru_cache(maxsize=None)(root_of)  # one Path per host, not per URL
    scope = Scope(allowed_hosts)
    token = user_agent.split("/")[0].strip().lower()  # the product token, as the crawler uses
    robots = Robots(root_of, token) if obey_robots else None
    truth = Truth()
    best: dict[str, int] = {}
    # 0-1 breadth-first search: a redirect's target (0 hops) goes to the front, a link's (1 hop)
    # to the back, so URLs come out by depth, each the first time at its least depth.
    todo: deque[tuple[str, int]] = deque()

    def reach(url: str | None, depth: int, redirect: bool = False) -> None:
        if url is None or depth > max_depth or depth >= best.get(url, max_depth + 1):
            return
        if robots is not None and not robots.allows(url):
            truth.disallowed.add(url)
            return
        best[url] = depth
        if redirect:
            todo.appendleft((url, depth))
        else:
            todo.append((url, depth))

    for seed in seeds:
        reach(scope.admit(seed), 0)
    while todo:
        url, depth = todo.popleft()
        if url in truth.pages or best[url] != depth:
            continue  # done already, or queued again since at a lesser depth
        target = nginx_target(url, root_of)
        truth.pages[url], truth.depth[url] = target.status, depth
        if target.status == 301 and target.location:
            reach(scope.admit(target.location), depth, redirect=True)
        elif target.status == 200 and target.file and target.file.suffix in HTML_SUFFIXES:
            for link in scope.links(url, *page_hrefs(target.file, token)):
                reach(link, depth + 1)
    return truth


# ---------------------------------------------------------------------------------- self-check


def main() -> None:
    import tempfile
    import time

    from gensite import write_multihost

    with tempfile.TemporaryDirectory(prefix="truth-") as tmp:
        site = write_multihost(Path(tmp), hosts=4, pages=50)
        start = time.perf_counter()
        truth = ground_truth(site.seeds(), site.root_of, set(site.hosts))
        took = time.perf_counter() - start
    statuses = dict(sorted(truth.statuses().items(), key=lambda item: item[0] or 0))
    print(f"{len(truth.pages)} pages, statuses {statuses}, {len(truth.disallowed)} disallowed")
    print(f"depths {dict(sorted(Counter(truth.depth.values()).items()))}, {took:.2f} s")


if __name__ == "__main__":
    main()
