"""Opening a crawl database, on either backend: the one place that picks it.

    open_store(config)  storage.url set → postgres.PostgresStore, else sqlite.SQLiteStore
    open_reader(db)     "postgresql://…" or "postgres://…" → postgres_reads.PgReader,
                        anything else → sqlite_reads.SQLiteReader on that path

Callers outside storage use only these, `shown`, and what contract.py and read_contract.py
define; which backend they talk to is storage's business.

Resource handling: both are context managers; the connection is closed on exit.
Error handling: a missing file, a folder, or a database without the crawl's tables is a
UsageError; PostgreSQL without a working asyncpg, a StoreError (exit 2) naming what failed;
the rest as the contracts say.
"""

from __future__ import annotations

import contextlib
import importlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from ..errors import StoreError
from .common import CRAWL_TABLES
from .contract import Storage

if TYPE_CHECKING:
    from ..config import Config
    from .postgres_reads import PgReader
    from .read_contract import Reader

# The read side (read_contract and the readers) loads with the first reader: a crawl needs
# none of it before its first request.
__all__ = ["open_reader", "open_store", "shown"]

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


def open_store(config: Config) -> contextlib.AbstractAsyncContextManager[Storage]:
    """The store the config names, to open with `async with`: PostgreSQL at `storage.url`
    if it is set, else SQLite at `storage.path`.

    Error handling: StoreError (exit code 2) if PostgreSQL is asked for and asyncpg cannot be
    imported; opening raises StoreError for a database that cannot be used."""
    url = config.storage.url
    if url:
        postgres = _postgres_module("postgres", "storage.url")
        store: contextlib.AbstractAsyncContextManager[Storage] = postgres.PostgresStore.open(
            url, config.lease
        )
        return store
    from .sqlite import SQLiteStore

    return SQLiteStore.open(config.storage.path)


def _open_postgres(
    url: str, statement_timeout: float | None
) -> contextlib.AbstractContextManager[PgReader]:
    """postgres_reads.PgReader.open, or the one line saying asyncpg cannot be used."""
    reads = _postgres_module("postgres_reads", shown(url))
    reader: contextlib.AbstractContextManager[PgReader] = reads.PgReader.open(
        url, shown(url), statement_timeout=statement_timeout
    )
    return reader


def _postgres_module(name: str, what: str) -> ModuleType:
    """This package's PostgreSQL module `name`, once asyncpg imports; asyncpg missing or broken
    is one line naming `what` asked for PostgreSQL, exit code 2."""
    try:
        importlib.import_module("asyncpg")
    except ImportError as exc:
        install = "pip install 'crawler[postgres]'"
        if not isinstance(exc, ModuleNotFoundError) or exc.name != "asyncpg":
            install = f"it cannot be imported ({exc}); {install} --force-reinstall"
        raise StoreError(f"{what}: PostgreSQL needs asyncpg: {install}", exit_code=2) from None
    return importlib.import_module(f"{__package__}.{name}")
