"""Work done in steps: a generator that yields between steps, so that an event loop can run its
other callbacks there, and returns its result. A step may also yield an `Offload`: a call that
lets the GIL go (lexbor building a tree), which the loop runs in a thread, sending its result
back. `finish` runs one through without a pause; `run_steps` runs one in an event loop."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TypeVar

T = TypeVar("T")
Offload = Callable[[], object]
Steps = Generator[Offload | None, object, T]


def finish(steps: Steps[T]) -> T:
    """The result of work done in steps, all steps run at once (offloads too, in this thread)."""
    sent: object = None
    while True:
        try:
            request = steps.send(sent)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        sent = request() if request is not None else None


async def run_steps(steps: Steps[T]) -> T:
    """The result of work done in steps, the loop running its other callbacks between two steps
    and while an offload runs in a thread."""
    import asyncio  # here: the helper processes import this module and run no event loop

    sent: object = None
    while True:
        try:
            request = steps.send(sent)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        if request is None:
            sent = None
            await asyncio.sleep(0)
        else:
            sent = await asyncio.to_thread(request)
