"""What the live page costs a running crawl: the PostgreSQL docs crawled with and without
`crawler serve` polled on the same database.

    .venv/bin/python bench/serve_cost.py [--rounds 3] [--delay 0.015] [--port 8092] [--keep]

nginx serves the PostgreSQL 15 docs on loopback (bench/nginx.py, as bench/pgdocs.py). Each
round crawls them twice into fresh SQLite files, in alternating order (plain first in odd
rounds, served first in even ones):
- plain: `crawler crawl CONFIG --quiet` alone;
- served: the same, while `crawler serve DB` runs on the same file and a poller asks it for
  `/live.json` every 2 s (what the live page does) and `/metrics` every 15 s (what Prometheus
  does).
The database is created (the crawler's schema, no run yet) before each crawl either way, so
that `serve` can open it first. `politeness.delay` (default 0.015 s, one host) stretches the
1,169-page crawl to about 20 s; `store_text` is off, so the crawl's own CPU is small and the
live page's share of it shows, if any.

Measured, each process under GNU `time -v`: the crawl's CPU (user+sys) per page, its pages/s,
and the serve process's own CPU; the table shows the median of the rounds and the
difference in percent. Exit status: 0 when every crawl fetched every page and every poll
answered 200, 1 otherwise, 2 when the benchmark could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from nginx import BenchError, Nginx, server
from pgdocs import (
    DEFAULT_CRAWLER,
    DEFAULT_DOCS,
    HOST,
    TIME,
    Usage,
    children,
    crawler_conf,
    in_temp_dir,
    read_time,
    run_crawl,
)
from serving import free_port

from crawler.storage.sqlite import SQLiteStore

LIVE_EVERY = 2.0  # seconds: the live page's poll
METRICS_EVERY = 15.0  # seconds: a Prometheus scrape


@dataclass
class Crawl:
    mode: str  # "plain" or "served"
    round: int
    usage: Usage
    pages: int
    serve: Usage | None = None
    polls: Counter[str] | None = None  # "path status" -> requests

    @property
    def cpu_ms_per_page(self) -> float:
        return (self.usage.user + self.usage.system) * 1000 / max(self.pages, 1)

    @property
    def pages_per_s(self) -> float:
        return self.pages / self.usage.seconds if self.usage.seconds else 0.0


class Poller(threading.Thread):
    """Asks `base`/live.json every LIVE_EVERY s and /metrics every METRICS_EVERY s until
    stopped; counts the answers by path and status."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.answers: Counter[str] = Counter()
        self.stopped = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        next_metrics = started
        while not self.stopped.is_set():
            self._get("/live.json")
            if time.monotonic() >= next_metrics:
                self._get("/metrics")
                next_metrics += METRICS_EVERY
            self.stopped.wait(LIVE_EVERY)

    def _get(self, path: str) -> None:
        try:
            with urllib.request.urlopen(self.base + path, timeout=10) as answer:
                answer.read()
                self.answers[f"{path} {answer.status}"] += 1
        except urllib.error.HTTPError as exc:
            self.answers[f"{path} {exc.code}"] += 1
        except OSError as exc:
            self.answers[f"{path} {type(exc).__name__}"] += 1


def create_db(db: Path) -> None:
    """The crawler's schema in a new file, no run yet (what `serve` needs to open it)."""

    async def create() -> None:
        async with SQLiteStore.open(db):
            pass

    asyncio.run(create())


