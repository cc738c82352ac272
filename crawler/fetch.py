"""Fetching: one shared aiohttp session, one request per call, never a redirect followed.

`Fetcher.get` never raises for a failed request: timeouts, refused or reset connections and
protocol errors come back as a `Response` with `error` set, so one page's fault can't stop the
crawl. aiohttp's exceptions are translated here and nowhere else.

Resource handling: `Fetcher` is an async context manager owning the session, its connector and
resolver; all are closed on exit.
"""

from __future__ import annotations

# First: importing aiohttp builds two SSL contexts, which tls.py has it build without the CAs.
from .tls import TrustStore

# isort: split
import asyncio
import contextvars
import dataclasses
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from types import TracebackType

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_reqrep import ClientRequest
from aiohttp.connector import Connection
from aiohttp.resolver import DefaultResolver
from aiohttp.tracing import Trace
from yarl import URL

from .auth.credentials import Credentials
from .config import Config

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Response:
    """What one request gave: a status and (part of) a body, or an error."""

    url: str
    status: int | None
    content_type: str | None  # the media type alone, lower-cased: "text/html"
    charset: str | None
    location: str | None
    retry_after: float | None  # seconds from the response's arrival
    robots_tags: tuple[str, ...]  # X-Robots-Tag values
    body: bytes
    truncated: bool
    elapsed_ms: int
    answered_at: float  # time.monotonic() when the headers arrived, or the request failed
    error: str | None = None
    etag: str | None = None  # the validators the response carried (a recrawl sends them back)
    last_modified: str | None = None
    sent: bool = True  # False: `before_send` said no, and the request never went out
    request_head: str | None = None  # the request line and headers as sent (export: WARC)
    response_head: str | None = None  # the status line and headers as received

    @property
    def retryable(self) -> bool:
        """True for the faults SPEC.md retries: timeouts, connection errors, 429 and some 5xx."""
        return self.status is None or self.status in RETRYABLE_STATUSES

    @property
    def is_html(self) -> bool:
        if self.content_type is not None:
            return self.content_type in ("text/html", "application/xhtml+xml")
        head = self.body[:256].lstrip().lower()
        return head.startswith((b"<!doctype html", b"<html"))


class PinnedResolver(AbstractResolver):
    """Resolves the hosts of `fetch.resolve` to their pinned address, like curl --resolve."""

    def __init__(self, pins: dict[str, str]) -> None:
        self._pins = {host.lower(): address for host, address in pins.items()}
        self._fallback = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = self._pins.get(host.lower())
        if address is None:
            return await self._fallback.resolve(host, port, family)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        await self._fallback.close()


# The last check before a request is written (Fetcher.get's before_send), for the connector.
_BEFORE_SEND: contextvars.ContextVar[Callable[[], bool] | None] = contextvars.ContextVar(
    "before_send", default=None
)


class _NotSent(Exception):
    """before_send said no once the connection was ready: the request was not written."""


