"""Storage: the contract the engine relies on (`contract`), and its two backends.

    storage.url set  → postgres.PostgresStore (asyncpg; many processes, many machines)
    otherwise        → sqlite.SQLiteStore at storage.path (one process at a time)

`open_store(config)` picks one. asyncpg is imported only when PostgreSQL is used: it is an
optional extra (`pip install 'crawler[postgres]'`).

Reading has its own contract (`reading`, kept by sqlite_reads.SQLiteReader and
postgres_reads.PgReader): `open_reader(db)` picks the backend from the DB argument (a path or
a postgresql:// URL), and `shown(db)` is that argument as messages show it (no password).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from ..errors import StoreError
from .contract import Batch, ResumeState, Storage
from .reading import Reader
from .reads import open_reader, shown

if TYPE_CHECKING:
    from ..config import Config

__all__ = [
    "Batch", "Reader", "ResumeState", "Storage", "StoreError", "open_reader", "open_store", "shown",
]  # fmt: skip


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
