"""`crawler query DB SQL`: run the user's SQL on a read-only connection and print the rows.

The database is opened with `mode=ro` and `PRAGMA query_only = ON`, so a write statement fails
and changes nothing; an authorizer also refuses ATTACH/DETACH (and so VACUUM INTO), which would
otherwise create files, and pragmas that change how the file is opened.

Formats: `table` aligns columns for a human (cells cut to 60 characters with "…", NULL shown
empty, a BLOB shown as `<N bytes>`, widths taken from the first 1000 rows); `csv` has a header
row and NULL as an empty field; `json` is one array of objects, `jsonl` one object a line.
In csv, json and jsonl a BLOB is written as its bytes decoded as UTF-8 (invalid bytes become
U+FFFD), a non-finite float as null, and a repeated column name gets a suffix (`url`, `url:2`)
so no column is lost. Rows are streamed, except the first 1000 that `table` measures.

Error handling: a missing file or a directory is a UsageError; a file sqlite cannot open or read
and any sqlite3 error while running the SQL become a one-line StoreError with exit code 2,
through `store.translated`, the one place sqlite3 exceptions are translated.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import math
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from .errors import UsageError
from .storage.sqlite import translated

FORMATS = ("table", "csv", "json", "jsonl")

MAX_CELL = 60  # characters of a table cell before it is cut
MEASURED_ROWS = 1000  # rows the table format reads ahead to size its columns

# Pragmas that could change how the file is opened or turn the guard off, refused when set.
_GUARDED_PRAGMAS = frozenset({"journal_mode", "locking_mode", "query_only", "writable_schema"})
_ESCAPES = str.maketrans({"\n": "\\n", "\r": "\\r", "\t": "\\t"})


class _Guard:
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
    """Open an existing crawl database read-only; the caller closes the connection.

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
    db.set_authorizer(_Guard())
    return db


def run_query(path: Path, sql: str, fmt: str, out: TextIO) -> int:
    """Run `sql` on a read-only connection to `path`, write its rows to `out` in `fmt`.

    Returns the number of rows written. Any sqlite3 error -> StoreError with exit code 2.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    guard = _Guard()
    with contextlib.closing(open_read_only(path)) as db:
        db.set_authorizer(guard)
        with translated("query failed", exit_code=2, explain=lambda m: _describe(m, guard.refused)):
            cursor = db.execute(sql)
            if cursor.description is None:  # a statement without result columns
                return 0
            columns = [d[0] for d in cursor.description]
            if fmt == "table":
                count = write_table(columns, cursor, out)
                out.write(f"({count} row{'' if count == 1 else 's'})\n")
                return count
            return _WRITERS[fmt](columns, cursor, out)


def _describe(message: str, refused: str | None) -> str:
    if refused is not None:
        return f"query refused: the database is opened read-only ({refused})"
    if "readonly" in message or "read-only" in message:
        return f"query refused: the database is opened read-only ({message})"
    return f"query failed: {message}"


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