def count_pages(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return int(conn.execute("SELECT count(*) FROM pages").fetchone()[0])


def wait_listening(base: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/live.json", timeout=2) as answer:
                answer.read()
                return
        except OSError:
            time.sleep(0.1)
    raise BenchError(f"crawler serve did not answer at {base} within {timeout:.0f} s")


def stop_timed(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT to the program under `time` (not to time itself, so that it writes its report)."""
    for pid in children(proc.pid):
        os.kill(pid, signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def crawl_once(args: argparse.Namespace, mode: str, number: int, work: Path) -> Crawl:
    work.mkdir()
    db = work / "crawl.db"
    conf = work / "crawler.toml"
    conf.write_text(crawler_conf(f"http://{HOST}:{args.port}/index.html", db, args))
    create_db(db)
    if mode == "plain":
        usage = run_crawl(args.crawler, conf, work, args.timeout)
        return Crawl(mode, number, usage, count_pages(db))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    times = work / "serve.time"
    cmd = [str(TIME), "-v", "-o", str(times), str(args.crawler), "serve", str(db)]
    with (work / "serve.err").open("w") as err:
        serve = subprocess.Popen(
            [*cmd, "--port", str(port)], stdout=err, stderr=err, start_new_session=True
        )
        try:
            wait_listening(base)
            poller = Poller(base)
            poller.start()
            try:
                usage = run_crawl(args.crawler, conf, work, args.timeout)
            finally:
                poller.stopped.set()
                poller.join()
        finally:
            stop_timed(serve)
    return Crawl(mode, number, usage, count_pages(db), read_time(times, 0), poller.answers)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def summary(crawls: list[Crawl]) -> str:
    by_mode = {m: [c for c in crawls if c.mode == m] for m in ("plain", "served")}
    rows = [
        "| crawl | rounds | pages | CPU ms/page | pages/s | crawl CPU s | serve CPU s | polls |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    medians = {}
    for mode, runs in by_mode.items():
        cpu = median([c.cpu_ms_per_page for c in runs])
        rate = median([c.pages_per_s for c in runs])
        medians[mode] = (cpu, rate)
        crawl_cpu = median([c.usage.user + c.usage.system for c in runs])
        serve_cpu = median([c.serve.user + c.serve.system for c in runs if c.serve])
        polls: Counter[str] = Counter()
        for c in runs:
            polls.update(c.polls or {})
        rows.append(
            f"| {mode} | {len(runs)} | {median([c.pages for c in runs]):.0f} | {cpu:.2f}"
            f" | {rate:.1f} | {crawl_cpu:.2f} | {serve_cpu:.2f}"
            f" | {', '.join(f'{k}: {n}' for k, n in sorted(polls.items())) or '-'} |"
        )
    (cpu0, rate0), (cpu1, rate1) = medians["plain"], medians["served"]
    rows.append("")
    rows.append(
        f"Served against plain (medians): CPU per page {_pct(cpu1, cpu0)},"
        f" pages/s {_pct(rate1, rate0)}."
    )
    return "\n".join(rows)


def _pct(new: float, old: float) -> str:
    return f"{(new - old) / old * 100:+.1f}%" if old else "-"


def bench(args: argparse.Namespace, tmp: Path) -> int:
    if not (args.docs / "index.html").is_file():
        raise BenchError(f"{args.docs}/index.html not found: make bench-deps")
    if not args.crawler.exists():
        raise BenchError(f"{args.crawler} not found (--crawler)")
    crawls = []
    site = [server("127.0.0.1", args.port, args.docs)]
    with Nginx(tmp / "nginx", site, ("127.0.0.1", args.port)):
        for number in range(1, args.rounds + 1):
            order = ("plain", "served") if number % 2 else ("served", "plain")
            for mode in order:
                crawl = crawl_once(args, mode, number, tmp / f"{number}-{mode}")
                crawls.append(crawl)
                serve_cpu = crawl.serve.user + crawl.serve.system if crawl.serve else 0.0
                print(
                    f"round {number} {mode}: {crawl.pages} pages, {crawl.usage.seconds:.1f} s,"
                    f" {crawl.cpu_ms_per_page:.2f} ms CPU/page, serve CPU {serve_cpu:.2f} s,"
                    f" polls {dict(crawl.polls or {})}",
                    flush=True,
                )
    print()
    print(summary(crawls))
    expected = max(c.pages for c in crawls)
    bad_polls = [k for c in crawls for k in (c.polls or {}) if not k.endswith(" 200")]
    failed = [c for c in crawls if c.usage.code != 0 or c.pages != expected]
    return 1 if bad_polls or failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--delay", type=float, default=0.015, help="politeness.delay")
    parser.add_argument("--port", type=int, default=8092, help="nginx's port")
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS, help="the HTML docs folder")
    parser.add_argument("--crawler", type=Path, default=DEFAULT_CRAWLER, help="the crawler CLI")
    parser.add_argument("--timeout", type=float, default=180, help="seconds a crawl may take")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args(argv)
    # What crawler_conf (bench/pgdocs.py) reads besides --delay.
    args.max_depth, args.concurrency, args.per_host_concurrency = 1000, 16, 16
    args.obey_robots, args.store_text = True, False
    return in_temp_dir("serve_cost", lambda tmp: bench(args, tmp), args.keep)


if __name__ == "__main__":
    sys.exit(main())
