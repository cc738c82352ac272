"""The writer: the one task that writes the database.

Workers hand it outcomes through a bounded queue (back-pressure: a worker waits when the writer
is behind). It commits by group: whatever has arrived while the last transaction ran goes into
the next one, up to `MAX_BATCH` outcomes, so a busy crawl gets large transactions and a quiet
one gets its pages committed at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .records import HostRecord, Outcome, RobotsRecord
from .store import Batch, Storage

logger = logging.getLogger(__name__)

MAX_BATCH = 512
QUEUE_SIZE = 1024

Item = Outcome | RobotsRecord


class Writer:
    """Batches outcomes into transactions; `run` ends once `close` was called and all is saved."""

    def __init__(
        self,
        store: Storage,
        on_commit: Callable[[list[Outcome]], None],
        host_records: Callable[[], list[HostRecord]],
    ) -> None:
        self._store = store
        self._on_commit = on_commit
        self._host_records = host_records
        self._queue: asyncio.Queue[Item | None] = asyncio.Queue(QUEUE_SIZE)
        self.committed = 0

    async def put(self, item: Item) -> None:
        await self._queue.put(item)

    async def close(self) -> None:
        """Ask the writer to save what it holds and stop."""
        await self._queue.put(None)

    async def run(self) -> None:
        closing = False
        while not closing:
            batch = Batch()
            closing = self._add(batch, await self._queue.get())
            while not closing and len(batch.outcomes) < MAX_BATCH and not self._queue.empty():
                closing = self._add(batch, self._queue.get_nowait())
            batch.hosts = self._host_records()
            await self._store.save(batch)
            self.committed += len(batch.outcomes)
            self._on_commit(batch.outcomes)
        logger.debug("writer closed after %d outcomes", self.committed)

    @staticmethod
    def _add(batch: Batch, item: Item | None) -> bool:
        """Add an item to the batch; True when it is the closing mark."""
        if item is None:
            return True
        if isinstance(item, Outcome):
            batch.outcomes.append(item)
        else:
            batch.robots.append(item)
        return False
