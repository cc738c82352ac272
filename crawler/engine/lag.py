"""Event-loop lag: how late the loop wakes a sleeper. A blocking call shows up here."""

from __future__ import annotations

import asyncio
from collections import deque
from statistics import quantiles

INTERVAL = 0.05  # seconds between samples


class LoopLag:
    """Samples the event loop's lateness while `run` runs (keep it in the engine's TaskGroup)."""

    def __init__(self, keep: int = 100_000) -> None:
        self._samples: deque[float] = deque(maxlen=keep)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(INTERVAL)
            self._samples.append(max(0.0, loop.time() - before - INTERVAL))

    async def so_far(self) -> tuple[float, float] | None:
        """(p99, max) in seconds so far, None before the first sample; worked out in a thread,
        as sorting a long run's samples takes tens of milliseconds."""
        if not self._samples:
            return None
        return await asyncio.to_thread(_p99_and_max, list(self._samples))

    @property
    def samples(self) -> int:
        return len(self._samples)

    @property
    def max(self) -> float:
        return max(self._samples, default=0.0)

    @property
    def p99(self) -> float:
        if len(self._samples) < 2:
            return self.max
        return quantiles(self._samples, n=100, method="inclusive")[98]


def _p99_and_max(samples: list[float]) -> tuple[float, float]:
    worst = max(samples)
    if len(samples) < 2:
        return worst, worst
    return quantiles(samples, n=100, method="inclusive")[98], worst
