"""The trust store of https requests, loaded when the crawl first fetches an https URL.

aiohttp builds two SSL contexts when it is imported, each loading the system's CA bundle:
~100 ms of CPU with OpenSSL 3 (CPython issue 95031), a quarter of a crawl's start-up, spent
even when it fetches nothing over https. Importing this module imports aiohttp (unless it is
already) with OpenSSL's default verify paths pointed at nothing, so those two contexts trust
no certificate: a request that used one would fail verification, never pass it. Every https
request the crawler makes carries `TrustStore.context()` instead, built with the real
defaults (SSL_CERT_FILE and SSL_CERT_DIR are read then, as OpenSSL reads them), once, in a
thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import ssl
import sys
from collections.abc import Iterator

__all__ = ["TrustStore"]

# OpenSSL's default verify paths: the CA bundle and the hashed directory, unless these say.
_VERIFY_PATHS = ("SSL_CERT_FILE", "SSL_CERT_DIR")


@contextlib.contextmanager
def _no_default_trust() -> Iterator[None]:
    """OpenSSL's default verify paths pointed at an empty file, then restored as they were."""
    saved = {name: os.environ.get(name) for name in _VERIFY_PATHS}
    os.environ.update(dict.fromkeys(_VERIFY_PATHS, os.devnull))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value


def _import_aiohttp() -> None:
    if "aiohttp" not in sys.modules:
        with _no_default_trust():
            importlib.import_module("aiohttp")


_import_aiohttp()


def _verified() -> ssl.SSLContext:
    """What aiohttp's verified context would have been: the default trust, HTTP/1.1."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


class TrustStore:
    """The SSL context of a fetcher's https requests, loaded on first use (blocking I/O: in a
    thread, off the event loop)."""

    def __init__(self) -> None:
        self._context: ssl.SSLContext | None = None
        self._loading = asyncio.Lock()

    async def context(self) -> ssl.SSLContext:
        if self._context is None:
            async with self._loading:
                if self._context is None:  # another caller may have loaded it meanwhile
                    self._context = await asyncio.to_thread(_verified)
        return self._context