class _CheckingConnector(aiohttp.TCPConnector):
    """A connector that asks the request's before_send once its connection is ready, just
    before aiohttp writes the request on it: a process stopped (SIGSTOP, a long pause) between
    an earlier check and this point may have lost its lease on the host meanwhile."""

    async def connect(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 (aiohttp's signature)
    ) -> Connection:
        conn = await super().connect(req, traces, timeout)
        check = _BEFORE_SEND.get()
        if check is not None and not check():
            conn.close()
            raise _NotSent
        return conn


class Fetcher:
    """GETs URLs with the crawl's User-Agent, fetch.headers, timeouts, body cap and proxy;
    `credentials` go to their hosts only, and come back `[redacted]` in every head kept.
    The one other method is `post_form`, the login."""

    def __init__(self, config: Config, credentials: Credentials | None = None) -> None:
        fetch = config.fetch
        self._credentials = credentials or Credentials(None)
        # "env": aiohttp reads HTTP_PROXY, HTTPS_PROXY and NO_PROXY itself (trust_env).
        self._proxy = fetch.proxy if fetch.proxy not in ("", "env") else None
        self._trust = TrustStore()
        self._session = aiohttp.ClientSession(
            connector=_CheckingConnector(
                resolver=PinnedResolver(fetch.resolve),
                limit=0,  # the frontier bounds concurrency; the connector need not
                ttl_dns_cache=300,
            ),
            timeout=aiohttp.ClientTimeout(total=fetch.timeout, sock_connect=fetch.connect_timeout),
            headers={**fetch.headers, "User-Agent": config.politeness.user_agent},
            cookie_jar=aiohttp.DummyCookieJar(),  # cookies: only auth hosts', in Credentials
            trust_env=fetch.proxy == "env",
        )

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._session.close()

    async def get(
        self,
        url: str,
        *,
        max_bytes: int,
        read_body: bool = True,
        etag: str | None = None,
        last_modified: str | None = None,
        before_send: Callable[[], bool] | None = None,
    ) -> Response:
        """One GET of `url`; at most `max_bytes` of decompressed body are read. `etag` and
        `last_modified`, a stored version's validators, make it conditional (a 304 if the
        version is current). `before_send` is asked once the connection is ready: False, and
        the request is not written (the response says `sent=False`)."""
        token = _BEFORE_SEND.set(before_send)
        try:
            return await self._get(url, max_bytes, read_body, etag, last_modified)
        except _NotSent:
            return dataclasses.replace(_failure(url, "not sent", time.monotonic()), sent=False)
        finally:
            _BEFORE_SEND.reset(token)

    async def post_form(
        self, url: str, fields: dict[str, str], *, before_send: Callable[[], bool] | None = None
    ) -> tuple[Response, bool]:
        """The login: one POST of `fields` to `url`, no redirect followed. Returns the answer
        (its body not read) and whether it set a cookie, which is kept for the URL's host."""
        token = _BEFORE_SEND.set(before_send)
        started = time.monotonic()
        target = URL(url)
        host = target.raw_host or ""
        try:
            async with self._session.post(
                target, data=fields, allow_redirects=False, proxy=self._proxy,
                headers=self._credentials.headers(host), ssl=await self._ssl(url),
            ) as resp:  # fmt: skip
                kept = self._credentials.keep_cookies(host, resp.cookies.values())
                return self._response(url, resp, b"", False, started, time.monotonic()), kept
        except (aiohttp.ClientError, TimeoutError, ValueError, OSError) as exc:
            return _failure(url, self._credentials.scrub(_describe(exc)), started), False
        except _NotSent:
            failed = _failure(url, "not sent", time.monotonic())
            return dataclasses.replace(failed, sent=False), False
        finally:
            _BEFORE_SEND.reset(token)

    async def _get(
        self,
        url: str,
        max_bytes: int,
        read_body: bool,
        etag: str | None,
        last_modified: str | None,
    ) -> Response:
        started = time.monotonic()
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        try:
            # The URL is normalized already: sent as it is, not parsed and re-encoded again.
            target = URL(url, encoded=True)
            host = target.raw_host or ""
            headers.update(self._credentials.headers(host))
            async with self._session.get(
                target,
                allow_redirects=False,
                headers=headers,
                proxy=self._proxy,
                ssl=await self._ssl(url),
            ) as resp:
                answered_at = time.monotonic()
                self._credentials.keep_cookies(host, resp.cookies.values())
                html = _media_type(resp) in ("text/html", "application/xhtml+xml", None)
                body, truncated = b"", False
                if read_body or html:
                    body, truncated = await _read_capped(resp, max_bytes)
                if truncated:
                    resp.close()  # drop the connection instead of draining the rest
                return self._response(url, resp, body, truncated, started, answered_at)
        except (aiohttp.ClientError, TimeoutError, ValueError, OSError) as exc:
            return _failure(url, self._credentials.scrub(_describe(exc)), started)

    async def _ssl(self, url: str) -> ssl.SSLContext | bool:
        """The SSL context of a request to `url` (True, aiohttp's default, for http)."""
        return await self._trust.context() if url[:6].lower() == "https:" else True

    def _response(
        self,
        url: str,
        resp: aiohttp.ClientResponse,
        body: bytes,
        truncated: bool,
        started: float,
        answered_at: float,
    ) -> Response:
        """The Response, its request and response heads with credentials redacted."""
        credentials = self._credentials
        sent = [(name, value) for name, value in resp.request_info.headers.items()]
        received = [
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in resp.raw_headers
        ]
        host = resp.request_info.url.raw_host or ""
        heads = (
            _head(_request_line(resp.request_info), credentials.redact_request(sent)),
            _head(_status_line(resp), credentials.redact_response(host, received)),
        )
        return _response(url, resp, body, truncated, started, answered_at, heads)


async def _read_capped(resp: aiohttp.ClientResponse, max_bytes: int) -> tuple[bytes, bool]:
    """The decompressed body up to `max_bytes`, and whether there was more."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(_CHUNK):
        room = max_bytes - size
        if len(chunk) > room:
            chunks.append(chunk[:room])
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


def _response(
    url: str,
    resp: aiohttp.ClientResponse,
    body: bytes,
    truncated: bool,
    started: float,
    answered_at: float,
    heads: tuple[str, str],
) -> Response:
    """The Response to `resp`; `heads`: its request and response heads as they may be kept."""
    headers = resp.headers
    return Response(
        url=url,
        status=resp.status,
        content_type=_media_type(resp),
        charset=resp.charset if "Content-Type" in headers else None,
        location=headers.get("Location"),
        retry_after=parse_retry_after(headers.get("Retry-After")),
        robots_tags=tuple(headers.getall("X-Robots-Tag", ())),
        body=body,
        truncated=truncated,
        elapsed_ms=round((time.monotonic() - started) * 1000),
        answered_at=answered_at,
        etag=headers.get("ETag"),
        last_modified=headers.get("Last-Modified"),
        request_head=heads[0],
        response_head=heads[1],
    )


def _request_line(info: aiohttp.RequestInfo) -> str:
    return f"{info.method} {info.url.raw_path_qs} HTTP/1.1"


def _status_line(resp: aiohttp.ClientResponse) -> str:
    version = resp.version or aiohttp.HttpVersion11
    return f"HTTP/{version.major}.{version.minor} {resp.status} {resp.reason or ''}".rstrip()


def _head(first: str, headers: list[tuple[str, str]]) -> str:
    """A head as kept: its first line and its headers (aiohttp's defaults included; received
    bytes as latin-1 text), CRLF-separated."""
    return "\r\n".join([first, *(f"{name}: {value}" for name, value in headers)])


def _failure(url: str, error: str, started: float) -> Response:
    return Response(
        url=url,
        status=None,
        content_type=None,
        charset=None,
        location=None,
        retry_after=None,
        robots_tags=(),
        body=b"",
        truncated=False,
        elapsed_ms=round((time.monotonic() - started) * 1000),
        answered_at=time.monotonic(),
        error=error,
    )


def _media_type(resp: aiohttp.ClientResponse) -> str | None:
    return resp.content_type.lower() if "Content-Type" in resp.headers else None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds from `now` (POSIX; default: the wall clock's): delta-seconds or
    an HTTP-date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _describe(exc: BaseException) -> str:
    """A short text for the `error` column."""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timeout"
    kind = {
        aiohttp.ClientConnectorError: "connection failed",
        aiohttp.ServerDisconnectedError: "server disconnected",
        aiohttp.ClientPayloadError: "bad body",
        aiohttp.ClientResponseError: "bad response",
        aiohttp.InvalidURL: "invalid URL",
    }
    for cls, text in kind.items():
        if isinstance(exc, cls):
            return _short(f"{text}: {exc}")
    return _short(f"{type(exc).__name__}: {exc}")


def _short(text: str, limit: int = 200) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"
