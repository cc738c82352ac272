"""The read contract's portable part (read_contract.py): SQL both dialects run alike, in one place.

Each backend's reader subclasses `PortableReads` and gives it two primitives, `_all` (every
row of our SQL) and `_stream` (rows as they are consumed), plus `tables` and `columns`, which
ask each backend's catalog, and `_now`, the database's clock (for the live view). Parameters
are written `?1`, `?2`, … (PostgreSQL's reader turns them into `$1`, `$2`, …). Subqueries are
named and no function is one dialect's only; text is ordered in Python, not by the database's
collation, so both give the same order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import UsageError
from .common import CRAWL_TABLES
from .live_reads import LiveReads
from .read_contract import (
    CLASS_ORDER,
    STATUS_CLASSES,
    URL_STATES,
    Counts,
    Host,
    Pass,
    Progress,
    Row,
    Run,
)
from .search_syntax import Node, QuerySyntaxError, parse

_ALWAYS_SHOWN = (*STATUS_CLASSES, "no response")  # 1xx and other only when present
_RUN_COLUMNS = (
    "id", "started_at", "ended_at", "outcome", "pages", "pass", "lag_p99_ms", "lag_max_ms",
)  # fmt: skip

STATUS_CLASS_COUNTS = (
    "SELECT CASE WHEN status IS NULL THEN 'no response'"
    " WHEN status BETWEEN 100 AND 599 THEN (status / 100) || 'xx' ELSE 'other' END AS c,"
    " count(*) FROM pages GROUP BY c"
)
URL_STATE_COUNTS = "SELECT state, count(*) FROM urls GROUP BY state"
SKIP_REASON_COUNTS = (
    "SELECT coalesce(reason, 'unknown') AS r, count(*) FROM urls WHERE state = 'skipped' GROUP BY r"
)
CONTENT_TYPE_COUNTS = "SELECT content_type, count(*) FROM pages GROUP BY content_type"
HOST_COUNT = "SELECT count(*) FROM (SELECT host FROM pages UNION SELECT host FROM hosts) AS names"
PAGE_TOTALS = "SELECT count(*), coalesce(sum(bytes), 0), count(error) FROM pages"
PROGRESS = (
    "SELECT (SELECT coalesce(sum(pages), 0) FROM runs),"
    " (SELECT count(*) FROM urls WHERE state = 'queued'),"
    " (SELECT coalesce(sum(errors), 0) FROM hosts), (SELECT count(*) FROM hosts)"
)
QUEUED = "SELECT count(*) FROM urls WHERE state = 'queued'"
ANY_PAGE = "SELECT 1 FROM pages LIMIT 1"
STORED_BODIES = "SELECT count(*), count(body) FROM pages WHERE status IS NOT NULL AND bytes > 0"
LAST_FETCHED = "SELECT max(fetched_at) FROM pages WHERE fetched_at >= ?1"
PASS_CHANGES = "SELECT pass, change, count(*) FROM fetches GROUP BY pass, change"
HOSTS = """
WITH names AS (SELECT host FROM hosts UNION SELECT host FROM pages),
     fetched AS (SELECT host, count(*) AS n FROM pages GROUP BY host)
SELECT names.host, h.robots_status, h.robots_fetched_at, h.delay, h.delay_reason,
       h.crawl_delay, coalesce(h.requests, 0), coalesce(h.errors, 0), h.min_gap_ms,
       coalesce(fetched.n, 0) AS pages
