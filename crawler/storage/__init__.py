"""Storage: everything that touches a database, behind two written contracts.

Writing (`contract`: the rules the engine relies on) and reading (`read_contract`: what the
commands read) are each kept by both backends:

    SQLite      sqlite.SQLiteStore, sqlite_reads.SQLiteReader    storage.path; the default
    PostgreSQL  postgres.PostgresStore, postgres_reads.PgReader  storage.url; many processes

`open_store(config)` and `open_reader(db)` (module `opening`) pick the backend, and `shown(db)`
names a database as messages show it (no password). Nothing outside this package imports a
database driver or asks which backend it talks to. asyncpg is imported only when PostgreSQL is
used: it is an optional extra (`pip install 'crawler[postgres]'`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .contract import Batch, ResumeState, Storage
from .opening import open_reader, open_store, shown

if TYPE_CHECKING:
    from .read_contract import Reader

__all__ = [
    "Batch", "Reader", "ResumeState", "Storage", "open_reader", "open_store", "shown",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    # The read side loads on first use: a crawl needs none of it (its import is ~17 ms of the
    # time before the first request).
    if name == "Reader":
        from .read_contract import Reader

        return Reader
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
