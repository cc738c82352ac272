"""A configurable multi-host test site: one aiohttp server, many host names, every request logged.

Each host serves `/robots.txt` as its `HostPlan` says and pages `/p/0` … `/p/{n-1}`: page i
links to pages 2i+1 and 2i+2 (a tree, so breadth-first order is known) and to `extra_links`.
Special paths on every host:
    /status/{code}        answers that status
    /retry-after/{secs}   503 with Retry-After (first time only; then 200)
    /slow/{secs}          sleeps, then 200
    /redirect/{n}         302 to /redirect/{n-1}; /redirect/0 is a page
The log holds, per request, its host, path, and the monotonic times it arrived and was answered.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True, slots=True)
class Hit:
    host: str
    path: str
    start: float
    end: float
    user_agent: str


@dataclass(slots=True)
class HostPlan:
    pages: int = 10
    robots: str | None = "User-agent: *\nDisallow: /private/\n"
    robots_status: int = 200
    robots_sleep: float = 0.0  # seconds before robots.txt answers
    robots_redirect: str | None = None  # a Location for robots.txt (3xx)
    extra_links: tuple[str, ...] = ()
    page_sleep: float = 0.0


@dataclass(slots=True)
class Site:
    plans: dict[str, HostPlan]
    log: list[Hit] = field(default_factory=list)  # appended when a request is answered
    arrivals: list[str] = field(default_factory=list)  # paths, appended as requests arrive
    arrival: asyncio.Event = field(default_factory=asyncio.Event)

    async def arrived(self, path: str) -> None:
        """Wait until a request for `path` has arrived."""
        while path not in self.arrivals:
            self.arrival.clear()
            await self.arrival.wait()

    seen: set[tuple[str, str]] = field(default_factory=set)

    def hits(self, host: str) -> list[Hit]:
        return [h for h in self.log if h.host == host]

    def by_host(self) -> dict[str, list[Hit]]:
        grouped: dict[str, list[Hit]] = defaultdict(list)
        for hit in self.log:
            grouped[hit.host].append(hit)
        return grouped


SITE = web.AppKey("site", Site)


def make_site_app(plans: dict[str, HostPlan]) -> web.Application:
    site = Site(plans)
    app = web.Application()
    app[SITE] = site

    async def handle(request: web.Request) -> web.StreamResponse:
        start = time.monotonic()
        site.arrivals.append(request.path_qs)
        site.arrival.set()
        host = (request.host or "").rsplit(":", 1)[0].lower()
        try:
            return await _answer(site, host, request)
        finally:
            ua = request.headers.get("User-Agent", "")
            site.log.append(Hit(host, request.path_qs, start, time.monotonic(), ua))

    app.router.add_route("GET", "/{tail:.*}", handle)
    return app


async def _answer(site: Site, host: str, request: web.Request) -> web.StreamResponse:
    plan = site.plans.get(host)
    if plan is None:
        return web.Response(status=404, text="unknown host")
    path = request.path
    if path == "/robots.txt":
        return await _robots(plan)
    parts = path.strip("/").split("/")
    if parts[0] == "status" and len(parts) == 2:
        return web.Response(status=int(parts[1]), text="status")
    if parts[0] == "retry-after" and len(parts) == 2:
        if (host, path) not in site.seen:
            site.seen.add((host, path))
            return web.Response(status=503, headers={"Retry-After": parts[1]}, text="busy")
        return _html("retried")
    if parts[0] == "redirect" and len(parts) == 2 and parts[1].isdigit():
        n = int(parts[1])
        if n == 0:
            return _html("arrived")
        return web.Response(status=302, headers={"Location": f"/redirect/{n - 1}"})
    if parts[0] == "slow" and len(parts) == 2:
        await asyncio.sleep(float(parts[1]))
        return _html("slow")
    if parts[0] == "p" and len(parts) == 2 and parts[1].isdigit() and int(parts[1]) < plan.pages:
        await asyncio.sleep(plan.page_sleep)
        i = int(parts[1])
        links = [f"/p/{c}" for c in (2 * i + 1, 2 * i + 2) if c < plan.pages]
        if i == 0:
            links.extend(plan.extra_links)
        return _html("".join(f'<a href="{href}">{href}</a>' for href in links))
    if path.startswith("/private/"):
        return _html("private")
    return web.Response(status=404, text="no such page")


async def _robots(plan: HostPlan) -> web.StreamResponse:
    await asyncio.sleep(plan.robots_sleep)
    if plan.robots_redirect is not None:
        return web.Response(status=301, headers={"Location": plan.robots_redirect})
    if plan.robots is None:
        return web.Response(status=404, text="none")
    return web.Response(status=plan.robots_status, text=plan.robots)


def _html(body: str) -> web.Response:
    return web.Response(text=f"<html><body>{body}</body></html>", content_type="text/html")


def max_in_flight(hits: list[Hit]) -> int:
    """The most requests that were open at once among `hits`."""
    events = sorted([(h.start, 1) for h in hits] + [(h.end, -1) for h in hits])
    most = current = 0
    for _, step in events:
        current += step
        most = max(most, current)
    return most


def min_gap(hits: list[Hit]) -> float:
    """The smallest start-to-start gap among `hits` (infinite for fewer than two)."""
    starts = sorted(h.start for h in hits)
    return min((b - a for a, b in itertools.pairwise(starts)), default=float("inf"))
