"""Start-up: how long `crawler crawl` takes from its process start to its first request, on the
demo site, and what importing the CLI costs.

    .venv/bin/python bench/startup.py [--rounds 5] [--pages 30] [--importtime]

The demo site (crawler/demo_site.py) runs in this process, in a thread, and logs each request
with `time.monotonic()`, the clock the kernel shares between processes; the crawl's start is
read from the same clock just before it is spawned. Each round crawls `--pages` pages from a
fresh database, with `store_text` off and then on (the default config's setting), and reports
the first request (robots.txt), the crawl's CPU (user+sys, its helpers included) and wall time;
the table shows the median of the rounds. `--importtime` adds `python -X importtime -c "import
crawler.cli"`'s total and its costliest packages.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from aiohttp import web

from crawler.demo_site import REQUEST_LOG, RequestRecord, make_app

REPO = Path(__file__).resolve().parents[1]
CRAWLER = REPO / ".venv" / "bin" / "crawler"
PYTHON = REPO / ".venv" / "bin" / "python"


class DemoSite:
    """The demo site on a free loopback port, served from a thread until `close`."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.app = make_app()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> DemoSite:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner = web.AppRunner(self.app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    def log(self) -> list[RequestRecord]:
        records: list[RequestRecord] = self.app[REQUEST_LOG]
        return list(records)


def config(port: int, db: Path, pages: int, store_text: bool) -> str:
    hosts = ("docs.demo.test", "blog.demo.test", "shop.demo.test")
    resolve = ", ".join(f'"{host}" = "127.0.0.1"' for host in hosts)
    return f"""
[crawl]
seeds = ["http://docs.demo.test:{port}/"]
allowed_domains = ["demo.test"]
max_pages = {pages}
[politeness]
user_agent = "startup-bench/1"
delay = 0.02
[fetch]
resolve = {{ {resolve} }}
[storage]
path = "{db}"
store_text = {"true" if store_text else "false"}
"""


def one_crawl(
    site: DemoSite, work: Path, pages: int, store_text: bool
) -> tuple[float, float, float]:
    """(seconds to the first request, CPU seconds, wall seconds) of one crawl."""
    db = work / "crawl.db"
    for path in work.glob("crawl.db*"):
        path.unlink()
    conf = work / "crawl.toml"
    conf.write_text(config(site.port, db, pages, store_text))
    seen = len(site.log())
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's Python caches bytecode
    started = time.monotonic()
    process = subprocess.Popen([str(CRAWLER), "crawl", str(conf), "--quiet"], env=env)
    _, status, usage = os.wait4(process.pid, 0)
    ended = time.monotonic()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"startup: the crawl exited {process.returncode}")
    ours = [r for r in site.log()[seen:] if r.user_agent.startswith("startup-bench")]
    if not ours:
        raise SystemExit("startup: the crawl made no request")
    # wait4's usage counts the process and the children it waited for (the helpers).
    return ours[0].time - started, usage.ru_utime + usage.ru_stime, ended - started


def import_time() -> list[str]:
    """`python -X importtime -c "import crawler.cli"`: the total and the costliest packages."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    command = [str(PYTHON), "-X", "importtime", "-c", "import crawler.cli"]
    subprocess.run(command, env=env, capture_output=True, check=True)  # bytecode cached
    lines = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stderr
    own: Counter[str] = Counter()
    total = 0
    for line in lines.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if match is None:
            continue
        self_us, cumulative, indent, name = match.groups()
        own[name.split(".")[0]] += int(self_us)
        if len(indent) == 1 and name == "crawler.cli":
            total = int(cumulative)
    top = ", ".join(f"{name} {us / 1000:.0f} ms" for name, us in own.most_common(8))
    return [f"`import crawler.cli`: {total / 1000:.0f} ms; by package (self time): {top}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pages", type=int, default=30)
    parser.add_argument("--importtime", action="store_true")
    args = parser.parse_args(argv)
    rows = ["| store_text | first request | CPU (user+sys) | wall |", "|---|---:|---:|---:|"]
    with tempfile.TemporaryDirectory(prefix="startup-") as tmp, DemoSite() as site:
        one_crawl(site, Path(tmp), args.pages, False)  # bytecode compiled, caches warm
        for store_text in (False, True):
            runs = [one_crawl(site, Path(tmp), args.pages, store_text) for _ in range(args.rounds)]
            first, cpu, wall = (statistics.median(column) for column in zip(*runs, strict=True))
            rows.append(
                f"| {'on' if store_text else 'off'} | {first * 1000:.0f} ms"
                f" | {cpu * 1000:.0f} ms | {wall * 1000:.0f} ms |"
            )
    print(f"{args.pages} pages of the demo site, median of {args.rounds} rounds\n")
    print("\n".join(rows))
    if args.importtime:
        print("\n" + "\n".join(import_time()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
