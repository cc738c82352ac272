"""Kill-and-resume rounds: run the real `crawler` command, SIGKILL it at seeded random moments,
resume until it exits 0, and check the crawl against the site's ground truth.

Used by tests/test_resume.py (a few kills) and bench/killresume.py (many rounds).
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from kit import start_cli, write_demo_config


class Logged(Protocol):
    """A request in a site's log (kit.Request, or the demo site's own RequestRecord)."""

    @property
    def host(self) -> str: ...
    @property
    def path(self) -> str: ...


L = TypeVar("L", bound=Logged)


async def _start(command: str, config: Path) -> asyncio.subprocess.Process:
    return await start_cli(command, str(config), "--quiet", stdout=False)


@dataclass
class Round:
    """What one round saw."""

    kills: list[float] = field(default_factory=list)  # seconds after start of each kill
    resumes: int = 0
    pages: dict[str, int] = field(default_factory=dict)  # url -> depth at the end
    refetched: list[str] = field(default_factory=list)  # committed pages requested again
    integrity: list[str] = field(default_factory=list)  # PRAGMA integrity_check after each kill


def committed_pages(db: Path) -> set[str]:
    if not db.exists():
        return set()
    with closing(sqlite3.connect(db)) as conn:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'pages'").fetchone() is None:
            return set()  # killed during start-up, before the schema was made: none yet
        return {url for (url,) in conn.execute("SELECT url FROM pages")}


def integrity(db: Path) -> str:
    if not db.exists():
        return "ok"
    with closing(sqlite3.connect(db)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


async def kill_and_resume(
    log: list[L] | Sequence[L],  # a list: the demo site's own log (bench/killresume.py)
    port: int,
    folder: Path,
    *,
    seed: int,
    kills: int,
    delay: float = 0.01,
    window: tuple[float, float] = (0.05, 2.5),
    final_requests: int | None = None,
) -> Round:
    """Crawl the demo site served on `port`, killing the crawler `kills` times, then resume.

    With `final_requests`, one more kill lands as soon as the server has seen that many
    requests: at the very end of the crawl, while the writer flushes its last pages."""
    rng = random.Random(seed)
    config = write_demo_config(folder, port, delay=delay)
    db = folder / "crawl.db"
    result = Round()
    # (index in the request log when the kill happened, pages committed by then)
    checkpoints: list[tuple[int, set[str]]] = []
    for n in range(kills):
        process = await _start("crawl", config)
        wait = window[0] if n == 0 else rng.uniform(*window)  # the first kill: during start-up
        started = time.monotonic()
        try:
            await asyncio.wait_for(process.wait(), wait)
        except TimeoutError:
            process.kill()
            await process.wait()
            result.kills.append(round(time.monotonic() - started, 3))
        checkpoints.append((len(log), committed_pages(db)))
        result.integrity.append(integrity(db))
    if final_requests is not None:
        process = await _start("crawl", config)
        # The demo site's log is a plain list: poll it, so the kill lands within a millisecond.
        while len(log) < final_requests and process.returncode is None:  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        if process.returncode is None:
            process.kill()
            result.kills.append(-1.0)
        await process.wait()
        checkpoints.append((len(log), committed_pages(db)))
        result.integrity.append(integrity(db))
    for _ in range(10):
        process = await _start("resume" if db.exists() else "crawl", config)
        _, err = await asyncio.wait_for(process.communicate(), 120)
        result.resumes += 1
        if process.returncode == 0:
            break
        if b"holds no unfinished crawl" in err:
            break  # a kill landed after the crawl had finished
        raise AssertionError(f"resume exited {process.returncode}: {err.decode()}")
    with closing(sqlite3.connect(db)) as conn:
        result.pages = dict(conn.execute("SELECT url, depth FROM pages").fetchall())
    for position, committed in checkpoints:
        for record in log[position:]:
            url = f"http://{record.host}:{port}{record.path}"
            if url in committed:
                result.refetched.append(url)
    return result
