"""The process that parses big pages, big robots.txt files and sitemaps, off the event loop."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


class ParsePool:
    """A one-process pool for parsing big pages and big robots.txt files, started on first
    use, shut down on exit.

    Fault handling: if the process dies (killed, out of memory), the page it was given is
    parsed once more in a fresh process; if that one dies too, the page is the cause and its
    row gets the error. Later pages get a fresh process either way.
    """

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._broken: list[ProcessPoolExecutor] = []
        self.restarts = 0

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for pool in [*self._broken, *([self._pool] if self._pool else [])]:
            pool.shutdown(wait=True, cancel_futures=True)

    async def run(self, fn: Callable[..., _T], *args: Any) -> _T:
        """fn(*args) in the process (fn and args pickled: a module-level function)."""
        try:
            return await self._call(fn, *args)
        except BrokenProcessPool:
            logger.warning("the page-parsing process died; parsing the page in a new one")
            return await self._call(fn, *args)

    async def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        pool = self._current()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(pool, fn, *args)
        except BrokenProcessPool:
            self._retire(pool)
            raise

    def _current(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: this process has threads (the writer, asyncio.to_thread).
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def _retire(self, pool: ProcessPoolExecutor) -> None:
        """Forget a broken pool (shut down on exit: joining its threads here would block)."""
        if pool is self._pool:
            self._pool = None
            self._broken.append(pool)
            self.restarts += 1
