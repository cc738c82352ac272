"""A polite async web crawler that leaves everything it saw in one SQLite file."""

from .config import Config
from .crawl import Crawler, RunResult
from .errors import ConfigError, CrawlerError, StoreError, UsageError

__all__ = [
    "Config",
    "ConfigError",
    "Crawler",
    "CrawlerError",
    "RunResult",
    "StoreError",
    "UsageError",
]
