"""Opening a crawl database for reading, on either backend (the contract: reading.py).

    DB "postgresql://…" or "postgres://…"  → postgres_reads.PgReader (asyncpg)
    DB anything else                       → sqlite_reads.SQLiteReader on that path

Callers outside storage use only `open_reader`, `shown` and what reading.py defines; which
backend they read is storage's business.

Resource handling: `open_reader(db)` is a context manager; the connection is closed on exit.
Error handling: a missing file, a folder, or a database without the crawl's tables is a
UsageError; PostgreSQL without asyncpg installed, a StoreError (exit 2); the rest as
reading.py says.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import StoreError
from .read_sql import CRAWL_TABLES
from .reading import Reader

if TYPE_CHECKING:
    from .postgres_reads import PgReader

__all__ = ["CRAWL_TABLES", "Reader", "open_reader", "shown"]

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_PASSWORD = re.compile(r"(://[^:/@]*):[^@/]*@")  # postgresql://user:password@host


def is_postgres(db: str | Path) -> bool:
    """Whether the DB argument is a PostgreSQL URL rather than an SQLite file's path (for
    storage's own use: no caller needs to know)."""
    return isinstance(db, str) and db.lower().startswith(POSTGRES_SCHEMES)


def shown(db: str | Path) -> str:
    """The DB argument as messages show it: a URL loses its password."""
    return _PASSWORD.sub(r"\1@", str(db)) if is_postgres(db) else str(db)


@contextlib.contextmanager
def open_reader(
    db: str | Path,
    *,
    require: Sequence[str] = CRAWL_TABLES,
    statement_timeout: float | None = None,
) -> Iterator[Reader]:
    """A read-only reader of the crawl database `db` (a path, or a PostgreSQL URL), for the
    length of the block. `require`: the tables it must have to be a crawl's (UsageError
    otherwise). `statement_timeout` (seconds): PostgreSQL cancels a longer statement."""
    if is_postgres(db):
        with _open_postgres(str(db), statement_timeout) as pg:
            pg.require_tables(require)
            yield pg
        return
    from .sqlite_reads import SQLiteReader

    with SQLiteReader.open(Path(db)) as reader:
        reader.require_tables(require)
        yield reader


def _open_postgres(
    url: str, statement_timeout: float | None
) -> contextlib.AbstractContextManager[PgReader]:
    """postgres_reads.PgReader.open, or the one line saying asyncpg is missing."""
    try:
        from .postgres_reads import PgReader
    except ModuleNotFoundError as exc:
        if exc.name != "asyncpg":
            raise
        raise StoreError(
            f"{shown(url)}: PostgreSQL needs asyncpg: pip install 'crawler[postgres]'",
            exit_code=2,
        ) from None
    return PgReader.open(url, shown(url), statement_timeout=statement_timeout)
