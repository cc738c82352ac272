"""A polite async web crawler that leaves everything it saw in one database: an SQLite file,
or PostgreSQL for a crawl of many processes on many machines.

The package reads as the pipeline: frontier/, robots/, fetch (with auth/ for one's own sites),
extract/, text/, sitemaps/, storage/ (the write contract, storage/contract.py, and the read
contract, storage/read_contract.py, each kept by both backends), engine/, and commands/ for
the read commands (stats, query, search, export, report, serve); cli, config, errors, records
and urls are the whole's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ConfigError, CrawlerError, StoreError, UsageError

if TYPE_CHECKING:
    from .config import Config
    from .engine.crawl import Crawler, RunResult

__all__ = [
    "Config",
    "ConfigError",
    "Crawler",
    "CrawlerError",
    "RunResult",
    "StoreError",
    "UsageError",
]


def __getattr__(name: str) -> Any:
    # The engine (and aiohttp with it) and the config (yarl) load on first use, so that
    # `crawler query`, `crawler stats` and the helper processes, which import parts of this
    # package, start fast.
    if name in ("Crawler", "RunResult"):
        from .engine import crawl

        return getattr(crawl, name)
    if name == "Config":
        from .config import Config

        return Config
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
