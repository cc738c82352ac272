"""Reading a crawl database on either backend: `crawler stats`, `query`, `search`, `export`.

    DB "postgresql://…" or "postgres://…"  → readers_pg.PgReader (asyncpg)
    DB anything else                       → SQLiteReader on that path

A `Reader` is the little that `stats` needs, and both backends give it:

    name                   the database as messages show it (a URL without its password)
    fetch_all(sql, params) the rows of our own SQL, written for both dialects; parameters
                           are `?1`, `?2`, … (PostgreSQL gets `$1`, `$2`, …)
    tables()               the tables that the database's unqualified names reach

It can only read: SQLite opens the file with `mode=ro` and `PRAGMA query_only`; PostgreSQL
runs in a read-only transaction that is rolled back. All of a reader's reads are in one read
transaction, so they see one snapshot, however the crawl writes meanwhile.

Resource handling: `open_reader(db)` is a context manager; the connection is closed on exit.
Error handling: each backend's driver errors become StoreError in its `translated`
(storage/sqlite.py, storage/postgres.py): exit code 2 for a database that cannot be opened
(named in the message), 1 for a failed read. A missing file, a folder, or a database without
the crawl's tables is a UsageError; PostgreSQL without asyncpg installed, a StoreError (2).
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import StoreError, UsageError
from .sqlite import translated

if TYPE_CHECKING:
    from .postgres_reads import PgReader

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
CRAWL_TABLES = ("pages", "urls", "hosts", "runs")  # a database without them is not a crawl's
_PASSWORD = re.compile(r"(://[^:/@]*):[^@/]*@")  # postgresql://user:password@host

# Pragmas that could change how the file is opened or turn the guard off, refused when set.
_GUARDED_PRAGMAS = frozenset({"journal_mode", "locking_mode", "query_only", "writable_schema"})


class Reader(Protocol):
    """Read access to one crawl database, in one read transaction."""

    @property
    def name(self) -> str: ...

    def fetch_all(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """All rows of `sql`, values as sqlite3 gives them (PostgreSQL's are converted)."""
        ...

    def tables(self) -> set[str]: ...

    def rows(
        self, sql: str, params: Sequence[object] = (), batch: int = 100
    ) -> Iterator[tuple[Any, ...]]:
        """The rows of our own `sql` as they are consumed, `batch` at a time (rows with big
        bodies: a batch is what is held in memory), within the reader's block."""
        ...


def is_postgres(db: str | Path) -> bool:
    """Whether the DB argument is a PostgreSQL URL rather than an SQLite file's path."""
    return isinstance(db, str) and db.lower().startswith(POSTGRES_SCHEMES)


def shown(db: str | Path) -> str:
    """The DB argument as messages show it: a URL loses its password."""
    return _PASSWORD.sub(r"\1@", str(db)) if is_postgres(db) else str(db)


@contextlib.contextmanager
def open_reader(db: str | Path, *, statement_timeout: float | None = None) -> Iterator[Reader]:
    """A read-only reader of the crawl database `db` (a path, or a PostgreSQL URL), for the
    length of the block. `statement_timeout` (seconds): PostgreSQL cancels a longer statement."""
    if is_postgres(db):
        with open_postgres(str(db), statement_timeout=statement_timeout) as pg:
            yield pg
        return
    path = Path(db)
    with contextlib.closing(open_read_only(path)) as conn:
        reader = SQLiteReader(conn, str(path))
        reader.fetch_all("BEGIN")  # one snapshot for every read
        try:
            yield reader
        finally:
            reader.fetch_all("COMMIT")


def open_postgres(
    url: str, *, statement_timeout: float | None = None
) -> AbstractContextManager[PgReader]:
    """readers_pg.PgReader.open, or the one line saying asyncpg is missing."""
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


def require_tables(reader: Reader, names: Iterable[str]) -> None:
    """UsageError unless the database has these tables: it is not a crawl's otherwise."""
    have = reader.tables()
    missing = [name for name in names if name not in have]
    if missing:
        raise UsageError(f"{reader.name!r} is not a crawl database (no table {missing[0]!r})")


class SQLiteReader:
    """A Reader on a connection from `open_read_only`."""

    def __init__(self, conn: sqlite3.Connection, name: str) -> None:
        self._conn = conn
        self.name = name

    def fetch_all(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with translated(f"cannot read {self.name!r}"):
            return self._conn.execute(sql, params).fetchall()

    def tables(self) -> set[str]:
        return {n for (n,) in self.fetch_all("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def rows(
        self, sql: str, params: Sequence[object] = (), batch: int = 100
    ) -> Iterator[tuple[Any, ...]]:
        with translated(f"cannot read {self.name!r}"):
            cursor = self._conn.execute(sql, params)
        while True:
            with translated(f"cannot read {self.name!r}"):
                rows = cursor.fetchmany(batch)
            if not rows:
                return
            yield from rows


class Guard:
    """An sqlite3 authorizer that refuses what `mode=ro` alone lets through; keeps the why."""

    def __init__(self) -> None:
        self.refused: str | None = None

    def __call__(self, action: int, arg1: str | None, arg2: str | None, *_: str | None) -> int:
        if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
            self.refused = "ATTACH and DETACH are not allowed"
        elif action == sqlite3.SQLITE_PRAGMA and arg2 is not None and arg1 in _GUARDED_PRAGMAS:
            self.refused = f"PRAGMA {arg1} cannot be set"
        else:
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY


def open_read_only(path: Path) -> sqlite3.Connection:
    """Open an existing SQLite crawl database read-only; the caller closes the connection.

    Missing file or a directory -> UsageError; a file that is not SQLite -> StoreError (exit 2),
    both naming the path.
    """
    if not path.exists():
        raise UsageError(f"no database at {str(path)!r}")
    if path.is_dir():
        raise UsageError(f"{str(path)!r} is a directory, not a database file")
    uri = path.resolve().as_uri() + "?mode=ro"
    with translated(f"cannot open {str(path)!r}", exit_code=2):
        db = sqlite3.connect(uri, uri=True, isolation_level=None)
    try:
        with translated(f"cannot read {str(path)!r} as an SQLite database", exit_code=2):
            db.execute("PRAGMA busy_timeout = 5000")
            db.execute("PRAGMA query_only = ON")
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # reads the header
    except BaseException:
        db.close()
        raise
    db.set_authorizer(Guard())
    return db
