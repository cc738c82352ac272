"""The helper process that extracts pages' readable text (`python -m crawler.text.worker`).

Once started (its imports take a second) it writes READY, or, when the extractor cannot be
imported (resiliparse missing or broken), UNAVAILABLE and why, as an answer, and ends.
Then it reads requests from stdin
and writes answers to stdout, one at a time, until stdin closes. A request: the charset's
length (1 byte), the charset (ASCII, may be empty), the body's length (4 bytes, big-endian),
the body. An answer: a kind byte and a length-prefixed UTF-8 payload, b"T" text, b"N" no
text, b"E" the error that extracting raised. The parent (pool.py) owns the time limit:
it kills this process when an answer is late. Memory is bounded too (MEMORY_LIMIT of address
space for the process, PAGE_MEMORY and PAGE_MEMORY_PER_BYTE more for one page): a parse tree of
a hostile page can take many times the page, and a page that needs more fails here, or ends
this process, not the machine. After a page of TRIM_BYTES or more,
if the helper then holds TRIM_GROWTH more than when it was ready, the heap's free memory is
given back to the system (glibc's malloc_trim): else the helper keeps its biggest page's peak
for the rest of the crawl (52 MB against 25 MB, bench/README.md). Not after every big page:
a trim, and the page faults that take the memory back for the next page, cost 4-8 ms, and on
Django's docs (71 pages over 100 KB) the helper spent a fifth of its CPU on them. After any
other page, the heap is trimmed only when the helper holds BLOAT more than when it was ready: a
small hostile page can build a tree of hundreds of MB (bench/README.md), which the helper
would keep until its next big page.
"""

from __future__ import annotations

import os
import resource
import signal
import struct
import sys
from collections.abc import Callable
from typing import BinaryIO

from ..heap import address_space_cap, heap_trimmer, resident_bytes

# Nothing here imports the extractor (resiliparse) at module level: the crawl's process
# imports this module for the protocol, and a crawl with store_text = false needs neither.

_LENGTH = struct.Struct(">I")
READY = b"R"
UNAVAILABLE = b"U"  # then an answer's length and payload: why the extractor cannot be imported
# Bytes of address space. The helper maps ~25 MB when ready and at most 66 MB on the PostgreSQL
# and Django docs and a 1 MB page of dense tags; a 92 KB page of 900 distinct open <b id=N> then
# 20,000 <p> makes lexbor clone its way to 3.7 GB in 10 s: at 2 GB the helper held 2 GB for 4 s.
MEMORY_LIMIT = 256 * 1024**2
# ... and one page may map at most this much more than the helper mapped before it: resiliparse
# takes ~40 bytes a byte of dense markup (42 MB for the 1 MB a page gives text), and a small
# hostile page is not let near MEMORY_LIMIT (the 92 KB page above now fails at ~38 MB more).
PAGE_MEMORY = 32 * 1024**2
PAGE_MEMORY_PER_BYTE = 64
TRIM_BYTES = 100_000  # a page this long may leave a heap worth trimming (malloc_trim)
TRIM_GROWTH = 8 * 1024**2  # resident bytes over the helper's at READY that are worth a trim
BLOAT = 64 * 1024**2  # resident bytes over READY's that are worth a trim after any page
# The helper yields the CPU to the crawl's own process: on two busy cores a batch of pages kept
# the event loop waiting for a core (lag p99 up by ~2-4 ms on the PostgreSQL docs). The same
# work gets done; the crawl waits for text only when the stage is full.
NICENESS = 10


def read_request(stream: BinaryIO) -> tuple[bytes, str | None] | None:
    """The next (body, charset), or None once the parent closed the pipe."""
    size = stream.read(1)
    if not size:
        return None
    charset = _read_exactly(stream, size[0]).decode("ascii") or None
    (length,) = _LENGTH.unpack(_read_exactly(stream, _LENGTH.size))
    return _read_exactly(stream, length), charset


def encode_request(body: bytes, charset: str | None) -> bytes:
    label = (charset or "").encode("ascii", "replace")[:255]
    return bytes([len(label)]) + label + _LENGTH.pack(len(body)) + body


def encode_answer(kind: bytes, payload: str) -> bytes:
    data = payload.encode("utf-8", "replace")
    return kind + _LENGTH.pack(len(data)) + data


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError("the request was cut short")
    return data


def trimmer_above(
    trim: Callable[[], object], resident: Callable[[], int | None], limit: int | None
) -> Callable[[], object]:
    """`trim`, called only when `resident()` is over `limit` (always, when either is unknown)."""

    def trim_if_grown() -> None:
        held = resident()
        if limit is None or held is None or held > limit:
            trim()

    return trim_if_grown


def serve(
    requests: BinaryIO,
    answers: BinaryIO,
    page_text: Callable[[bytes, str | None], str | None],
    trim_heap: Callable[[], object] = lambda: None,
    trim_bloated: Callable[[], object] = lambda: None,
) -> None:
    """Answer each request; then `trim_heap` after a page of TRIM_BYTES or more, else
    `trim_bloated` (main() gives them limits of TRIM_GROWTH and BLOAT)."""
    while (request := read_request(requests)) is not None:
        big = len(request[0]) >= TRIM_BYTES
        answers.write(_answer(page_text, *request))
        answers.flush()
        del request
        if big:
            trim_heap()
        else:
            trim_bloated()


def _answer(
    page_text: Callable[[bytes, str | None], str | None], body: bytes, charset: str | None
) -> bytes:
    try:
        text = page_text(body, charset)
    except Exception as exc:  # the parent logs it with the page's URL
        return encode_answer(b"E", f"{type(exc).__name__}: {exc}")
    return encode_answer(b"N", "") if text is None else encode_answer(b"T", text)


def capped(
    page_text: Callable[[bytes, str | None], str | None],
) -> Callable[[bytes, str | None], str | None]:
    """`page_text`, each call within PAGE_MEMORY + PAGE_MEMORY_PER_BYTE a byte of the page."""

    def page_text_capped(body: bytes, charset: str | None) -> str | None:
        with address_space_cap(PAGE_MEMORY + PAGE_MEMORY_PER_BYTE * len(body)):
            return page_text(body, charset)

    return page_text_capped


def main() -> int:
    # Ctrl-C in a terminal reaches the whole process group: the crawl then stops gracefully and
    # still wants this helper's answers. It ends when the crawl closes its stdin (or kills it).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(NICENESS)
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    answers = sys.stdout.buffer
    try:
        from .readable import page_text
    except Exception as exc:  # missing or broken (ImportError, or worse): the parent says so
        why = " ".join(f"{type(exc).__name__}: {exc}".split())  # one line
        answers.write(encode_answer(UNAVAILABLE, why))
        answers.flush()
        return 1
    try:
        ready = resident_bytes()
        limit = None if ready is None else ready + TRIM_GROWTH
        answers.write(READY)
        answers.flush()
        trim = heap_trimmer()
        serve(
            sys.stdin.buffer,
            answers,
            capped(page_text),
            trimmer_above(trim, resident_bytes, limit),
            # Unknown memory: no trim after every small page (a trim costs milliseconds).
            (lambda: None) if ready is None else trimmer_above(trim, resident_bytes, ready + BLOAT),
        )
    except BrokenPipeError:
        # The crawl is gone (killed): no one to answer. Python would fail flushing at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
