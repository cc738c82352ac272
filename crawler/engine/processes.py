"""`crawler crawl --processes N`: N crawl processes on this machine working on one PostgreSQL
crawl, one combined progress line, and the signals passed on to every one of them.

The processes are ordinary `crawler crawl CONFIG --quiet` runs (what any machine starts to join
the crawl); this module only starts them, reads the crawl's progress from the database, and
waits. Each child is started in a session of its own, so that a Ctrl-C on the terminal reaches
it once, through this process, and a second Ctrl-C once more (stop at once).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from ..config import Config
from ..errors import CrawlerError, UsageError
from ..storage import open_reader, open_store
from .progress import Reporter

EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}
POLL = 0.2  # seconds between looks at the children


def run_processes(config: Config, config_path: str, count: int, *, quiet: bool) -> int:
    """Run `count` crawl processes to the end; the exit code the crawl as a whole earns."""
    if not config.storage.url:
        raise UsageError(
            "--processes needs storage.url (PostgreSQL): a SQLite crawl is one process"
        )
    if count < 1:
        raise UsageError(f"--processes: expected a number >= 1, got {count}")
    asyncio.run(_prepare(config))
    command = [sys.executable, "-m", "crawler", "crawl", config_path, "--quiet"]
    children = [subprocess.Popen(command, start_new_session=True) for _ in range(count)]
    received: list[int] = []

    def pass_on(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {signum: signal.signal(signum, pass_on) for signum in EXIT_SIGNAL}
    try:
        _watch(children, config, None if quiet else Reporter())
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for child in children:  # whatever happened here, no child outlives this process
            if child.poll() is None:
                child.kill()
                child.wait()
    return _exit_code([child.returncode for child in children], received)


async def _prepare(config: Config) -> None:
    """Create or migrate the crawl's schema here, once: a database that cannot be used is one
    line and exit 2 before any process starts, and the progress line has tables to read."""
    async with open_store(config):
        pass


def _watch(
    children: list[subprocess.Popen[bytes]], config: Config, reporter: Reporter | None
) -> None:
    started = time.monotonic()
    first = _pages(config.storage.url) if reporter else 0
    shown = float("-inf")
    while any(child.poll() is None for child in children):
        time.sleep(POLL)
        if reporter is not None and time.monotonic() - shown >= reporter.interval:
            reporter.show(_line(config.storage.url, children, first, started))
            shown = time.monotonic()
    if reporter is not None:
        reporter.close(_line(config.storage.url, children, first, started))


def _pages(url: str) -> int:
    with open_reader(url) as reader:
        return reader.progress().pages


def _line(url: str, children: list[subprocess.Popen[bytes]], first: int, started: float) -> str:
    """The progress of the whole crawl, read from the database (one snapshot); a database
    that does not answer now is said on the line, and the processes go on."""
    try:
        return _counted(url, children, first, started)
    except CrawlerError as exc:
        return f"processes {sum(c.poll() is None for c in children)}/{len(children)}  ({exc})"


def _counted(url: str, children: list[subprocess.Popen[bytes]], first: int, started: float) -> str:
    with open_reader(url) as reader:
        now = reader.progress()
    elapsed = time.monotonic() - started
    rate = (now.pages - first) / elapsed if elapsed > 0 else 0.0
    running = sum(1 for child in children if child.poll() is None)
    clock = time.strftime("%H:%M:%S", time.gmtime(elapsed))
    return (
        f"processes {running}/{len(children)}  pages {now.pages}  queued {now.queued}"
        f"  errors {now.errors}  hosts {now.hosts}  {rate:.1f} pages/s  {clock}"
    )


def _exit_code(codes: list[int | None], received: list[int]) -> int:
    """0 if every process finished; a signal's code if the crawl was stopped by one (then
    resumable); else 1: some process failed."""
    if received:
        return EXIT_SIGNAL.get(signal.Signals(received[0]), 130)
    if all(code == 0 for code in codes):
        return 0
    if all(code in (0, 130, 143) for code in codes):
        return next(code for code in codes if code)  # stopped from outside: say how
    return 1


def config_path(path: str) -> str:
    """The config file as the children are given it (an absolute path: same file, any cwd)."""
    return str(Path(path).resolve())
