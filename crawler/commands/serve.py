"""`crawler serve DB`: a running or finished crawl's live page, its report and Prometheus
`/metrics`, read-only from the database (an SQLite file or a PostgreSQL URL).

    /             the live page (live_page.py): polls /live.json every POLL_SECONDS
    /live.json    what the live page shows (storage's read rules 17-20)
    /metrics      the Prometheus text format (metrics.CrawlCollector)
    /report       the report (`crawler report`'s), as HTML and as JSON (`_built`), made in the
                  reading thread
    /report.json

Every request reads in a thread (`asyncio.to_thread`) through a reader of its own
(`storage.open_reader`), so each sees what the crawl, running in other processes, committed
last. A read that fails (the file locked, the server briefly unreachable) answers 503 with a
JSON error; the live page keeps polling.

Binds to loopback unless told otherwise; any other address needs a token, and then every
request must carry it (`Authorization: Bearer T` or `?token=T`), or gets 401.

Resource handling: the web server's runner is cleaned up on the way out, whatever stops it.
Error handling: a missing file, a non-crawl database or an address that cannot be bound is
one line, exit 2; SIGINT stops the server cleanly with exit 130 (SIGTERM 143), as a crawl.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from ..errors import CrawlerError, UsageError
from ..storage import Reader, open_reader
from .live_page import live_page
from .live_view import POLL_SECONDS, live_view
from .metrics import CrawlCollector
from .report import build_report
from .report_html import render_report

logger = logging.getLogger(__name__)

T = TypeVar("T")
EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}
REPORT_LIMIT = 1000  # items per report section, as `crawler report`'s default
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True, slots=True)
class Served:
    """What the app serves: the database (path or URL), and the token, if any."""

    db: str
    token: str | None


def run_serve(db: str, host: str, port: int, token: str | None) -> int:
    """Serve the crawl database `db` on `host`:`port` until SIGINT or SIGTERM; the exit code."""
    if not token and not is_loopback(host):
        raise UsageError(
            f"serve: --host {host!r} is not a loopback address: it needs --token"
            " (every request must then carry it)"
        )
    with open_reader(db) as reader:  # a missing file or a non-crawl database: exit 2 now
        name = reader.name
    return asyncio.run(_serve(Served(db, token or None), name, host, port))


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine's loopback only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def make_app(served: Served) -> web.Application:
    """The web app for `served` (the tests and `run_serve` alike)."""
    middlewares = [] if served.token is None else [_token_middleware(served.token)]
    app = web.Application(middlewares=middlewares)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CrawlCollector(lambda: open_reader(served.db)))

    async def page(request: web.Request) -> web.Response:
        nonce = secrets.token_urlsafe(16)
        policy = (
            "default-src 'none'; connect-src 'self'; img-src data:; base-uri 'none';"
            f" form-action 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'"
        )
        headers = {**_SECURITY_HEADERS, "Content-Security-Policy": policy}
        return web.Response(text=live_page(nonce), content_type="text/html", headers=headers)

    async def live(request: web.Request) -> web.Response:
        view = await _read(served.db, live_view)
        return web.json_response(view, headers=_SECURITY_HEADERS)

    async def metrics(request: web.Request) -> web.Response:
        body = await _guarded(asyncio.to_thread(generate_latest, registry))
        response = web.Response(body=body, headers=_SECURITY_HEADERS)
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def report(request: web.Request) -> web.Response:
        html = await _read(served.db, lambda reader: render_report(_built(reader)))
        return web.Response(text=html, content_type="text/html", headers=_SECURITY_HEADERS)

    async def report_json(request: web.Request) -> web.Response:
        return web.json_response(await _read(served.db, _built), headers=_SECURITY_HEADERS)

    app.router.add_get("/", page)
    app.router.add_get("/live.json", live)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/report", report)
    app.router.add_get("/report.json", report_json)
    return app


# -- the report: `crawler report`'s own functions, built and drawn in the reading thread --


def _built(reader: Reader) -> dict[str, Any]:
    return build_report(reader, REPORT_LIMIT)


# -- reading, in a thread ---------------------------------------------------------------------


async def _read(db: str, what: Callable[[Reader], T]) -> T:
    """`what` of a reader of its own, in a thread; a failed read answers 503."""

    def in_thread() -> T:
        with open_reader(db) as reader:
            return what(reader)

    return await _guarded(asyncio.to_thread(in_thread))


async def _guarded(reading: Awaitable[T]) -> T:
    """`reading`'s result; a CrawlerError (the database locked, unreachable, gone) becomes a
    503 with a JSON error, logged, so that the page shows it and polls again."""
    try:
        return await reading
    except CrawlerError as exc:
        logger.warning("serve: a read failed: %s", exc)
        raise web.HTTPServiceUnavailable(
            text=_json_error(f"cannot read the crawl: {exc}"),
            content_type="application/json",
            headers={"Retry-After": str(POLL_SECONDS)},
        ) from exc


def _json_error(message: str) -> str:
    return json.dumps({"error": message})


# -- the token --------------------------------------------------------------------------------


def _token_middleware(token: str) -> Middleware:
    expected = token.encode()

    @web.middleware
    async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.query.get("token") or _bearer(request.headers.get("Authorization", ""))
        if given is None or not hmac.compare_digest(given.encode(), expected):
            raise web.HTTPUnauthorized(
                text=_json_error("a token is needed: Authorization: Bearer T, or ?token=T"),
                content_type="application/json",
                headers={"WWW-Authenticate": 'Bearer realm="crawler"'},
            )
        return await handler(request)

    return require_token


def _bearer(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


# -- the server -------------------------------------------------------------------------------


async def _serve(served: Served, name: str, host: str, port: int) -> int:
    runner = web.AppRunner(make_app(served), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            raise UsageError(f"serve: cannot listen on {host}:{port}: {exc.strerror}") from None
        for bound in runner.addresses:
            address = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
            print(
                f"crawler: serving {name} at http://{address}:{bound[1]}/ (Ctrl-C to stop)",
                file=sys.stderr,
                flush=True,
            )
        signum = await _until_signal()
    finally:
        await runner.cleanup()
    print("crawler: stopped serving", file=sys.stderr)
    return EXIT_SIGNAL[signum]


async def _until_signal() -> signal.Signals:
    loop = asyncio.get_running_loop()
    received: asyncio.Future[signal.Signals] = loop.create_future()

    def on_signal(signum: signal.Signals) -> None:
        if not received.done():
            received.set_result(signum)

    for signum in EXIT_SIGNAL:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        return await received
    finally:
        for signum in EXIT_SIGNAL:
            loop.remove_signal_handler(signum)
