"""Where a command writes a file: standard output, or a file that appears only once whole."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ..errors import UsageError


@contextlib.contextmanager
def destination(output: str | None) -> Iterator[IO[bytes]]:
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
