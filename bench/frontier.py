"""Memory against frontier size: a site where every page links to hundreds of new pages.

Page /n links to pages n*FANOUT+1 … n*FANOUT+FANOUT, so the frontier grows by FANOUT URLs per
page fetched. The crawler runs (as the real `crawler` command) until a million URLs are queued;
its resident memory is sampled from /proc every second next to the queue's size.

    .venv/bin/python bench/frontier.py --urls 1000000 --fanout 300
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

from aiohttp import web
from serving import free_port, serve_until_terminated, wait_for


def serve(port: int, fanout: int) -> None:
    async def page(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        links = "".join(
            f'<li><a href="/p/{c}">page {c}</a></li>'
            for c in range(n * fanout + 1, (n + 1) * fanout + 1)
        )
        body = f"<html><head><title>Page {n}</title></head><body><ul>{links}</ul></body></html>"
        return web.Response(text=body, content_type="text/html")

    app = web.Application()
    app.router.add_get("/p/{n:\\d+}", page)
    serve_until_terminated(app, port)


def rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def queued(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
            return int(
                conn.execute("SELECT count(*) FROM urls WHERE state = 'queued'").fetchone()[0]
            )
    except sqlite3.Error:
        return -1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--urls", type=int, default=1_000_000)
    parser.add_argument("--fanout", type=int, default=300)
    args = parser.parse_args()
    port = free_port()
    server = multiprocessing.Process(target=serve, args=(port, args.fanout))
    server.start()
    pages = args.urls // args.fanout + 1
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            config = folder / "config.toml"
            config.write_text(
                f'[crawl]\nseeds = ["http://wide.test:{port}/p/0"]\nmax_pages = {pages}\n'
                "max_depth = 100\n"
                "[politeness]\ndelay = 0\nper_host_concurrency = 16\n"
                '[fetch]\nresolve = { "wide.test" = "127.0.0.1" }\n',
                encoding="utf-8",
            )
            wait_for(port)
            started = time.monotonic()
            crawler = subprocess.Popen(
                [sys.executable, "-m", "crawler", "crawl", str(config), "--quiet"]
            )
            print("seconds  queued URLs  RSS MB")
            peak = 0.0
            while crawler.poll() is None:
                time.sleep(1)
                rss = rss_mb(crawler.pid)
                peak = max(peak, rss)
                seconds = time.monotonic() - started
                print(f"{seconds:7.0f}  {queued(folder / 'crawl.db'):11}  {rss:6.1f}")
            final = queued(folder / "crawl.db")
            size = (folder / "crawl.db").stat().st_size / 1024 / 1024
    finally:
        server.terminate()
        server.join(10)
    peak = max(peak, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    print(f"queued at the end {final}, database {size:.0f} MB")
    print(f"peak RSS of the crawler {peak:.1f} MB (exit code {crawler.returncode})")
    return crawler.returncode


if __name__ == "__main__":
    sys.exit(main())
