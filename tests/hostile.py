"""A hostile web site: every way a server can be broken or adversarial, on one aiohttp app.

The home page `/` links to every trap, so one crawl meets them all. Used by
tests/test_hostile.py (one trap at a time) and bench/traps.py (all of them in one run).
Served by the test kit (`make_site`, for any host, no robots.txt), which logs every request.
"""

from __future__ import annotations

import asyncio
import functools
import random
import zlib
from collections.abc import Awaitable, Callable

import brotli
from aiohttp import web
from kit import HostPlan, html, make_site

MB = 1024 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@functools.cache
def _bomb(size: int) -> bytes:
    return gzip_bomb(size)


@functools.cache
def brotli_bomb(size: int) -> bytes:
    """`size` zero bytes, brotli-compressed (a few hundred bytes)."""
    return bytes(brotli.compress(bytes(size), quality=5))


async def brotli_bombed(request: web.Request) -> web.Response:
    headers = {"Content-Encoding": "br", "Content-Type": "text/html"}
    return web.Response(body=brotli_bomb(256 * MB), headers=headers)


def gzip_bomb(size: int) -> bytes:
    """`size` zero bytes, gzip-compressed (about a thousandth of the size)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip container
    block = bytes(MB)
    parts = [compressor.compress(block) for _ in range(size // MB)]
    parts.append(compressor.flush())
    return b"".join(parts)


async def big(request: web.Request) -> web.Response:
    return web.Response(body=b"<p>" + b"x" * (3 * MB), content_type="text/html")


def make_bomb_handler(size: int) -> Handler:
    _bomb(size)  # built now, not in the handler: tests share their event loop with the server

    async def bomb(request: web.Request) -> web.Response:
        headers = {"Content-Encoding": "gzip", "Content-Type": "text/html"}
        return web.Response(body=_bomb(size), headers=headers)

    return bomb


async def trickle(request: web.Request) -> web.StreamResponse:
    """One byte every 0.2 s, for ever (until the client gives up)."""
    response = web.StreamResponse(headers={"Content-Type": "text/html"})
    await response.prepare(request)
    try:
        while True:
            await response.write(b"x")
            await asyncio.sleep(0.2)
    except ConnectionResetError:  # the client gave up, as it should
        return response


async def hang(request: web.Request) -> web.Response:
    await asyncio.sleep(3600)
    return html("never")


async def reset(request: web.Request) -> web.StreamResponse:
    """Headers and half a body, then the connection is cut."""
    response = web.StreamResponse(headers={"Content-Type": "text/html", "Content-Length": "5000"})
    await response.prepare(request)
    await response.write(b"<html>" + b"y" * 1000)
    assert request.transport is not None
    request.transport.abort()
    return response


async def lying_length(request: web.Request) -> web.StreamResponse:
    """Content-Length promises more than is sent before the connection closes."""
    response = web.StreamResponse(headers={"Content-Type": "text/html", "Content-Length": "100000"})
    await response.prepare(request)
    await response.write(b"<html><title>short</title>")
    assert request.transport is not None
    request.transport.close()
    return response


async def binary(request: web.Request) -> web.Response:
    noise = random.Random(7).randbytes(200_000)
    return web.Response(body=noise, content_type="text/html")


async def nested(request: web.Request) -> web.Response:
    body = "<div>" * 100_000 + '<a href="/nested-target">deep</a>'
    return web.Response(text=body, content_type="text/html")


async def many_links(request: web.Request) -> web.Response:
    count = int(request.query.get("n", "100000"))
    links = "".join(f'<a href="/many/{n}">{n}</a>' for n in range(count))
    return web.Response(text=links, content_type="text/html")


@functools.cache
def huge_page() -> bytes:
    row = '<div class="row"><p>Some text of a large page, <a href="/huge/{}">link</a></p></div>\n'
    return "".join(row.format(n % 1000) for n in range(600_000)).encode()


async def huge(request: web.Request) -> web.Response:
    """About 50 MB of HTML."""
    return web.Response(body=huge_page(), content_type="text/html")


async def calendar(request: web.Request) -> web.Response:
    """An endless calendar: every day links to the next and the previous one."""
    day = int(request.path.rsplit("/", 1)[1])
    return html(f'<a href="/calendar/{day + 1}">next</a><a href="/calendar/{day - 1}">prev</a>')


async def repeating(request: web.Request) -> web.Response:
    """A relative link that makes the path grow by one segment each hop: /a/ → /a/a/ → …"""
    return html('<a href="a/">deeper</a>')


async def session(request: web.Request) -> web.Response:
    """Every visit links to fresh session-id variants of the same page."""
    rng = random.Random(request.query_string)
    links = "".join(f'<a href="/session?sid={rng.getrandbits(64):x}">s</a>' for _ in range(20))
    return html(links)


async def redirect_loop(request: web.Request) -> web.Response:
    target = "/loop-b" if request.path == "/loop-a" else "/loop-a"
    raise web.HTTPFound(target)


async def leaf(request: web.Request) -> web.Response:
    return html("leaf")


TRAPS = {
    "/big": big,
    "/trickle": trickle,
    "/hang": hang,
    "/reset": reset,
    "/lying-length": lying_length,
    "/binary": binary,
    "/nested": nested,
    "/many-links": many_links,
    "/huge": huge,
    "/brotli-bomb": brotli_bombed,
    "/huge/*": leaf,
    "/calendar/*": calendar,
    "/a/*": repeating,
    "/session": session,
    "/loop-a": redirect_loop,
    "/loop-b": redirect_loop,
    "/nested-target": leaf,
    "/many/*": leaf,
}  # a path, or a prefix ending in "*" (kit.HostPlan.routes)
HOME_LINKS = (
    "/big /gzip-bomb /brotli-bomb /trickle /hang /reset /lying-length /binary /nested"
    " /many-links /huge /calendar/0 /a/ /session /loop-a /long/" + "x" * 3000
).split()


def trap_url(n: int, href: str, port: int | str) -> str:
    """Where the home page links to trap `n`: each trap on its own host, as on the web."""
    return f"http://t{n}.evil.test:{port}{href}"


def make_hostile_app(bomb_size: int = 256 * MB) -> web.Application:
    brotli_bomb(256 * MB)  # built now, not in the handler: tests share their loop with the server

    async def home(request: web.Request) -> web.Response:
        port = request.host.rsplit(":", 1)[-1]
        hrefs = [trap_url(n, href, port) for n, href in enumerate(HOME_LINKS)]
        return html("".join(f'<a href="{href}">trap</a>' for href in hrefs))

    routes = {"/": home, "/gzip-bomb": make_bomb_handler(bomb_size), **TRAPS}
    return make_site({"*": HostPlan(pages=0, robots=None, routes=routes)})
