"""The writer: the one task that writes the database.

Workers hand it outcomes; it commits by group: a transaction takes what arrives within LINGER
of its first outcome, and whatever arrived while the last one ran. Each commit writes again the
index pages it touched, so fewer, larger transactions cost the writer less (on the PostgreSQL
docs, 0.2 s of lingering cut the writer thread's CPU by half and the crawl's by a tenth).
Nobody waits for the linger: the frontier calls `commit_now` when it has nothing to hand out
but what the writer holds, and a full batch or `close` commits at once too. Nor does it linger
while other runs share the crawl (`may_linger`): a host goes to another run only once no
outcome of it waits for a commit, and with a linger a polite host nearly always has one.
Back-pressure counts records, not outcomes (one page can carry 100,000 links): while more than
MAX_PENDING records wait for a commit, workers wait to hand over more.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..linger import linger
from ..records import HostRecord, Outcome, RobotsRecord
from ..storage import Batch, Storage

logger = logging.getLogger(__name__)

MAX_PENDING = 10_000  # links and URLs handed over and not yet committed, at most
MAX_BATCH = 20_000  # records in one transaction, about
LINGER = 0.2  # seconds a transaction waits for more outcomes after its first, at most

Item = Outcome | RobotsRecord


def weight(item: Item) -> int:
    """The records an item adds to the database."""
    if isinstance(item, Outcome):
        listed = len(item.sitemap.listed) if item.sitemap is not None else 0
        return 1 + len(item.links) + len(item.discovered) + len(item.alternates) + listed
    return 1


class Writer:
    """Batches outcomes into transactions; `run` ends once `close` was called and all is saved."""

    def __init__(
        self,
        store: Storage,
        on_commit: Callable[[list[Outcome], list[Outcome]], None],
        host_records: Callable[[], list[HostRecord]],
        linger: float | None = None,
        may_linger: Callable[[], bool] = lambda: True,
    ) -> None:
        self._store = store
        self._linger = LINGER if linger is None else linger
        self._may_linger = may_linger
        self._on_commit = on_commit
        self._host_records = host_records
        self._queue: asyncio.Queue[Item | None] = asyncio.Queue()  # bounded by _pending
        self._pending = 0
        self._room = asyncio.Condition()
        self._hurry = asyncio.Event()  # commit what is held without lingering
        self._closing = False
        self.committed = 0

    async def put(self, item: Item) -> None:
        """Hand an item over, waiting while too much is pending (one item always gets in)."""
        size = weight(item)
        if self._pending + size > MAX_PENDING and self._pending:
            # Only then the condition: with room to spare (nearly always) a page needs no lock.
            async with self._room:
                await self._room.wait_for(
                    lambda: self._pending + size <= MAX_PENDING or not self._pending
                )
        self._pending += size
        self._queue.put_nowait(item)
        if self._pending >= MAX_BATCH:
            self._hurry.set()  # a whole transaction's worth is waiting

    def commit_now(self) -> None:
        """Commit what is handed over without lingering: somebody waits for it."""
        self._hurry.set()

    async def close(self) -> None:
        """Ask the writer to save what it holds and stop."""
        self._closing = True
        self._queue.put_nowait(None)
        self._hurry.set()

    async def run(self) -> None:
        closing = False
        while not closing:
            batch, size = Batch(), 0
            item = await self._queue.get()
            await self._wait_for_more()
            while True:
                if item is None:
                    closing = True
                    break
                size += self._add(batch, item)
                if size >= MAX_BATCH or self._queue.empty():
                    break
                item = self._queue.get_nowait()
            self._hurry.clear()  # who hurried waits for this batch, or asks again
            batch.hosts = self._host_records()
            lost = await self._store.save(batch)
            if lost:
                logger.warning(
                    "left out %d outcomes: their hosts are no longer this run's", len(lost)
                )
                gone = {id(o) for o in lost}
                kept = [o for o in batch.outcomes if id(o) not in gone]
            else:
                kept = batch.outcomes
            self.committed += len(kept)
            self._on_commit(kept, lost)
            async with self._room:
                self._pending -= size
                self._room.notify_all()
        logger.debug("writer closed after %d outcomes", self.committed)

    async def _wait_for_more(self) -> None:
        """Let more outcomes join the transaction: up to `linger` seconds, unless hurried."""
        if self._closing or self._hurry.is_set() or self._linger <= 0 or not self._may_linger():
            return
        await linger(self._hurry, self._linger)

    @staticmethod
    def _add(batch: Batch, item: Item) -> int:
        if isinstance(item, Outcome):
            batch.outcomes.append(item)
        else:
            batch.robots.append(item)
        return weight(item)
