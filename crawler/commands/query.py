"""`crawler query DB SQL`: run the user's SQL on a read-only connection and print the rows.

DB is an SQLite file's path or a PostgreSQL URL (postgresql://…, postgres://…). The SQL runs
through the read contract's one SQL-taking method, `Reader.user_sql` (storage/read_contract.py,
rules 1 and 3): read-only on both backends (a write is refused and changes nothing), values
and column names as SQLite gives them, so the same SQL writes the same output on both, row
order aside where the SQL leaves it open. On PostgreSQL a statement may run STATEMENT_TIMEOUT
(60 s) a round trip.

Formats: `table` aligns columns for a human (cells cut to 60 characters with "…", NULL shown
empty, a BLOB shown as `<N bytes>`, widths taken from the first 1000 rows); `csv` has a header
row and NULL as an empty field; `json` is one array of objects, `jsonl` one object a line.
In csv, json and jsonl a BLOB is written as its bytes decoded as UTF-8 (invalid bytes become
U+FFFD), a non-finite float as null, and a repeated column name gets a suffix (`url`, `url:2`)
so no column is lost. Rows are streamed, except the first 1000 that `table` measures.

Error handling: a missing file, a directory or a database that is not a crawl's is a
UsageError; a database that cannot be opened and an error of the SQL are one-line StoreErrors
with exit code 2, translated inside storage.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from ..errors import UsageError
from ..storage import open_reader

__all__ = ["FORMATS", "STATEMENT_TIMEOUT", "run_query", "write_rows", "write_table"]

FORMATS = ("table", "csv", "json", "jsonl")

MAX_CELL = 60  # characters of a table cell before it is cut
MEASURED_ROWS = 1000  # rows the table format reads ahead to size its columns

STATEMENT_TIMEOUT = 60.0  # seconds a PostgreSQL statement may run (each round trip)
_ESCAPES = str.maketrans({"\n": "\\n", "\r": "\\r", "\t": "\\t"})


def run_query(
    db: str | Path, sql: str, fmt: str, out: TextIO, *, timeout: float = STATEMENT_TIMEOUT
) -> int:
    """Run `sql` on a read-only connection to `db` (a path or a PostgreSQL URL), write its rows
    to `out` in `fmt`; `timeout`: seconds a statement may run (PostgreSQL).

    Returns the number of rows written. A database error -> StoreError with exit code 2.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    with open_reader(db, statement_timeout=timeout) as reader:
        result = reader.user_sql(sql)
        return 0 if result is None else write_rows(fmt, *result, out)


def write_rows(fmt: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO) -> int:
    """Write `rows` under `columns` in `fmt` (FORMATS); returns the rows written."""
    if fmt == "table":
        count = write_table(columns, rows, out)
        out.write(f"({count} row{'' if count == 1 else 's'})\n")
        return count
    return _WRITERS[fmt](columns, rows, out)


def write_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO) -> int:
    """Write aligned columns with a header and a separator line; returns the rows written."""
    it = iter(rows)
    # Only the cut cells are kept, never whole values: 1000 stored bodies could be gigabytes.
    head = [[_cell(v) for v in row] for row in itertools.islice(it, MEASURED_ROWS)]
    widths = [len(_fit(c)) for c in columns]
    for cells in head:
        widths = [max(w, len(text)) for w, (text, _) in zip(widths, cells, strict=True)]
    out.write(" | ".join(_fit(c).ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    out.write("\n" + "-+-".join("-" * w for w in widths) + "\n")
    count = 0
    for cells in itertools.chain(head, ([_cell(v) for v in row] for row in it)):
        line = " | ".join(
            text.rjust(w) if numeric else text.ljust(w)
            for (text, numeric), w in zip(cells, widths, strict=True)
        )
        out.write(line.rstrip() + "\n")
        count += 1
    return count


def _cell(value: Any) -> tuple[str, bool]:
    """A value as a table shows it, and whether it is a number (right-aligned)."""
    if value is None:
        return "", False
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>", False
    return _fit(str(value)), isinstance(value, int | float)


def _fit(text: str) -> str:
    text = text.translate(_ESCAPES)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _plain(value: Any) -> Any:
    """A value as csv/json writes it: bytes as UTF-8 text, non-finite floats as None."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _unique(columns: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for name in columns:
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}:{seen[name]}")
    return names


def _write_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow([_plain(v) for v in row])
        count += 1
    return count


def _objects(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    names = _unique(columns)
    for row in rows:
        obj = {n: _plain(v) for n, v in zip(names, row, strict=True)}
        yield json.dumps(obj, ensure_ascii=False, allow_nan=False)


def _write_json(columns: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO) -> int:
    count = 0
    for line in _objects(columns, rows):
        out.write(("[\n" if count == 0 else ",\n") + line)
        count += 1
    out.write("\n]\n" if count else "[]\n")
    return count


def _write_jsonl(columns: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO) -> int:
    count = 0
    for line in _objects(columns, rows):
        out.write(line + "\n")
        count += 1
    return count


_WRITERS = {"csv": _write_csv, "json": _write_json, "jsonl": _write_jsonl}
