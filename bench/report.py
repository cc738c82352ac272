"""What `crawler report` costs: time, CPU, peak memory and output sizes, on big synthetic crawls
and on a real one.

    .venv/bin/python bench/report.py [--pages 100000,1000000] [--links 10] [--cache DIR]
        [--sections] [--pgdocs] [--keep]

1. For each size in --pages, a synthetic crawl database (bench/synthetic.py: the crawler's
   schema, 50 hosts, --links links a page, 2% broken targets, redirect chains and loops,
   duplicates, canonicals, sitemaps) is built once into --cache and reused by later runs.
2. `crawler report DB --format json -o FILE` and `--format html` run as subprocesses under
   GNU `time -v`: wall time, CPU (user+sys), peak RSS, and the output's size. Bounded memory
   is the point: peak RSS at 100,000 and at 1,000,000 pages should be about the same.
3. --sections: also time each of the report's reads in this process (one reader, as the
   command opens it), slowest first, with the query plan of the slowest, to say what costs.
4. --pgdocs: crawl the PostgreSQL 15 docs (nginx on loopback, as bench/pgdocs.py does, no
   delay), then time the report of that crawl the same way.

Exit status: 0 when every report ran and exited 0, 1 when one failed, 2 when the benchmark
could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nginx import BenchError, Nginx, server
from pgdocs import (
    DEFAULT_CRAWLER,
    DEFAULT_DOCS,
    HOST,
    TIME,
    Usage,
    crawler_conf,
    in_temp_dir,
    read_time,
)
from pgdocs import run_crawl as run_pgdocs_crawl
from synthetic import build

from crawler.commands.durations import crawl_duration
from crawler.commands.report import DESCRIPTION_MAX, TITLE_MAX
from crawler.storage import open_reader

DEFAULT_CACHE = Path(tempfile.gettempdir()) / "crawler-report-bench"
FORMATS = ("json", "html")


@dataclass
class Measured:
    name: str
    pages: int
    links: int
    db_mb: float
    fmt: str
    usage: Usage
    out_bytes: int


def timed_report(crawler: Path, db: Path, fmt: str, out: Path) -> Usage:
    """`crawler report DB --format fmt -o out` under `time -v`."""
    if not TIME.exists():
        raise BenchError(f"{TIME} not found: apt-get install -y time")
    times = out.with_name(out.name + ".time")
    cmd = [str(TIME), "-v", "-o", str(times), str(crawler), "report", str(db)]
    proc = subprocess.run(
        [*cmd, "--format", fmt, "-o", str(out)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        print(f"crawler report {db} --format {fmt}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    return read_time(times, proc.returncode)


def counted(db: Path) -> tuple[int, int]:
    """Pages and links of the crawl in `db` (the report's own JSON would do, but costs a run)."""
    uri = f"file:{db}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        sql = "SELECT (SELECT count(*) FROM pages), (SELECT count(*) FROM links)"
        pages, links = conn.execute(sql).fetchone()
    return int(pages), int(links)


def measure(name: str, crawler: Path, db: Path, out_dir: Path) -> list[Measured]:
    pages, links = counted(db)
    size = sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file())
    found = []
    for fmt in FORMATS:
        out = out_dir / f"{db.stem}.{fmt}"
        usage = timed_report(crawler, db, fmt, out)
        out_bytes = out.stat().st_size if out.exists() else 0
        found.append(Measured(name, pages, links, size / 1e6, fmt, usage, out_bytes))
        print(
            f"  {name} --format {fmt}: {usage.seconds:.1f} s wall,"
            f" {usage.user + usage.system:.1f} s CPU, peak RSS {usage.max_rss_kb / 1024:.0f} MB,"
            f" {out_bytes / 1e3:,.0f} kB",
            flush=True,
        )
    return found


