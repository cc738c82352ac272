"""The ceiling for Python asyncio here: GET a fixed list of URLs and do nothing else.

    .venv/bin/python bench/peers/raw_loop.py JOB

JOB is the peers' JSON job file; this peer reads `urls_file` (one absolute URL a line),
`concurrency` and `user_agent`, and ignores the rest (no robots, no scope, no link extraction,
no storage). One `aiohttp.ClientSession`; a fixed pool of `concurrency` worker coroutines pulls
URLs from one shared iterator; each body is read whole (decompressed) and dropped; redirects
are not followed (`allow_redirects=False`), so a 3xx counts as one fetch, as nginx logs it.

Prints one line, `fetched N in S s`, where N counts the responses of any status. A request
that got no response (connection error, timeout) is not counted; if there were any, their
number and the first error go to stderr and the exit status is 1.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=10)  # the crawler's fetch defaults


@dataclass(slots=True)
class Tally:
    fetched: int = 0
    failed: int = 0
    first_error: str | None = field(default=None)


async def worker(session: aiohttp.ClientSession, urls: Iterator[str], tally: Tally) -> None:
    # One shared iterator: `next` never awaits, so no two workers take the same URL.
    for url in urls:
        try:
            async with session.get(url, allow_redirects=False) as resp:
                await resp.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            tally.failed += 1
            if tally.first_error is None:
                tally.first_error = f"{url}: {exc!r}"
        else:
            tally.fetched += 1


async def fetch_all(urls: list[str], concurrency: int, user_agent: str) -> Tally:
    tally = Tally()
    shared = iter(urls)
    async with (
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency),
            timeout=TIMEOUT,
            headers={"User-Agent": user_agent},
            cookie_jar=aiohttp.DummyCookieJar(),
        ) as session,
        asyncio.TaskGroup() as group,
    ):
        for _ in range(concurrency):
            group.create_task(worker(session, shared, tally))
    return tally


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: raw_loop.py JOB", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[1]).read_text())
    urls = [line.strip() for line in Path(job["urls_file"]).read_text().splitlines()]
    urls = [url for url in urls if url]
    started = time.monotonic()
    tally = asyncio.run(
        fetch_all(urls, int(job["concurrency"]), str(job.get("user_agent", "raw-loop")))
    )
    print(f"fetched {tally.fetched} in {time.monotonic() - started:.3f} s")
    if tally.failed:
        print(f"requests failed: {tally.failed}; first: {tally.first_error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
