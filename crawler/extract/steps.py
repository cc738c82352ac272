"""Work done in steps: a generator that yields between steps, so that an event loop can run its
other callbacks there, and returns its result. `finish` runs one through without a pause."""

from __future__ import annotations

from collections.abc import Generator
from typing import TypeVar

T = TypeVar("T")
Steps = Generator[None, None, T]


def finish(steps: Steps[T]) -> T:
    """The result of work done in steps, all steps run at once."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
