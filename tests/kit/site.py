"""One way to build a local test site: virtual hosts served by Host header, every request logged.

`make_site({host: HostPlan(...)})` is an aiohttp app answering for each host as its plan says
(the key "*" answers for any other host). A plan's `routes` come first: a path (or a prefix
ending in "*") to a static `Page` or to a handler; then the plan's built-in paths:
    /robots.txt           as `robots`, `robots_status`, `robots_sleep`, `robots_redirect` say
    /p/{i}                a tree of `pages` pages: page i links to 2i+1 and 2i+2 (breadth-first
                          order is known), page 0 also to `extra_links`
    /status/{code}        answers that status
    /retry-after/{secs}   503 with Retry-After the first time, then 200
    /slow/{secs}          sleeps, then 200
    /redirect/{n}         302 to /redirect/{n-1}; /redirect/0 is a page
    /private/...          a page (robots.txt disallows it by default)
Any app, this one or another (the demo site, the hostile site), records into one `RequestLog`
once `record_requests(app)` has added the logging middleware; `make_site` does it itself.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import overload

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class Request:
    """One request as the server saw it; `end` is infinite while it is being answered."""

    host: str  # lower-cased, port stripped
    path: str  # path and query, as received
    method: str
    headers: CIMultiDictProxy[str]
    start: float  # time.monotonic() when it arrived
    end: float = math.inf  # time.monotonic() when its answer was sent
    status: int | None = None  # the answer's status, once sent (None: no answer, cut off)

    @property
    def user_agent(self) -> str:
        return self.headers.get("User-Agent", "")

    @classmethod
    def from_log(cls, host: str, path: str, start: float, end: float, user_agent: str) -> Request:
        """A GET read back from an access log (bench/: a server in another process)."""
        headers = CIMultiDictProxy(CIMultiDict({"User-Agent": user_agent}))
        return cls(host, path, "GET", headers, start, end)


class RequestLog(Sequence[Request]):
    """Every request a site saw, in arrival order, and a way to wait for one."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.changed = asyncio.Event()

    def __len__(self) -> int:
        return len(self.requests)

    @overload
    def __getitem__(self, index: int) -> Request: ...
    @overload
    def __getitem__(self, index: slice) -> list[Request]: ...
    def __getitem__(self, index: int | slice) -> Request | list[Request]:
        return self.requests[index]

    def paths(self, host: str | None = None) -> list[str]:
        return [r.path for r in self.requests if host is None or r.host == host]

    def hits(self, host: str) -> list[Request]:
        return [r for r in self.requests if r.host == host]

    def by_host(self) -> dict[str, list[Request]]:
        grouped: dict[str, list[Request]] = defaultdict(list)
        for request in self.requests:
            grouped[request.host].append(request)
        return grouped

    async def wait_for(self, done: Callable[[RequestLog], bool], seconds: float = 30) -> None:
        """Return once `done(self)` is true; TimeoutError after `seconds` (a hang guard)."""
        async with asyncio.timeout(seconds):
            while not done(self):
                self.changed.clear()
                await self.changed.wait()

    async def arrived(self, path: str, seconds: float = 30) -> None:
        """Wait until a request for `path` has arrived."""
        await self.wait_for(lambda log: path in log.paths(), seconds)

    async def seen(self, count: int, seconds: float = 30) -> None:
        """Wait until `count` requests have arrived."""
        await self.wait_for(lambda log: len(log) >= count, seconds)

    def _record(self, request: web.Request) -> Request:
        host = (request.host or "").rsplit(":", 1)[0].lower()
        headers = CIMultiDictProxy(CIMultiDict(request.headers))
        record = Request(host, request.path_qs, request.method, headers, time.monotonic())
        self.requests.append(record)
        self.changed.set()
        return record


LOG = web.AppKey("request_log", RequestLog)


def record_requests(app: web.Application) -> RequestLog:
    """Log every request `app` answers (call before it is served); the log is also app[LOG]."""
    log = RequestLog()
    app[LOG] = log

    @web.middleware
    async def logging_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        record = log._record(request)
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # raised answers (a redirect, say) are answers too
            record.status = exc.status
            raise
        else:
            record.status = response.status
            return response
        finally:
            record.end = time.monotonic()
            log.changed.set()

    app.middlewares.append(logging_middleware)
    return log


@dataclass(frozen=True, slots=True)
class Page:
    """A static answer; "{port}" in a str body becomes the port the request was sent to."""

    body: str | bytes = ""
    status: int = 200
    content_type: str = "text/html"
    headers: Mapping[str, str] = field(default_factory=dict)
    sleep: float = 0.0  # seconds before answering

    async def answer(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.sleep)
        body = self.body
        if isinstance(body, str):
            body = body.replace("{port}", request.host.rsplit(":", 1)[-1]).encode()
        return web.Response(
            body=body, status=self.status, content_type=self.content_type, headers=self.headers
        )


