"""The crawler's exceptions.

    CrawlerError            base: the CLI catches it once and exits with its code
    ├── ConfigError         a bad config file (exit 2), names the file and the key
    ├── UsageError          a bad command line or argument (exit 2): missing DB, nothing to resume
    └── StoreError          the database refused an operation (exit 2 for a user's SQL, else 1)

A failed request is no exception at all: `fetch` turns aiohttp's exceptions into a Response
whose `error` says what happened, and that becomes the page's row. The database drivers'
exceptions (sqlite3, aiosqlite, asyncpg) become StoreError inside `storage` only, at each
backend's `translated` (storage/sqlite.py, storage/postgres.py), for writing and reading alike.
"""

from __future__ import annotations


class CrawlerError(Exception):
    """Base of every error the crawler raises on purpose."""

    exit_code = 1


class ConfigError(CrawlerError):
    """The config file is missing, unreadable, or holds a bad key or value."""

    exit_code = 2


class UsageError(CrawlerError):
    """The command line asks for something that cannot be done (a user error)."""

    exit_code = 2


class StoreError(CrawlerError):
    """The database could not be opened, read or written."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
