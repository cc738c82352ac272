"""The bundled demo site: three virtual hosts served by one offline aiohttp application.

`make_app()` answers for every name in `DEMO_HOSTS` by the request's `Host` header (the port is
ignored), so one loopback server plus `fetch.resolve` is a whole small web to crawl. The site
is generated from a seed by `build_site()`, a pure model (host -> path -> `Resource`) that both
the request handler and `expected_pages()` (the ground truth for tests) read, so the two can't
disagree. It holds the cases a polite crawler must get right: many spellings of one URL,
cross-host links, off-site links, robots.txt, a redirect, 404/500, non-HTML files (at URLs
that look like pages, and at URLs whose extension says what they are, which a crawler with
the default `skip_extensions` leaves alone), rel=nofollow and a noindex page. Every request
is recorded in `app[REQUEST_LOG]` as it arrives.

Run it with `crawler demo-site --port 8080` or `python -m crawler.demo_site --port 8080`.
"""

from __future__ import annotations

import argparse
import functools
import html
import random
import socket
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from aiohttp import web

from .config import DEFAULT_SKIP_EXTENSIONS

DEMO_HOSTS: tuple[str, ...] = ("docs.demo.test", "blog.demo.test", "shop.demo.test")
ROBOTS_TXT = "User-agent: *\nDisallow: /private/\n"
PORT = "{port}"  # stands for ":PORT" in hrefs, as the request's Host header gave it
PRIVATE_PATHS = ("/private/report-1", "/private/report-2", "/private/archive")
OFFSITE_LINKS = (
    "http://elsewhere.example/",
    "https://elsewhere.example/about?ref=demo",
    "http://notdemo.test/",  # ends with "demo.test" but is not a subdomain of it
    "http://demo.test.elsewhere.example/",
    "mailto:webmaster@demo.test",
    "javascript:void(0)",
    "data:text/plain,hello",
)
# A 1x1 transparent PNG and a tiny PDF: real magic bytes, so sniffers agree with the header.
PNG_BYTES = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f"
    "15c4890000000b4944415478da636000020000050001e9fadcd80000000049454e44ae426082"
)
PDF_BYTES = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
WORDS = ("crawl", "frontier", "robots", "polite", "delay", "host", "queue", "fetch", "parse")