def table(rows: list[Measured]) -> str:
    lines = [
        "| crawl | pages | links | DB MB | format | wall s | CPU s | peak RSS MB | output kB |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for m in rows:
        u = m.usage
        lines.append(
            f"| {m.name} | {m.pages:,} | {m.links:,} | {m.db_mb:,.0f} | {m.fmt}"
            f" | {u.seconds:.1f} | {u.user + u.system:.1f} | {u.max_rss_kb / 1024:.0f}"
            f" | {m.out_bytes / 1e3:,.0f} |"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------ the reads, one by one


def section_reads(limit: int) -> dict[str, Callable[[Any], object]]:
    """The report's reads (build_report's calls), by name."""
    return {
        "summary: counts": lambda r: r.counts(),
        "summary: duration": lambda r: crawl_duration(r, tuple(r.runs())),
        "hosts": lambda r: r.hosts(),
        "changes": lambda r: r.passes(),
        "broken_links": lambda r: r.broken_links(limit),
        "redirect_chains": lambda r: r.redirect_chains(limit),
        "titles": lambda r: r.page_texts("title", TITLE_MAX, limit),
        "descriptions": lambda r: r.page_texts("description", DESCRIPTION_MAX, limit),
        "canonicals": lambda r: r.canonicals(limit),
        "noindex": lambda r: r.noindex(limit),
        "hreflang": lambda r: r.hreflang_without_return(limit),
        "sitemaps": lambda r: r.sitemap_gaps(limit),
        "duplicates": lambda r: r.duplicate_bodies(limit),
        "depth": lambda r: r.depths(),
        "slowest": lambda r: r.slowest(limit),
        "charts: fetch timeline": lambda r: r.fetch_timeline(),
        "charts: response times": lambda r: r.response_times(),
    }


def time_sections(db: Path, limit: int = 1000) -> list[tuple[str, float]]:
    """Seconds each read takes on `db`, slowest first."""
    spent = []
    with open_reader(db) as reader:
        for name, read in section_reads(limit).items():
            started = time.perf_counter()
            read(reader)
            spent.append((name, time.perf_counter() - started))
    return sorted(spent, key=lambda s: -s[1])


# --------------------------------------------------------------------------- the real crawl


def pgdocs_crawl(crawler: Path, tmp: Path, port: int) -> Path:
    """Crawl the PostgreSQL docs into tmp/pgdocs.db as bench/pgdocs.py does; its path."""
    docs = DEFAULT_DOCS
    if not (docs / "index.html").is_file():
        raise BenchError(f"{docs}/index.html not found: make bench-deps")
    settings = argparse.Namespace(
        max_depth=1000,
        concurrency=16,
        delay=0.0,
        per_host_concurrency=16,
        obey_robots=True,
        store_text=True,
    )
    db = tmp / "pgdocs.db"
    conf = tmp / "pgdocs.toml"
    conf.write_text(crawler_conf(f"http://{HOST}:{port}/index.html", db, settings))
    with Nginx(tmp / "nginx", [server("127.0.0.1", port, docs)], ("127.0.0.1", port)):
        usage = run_pgdocs_crawl(crawler, conf, tmp, timeout=120)
    if usage.code != 0:
        raise BenchError(f"the docs crawl exited {usage.code}")
    print(f"  crawled the docs in {usage.seconds:.1f} s", flush=True)
    return db


def code_version() -> str:
    proc = subprocess.run(
        ["git", "-C", str(Path(__file__).parent), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() or "unknown"


def run(args: argparse.Namespace, tmp: Path) -> int:
    crawler: Path = args.crawler
    if not crawler.exists():
        raise BenchError(f"{crawler} not found (--crawler)")
    cache: Path = args.cache
    cache.mkdir(parents=True, exist_ok=True)
    print(f"commit {code_version()}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs")
    rows: list[Measured] = []
    for pages in args.pages:
        db = cache / f"synthetic-{pages}-{args.links}.db"
        if not db.exists():
            print(f"building {db} ({pages:,} pages, {args.links} links a page)", flush=True)
            started = time.monotonic()
            build(db, pages, args.links)
            print(f"  built in {time.monotonic() - started:.0f} s", flush=True)
        rows += measure(f"synthetic {pages:,}", crawler, db, tmp)
        if args.sections:
            for name, seconds in time_sections(db):
                print(f"    {name}: {seconds:.2f} s")
    if args.pgdocs:
        print("crawling the PostgreSQL docs", flush=True)
        rows += measure("PostgreSQL docs", crawler, pgdocs_crawl(crawler, tmp, args.port), tmp)
    print()
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps([_as_dict(m) for m in rows], indent=1) + "\n")
    return 0 if all(m.usage.code == 0 for m in rows) else 1


def _as_dict(m: Measured) -> dict[str, object]:
    u = m.usage
    return {
        "crawl": m.name,
        "pages": m.pages,
        "links": m.links,
        "db_mb": round(m.db_mb, 1),
        "format": m.fmt,
        "wall_s": u.seconds,
        "cpu_s": round(u.user + u.system, 2),
        "peak_rss_mb": round(u.max_rss_kb / 1024, 1),
        "output_bytes": m.out_bytes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pages",
        type=lambda s: [int(n) for n in s.split(",") if n],
        default=[100_000, 1_000_000],
        help="sizes of the synthetic crawls, comma-separated",
    )
    parser.add_argument("--links", type=int, default=10, help="links a synthetic page")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where the DBs stay")
    parser.add_argument("--sections", action="store_true", help="time each read too")
    parser.add_argument("--pgdocs", action="store_true", help="also the docs crawl's report")
    parser.add_argument("--port", type=int, default=8091, help="nginx's port for --pgdocs")
    parser.add_argument("--crawler", type=Path, default=DEFAULT_CRAWLER, help="the crawler CLI")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args(argv)
    return in_temp_dir("report", lambda tmp: run(args, tmp), args.keep)


if __name__ == "__main__":
    sys.exit(main())
