"""`crawler search DB TERMS`: the pages that match, best first, with a snippet.

The query language (search_query.py) is FTS5's, made forgiving, on both backends:
- SQLite: the `pages_fts` index (sqlite_schema.py), ranked by bm25 with a title match
  weighing TITLE_WEIGHT times one in the text; the snippet is FTS5's, from the column that
  matched best.
- PostgreSQL: the expression index `pages_search` (postgres_schema.SEARCH_DOCUMENT, title
  weighted A, text B), ranked by ts_rank; the snippet is ts_headline's, made for the pages
  shown only (it reads each page's text again).

Matches are marked **like this** in the snippet.

Error handling: a malformed query, a missing file, a database that is not a crawl's, or one
made before search existed: UsageError (exit 2), one line.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..storage.postgres_schema import SEARCH_DOCUMENT
from ..storage.reads import Reader, is_postgres, open_reader, require_tables, shown
from ..storage.search_syntax import QuerySyntaxError, parse, to_fts5, to_tsquery

COLUMNS = ["url", "title", "snippet"]
TITLE_WEIGHT = 10.0
SNIPPET_WORDS = 24
MARK = "**"

_SQLITE = f"""
SELECT p.url, p.title, snippet(pages_fts, -1, '{MARK}', '{MARK}', '…', {SNIPPET_WORDS})
FROM pages_fts JOIN pages AS p ON p.id = pages_fts.rowid
WHERE pages_fts MATCH ?1
ORDER BY bm25(pages_fts, {TITLE_WEIGHT}, 1.0), p.id
LIMIT ?2
"""

# {query}: the tsquery expression, its parameters from $2 on; $1 is the limit.
_POSTGRES = f"""
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


def search(reader: Reader, db: str | Path, terms: str, limit: int) -> Iterator[tuple[Any, ...]]:
    """The best `limit` matches of `terms`: (url, title, snippet) rows, best first."""
    try:
        query = parse(terms)
    except QuerySyntaxError as exc:
        raise UsageError(f"search: {exc}") from None
    require_tables(reader, ("pages",))
    if is_postgres(db):
        if not reader.fetch_all("SELECT 1 FROM pg_indexes WHERE indexname = 'pages_search'"):
            raise _unindexed(db)
        expression, params = to_tsquery(query, first_param=2)
        return reader.rows(_POSTGRES.format(query=expression), [limit, *params])
    if "pages_fts" not in reader.tables():
        raise _unindexed(db)
    return reader.rows(_SQLITE, [to_fts5(query), limit])


def run_search(db: str | Path, terms: str, limit: int) -> tuple[list[str], list[tuple[Any, ...]]]:
    """`search` on a reader of its own; the rows read."""
    if limit < 1:
        raise UsageError("search: --limit must be 1 or more")
    with open_reader(db) as reader:
        rows = [
            (url, title, _one_line(snippet))
            for url, title, snippet in search(reader, db, terms, limit)
        ]
        return COLUMNS, rows


def _one_line(snippet: str | None) -> str | None:
    """A snippet on one line (the text keeps its paragraphs' line breaks)."""
    return None if snippet is None else " ".join(snippet.split())


def _unindexed(db: str | Path) -> UsageError:
    return UsageError(
        f"{shown(db)} has no search index: it was made by an older crawler; a crawl run on it"
        " once (`crawler crawl CONFIG`) builds the index"
    )
