"""`crawler search DB TERMS`: the pages that match, best first, with a snippet.

The search itself is the read contract's (storage/read_contract.py, rule 6): the query language of
storage/search_syntax.py (FTS5's, made forgiving) on each backend's own index, ranked with a
title match weighing more than one in the text. Matches are marked **like this** in the
snippet; here the snippet is put on one line.

Error handling: a malformed query, a missing file, a database that is not a crawl's, or one
made before search existed: UsageError (exit 2), one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..storage import open_reader

COLUMNS = ["url", "title", "snippet"]


def run_search(db: str | Path, terms: str, limit: int) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The best `limit` matches of `terms` in the crawl database `db`: the column names and
    the (url, title, snippet) rows, best first."""
    if limit < 1:
        raise UsageError("search: --limit must be 1 or more")
    with open_reader(db, require=("pages",)) as reader:
        rows = [
            (url, title, _one_line(snippet)) for url, title, snippet in reader.search(terms, limit)
        ]
        return COLUMNS, rows


def _one_line(snippet: str | None) -> str | None:
    """A snippet on one line (the text keeps its paragraphs' line breaks)."""
    return None if snippet is None else " ".join(snippet.split())
