"""This process's memory: what it holds, giving the heap's free memory back to the system, and
a cap on what one call may take (the helper processes' defence against parse-tree bombs).

Linux and glibc; elsewhere each part does nothing rather than fail (no /proc, no malloc_trim).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import resource
from collections.abc import Callable, Iterator


@functools.cache
def heap_trimmer() -> Callable[[], object]:
    """glibc's malloc_trim(0), from the C library the process has loaded; or nothing where
    that has none (musl, macOS). Not ctypes.util.find_library: it forks to run ldconfig."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    return lambda: trim(0)


def resident_bytes() -> int | None:
    """This process's resident memory (Linux's /proc), or None where it cannot be read."""
    return _statm_pages(1)


def mapped_bytes() -> int | None:
    """This process's address space (what RLIMIT_AS limits), or None where it cannot be read."""
    return _statm_pages(0)


def _statm_pages(field: int) -> int | None:
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[field]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def address_space_cap(extra: int) -> Iterator[None]:
    """Within the block, the process may map at most `extra` bytes more than at its start: past
    that, malloc fails (MemoryError in Python, an error from C libraries such as lexbor's).
    The soft limit is restored on exit. For a process of one thread only: in another thread
    of the process, any allocation would fail too. No cap where the address space is unknown,
    or a lower limit is already set."""
    mapped = mapped_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = None if mapped is None else mapped + extra
    if cap is None or (soft != resource.RLIM_INFINITY and soft <= cap):
        yield
        return
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
