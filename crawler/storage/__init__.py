"""Storage: the contract the engine relies on (`contract`), and its two backends.

    storage.url set  → postgres.PostgresStore (asyncpg; many processes, many machines)
    otherwise        → sqlite.SQLiteStore at storage.path (one process at a time)

`open_store(config)` picks one. asyncpg is imported only when PostgreSQL is used: it is an
optional extra (`pip install 'crawler[postgres]'`).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from ..errors import StoreError
from .contract import Batch, ResumeState, Storage

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["Batch", "ResumeState", "Storage", "StoreError", "open_store"]


def open_store(config: Config) -> AbstractAsyncContextManager[Storage]:
    """The store the config names, to open with `async with`: PostgreSQL at `storage.url`
    if it is set, else SQLite at `storage.path`.

    Error handling: StoreError (exit code 2) if PostgreSQL is asked for and asyncpg is missing;
    opening raises StoreError for a database that cannot be used."""
    url: str = getattr(config.storage, "url", "")
    if url:
        try:
            from .postgres import PostgresStore
        except ModuleNotFoundError as exc:
            if exc.name != "asyncpg":
                raise
            raise StoreError(
                "storage.url: PostgreSQL needs asyncpg: pip install 'crawler[postgres]'",
                exit_code=2,
            ) from None
        return PostgresStore.open(url, config.lease)
    from .sqlite import SQLiteStore

    return SQLiteStore.open(config.storage.path)