Target = tuple[str, str]  # (host, normalized path) inside the site


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as the demo site saw it arrive."""

    time: float  # time.monotonic()
    host: str  # lower-cased, port stripped
    path: str  # path_qs as received
    user_agent: str


@dataclass(frozen=True, slots=True)
class Link:
    href: str  # as written in the page; PORT is replaced at request time
    target: Target | None  # None: the link leaves the site
    nofollow: bool = False


@dataclass(frozen=True, slots=True)
class Resource:
    """What one path serves. A 3xx redirects to its only link; HTML renders its links."""

    status: int = 200
    content_type: str = "text/html"
    title: str = ""
    text: str = ""
    links: tuple[Link, ...] = ()
    noindex: bool = False
    body: bytes = b""


REQUEST_LOG = web.AppKey[list[RequestRecord]]("request_log")
_SITE = web.AppKey[Mapping[str, Mapping[str, Resource]]]("site")


def _page_path(i: int) -> str:
    return "/" if i == 0 else f"/page/{i}"


def _spelling(rng: random.Random, host: str, src: int, dst: int) -> str:
    """One of many ways to write a link from page `src` to page `dst` of the same host."""
    path = _page_path(dst)
    options = [path, f"{path}#part-{rng.randint(1, 3)}", f"http://{host}{PORT}{path}"]
    options.append(f"http://{host.upper()}{PORT}{path}")
    if dst > 0:
        digits = str(dst)
        options += [f"/page/%3{digits[0]}{digits[1:]}", f"/p%61ge/{dst}", f"/page/./{dst}"]
        if src == 0:
            options += [f"page/{dst}", f"./page/{dst}"]
        else:
            options += [digits, f"./{dst}", f"../page/{dst}", f"../page/x/../{dst}"]
    elif src > 0:
        options += ["../", "./../"]
    return rng.choice(options)


def _host_pages(rng: random.Random, host: str, n: int) -> dict[str, Resource]:
    links: list[list[Link]] = [[] for _ in range(n)]

    def link(src: int, dst: int, **kw: bool) -> None:
        links[src].append(Link(_spelling(rng, host, src, dst), (host, _page_path(dst)), **kw))

    others = [h for h in DEMO_HOSTS if h != host]
    for i in range(n):
        for child in (2 * i + 1, 2 * i + 2):  # the spanning tree: every page is reachable
            if child < n:
                link(i, child)
        if i > 0:
            link(i, (i - 1) // 2)
        if i == 0:  # every host's home links the others' homes
            links[i] += [Link(f"http://{other}{PORT}/", (other, "/")) for other in others]
        elif rng.random() < 0.3:
            other, path = rng.choice(others), _page_path(rng.randrange(n))
            links[i].append(Link(f"http://{other}{PORT}{path}", (other, path)))
        if rng.random() < 0.3:
            links[i].append(Link(rng.choice(OFFSITE_LINKS), None))
        wanted = rng.randint(5, 15)
        while len(links[i]) < wanted:
            dst = rng.randrange(n)
            if (i, dst) != (0, 3):  # so docs' /page/3 is at depth 1 only via /moved (below)
                link(i, dst)
    for src, private in zip(rng.sample(range(n), 2), PRIVATE_PATHS[:2], strict=True):
        links[src].append(Link(private, (host, private)))

    def to(path: str, **kw: bool) -> Link:
        return Link(path, (host, path), **kw)

    def html_page(title: str, page_links: Sequence[Link], *, noindex: bool = False) -> Resource:
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60))).capitalize()
        return Resource(title=title, text=text + ".", links=tuple(page_links), noindex=noindex)

    pages: dict[str, Resource] = {}
    if host == DEMO_HOSTS[0]:  # the special cases live on docs, each linked from one page
        # "/" -> /moved -> /page/3 makes /page/3 depth 1: a redirect hop doesn't count.
        links[0].append(to("/moved"))
        missing, broken, files, nofollow, noindex = rng.sample(range(1, n), 5)
        links[missing].append(to("/missing"))  # not in the model: 404
        links[broken].append(to("/broken"))
        links[files] += [to("/files/report"), to("/logo"), to("/files/report.pdf"), to("/logo.png")]
        links[nofollow].append(to("/nofollow-target", nofollow=True))
        links[noindex].append(to("/noindex"))
        pages["/moved"] = Resource(status=301, links=(to("/page/3"),))
        pages["/broken"] = Resource(status=500, content_type="text/plain", body=b"error\n")
        for path in ("/files/report", "/files/report.pdf"):
            pages[path] = Resource(content_type="application/pdf", body=PDF_BYTES)
        for path in ("/logo", "/logo.png"):
            pages[path] = Resource(content_type="image/png", body=PNG_BYTES)
        pages["/nofollow-target"] = html_page("Only linked with rel=nofollow", [to("/")])
        pages["/noindex"] = html_page("Not for the index", [to("/"), to("/page/1")], noindex=True)
    name = host.split(".")[0].capitalize()
    for i in range(n):
        pages[_page_path(i)] = html_page(f"{name} home" if i == 0 else f"{name} page {i}", links[i])
    pages["/private/report-1"] = html_page("Private report 1", [to("/private/archive"), to("/")])
    pages["/private/report-2"] = html_page("Private report 2", [to("/private/archive")])
    pages["/private/archive"] = html_page("Private archive", [to("/")])
    return pages


@functools.lru_cache(maxsize=8)
def build_site(seed: int = 1, pages_per_host: int = 120) -> Mapping[str, Mapping[str, Resource]]:
    """The site model: host -> path (decoded, normalized) -> `Resource`. Don't mutate it."""
    if pages_per_host < 8:
        raise ValueError(f"pages_per_host must be at least 8, not {pages_per_host!r}")
    rng = random.Random(seed)
    return {host: _host_pages(rng, host, pages_per_host) for host in DEMO_HOSTS}


def _split_host(host_header: str) -> tuple[str, str]:
    """'Docs.demo.test:8080' -> ('docs.demo.test', ':8080')."""
    name, sep, port = host_header.rpartition(":")
    if sep and port.isdigit():
        return name.lower(), f":{port}"
    return host_header.lower(), ""


def _render(resource: Resource, port: str) -> str:
    items = []
    for link in resource.links:
        href = html.escape(link.href.replace(PORT, port))
        rel = ' rel="nofollow"' if link.nofollow else ""
        items.append(f'<li><a{rel} href="{href}">{href}</a></li>')
    meta = '<meta name="robots" content="noindex">' if resource.noindex else ""
    title = html.escape(resource.title)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title>{meta}</head>\n<body><h1>{title}</h1>\n"
        f"<p>{html.escape(resource.text)}</p>\n<ul>\n"
        + "\n".join(items)
        + "\n</ul></body></html>\n"
    )


