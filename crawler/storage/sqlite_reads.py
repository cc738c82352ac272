"""The SQLite reader (reading.Reader): a crawl file opened read-only with sqlite3.

Read-only three times over: the file is opened with `mode=ro`, `PRAGMA query_only` is on, and
while the user's SQL is prepared an authorizer (`Guard`) refuses ATTACH/DETACH (and so VACUUM
INTO, which would create files) and the pragmas that change how the file is opened. Our own
reads run without it: a Ctrl-C that lands in a Python callback of sqlite3 is dropped (the
statement fails "not authorized"), and an export or report prepares a statement per batch.
Every read is in one read transaction (one snapshot). Blocking: the caller runs it outside an
event loop or in a thread.

Error handling: sqlite3's errors become StoreError in storage.sqlite.translated, the one
place they are translated: a file that cannot be opened or read as SQLite with exit code 2,
our reads with 1, the user's SQL with 2 (`query refused:` for a write, `query failed:` else).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..errors import UsageError
from .portable_reads import (
    MARK,
    SNIPPET_WORDS,
    TITLE_WEIGHT,
    PortableReads,
    parsed_search,
    unindexed,
)
from .read_contract import Row
from .report_reads import ReportReads
from .search_syntax import to_fts5
from .sqlite import translated

# Pragmas that could change how the file is opened or turn the guard off, refused when set.
_GUARDED_PRAGMAS = frozenset({"journal_mode", "locking_mode", "query_only", "writable_schema"})
_SEARCH = f"""
SELECT p.url, p.title, snippet(pages_fts, -1, '{MARK}', '{MARK}', '…', {SNIPPET_WORDS})
FROM pages_fts JOIN pages AS p ON p.id = pages_fts.rowid
WHERE pages_fts MATCH ?1
ORDER BY bm25(pages_fts, {TITLE_WEIGHT}, 1.0), p.id
LIMIT ?2
"""
USER_ROWS = 1000  # rows of the user's SQL read per step


class SQLiteReader(ReportReads, PortableReads):
    """A reading.Reader on a connection from `open_read_only`, in one read transaction."""

    def __init__(self, conn: sqlite3.Connection, guard: Guard, name: str) -> None:
        self._conn = conn
        self._guard = guard
        self.name = name

    @classmethod
    @contextlib.contextmanager
    def open(cls, path: Path) -> Iterator[SQLiteReader]:
        """Read the file at `path` for the length of the block, in one snapshot (rule 2)."""
        guard = Guard()
        with contextlib.closing(open_read_only(path, guard)) as conn:
            conn.set_authorizer(None)  # the guard watches the user's SQL only (_user_sql)
            reader = cls(conn, guard, str(path))
            reader._all("BEGIN")
            reader._all("SELECT count(*) FROM sqlite_master")  # the snapshot starts here
            try:
                yield reader
            finally:
                if conn.in_transaction:  # the user's SQL may have ended it (`COMMIT`)
                    reader._all("COMMIT")

    def _all(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        with translated(f"cannot read {self.name!r}"):
            return self._conn.execute(sql, params).fetchall()

    def _stream(self, sql: str, params: Sequence[object] = (), batch: int = 100) -> Iterator[Row]:
        with translated(f"cannot read {self.name!r}"):
            cursor = self._conn.execute(sql, params)
        while True:
            with translated(f"cannot read {self.name!r}"):
                rows = cursor.fetchmany(batch)
            if not rows:
                return
            yield from rows

    def tables(self) -> set[str]:
        return {n for (n,) in self._all("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def _now(self) -> float:
        return time.time()  # the file's writers are on this machine: its clock is theirs

    def columns(self, table: str) -> list[str]:
        sql = "SELECT name FROM pragma_table_info(?1) ORDER BY cid"
        return [name for (name,) in self._all(sql, (table,))]

    def search(self, terms: str, limit: int) -> Iterator[Row]:
        query = parsed_search(terms)
        self.require_tables(("pages",))
        if "pages_fts" not in self.tables():
            raise unindexed(self.name)
        return self._stream(_SEARCH, (to_fts5(query), limit))

    def user_sql(self, sql: str) -> tuple[list[str], Iterator[Row]] | None:
        with self._user_sql():
            cursor = self._conn.execute(sql)
            first = cursor.fetchmany(USER_ROWS)  # fails here, before any output
        if cursor.description is None:  # a statement without result columns
            return None
        return [d[0] for d in cursor.description], self._user_rows(cursor, first)

    def _user_rows(self, cursor: sqlite3.Cursor, rows: list[Row]) -> Iterator[Row]:
        while rows:
            yield from rows
            with self._user_sql():
                rows = cursor.fetchmany(USER_ROWS)

    @contextlib.contextmanager
    def _user_sql(self) -> Iterator[None]:
        self._guard.refused = None
        self._conn.set_authorizer(self._guard)
        try:
            with translated("query failed", exit_code=2, explain=self._describe):
                yield
        finally:
            self._conn.set_authorizer(None)

    def _describe(self, message: str) -> str:
        if self._guard.refused is not None:
            return f"query refused: the database is opened read-only ({self._guard.refused})"
        if message.startswith("cannot VACUUM"):  # refused by the snapshot's transaction
            return "query refused: the database is opened read-only (VACUUM is not allowed)"
        if "readonly" in message or "read-only" in message:
            return f"query refused: the database is opened read-only ({message})"
        return f"query failed: {message}"


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


def open_read_only(path: Path, guard: Guard | None = None) -> sqlite3.Connection:
    """Open an existing SQLite crawl database read-only, `guard` (a new Guard by default) as
    its authorizer; the caller closes the connection.

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
    db.set_authorizer(guard if guard is not None else Guard())
    return db