def redirect(location: str, status: int = 302) -> Page:
    return Page(status=status, headers={"Location": location})


Answer = Page | Handler


@dataclass(slots=True)
class HostPlan:
    """What one virtual host serves (see the module docstring)."""

    pages: int = 10
    robots: str | None = "User-agent: *\nDisallow: /private/\n"  # None: 404
    robots_status: int = 200
    robots_sleep: float = 0.0  # seconds before robots.txt answers
    robots_redirect: str | None = None  # a Location for robots.txt (301)
    extra_links: tuple[str, ...] = ()
    page_sleep: float = 0.0
    routes: Mapping[str, Answer] = field(default_factory=dict)


@dataclass(slots=True)
class Site:
    """A running site's plans (a test may change them while it runs) and its request log."""

    plans: dict[str, HostPlan]
    log: RequestLog
    retried: set[tuple[str, str]] = field(default_factory=set)

    def hits(self, host: str) -> list[Request]:
        return self.log.hits(host)

    def by_host(self) -> dict[str, list[Request]]:
        return self.log.by_host()

    async def arrived(self, path: str) -> None:
        await self.log.arrived(path)


SITE = web.AppKey("site", Site)


def make_site(plans: Mapping[str, HostPlan]) -> web.Application:
    """An app serving `plans` by Host header, logging into app[SITE].log (also app[LOG])."""
    app = web.Application()
    site = Site(dict(plans), record_requests(app))
    app[SITE] = site

    async def handle(request: web.Request) -> web.StreamResponse:
        host = (request.host or "").rsplit(":", 1)[0].lower()
        plan = site.plans.get(host) or site.plans.get("*")
        if plan is None:
            return web.Response(status=404, text="unknown host")
        route = _route(plan, request.path)
        if route is not None:
            return await (route.answer(request) if isinstance(route, Page) else route(request))
        return await _builtin(site, plan, host, request)

    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def _route(plan: HostPlan, path: str) -> Answer | None:
    if path in plan.routes:
        return plan.routes[path]
    prefixes = [p for p in plan.routes if p.endswith("*") and path.startswith(p[:-1])]
    return plan.routes[max(prefixes, key=len)] if prefixes else None


async def _builtin(site: Site, plan: HostPlan, host: str, request: web.Request) -> web.Response:
    path = request.path
    if path == "/robots.txt":
        return await _robots(plan)
    parts = path.strip("/").split("/")
    if len(parts) == 2 and parts[0] == "status":
        return web.Response(status=int(parts[1]), text="status")
    if len(parts) == 2 and parts[0] == "retry-after":
        if (host, path) not in site.retried:
            site.retried.add((host, path))
            return web.Response(status=503, headers={"Retry-After": parts[1]}, text="busy")
        return html("retried")
    if len(parts) == 2 and parts[0] == "redirect" and parts[1].isdigit():
        n = int(parts[1])
        if n == 0:
            return html("arrived")
        return web.Response(status=302, headers={"Location": f"/redirect/{n - 1}"})
    if len(parts) == 2 and parts[0] == "slow":
        await asyncio.sleep(float(parts[1]))
        return html("slow")
    if len(parts) == 2 and parts[0] == "p" and parts[1].isdigit() and int(parts[1]) < plan.pages:
        await asyncio.sleep(plan.page_sleep)
        return html(links(_tree_links(plan, int(parts[1]))))
    if path.startswith("/private/"):
        return html("private")
    return web.Response(status=404, text="no such page")


def _tree_links(plan: HostPlan, i: int) -> list[str]:
    hrefs = [f"/p/{c}" for c in (2 * i + 1, 2 * i + 2) if c < plan.pages]
    return hrefs + list(plan.extra_links) if i == 0 else hrefs


async def _robots(plan: HostPlan) -> web.Response:
    await asyncio.sleep(plan.robots_sleep)
    if plan.robots_redirect is not None:
        return web.Response(status=301, headers={"Location": plan.robots_redirect})
    if plan.robots is None:
        return web.Response(status=404, text="none")
    return web.Response(status=plan.robots_status, text=plan.robots)


def html(body: str) -> web.Response:
    """An HTML page with `body` in its <body>."""
    return web.Response(text=f"<html><body>{body}</body></html>", content_type="text/html")


def links(hrefs: Sequence[str]) -> str:
    """An <a> element for each of `hrefs`."""
    return "".join(f'<a href="{href}">{href}</a>' for href in hrefs)


def max_in_flight(requests: Sequence[Request]) -> int:
    """The most requests that were open at once among `requests`."""
    events = sorted([(r.start, 1) for r in requests] + [(r.end, -1) for r in requests])
    most = current = 0
    for _, step in events:
        current += step
        most = max(most, current)
    return most


def min_gap(requests: Sequence[Request]) -> float:
    """The smallest start-to-start gap among `requests` (infinite for fewer than two)."""
    starts = sorted(r.start for r in requests)
    return min((b - a for a, b in itertools.pairwise(starts)), default=float("inf"))