async def _handle(request: web.Request) -> web.StreamResponse:
    host, port = _split_host(request.host)
    pages = request.app[_SITE].get(host)
    if pages is None:
        return web.Response(status=404, text="unknown host")
    if request.path == "/robots.txt":
        return web.Response(text=ROBOTS_TXT)
    resource = pages.get(request.path)
    if resource is None:
        return web.Response(status=404, text="not found")
    if 300 <= resource.status < 400:
        location = resource.links[0].href.replace(PORT, port)
        return web.Response(status=resource.status, headers={"Location": location})
    if resource.content_type == "text/html":
        return web.Response(
            status=resource.status,
            text=_render(resource, port),
            charset="utf-8",
            content_type="text/html",
        )
    return web.Response(
        status=resource.status, body=resource.body, content_type=resource.content_type
    )


@web.middleware
async def _log_request(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    host, _ = _split_host(request.host)
    user_agent = request.headers.get("User-Agent", "")
    request.app[REQUEST_LOG].append(
        RequestRecord(time.monotonic(), host, request.path_qs, user_agent)
    )
    return await handler(request)


def make_app(*, seed: int = 1, pages_per_host: int = 120) -> web.Application:
    """The demo site as an application; the request log is `app[REQUEST_LOG]`."""
    app = web.Application(middlewares=[_log_request])
    app[_SITE] = build_site(seed, pages_per_host)
    app[REQUEST_LOG] = []
    app.router.add_get("/{tail:.*}", _handle)
    return app


def expected_pages(
    *,
    seed: int = 1,
    pages_per_host: int = 120,
    port: int,
    max_depth: int | None = None,
    obey_robots: bool = True,
    follow_nofollow: bool = False,
    skip_extensions: Collection[str] = DEFAULT_SKIP_EXTENSIONS,
) -> dict[str, int]:
    """Ground truth: normalized URL -> BFS depth of every URL a correct crawler with
    allowed_domains = ["demo.test"] and the given max_depth fetches when seeded with
    http://docs.demo.test:{port}/ .

    Computed from the site model, not by crawling. It includes the 404, 500, the PDF and PNG
    at page-like URLs and the redirect URL itself (a redirect's target is queued at the *same*
    depth as the redirect); it excludes robots.txt, robots-disallowed paths (when obey_robots),
    rel=nofollow-only targets (unless follow_nofollow), links to files of `skip_extensions`
    and every host but the demo hosts. URLs are normalized:
    http://docs.demo.test:{port}/page/3 (no fragment, no dot-segments, unreserved characters
    decoded, port 80 dropped).
    """
    site = build_site(seed, pages_per_host)
    start: Target = (DEMO_HOSTS[0], "/")
    depth = {start: 0}
    queue = deque([start])
    done: set[Target] = set()
    while queue:  # 0-1 BFS: a redirect hop costs 0, a link 1
        node = queue.popleft()
        if node in done:
            continue
        done.add(node)
        resource = site[node[0]].get(node[1])
        if resource is None:
            continue
        hop = 0 if 300 <= resource.status < 400 else 1
        if max_depth is not None and depth[node] + hop > max_depth:
            continue
        for link in resource.links:
            target = link.target
            if target is None or (link.nofollow and not follow_nofollow):
                continue
            if obey_robots and target[1].startswith("/private/"):
                continue
            name = target[1].rsplit("/", 1)[-1]
            if "." in name and name.rpartition(".")[2].lower() in skip_extensions:
                continue
            if depth[node] + hop < depth.get(target, sys.maxsize):
                depth[target] = depth[node] + hop
                if hop == 0:
                    queue.appendleft(target)
                else:
                    queue.append(target)
    suffix = "" if port == 80 else f":{port}"
    return {f"http://{host}{suffix}{path}": d for (host, path), d in depth.items()}


def run(port: int, host: str = "127.0.0.1", *, quiet: bool = False) -> None:
    """Serve the demo site until interrupted (blocking)."""
    urls = " ".join(f"http://{name}:{port}/" for name in DEMO_HOSTS)
    message = f"Demo site on {host}:{port} serving {urls} (Ctrl-C to stop)"

    def announce(*_: object) -> None:
        print(message, flush=True)

    web.run_app(make_app(), host=host, port=port, print=None if quiet else announce)


def wait_for(port: int, timeout: float = 10.0) -> bool:
    """Poll until something accepts TCP connections on 127.0.0.1:port; False on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m crawler.demo_site", description="The crawler's offline demo site."
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--port", type=int, help="serve the demo site on this port")
    action.add_argument("--wait-for", type=int, metavar="PORT", help="wait until it is up")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no start-up message")
    args = parser.parse_args(argv)
    if args.wait_for is not None:
        if wait_for(args.wait_for):
            return 0
        print(
            f"demo site: nothing listens on 127.0.0.1:{args.wait_for} after 10 s", file=sys.stderr
        )
        return 1
    run(args.port, args.host, quiet=args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
