"""The page-parsing helper process's side (`python -m crawler.extract.parse_helper`): pickled
calls in on stdin, pickled results (or the exception raised) out on stdout, one at a time,
length-prefixed. crawler/extract/parse_pool.py is the crawl's side.

Apart from the standard library it imports nothing until a call's unpickling needs it (the
parse of a page imports selectolax and crawler.extract.html): no asyncio, so it starts in a
fraction of the crawl's start-up.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import sys
from typing import BinaryIO

LENGTH = struct.Struct(">Q")
RESULT = b"R"
RAISED = b"X"
READY = b"R"


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    if len(data) != size:
        return None  # the parent closed the pipe (or died)
    return data


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """Answer pickled calls from `requests` on `answers` until `requests` closes."""
    while (header := _read_exactly(requests, LENGTH.size)) is not None:
        request = _read_exactly(requests, LENGTH.unpack(header)[0])
        if request is None:
            return
        kind, payload = _answer(request)
        del request
        answers.write(kind + LENGTH.pack(len(payload)))
        answers.write(payload)
        answers.flush()


def _answer(request: bytes) -> tuple[bytes, bytes]:
    try:
        fn, args = pickle.loads(request)
        return RESULT, pickle.dumps(fn(*args), pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # the parent raises it where it called
        return RAISED, _pickled_exception(exc)


def _pickled_exception(exc: Exception) -> bytes:
    try:
        return pickle.dumps(exc, pickle.HIGHEST_PROTOCOL)
    except Exception:  # an exception that does not pickle: its type and message still go
        return pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))


def main() -> int:
    # Ctrl-C in a terminal reaches the whole process group: the crawl then stops gracefully and
    # may still want this helper's answers. It ends when the crawl closes its stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print cannot break an answer
    with answers:
        try:
            answers.write(READY)
            answers.flush()
            serve(sys.stdin.buffer, answers)
        except BrokenPipeError:  # the crawl is gone: no one to answer
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
