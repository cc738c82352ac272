"""The PostgreSQL reader (reading.Reader): a crawl database read through asyncpg from plain,
synchronous code, for the read commands given a postgresql:// URL.

The connection lives on an event loop of its own (`asyncio.Runner`); each call runs one
coroutine to its end. The session is read-only twice over: `default_transaction_read_only`
is on, and everything runs in one `REPEATABLE READ, READ ONLY` transaction (one snapshot) that
is rolled back, never committed, so even what a function managed to write is undone. A
statement timeout, when asked for (`crawler query`: query.STATEMENT_TIMEOUT), has the server
cancel a statement that runs longer, counted for each round trip (the first rows, then each
batch of FETCH_ROWS).

The user's SQL (`user_sql`) is prepared first; a statement that returns no rows is refused
without being run: INSERT/UPDATE/DELETE without RETURNING, DDL, SET, LOCK, and above all COPY
… TO and DO, which a read-only transaction would let run (COPY … TO PROGRAM runs a shell
command on the server). A statement that returns rows runs in the read-only transaction, where
a write fails. Rows come through a server-side cursor, FETCH_ROWS at a time, turned into what
sqlite3 would give (`sqlite_value`), under the names SQLite would give the columns
(postgres_names).

Not guarded here: server functions called in a SELECT whose effects lie outside the
transaction (pg_terminate_backend, which a role may call on its own role's sessions;
lo_export and the like for a superuser). docs/roles.md gives the read commands a role of
their own, SELECT only, which can end no crawl's session.

Error handling: asyncpg's errors become StoreError in storage.postgres.translated, the one
place they are translated: opening (bad URL, no server, authentication, no such database) with
exit code 2 and the URL (password hidden), the user's SQL with exit code 2 (`query refused:`
for a write, `query failed:` for the rest), our own reads with exit code 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import asyncpg

from ..errors import StoreError
from .portable_reads import MARK, SNIPPET_WORDS, PortableReads, parsed_search, unindexed
from .postgres import CONNECT_TIMEOUT, translated
from .postgres_names import first_word, is_empty, sqlite_names
from .postgres_schema import SEARCH_DOCUMENT
from .postgres_writes import NOW
from .read_contract import Row
from .report_reads import ReportReads
from .search_syntax import to_tsquery

FETCH_ROWS = 1000  # rows a server-side cursor fetches per round trip
CLOSE_TIMEOUT = 5.0  # seconds a graceful close may take before the socket is just dropped
READ_ONLY_STATE = "25006"  # SQLSTATE read_only_sql_transaction
CANCELED_STATE = "57014"  # SQLSTATE query_canceled (the statement timeout)
_NUMBERED = re.compile(r"\?(\d+)")  # our SQL's ?1 → $1
_TABLES = """
SELECT c.relname FROM pg_catalog.pg_class AS c
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND pg_catalog.pg_table_is_visible(c.oid)
"""
_COLUMNS = """
SELECT a.attname FROM pg_catalog.pg_attribute AS a
WHERE a.attrelid = to_regclass(?1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""
# {query}: the tsquery expression, its parameters from $2 on; $1 is the limit. The snippet is
# made for the pages shown only (ts_headline reads each page's text again).
_SEARCH = f"""
SELECT url, title, ts_headline('english', left(coalesce(text, title, ''), 200000), {{query}},
    'StartSel="{MARK}", StopSel="{MARK}", MaxFragments=1, FragmentDelimiter="…",
     MaxWords={SNIPPET_WORDS}, MinWords={SNIPPET_WORDS // 2}')
FROM (
    SELECT id, url, title, text, ts_rank({SEARCH_DOCUMENT}, {{query}}) AS rank
    FROM pages WHERE {SEARCH_DOCUMENT} @@ {{query}}
    ORDER BY rank DESC, id LIMIT $1
) AS best
ORDER BY rank DESC, id
"""
_SEARCH_INDEX = (
    "SELECT 1 FROM pg_catalog.pg_index WHERE indexrelid = to_regclass('pages_search')"
    " AND indrelid = to_regclass('pages')"
)


class PgReader(ReportReads, PortableReads):
    """A reading.Reader on one asyncpg connection inside a read-only transaction."""

    _FIND = "strpos"  # report_reads: instr is SQLite's

    def __init__(self, runner: asyncio.Runner, conn: Any, name: str, timeout: float | None):
        self._runner = runner
        self._conn = conn
        self._timeout = timeout
        self.name = name

    @classmethod
    @contextlib.contextmanager
    def open(
        cls, url: str, name: str, *, statement_timeout: float | None = None
    ) -> Iterator[PgReader]:
        """Connect to `url` (`name`: the URL as messages show it) for the length of the block."""
        with asyncio.Runner() as runner:
            with translated(f"cannot open {name!r}", exit_code=2, opening=True):
                conn = runner.run(_connect(url, statement_timeout))
            try:
                yield cls(runner, conn, name, statement_timeout)
            finally:
                runner.run(_close(conn))

    def _all(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        with translated(f"cannot read {self.name!r}"):
            rows = self._runner.run(self._conn.fetch(_NUMBERED.sub(r"$\1", sql), *params))
        return [tuple(sqlite_value(v) for v in row) for row in rows]

    def tables(self) -> set[str]:
        return {name for (name,) in self._all(_TABLES)}

    def _now(self) -> float:
        ((now,),) = self._all(f"SELECT {NOW}")  # the clock the runs' leases are kept on
        return float(now)

    def columns(self, table: str) -> list[str]:
        if table not in self.tables():
            return []
        return [name for (name,) in self._all(_COLUMNS, (table,))]

    def search(self, terms: str, limit: int) -> Iterator[Row]:
        query = parsed_search(terms)
        self.require_tables(("pages",))
        if not self._all(_SEARCH_INDEX):
            raise unindexed(self.name)
        expression, params = to_tsquery(query, first_param=2)
        return self._stream(_SEARCH.format(query=expression), [limit, *params])

    def _stream(self, sql: str, params: Sequence[object] = (), batch: int = 100) -> Iterator[Row]:
        with translated(f"cannot read {self.name!r}"):
            statement = self._runner.run(self._conn.prepare(_NUMBERED.sub(r"$\1", sql)))
            cursor = self._runner.run(_open_cursor(statement, *params))
        while True:
            with translated(f"cannot read {self.name!r}"):
                rows = self._runner.run(cursor.fetch(batch))
            yield from (tuple(sqlite_value(v) for v in row) for row in rows)
            if len(rows) < batch:
                return

    def user_sql(self, sql: str) -> tuple[list[str], Iterator[Row]] | None:
        with self._user_sql():
            statement = self._runner.run(self._conn.prepare(sql))
        columns = [attribute.name for attribute in statement.get_attributes()]
        if not columns:
            if is_empty(sql):
                return None
            what = first_word(sql) or "this"
            raise StoreError(
                "query refused: the database is opened read-only (only a statement that"
                f" returns rows is run, and {what} returns none)",
                exit_code=2,
            )
        with self._user_sql():
            cursor = self._runner.run(_open_cursor(statement))
            first = self._runner.run(cursor.fetch(FETCH_ROWS))  # fails here, before any output
        return sqlite_names(sql, columns), self._rows(cursor, first)

    def _rows(self, cursor: Any, rows: list[Any]) -> Iterator[tuple[Any, ...]]:
        while True:
            for row in rows:
                yield tuple(sqlite_value(v) for v in row)
            if len(rows) < FETCH_ROWS:
                return
            with self._user_sql():
                rows = self._runner.run(cursor.fetch(FETCH_ROWS))

    @contextlib.contextmanager
    def _user_sql(self) -> Iterator[None]:
        """Errors of the user's SQL, as one line: a write refused, or why it failed."""
        try:
            with translated("query failed", exit_code=2):
                yield
        except StoreError as exc:
            state = getattr(exc.__cause__, "sqlstate", None)
            detail = str(exc).removeprefix("query failed: ")
            if state == READ_ONLY_STATE:
                message = f"query refused: the database is opened read-only ({detail})"
            elif state == CANCELED_STATE and self._timeout is not None:
                message = f"query failed: {detail} (the limit is {self._timeout:g} s)"
            else:
                raise
            raise StoreError(message, exit_code=2) from exc.__cause__


async def _connect(url: str, statement_timeout: float | None) -> Any:
    settings = {"default_transaction_read_only": "on", "application_name": "crawler read"}
    if statement_timeout is not None:  # milliseconds; 0 would mean no limit
        settings["statement_timeout"] = str(max(1, round(statement_timeout * 1000)))
    conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT, server_settings=settings)
    try:
        await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        await conn.execute("SELECT 1")  # takes the snapshot: no SET TRANSACTION READ WRITE now
    except BaseException:
        conn.terminate()
        raise
    return conn


async def _open_cursor(statement: Any, *params: object) -> Any:
    return await statement.cursor(*params)


async def _close(conn: Any) -> None:
    """Roll back and say goodbye; a connection that cannot is dropped (the server rolls back)."""
    try:
        await conn.execute("ROLLBACK", timeout=CLOSE_TIMEOUT)
        await conn.close(timeout=CLOSE_TIMEOUT)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        conn.terminate()


def sqlite_value(value: Any) -> Any:
    """A PostgreSQL value as sqlite3 would give it: bool as 0/1; numeric as int when it has no
    fraction digits, else float; dates and times as ISO-8601 text; an array as JSON text;
    anything else that is not None, int, float, str or bytes as its str()."""
    if isinstance(value, bool):
        return int(value)
    if value is None or isinstance(value, int | float | str | bytes):
        return value
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        return int(value) if isinstance(exponent, int) and exponent >= 0 else float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return json.dumps([_json_element(v) for v in value], ensure_ascii=False)
    return str(value)


def _json_element(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_json_element(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, bool) or value is None:
        return value
    plain = sqlite_value(value)
    return None if isinstance(plain, float) and not math.isfinite(plain) else plain
