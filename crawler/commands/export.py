"""`crawler export DB --format jsonl|warc [-o FILE]`: the crawl's pages, written out.

jsonl: one JSON object per row of `pages` (JSONL_COLUMNS; no body), in the order fetched.
warc: WARC 1.1 (warc.py), gzip per record: a `warcinfo` record, then per page with a
response a `request` and a `response` record.

Rows come from the read contract's page stream (storage/read_contract.py, rule 5), a few at a
time (bodies can be megabytes each), so memory stays flat however big the crawl. A file named
by `-o` is written under a temporary name beside it and renamed once complete: an export that
fails or is interrupted leaves no file passed off as whole. Standard output (no `-o`, or
`-o -`) cannot be taken back; the exit code says it stopped.

Error handling: a missing file, a non-crawl database, a WARC of a crawl that kept no bodies
(`store_body = false`): UsageError (exit 2) before anything is written; read failures
StoreError (storage/read_contract.py).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import IO, TYPE_CHECKING

from ..errors import UsageError
from ..storage import open_reader
from .output import destination

if TYPE_CHECKING:
    from ..storage.read_contract import Reader

FORMATS = ("jsonl", "warc")
JSONL_COLUMNS = (
    "url", "status", "content_type", "title", "fetched_at", "depth", "text", "host", "bytes",
    "truncated", "error", "location", "etag", "last_modified", "sha256", "fields",
)  # fmt: skip
BATCH_ROWS = 50  # rows read per round trip (each may hold a body of max_bytes)


def export(db: str | Path, fmt: str, output: str | None) -> int:
    """Write the crawl in `db` as `fmt` to the file `output` (None or "-": stdout); returns
    the pages written."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    with open_reader(db, require=("pages",)) as reader:
        if fmt == "jsonl":
            with destination(output) as out:
                return _write_jsonl(reader, out)
        _require_bodies(reader)
        warc = _warc_module()
        with destination(output) as out:
            rows = reader.pages(warc.WARC_COLUMNS, batch=BATCH_ROWS)
            written: int = warc.write_warc(rows, out, reader.name)
            return written


def _warc_module() -> ModuleType:
    """commands.warc, imported only for a WARC; warcio missing or broken is one line (exit 2)
    before anything is written."""
    try:
        importlib.import_module("warcio")
    except ImportError as exc:
        raise UsageError(
            f"export --format warc needs warcio, which cannot be imported ({exc}):"
            " pip install 'warcio>=1.7'"
        ) from None
    return importlib.import_module(f"{__package__}.warc")


def _require_bodies(reader: Reader) -> None:
    """A WARC holds what the server sent: a crawl that stored no body cannot make one."""
    answered, with_body = reader.stored_bodies()
    if answered and not with_body:
        raise UsageError(
            f"{reader.name}: no page body was stored (storage.store_body = false); a WARC needs"
            " them: crawl again with store_body = true, or export --format jsonl"
        )


def _write_jsonl(reader: Reader, out: IO[bytes]) -> int:
    count = 0
    truncated = JSONL_COLUMNS.index("truncated")
    columns = JSONL_COLUMNS if "fields" in reader.columns("pages") else JSONL_COLUMNS[:-1]
    for row in reader.pages(columns, batch=BATCH_ROWS * 20):
        obj = dict(zip(columns, row, strict=True))
        obj["truncated"] = bool(row[truncated])
        # [fields]' values as the object they are, not their JSON text (None: no fields)
        fields = obj.get("fields")
        obj["fields"] = json.loads(fields) if isinstance(fields, str) else None
        out.write(json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n")
        count += 1
    return count
