"""A clock that tests move by hand: pacing is checked exactly and instantly, whatever the load."""

from __future__ import annotations

import asyncio


class ManualClock:
    """Implements crawler.frontier.clock.Clock. Waiting for a time that the test has not
    reached moves the clock there at once (as if the wait had passed), unless the event is
    already set."""

    EPOCH = 1_800_000_000.0  # wall time at monotonic 0

    def __init__(self, start: float = 1000.0) -> None:
        self.time = start
        self.waits: list[float] = []  # the seconds of each wait that moved the clock

    def now(self) -> float:
        return self.time

    def wall(self) -> float:
        return self.EPOCH + self.time

    def advance(self, seconds: float) -> None:
        self.time += seconds

    async def wait(self, event: asyncio.Event, seconds: float) -> None:
        await asyncio.sleep(0)  # let whatever is ready run first, as a real wait would
        if not event.is_set():
            self.waits.append(seconds)
            self.time += seconds
