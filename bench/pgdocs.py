"""Benchmark the crawler on the PostgreSQL 15 HTML docs served by nginx on loopback.

    apt-get install -y nginx postgresql-doc-15 time
    .venv/bin/python bench/pgdocs.py [--port 8089] [--keep] [--stats] [--timeout 120]
        [--delay 0] [--concurrency 16] [--per-host-concurrency 16] [--no-obey-robots]
        [--no-store-text] [--docs /usr/share/doc/python-django-doc/html]

`--docs` serves another folder of static HTML docs from its index.html: Django's docs
(Debian's python-django-doc, pages of 50-230 KB) are the big-page corpus.

What it does, all inside one temporary directory:

1. starts an nginx of its own (bench/nginx.py: config, log, pid and temp paths in the temp dir)
   serving the docs folder on 127.0.0.1:PORT;
2. computes the ground truth: every URL reachable from `http://pgdocs.test:PORT/index.html` by
   following the links the crawler follows (`a[href]`, `area[href]`; `rel=nofollow` and meta
   robots nofollow respected), resolved with urllib, normalized with `crawler.urls.normalize`,
   and mapped to files the way nginx maps them (200, 404 for a missing file, 301 for a folder
   without its slash);
3. writes a crawler config (no delay, 16 workers, 16 connections to the one host) and runs
   `crawler crawl CONFIG --quiet` under `/usr/bin/time -v`, interrupting it (SIGINT, then
   SIGKILL) if it is still running after --timeout seconds;
4. compares `pages` with the ground truth (missing, extra, wrong status), looks for URLs nginx
   served more than once (robots.txt aside), and checks that `crawler query` refuses writes
   (exit 2, database unchanged);
5. prints a table, stops nginx and removes the temp dir (kept with --keep).

Exit status: 0 when the crawled pages equal the ground truth and every check passed, 1 when they
differ or a check failed, 2 when the benchmark could not run (no nginx, port taken, ...).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import posixpath
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from nginx import BenchError, Nginx, read_log, server
from tree_rss import TreeRSS

from crawler.urls import normalize

HOST = "pgdocs.test"
DEFAULT_DOCS = Path("/usr/share/doc/postgresql-doc-15/html")
REPO = Path(__file__).resolve().parents[1]
DEFAULT_CRAWLER = REPO / ".venv" / "bin" / "crawler"
TIME = Path("/usr/bin/time")
# Write statements `crawler query` must refuse with exit 2, leaving the database as it was.
WRITES = (
    "DELETE FROM pages",
    "UPDATE pages SET title = 'x'",
    "DROP TABLE links",
    "CREATE TABLE bench_probe (x)",
)


# -------------------------------------------------------------------------------- ground truth


class LinkParser(HTMLParser):
    """The links the crawler follows: `a[href]` and `area[href]`; also `<base href>`, meta
    robots nofollow and, for the record, every other tag's `href` or `data`."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, bool]] = []  # (href, rel=nofollow)
        self.other: list[str] = []  # <link href>, <object data>, ...: not followed
        self.base: str | None = None
        self.nofollow = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag in ("a", "area") and "href" in values:
            rel = values.get("rel", "").lower().split()
            self.links.append((values["href"], "nofollow" in rel))
        elif tag == "base" and "href" in values and self.base is None:
            self.base = values["href"]
        elif tag == "meta" and values.get("name", "").lower() in ("robots", "crawler"):
            if re.search(r"\b(nofollow|none)\b", values.get("content", "").lower()):
                self.nofollow = True
        else:
            for name in ("href", "src", "data"):
                if values.get(name):
                    self.other.append(values[name])


@dataclass
class Target:
    """What nginx answers for one URL."""

    status: int | None
    file: Path | None = None
    location: str | None = None


