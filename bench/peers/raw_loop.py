"""The ceiling for Python asyncio here: GET a fixed list of URLs and do nothing else; with
`--parse`, the floor of a crawler built on aiohttp and lexbor: the same, and each HTML page's
links read with lexbor, the cheapest way it allows.

    .venv/bin/python bench/peers/raw_loop.py JOB [--parse]

JOB is the peers' JSON job file; this peer reads `urls_file` (one absolute URL a line),
`concurrency` and `user_agent`, and ignores the rest (no robots, no scope, no storage; no link
extraction but with `--parse`). One `aiohttp.ClientSession`; a fixed pool of `concurrency`
worker coroutines pulls URLs from one shared iterator; each body is read whole (decompressed)
and dropped; redirects are not followed (`allow_redirects=False`), so a 3xx counts as one
fetch, as nginx logs it.

`--parse` builds each 2xx `text/html` body's whole tree (selectolax's `LexborHTMLParser`, the
bytes as they came) and reads every `a[href]`'s href and text with one CSS query, in the event
loop. It does no less than any crawler on these two libraries must, and much less than ours:
no guard against lexbor's quadratic inputs (crawler/extract/flatten.py), no charset, no base,
no robots meta, no URL resolution, scope, frontier or storage.

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
from selectolax.lexbor import LexborHTMLParser

TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=10)  # the crawler's fetch defaults


@dataclass(slots=True)
class Tally:
    fetched: int = 0
    failed: int = 0
    first_error: str | None = field(default=None)
    links: int = 0  # with --parse: hrefs read


def read_links(body: bytes) -> int:
    """How many `a[href]` the page has, each href and text read (the floor's parse)."""
    tree = LexborHTMLParser(body)
    links = [(node.attributes.get("href"), node.text()) for node in tree.css("a[href]")]
    return len(links)


async def worker(
    session: aiohttp.ClientSession, urls: Iterator[str], tally: Tally, parse: bool
) -> None:
    # One shared iterator: `next` never awaits, so no two workers take the same URL.
    for url in urls:
        try:
            async with session.get(url, allow_redirects=False) as resp:
                body = await resp.read()
                if parse and resp.status < 300 and resp.content_type == "text/html":
                    tally.links += read_links(body)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            tally.failed += 1
            if tally.first_error is None:
                tally.first_error = f"{url}: {exc!r}"
        else:
            tally.fetched += 1


async def fetch_all(urls: list[str], concurrency: int, user_agent: str, parse: bool) -> Tally:
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
            group.create_task(worker(session, shared, tally, parse))
    return tally


def main(argv: list[str]) -> int:
    parse = argv[2:] == ["--parse"]
    if len(argv) != 2 and not parse:
        print("usage: raw_loop.py JOB [--parse]", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[1]).read_text())
    urls = [line.strip() for line in Path(job["urls_file"]).read_text().splitlines()]
    urls = [url for url in urls if url]
    started = time.monotonic()
    tally = asyncio.run(
        fetch_all(urls, int(job["concurrency"]), str(job.get("user_agent", "raw-loop")), parse)
    )
    read = f", {tally.links} links read" if parse else ""
    print(f"fetched {tally.fetched} in {time.monotonic() - started:.3f} s{read}")
    if tally.failed:
        print(f"requests failed: {tally.failed}; first: {tally.first_error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
