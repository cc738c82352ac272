"""Time, as the frontier and politeness see it: injected, so their tests run on a clock the test
moves, exactly and instantly, instead of on a busy machine's wall clock."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Protocol


class Clock(Protocol):
    """Monotonic time for pacing, wall time for what is stored, and a timed wait."""

    def now(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    def wall(self) -> float:
        """POSIX seconds (for times stored in the database)."""
        ...

    async def wait(self, event: asyncio.Event, seconds: float) -> None:
        """Return when `event` is set or `seconds` have passed, whichever comes first."""
        ...


class SystemClock:
    """The real clocks: time.monotonic() and time.time()."""

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def wait(self, event: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()