@dataclass
class Truth:
    pages: dict[str, int | None] = field(default_factory=dict)  # url -> expected status
    depth: dict[str, int] = field(default_factory=dict)
    unfollowed: Counter[str] = field(default_factory=Counter)  # same-host non-a/area targets
    renormalized: list[tuple[str, str]] = field(default_factory=list)  # raw -> normalized

    def count(self, status: int) -> int:
        return sum(1 for s in self.pages.values() if s == status)


def nginx_target(url: str, docs: Path, port: int) -> Target:
    """What our nginx answers for `url` (path only: a static server ignores the query)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or (parts.port or 80) != port or parts.hostname != HOST:
        return Target(None)  # in the crawler's scope (same host), but nothing listens there
    path = posixpath.normpath(unquote(parts.path or "/"))
    if parts.path.endswith("/") and path != "/":
        path += "/"
    file = docs / path.lstrip("/")
    if path.endswith("/"):
        index = file / "index.html"
        return Target(200, index) if index.is_file() else Target(404 if not file.is_dir() else 403)
    if file.is_dir():
        return Target(301, location=f"{url.split('?')[0]}/")
    return Target(200, file) if file.is_file() else Target(404)


def in_scope(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == HOST or host.endswith("." + HOST)


def ground_truth(seed: str, docs: Path, port: int, max_depth: int) -> Truth:
    """Breadth-first from `seed`: each URL's depth is its shortest link distance."""
    truth = Truth()
    first = normalize(seed)
    assert first is not None
    truth.depth[str(first)] = 0
    todo = deque([str(first)])
    while todo:
        url = todo.popleft()
        depth = truth.depth[url]
        target = nginx_target(url, docs, port)
        truth.pages[url] = target.status
        found: list[str] = []
        if target.status == 301 and target.location:
            found.append(target.location)
            next_depth = depth  # a redirect's target keeps the depth
        elif target.status == 200 and target.file and target.file.suffix in (".html", ".htm"):
            parser = LinkParser()
            parser.feed(target.file.read_bytes().decode("utf-8", errors="replace"))
            base = urljoin(url, parser.base) if parser.base else url
            for href in parser.other:
                other = urljoin(base, href.strip())
                if in_scope(other):
                    truth.unfollowed[other.split("#")[0]] += 1
            if not parser.nofollow:
                found += [href for href, nofollow in parser.links if not nofollow]
            found = [urljoin(base, href.strip()) for href in found]
            next_depth = depth + 1
        for raw in found:
            if urlsplit(raw).scheme not in ("http", "https") or not in_scope(raw):
                continue
            norm = normalize(raw)
            if norm is None:
                continue
            key = str(norm)
            if key != raw.split("#")[0]:
                truth.renormalized.append((raw, key))
            if key not in truth.depth and next_depth <= max_depth:
                truth.depth[key] = next_depth
                todo.append(key)
    return truth


# ----------------------------------------------------------------------------------- the crawl


def crawler_conf(seed: str, db: Path, args: argparse.Namespace) -> str:
    return f"""\
# Written by bench/pgdocs.py. A local benchmark against our own nginx on loopback: no delay
# and as many connections to the one host as there are workers. Never point these politeness
# settings at a site that is not yours.
[crawl]
seeds = ["{seed}"]
max_depth = {args.max_depth}
concurrency = {args.concurrency}

[politeness]
delay = {args.delay}
per_host_concurrency = {args.per_host_concurrency}
obey_robots = {"true" if args.obey_robots else "false"}

[fetch]
resolve = {{ "{HOST}" = "127.0.0.1" }}

[storage]
path = "{db}"
store_text = {"true" if args.store_text else "false"}
{_fields_section(args)}"""


def _fields_section(args: argparse.Namespace) -> str:
    """--fields: bench/fields.py's ten fields, as a [fields] table."""
    if not args.fields:
        return ""
    from fields import TEN_FIELDS

    return "\n[fields]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in TEN_FIELDS.items())


