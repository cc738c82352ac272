"""A recrawl of the PostgreSQL 15 HTML docs served by nginx on loopback, with nothing changed.

    apt-get install -y nginx postgresql-doc-15 time      (make bench-deps)
    .venv/bin/python bench/recrawl.py [--port 8091] [--keep]

1. starts an nginx of its own (bench/nginx.py) serving the docs; nginx sends `ETag` and
   `Last-Modified` for static files and answers a matching conditional request with 304;
2. `crawler crawl` (pass 1), then `crawler recrawl` (pass 2) of the same config, each under
   `/usr/bin/time -v` (no delay, 16 workers, 16 connections: our own server);
3. reports, per pass: requests nginx logged and how many it answered 304, body bytes received
   (`pages.bytes` of pass 1; of the pages answered 200 in pass 2), wall and CPU time, and the
   recrawl's closing line. Exit 1 unless pass 2 found every page unchanged.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import Counter
from pathlib import Path

from nginx import BenchError, Nginx, read_log, server
from pgdocs import DEFAULT_CRAWLER, DEFAULT_DOCS, HOST, TIME, Usage, in_temp_dir, query, read_time

SQL_BYTES = {
    1: "SELECT coalesce(sum(bytes), 0) AS n FROM pages",
    2: "SELECT coalesce(sum(p.bytes), 0) AS n FROM fetches f JOIN pages p ON p.url = f.url"
    " WHERE f.pass = 2 AND f.status = 200",
}


def conf_text(seed: str, db: Path) -> str:
    return f"""\
# Written by bench/recrawl.py: our own nginx on loopback, no delay.
[crawl]
seeds = ["{seed}"]
concurrency = 16

[politeness]
delay = 0
per_host_concurrency = 16

[fetch]
resolve = {{ "{HOST}" = "127.0.0.1" }}

[storage]
path = "{db}"
"""


def timed(crawler: Path, command: str, conf: Path, tmp: Path) -> tuple[Usage, str]:
    """`crawler COMMAND CONF --quiet` under time -v: its usage and standard output."""
    report = tmp / f"{command}.time"
    cmd = [str(TIME), "-v", "-o", str(report), str(crawler), command, str(conf), "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"crawler {command} exited {done.returncode}: {done.stderr[-2000:]}")
    usage = read_time(report, done.returncode)
    return usage, done.stdout.strip()


def bench(args: argparse.Namespace, tmp: Path) -> int:
    docs: Path = args.docs
    if not (docs / "index.html").is_file():
        raise BenchError(f"{docs}/index.html not found: apt-get install -y postgresql-doc-15")
    if not TIME.exists():
        raise BenchError(f"{TIME} not found: apt-get install -y time")
    seed = f"http://{HOST}:{args.port}/index.html"
    db, conf = tmp / "crawl.db", tmp / "crawler.toml"
    conf.write_text(conf_text(seed, db))
    log = tmp / "nginx" / "access.log"
    passes = {}
    with Nginx(tmp / "nginx", [server("127.0.0.1", args.port, docs)], ("127.0.0.1", args.port)):
        offset = 0
        for number, command in ((1, "crawl"), (2, "recrawl")):
            usage, out = timed(args.crawler, command, conf, tmp)
            requests, offset = read_log(log, offset)
            statuses = Counter(r.status for r in requests if r.path != "/robots.txt")
            (row,) = query(args.crawler, db, SQL_BYTES[number])
            passes[number] = (usage, out, statuses, int(row["n"]))
    changes = query(args.crawler, db, "SELECT change, count(*) AS n FROM fetches WHERE pass = 2"
                    " GROUP BY change")  # fmt: skip
    print("| pass | requests | answered 304 | body bytes received | wall s | CPU s |")
    print("|---|---:|---:|---:|---:|---:|")
    for number, (usage, _, statuses, size) in passes.items():
        total = sum(statuses.values())
        share = f"{statuses[304]} ({statuses[304] / total:.1%})" if total else "0"
        cpu = usage.user + usage.system
        print(f"| {number} | {total} | {share} | {size:,} | {usage.seconds:.2f} | {cpu:.2f} |")
    first, second = passes[1][3], passes[2][3]
    print(f"\nbytes saved by pass 2 against pass 1: {first - second:,} ({1 - second / first:.1%})")
    print(f"recrawl's line: {passes[2][1]}")
    print("fetches of pass 2 by change:", {row["change"]: int(row["n"]) for row in changes})
    unchanged = all(row["change"] == "unchanged" for row in changes)
    print(("PASS" if unchanged else "FAIL") + ": every page of pass 2 unchanged")
    return 0 if unchanged else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    parser.add_argument("--crawler", type=Path, default=DEFAULT_CRAWLER)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args(argv)
    return in_temp_dir("recrawl", lambda tmp: bench(args, tmp), args.keep)


if __name__ == "__main__":
    sys.exit(main())