FROM names LEFT JOIN hosts AS h ON h.host = names.host
LEFT JOIN fetched ON fetched.host = names.host
"""


class PortableReads(LiveReads, ABC):
    """The named reads whose SQL both backends share (reading.Reader, rules 4, 5, 8-10; the
    live view's, 20-23, in live_reads.LiveReads)."""

    name: str

    @abstractmethod
    def _all(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Every row of our `sql`, values as sqlite3 gives them."""

    @abstractmethod
    def _stream(self, sql: str, params: Sequence[object] = (), batch: int = 100) -> Iterator[Row]:
        """The rows of our `sql` as they are consumed, `batch` at a time."""

    @abstractmethod
    def tables(self) -> set[str]: ...

    @abstractmethod
    def columns(self, table: str) -> list[str]: ...

    def require_tables(self, names: Sequence[str] = CRAWL_TABLES) -> None:
        """UsageError unless the database has these tables: it is not a crawl's otherwise."""
        have = self.tables()
        missing = [name for name in names if name not in have]
        if missing:
            raise UsageError(f"{self.name!r} is not a crawl database (no table {missing[0]!r})")

    def counts(self) -> Counts:
        found: dict[str, int] = dict(self._all(STATUS_CLASS_COUNTS))
        classes = {c: found.get(c, 0) for c in CLASS_ORDER if c in found or c in _ALWAYS_SHOWN}
        states = dict.fromkeys(URL_STATES, 0)
        states.update(self._all(URL_STATE_COUNTS))
        ((hosts,),) = self._all(HOST_COUNT)
        ((pages, size, errors),) = self._all(PAGE_TOTALS)
        return Counts(
            pages=pages,
            status_classes=classes,
            url_states=states,
            skip_reasons=_most_first(self._all(SKIP_REASON_COUNTS)),
            content_types=_most_first(self._all(CONTENT_TYPE_COUNTS)),
            hosts=hosts,
            bytes=size,
            errors=errors,
        )

    def progress(self) -> Progress:
        ((pages, queued, errors, hosts),) = self._all(PROGRESS)
        return Progress(int(pages), int(queued), int(errors), int(hosts))

    def queued(self) -> int:
        ((count,),) = self._all(QUEUED)
        return int(count)

    def has_pages(self) -> bool:
        return bool(self._all(ANY_PAGE))

    def stored_bodies(self) -> tuple[int, int]:
        ((answered, with_body),) = self._all(STORED_BODIES)
        return int(answered), int(with_body)

    def runs(self) -> list[Run]:
        sql = _select(_RUN_COLUMNS, set(self.columns("runs")), "runs")
        return [
            Run(i, started, ended, outcome, pages, number or 1, p99, worst)
            for i, started, ended, outcome, pages, number, p99, worst in self._all(sql)
        ]

    def last_fetched_at(self, since: str, before: str | None = None) -> str | None:
        if before is None:
            ((end,),) = self._all(LAST_FETCHED, (since,))
        else:
            ((end,),) = self._all(LAST_FETCHED + " AND fetched_at < ?2", (since, before))
        return None if end is None else str(end)

    def passes(self) -> tuple[Pass, ...]:
        if "fetches" not in self.tables():  # a database no crawler with recrawls opened yet
            return ()
        counts: dict[int, dict[str | None, int]] = {}
        for number, change, n in self._all(PASS_CHANGES):
            counts.setdefault(number, {})[change] = n
        return tuple(
            Pass(n, c.get("new", 0), c.get("changed", 0), c.get("unchanged", 0),
                 c.get("gone", 0), c.get(None, 0))
            for n, c in sorted(counts.items())
        )  # fmt: skip

    def hosts(self) -> list[Host]:
        found = [Host(*row) for row in self._all(HOSTS)]
        return sorted(found, key=lambda h: (-h.pages, h.host))

    def pages(self, columns: Sequence[str], batch: int = 100) -> Iterator[Row]:
        sql = _select(columns, set(self.columns("pages")), "pages")
        return self._stream(sql, (), batch)


def _select(columns: Sequence[str], have: set[str], table: str) -> str:
    """`columns` of `table` in id order; NULL for those an older database lacks."""
    for name in columns:
        if not name.isidentifier():
            raise ValueError(f"not a column name: {name!r}")
    names = [f'"{name}"' if name in have else f'NULL AS "{name}"' for name in columns]
    return f"SELECT {', '.join(names)} FROM {table} ORDER BY id"


def _most_first(rows: list[Row]) -> dict[Any, int]:
    return dict(sorted(rows, key=lambda row: (-row[1], row[0] is None, row[0] or "")))


TITLE_WEIGHT = 10.0  # a match in the title weighs this many in the text
SNIPPET_WORDS = 24
MARK = "**"  # around each match in a snippet


def parsed_search(terms: str) -> Node:
    """The search `terms` parsed (search_syntax), or the one-line UsageError saying why not."""
    try:
        return parse(terms)
    except QuerySyntaxError as exc:
        raise UsageError(f"search: {exc}") from None


def unindexed(name: str) -> UsageError:
    """The error for a database made before search existed."""
    return UsageError(
        f"{name} has no search index: it was made by an older crawler; a crawl run on it"
        " once (`crawler crawl CONFIG`) builds the index"
    )