@dataclass
class Usage:
    code: int
    timed_out: bool  # interrupted after --timeout
    seconds: float  # wall clock, from time -v
    user: float
    system: float
    max_rss_kb: int  # the largest process's (GNU time)
    tree_rss_kb: int = 0  # the crawl's process tree's, helpers included (bench/tree_rss.py)
    helper_cpu: float = 0.0  # seconds, the text helpers' share of user + system


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def run_crawl(crawler: Path, conf: Path, tmp: Path, timeout: float) -> Usage:
    """Run the crawl under `time -v`; after `timeout` seconds send SIGINT, 10 s later SIGKILL
    (to the crawler only, so that `time` still writes its report)."""
    if not TIME.exists():
        raise BenchError(f"{TIME} not found: apt-get install -y time")
    report = tmp / "time.txt"
    cmd = [str(TIME), "-v", "-o", str(report), str(crawler), "crawl", str(conf), "--quiet"]
    err = tmp / "crawl.err"
    with err.open("w") as stderr:
        proc = subprocess.Popen(cmd, stdout=stderr, stderr=stderr, start_new_session=True)
        hung = False
        tree = TreeRSS(proc.pid)
        try:
            with tree:
                proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            hung = True
            print(f"crawler still running after {timeout:.0f} s: SIGINT", file=sys.stderr)
            for pid in children(proc.pid):
                os.kill(pid, signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                print("crawler ignored SIGINT for 10 s: SIGKILL", file=sys.stderr)
                for pid in children(proc.pid):
                    os.kill(pid, signal.SIGKILL)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
    output = err.read_text(errors="replace").strip()
    if output:
        print(f"crawler output ({err}):\n{output[-2000:]}")
    # time passes the crawler's status on (128 + signal if killed)
    usage = read_time(report, proc.returncode, hung)
    usage.tree_rss_kb = tree.peak_kb
    usage.helper_cpu = tree.helper_cpu
    return usage


def read_time(report: Path, code: int, timed_out: bool = False) -> Usage:
    """The usage GNU `time -v` wrote to `report`."""
    fields = dict(
        line.strip().rsplit(": ", 1) for line in report.read_text().splitlines() if ": " in line
    )
    seconds = 0.0
    for part in fields["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":"):
        seconds = seconds * 60 + float(part)
    return Usage(
        code=code,
        timed_out=timed_out,
        seconds=seconds,
        user=float(fields["User time (seconds)"]),
        system=float(fields["System time (seconds)"]),
        max_rss_kb=int(fields["Maximum resident set size (kbytes)"]),
    )


def in_temp_dir(name: str, bench: Callable[[Path], int], keep: bool) -> int:
    """bench(a temp dir): its exit status, 2 if it could not run; the dir removed unless kept."""
    tmp = Path(tempfile.mkdtemp(prefix=f"{name}-bench-"))
    os.chmod(tmp, 0o755)  # nginx workers run as nobody when started by root
    try:
        return bench(tmp)
    except BenchError as exc:
        print(f"{name} bench: {exc}", file=sys.stderr)
        return 2
    finally:
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def query(crawler: Path, db: Path, sql: str) -> list[dict[str, str]]:
    cmd = [str(crawler), "query", str(db), sql, "--format", "csv"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BenchError(f"crawler query failed ({proc.returncode}): {proc.stderr.strip()}")
    return list(csv.DictReader(io.StringIO(proc.stdout)))


def db_digest(db: Path) -> str:
    digest = hashlib.sha256()
    for path in (db, db.with_name(db.name + "-wal")):
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def check_writes(crawler: Path, db: Path) -> list[str]:
    """Problems with `crawler query` and write statements; empty when all were refused."""
    problems = []
    count_sql = "SELECT (SELECT count(*) FROM pages) AS pages, (SELECT count(*) FROM links) AS l"
    before_rows, before = query(crawler, db, count_sql), db_digest(db)
    for sql in WRITES:
        proc = subprocess.run(
            [str(crawler), "query", str(db), sql, "--format", "csv"],
            capture_output=True,
            text=True,
            check=False,
        )
        message = proc.stderr.strip().splitlines()[-1:] or ["(no message)"]
        if proc.returncode != 2:
            problems.append(f"{sql!r}: exit {proc.returncode}, expected 2: {message[0]}")
        if query(crawler, db, count_sql) != before_rows or db_digest(db) != before:
            problems.append(f"{sql!r}: the database changed")
    return problems


@dataclass
class Served:
    requests: int
    by_path: Counter[str]
    statuses: Counter[int]
    agents: Counter[str]
    span: float  # seconds between the first and the last logged request


def read_access_log(path: Path) -> Served:
    logged, _ = read_log(path)
    by_path = Counter(r.path for r in logged if r.path != "/robots.txt")
    stamps = [r.start for r in logged]
    span = max(stamps) - min(stamps) if stamps else 0.0
    statuses = Counter(r.status for r in logged)
    return Served(len(logged), by_path, statuses, Counter(r.agent for r in logged), span)


# ------------------------------------------------------------------------------------ the report


def show(title: str, items: list[str], limit: int = 10) -> None:
    if not items:
        return
    print(f"\n{title} ({len(items)}):")
    for item in items[:limit]:
        print(f"  {item}")
    if len(items) > limit:
        print(f"  ... {len(items) - limit} more")


def code_version() -> str:
    """The commit the crawler runs from, and its uncommitted files (the install is editable)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "crawler"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[1::2]
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head}" + (f" + uncommitted {', '.join(dirty)}" if dirty else "")


def bench(args: argparse.Namespace, tmp: Path) -> int:
    docs: Path = args.docs.resolve()
    if not (docs / "index.html").is_file():
        raise BenchError(f"{docs}/index.html not found: apt-get install -y postgresql-doc-15")
    crawler: Path = args.crawler
    if not crawler.exists():
        raise BenchError(f"{crawler} not found (--crawler)")
    seed = f"http://{HOST}:{args.port}/index.html"

    started = time.monotonic()
    truth = ground_truth(seed, docs, args.port, args.max_depth)
    truth_seconds = time.monotonic() - started

    with Nginx(tmp / "nginx", [server("127.0.0.1", args.port, docs)], ("127.0.0.1", args.port)):
        db = tmp / "crawl.db"
        conf = tmp / "crawler.toml"
        conf.write_text(crawler_conf(seed, db, args))
        usage = run_crawl(crawler, conf, tmp, args.timeout)
    served = read_access_log(tmp / "nginx" / "access.log")

    rows = query(crawler, db, "SELECT url, status FROM pages")
    counted = Counter(row["url"] for row in rows)
    got = {row["url"]: (int(row["status"]) if row["status"] else None) for row in rows}
    missing = sorted(set(truth.pages) - set(got))
    extra = sorted(set(got) - set(truth.pages))
    wrong = sorted(
        f"{url}: crawler {got[url]}, expected {status}"
        for url, status in truth.pages.items()
        if url in got and got[url] != status
    )
    duplicates = sorted(url for url, n in counted.items() if n > 1)
    twice = sorted(f"{n}x {path}" for path, n in served.by_path.items() if n > 1)
    origin = f"http://{HOST}:{args.port}"
    not_requested = sorted(
        url for url in got if url.startswith(origin) and url[len(origin) :] not in served.by_path
    )
    write_problems = check_writes(crawler, db)
    stray_agents = sorted(a for a in served.agents if not a.startswith("crawler/"))

    pages = len(rows)
    cpu_ms_per_page = (usage.user + usage.system) * 1000 / max(pages, 1)
    table = [
        ("pages (crawler)", f"{pages}"),
        ("pages (ground truth)", f"{len(truth.pages)}"),
        ("  of which 404 targets", f"{truth.count(404)}"),
        ("missing", f"{len(missing)}"),
        ("extra", f"{len(extra)}"),
        ("status differs", f"{len(wrong)}"),
        ("duplicate pages.url", f"{len(duplicates)}"),
        ("requested twice", f"{len(twice)}"),
        ("requests (nginx, incl. robots)", f"{served.requests}"),
        ("seconds (wall)", f"{usage.seconds:.2f}"),
        ("pages/s", f"{pages / usage.seconds:.0f}" if usage.seconds else "-"),
        ("peak RSS MB", f"{usage.max_rss_kb / 1024:.1f}"),
        ("peak RSS MB (process tree)", f"{usage.tree_rss_kb / 1024:.1f}"),
        ("CPU ms per page (user+sys)", f"{cpu_ms_per_page:.2f}" if pages else "-"),
        ("CPU seconds (user+sys)", f"{usage.user + usage.system:.2f}"),
        ("  of which text helpers", f"{usage.helper_cpu:.2f}"),
        ("crawler exit", f"{usage.code}" + (" (timed out)" if usage.timed_out else "")),
        ("query refuses writes", "yes" if not write_problems else "NO"),
    ]
    width = max(len(name) for name, _ in table)
    print(f"\npgdocs benchmark: {docs} via nginx on 127.0.0.1:{args.port}, seed {seed}")
    print(
        f"ground truth in {truth_seconds:.2f} s, deepest page at depth "
        f"{max(truth.depth.values())}; nginx log span {served.span:.2f} s"
    )
    print(f"crawler code: {code_version()}")
    print(
        f"crawl config: delay {args.delay}, concurrency {args.concurrency}, per_host_concurrency"
        f" {args.per_host_concurrency}, obey_robots {args.obey_robots},"
        f" store_text {args.store_text}"
    )
    print()
    for name, value in table:
        print(f"{name:<{width}}  {value:>10}")

    show("missing (in the ground truth, not in pages)", missing)
    show("extra (in pages, not in the ground truth)", extra)
    show("status differs", wrong)
    show("duplicate pages.url", duplicates)
    show("requested more than once (nginx access log)", twice)
    show("pages whose URL never appeared in the access log as written", not_requested)
    show("query write checks that failed", write_problems)
    show("requests with another User-Agent", stray_agents)
    show(
        "same-host targets only of <link href>, <object data>, ... (not links: in neither set)",
        [f"{n}x {url}" for url, n in truth.unfollowed.most_common() if url not in truth.pages],
    )
    show(
        "links the crawler's normalize() rewrote",
        sorted({f"{raw} -> {norm}" for raw, norm in truth.renormalized}),
    )
    if args.stats:
        stats = subprocess.run([str(crawler), "stats", str(db)], text=True, check=False)
        if stats.returncode != 0:
            print(f"crawler stats exited {stats.returncode}")

    ok = not (missing or extra or wrong or duplicates or twice or write_problems or usage.code)
    ok = ok and not stray_agents
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS, help="the HTML docs folder")
    parser.add_argument("--crawler", type=Path, default=DEFAULT_CRAWLER, help="the crawler CLI")
    parser.add_argument("--max-depth", type=int, default=1000, help="crawl.max_depth")
    parser.add_argument("--concurrency", type=int, default=16, help="crawl.concurrency")
    parser.add_argument("--delay", type=float, default=0.0, help="politeness.delay")
    parser.add_argument(
        "--per-host-concurrency", type=int, default=16, help="politeness.per_host_concurrency"
    )
    parser.add_argument(
        "--obey-robots",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="politeness.obey_robots",
    )
    parser.add_argument(
        "--store-text",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="storage.store_text (the readable text of each page, in helper processes)",
    )
    parser.add_argument(
        "--timeout", type=float, default=60, help="seconds before the crawl is interrupted"
    )
    parser.add_argument(
        "--fields", action="store_true", help="crawl with bench/fields.py's ten [fields]"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument("--stats", action="store_true", help="also print `crawler stats`")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="pgdocs-bench-"))
    os.chmod(tmp, 0o755)  # nginx workers run as nobody when started by root
    try:
        return bench(args, tmp)
    except BenchError as exc:
        print(f"pgdocs: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"\nkept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
