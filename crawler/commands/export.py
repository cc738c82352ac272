"""`crawler export DB --format jsonl|warc [-o FILE]`: the crawl's pages, written out.

jsonl: one JSON object per row of `pages` (JSONL_COLUMNS; no body), in the order fetched.
warc: WARC 1.1 (warc_records.py), gzip per record: a `warcinfo` record, then per page with a
response a `request` and a `response` record.

Rows are streamed, a few at a time (bodies can be megabytes each), so memory stays flat
however big the crawl. A file named by `-o` is written under a temporary name beside it and
renamed once complete: an export that fails or is interrupted leaves no file passed off as
whole. Standard output (no `-o`, or `-o -`) cannot be taken back; the exit code says it
stopped.

Error handling: a missing file, a non-crawl database, a WARC of a crawl that kept no bodies
(`store_body = false`): UsageError (exit 2) before anything is written; read failures
StoreError (readers.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from ..errors import UsageError
from ..storage.reads import Reader, is_postgres, open_reader, require_tables, shown

FORMATS = ("jsonl", "warc")
JSONL_COLUMNS = (
    "url", "status", "content_type", "title", "fetched_at", "depth", "text", "host", "bytes",
    "truncated", "error", "location", "etag", "last_modified", "sha256",
)  # fmt: skip
BATCH_ROWS = 50  # rows read per round trip (each may hold a body of max_bytes)


def export(db: str | Path, fmt: str, output: str | None) -> int:
    """Write the crawl in `db` as `fmt` to the file `output` (None or "-": stdout); returns
    the pages written."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    with open_reader(db) as reader:
        require_tables(reader, ("pages",))
        have = set(columns_of(reader, db, "pages"))
        if fmt == "warc":
            _require_bodies(reader, db)
        with _destination(output) as out:
            if fmt == "jsonl":
                return _write_jsonl(reader, have, out)
            from .warc import WARC_COLUMNS, write_warc  # warcio: only for WARC

            rows = reader.rows(select(WARC_COLUMNS, have), batch=BATCH_ROWS)
            return write_warc(rows, out, shown(db))


def columns_of(reader: Reader, db: str | Path, table: str) -> list[str]:
    """The columns of `table`, in order."""
    query = (
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_name = ?1 AND table_schema = current_schema() ORDER BY ordinal_position"
        if is_postgres(db)
        else "SELECT name FROM pragma_table_info(?1) ORDER BY cid"
    )
    return [name for (name,) in reader.fetch_all(query, (table,))]


def select(columns: Sequence[str], have: set[str]) -> str:
    """The pages' `columns` in fetch order; NULL for those an older database lacks."""
    names = [name if name in have else f"NULL AS {name}" for name in columns]
    return f"SELECT {', '.join(names)} FROM pages ORDER BY id"


def _require_bodies(reader: Reader, db: str | Path) -> None:
    """A WARC holds what the server sent: a crawl that stored no body cannot make one."""
    ((answered, with_body),) = reader.fetch_all(
        "SELECT count(*), count(body) FROM pages WHERE status IS NOT NULL AND bytes > 0"
    )
    if answered and not with_body:
        raise UsageError(
            f"{shown(db)}: no page body was stored (storage.store_body = false); a WARC needs"
            " them: crawl again with store_body = true, or export --format jsonl"
        )


@contextlib.contextmanager
def _destination(output: str | None) -> Iterator[IO[bytes]]:
    """Standard output, or a temporary file beside `output` renamed to it once complete."""
    if output is None or output == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    path = Path(output)
    if path.is_dir():
        raise UsageError(f"{output!r} is a directory; -o names the file to write")
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {output!r}: no folder {str(path.parent)!r}")
    partial = path.with_name(f".{path.name}.part")
    try:
        with partial.open("wb") as out:
            yield out
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _write_jsonl(reader: Reader, have: set[str], out: IO[bytes]) -> int:
    count = 0
    truncated = JSONL_COLUMNS.index("truncated")
    for row in reader.rows(select(JSONL_COLUMNS, have), batch=BATCH_ROWS * 20):
        obj = dict(zip(JSONL_COLUMNS, row, strict=True))
        obj["truncated"] = bool(row[truncated])
        out.write(json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n")
        count += 1
    return count
