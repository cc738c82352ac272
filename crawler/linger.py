"""Lingering: a batch (the writer's transaction, the text stage's pages to a helper) waits a
moment for more work to join it, unless somebody hurries it."""

from __future__ import annotations

import asyncio


async def linger(hurry: asyncio.Event, seconds: float) -> None:
    """Return once `hurry` is set or `seconds` have passed, whichever comes first."""
    try:
        async with asyncio.timeout(seconds):
            await hurry.wait()
    except TimeoutError:
        return  # the usual end: the linger is up
