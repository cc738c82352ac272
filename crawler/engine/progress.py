"""Progress: a live line on a terminal, a log line every few seconds elsewhere, or nothing."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import Protocol, TextIO

logger = logging.getLogger(__name__)


class Reporter:
    """Where progress lines go: rewritten in place on a TTY, logged every `interval` otherwise."""

    def __init__(self, stream: TextIO = sys.stderr, *, live: bool | None = None) -> None:
        self._stream = stream
        self.live = stream.isatty() if live is None else live
        self.interval = 0.5 if self.live else 5.0

    def show(self, line: str) -> None:
        if self.live:
            self._stream.write("\r\x1b[K" + line)
            self._stream.flush()
        else:
            logger.info("%s", line)

    def close(self, line: str) -> None:
        if self.live:
            self._stream.write("\r\x1b[K" + line + "\n")
            self._stream.flush()
        else:
            logger.info("%s", line)


class _Counts(Protocol):
    pages_started: int

    def counters(self) -> tuple[int, int]: ...  # errors, hosts


class _QueueSize(Protocol):
    async def count_queued(self) -> int: ...


class Progress:
    """Reports pages done, queued, errors, hosts, pages/s and elapsed time while the crawl runs."""

    QUEUED_EVERY = 5.0  # counting the queue reads the database: not on every line

    def __init__(self, frontier: _Counts, store: _QueueSize, reporter: Reporter | None) -> None:
        self._frontier = frontier
        self._store = store
        self._reporter = reporter
        self._started = time.monotonic()
        self._queued = 0
        self._counted_at = float("-inf")

    async def run(self) -> None:
        if self._reporter is None:
            return
        while True:
            await asyncio.sleep(self._reporter.interval)
            if time.monotonic() - self._counted_at >= self.QUEUED_EVERY:
                self._queued = await self._store.count_queued()
                self._counted_at = time.monotonic()
            self._reporter.show(self.line())

    async def final(self) -> None:
        if self._reporter is not None:
            self._queued = await self._store.count_queued()
            self._reporter.close(self.line())

    def line(self) -> str:
        elapsed = time.monotonic() - self._started
        pages = self._frontier.pages_started
        errors, hosts = self._frontier.counters()
        rate = pages / elapsed if elapsed > 0 else 0.0
        clock = time.strftime("%H:%M:%S", time.gmtime(elapsed))
        return (
            f"pages {pages}  queued {self._queued}  errors {errors}  hosts {hosts}"
            f"  {rate:.1f} pages/s  {clock}"
        )
