"""What a 512 KiB robots.txt costs: the parser and matcher alone, then a whole crawl.

First the pure part, in this process: parse time of a 512 KiB robots.txt of real-looking rules
(~17,000 Disallow/Allow paths, 5% `/*?x=` style wildcards) and the average cost of one
`allows()` on URLs that look like the site's (some hit a rule, most don't), with Protego's
figures beside them. Then two crawls of the same site with `crawler crawl` as a subprocess:
N virtual hosts (resolved to 127.0.0.1, served by aiohttp in a separate process) of P pages
each, once with that big robots.txt on every host and once with a tiny one; the table shows
each run's event-loop lag (p99, max, from the `runs` table), pages, hosts whose robots.txt was
parsed ("ok") and wall time. The runs are short (a few seconds, a lag sample every 50 ms), so
p99 is close to the max, and both vary from run to run on a busy machine.

    .venv/bin/python bench/robots.py --hosts 40 --pages 30
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from kit import HostPlan, make_site  # noqa: E402
from serving import free_port, serve_until_terminated, wait_for  # noqa: E402

from crawler.robots.origins import MAX_ROBOTS_BYTES, parse_rules  # noqa: E402

TINY = "User-agent: *\nDisallow: /private/\n"
# fmt: off
WORDS = (
    "account", "admin", "archive", "blog", "cart", "catalog", "category", "checkout", "compare",
    "customer", "download", "event", "feed", "gallery", "help", "images", "join", "list",
    "login", "media", "news", "order", "print", "product", "profile", "review", "search",
    "share", "shop", "static", "tag", "tmp", "user", "video", "wishlist",
)
PARAMS = (
    "sort", "order", "filter", "sessionid", "utm_source", "utm_medium", "ref", "replytocom",
    "lang", "color", "size",
)
# fmt: on


def robots_txt(size: int = MAX_ROBOTS_BYTES, seed: int = 9309) -> str:
    """A robots.txt of about `size` bytes that a large shop or forum might serve: a few
    named groups, then a `*` group of thousands of paths and ~5% wildcards. None of its rules
    matches /p/N (the pages the crawl fetches) or /robots.txt."""
    rng = random.Random(seed)
    lines = ["# robots.txt", "Sitemap: https://example.org/sitemap.xml", ""]
    for bot in ("Googlebot", "Bingbot", "AhrefsBot"):
        lines += [f"User-agent: {bot}", "Crawl-delay: 1", "Disallow: /search/", ""]
    lines += ["User-agent: *"]
    total = sum(len(line) + 1 for line in lines)
    while total < size - 200:
        line = _rule(rng)
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines) + "\n"


def _rule(rng: random.Random) -> str:
    kind = rng.random()
    path = _path(rng)
    if kind < 0.02:
        return f"Disallow: /*?{rng.choice(PARAMS)}={rng.randint(0, 99)}"
    if kind < 0.035:
        return f"Disallow: /*&{rng.choice(PARAMS)}{rng.randint(0, 999)}="
    if kind < 0.045:
        return f"Disallow: /{rng.choice(WORDS)}/*/{rng.choice(WORDS)}-{rng.randint(0, 99)}$"
    if kind < 0.05:
        return f"Disallow: /*.{rng.choice(('pdf', 'zip', 'doc', 'xls'))}{rng.randint(0, 99)}$"
    if kind < 0.15:
        return f"Allow: {path}/{rng.randint(1, 999)}.html"
    return f"Disallow: {path}{rng.choice(('/', '', '$'))}"


def _path(rng: random.Random) -> str:
    """/section/slug-N or /section/sub/N: specific enough that a random URL rarely hits it."""
    words = rng.sample(WORDS, 2)
    if rng.random() < 0.5:
        return f"/{words[0]}/{words[1]}-{rng.randint(1, 9999)}"
    return f"/{words[0]}/{words[1]}/{rng.randint(1, 99_999)}"


def sample_urls(count: int, seed: int = 1) -> list[str]:
    """URLs shaped like the rules' paths: a few hit a rule, most don't."""
    rng = random.Random(seed)
    urls = []
    for _ in range(count):
        path = _path(rng)
        if rng.random() < 0.5:
            path += f"/{rng.choice(WORDS)}-{rng.randint(0, 99)}"
        if rng.random() < 0.3:
            path += f"?{rng.choice(PARAMS)}={rng.randint(0, 99)}&page={rng.randint(1, 9)}"
        urls.append("http://h.test" + path)
    return urls


def micro() -> None:
    """Parse and check costs of the big file, ours and Protego's, printed as a table."""
    from protego import Protego

    text = robots_txt()
    body = text.encode()
    urls = sample_urls(20_000)

    def best_of(runs: int, work: Callable[[], object]) -> float:
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            work()
            times.append(time.perf_counter() - started)
        return min(times)

    ours_parse = best_of(5, lambda: parse_rules(body, "crawler", 0.0))
    rules = parse_rules(body, "crawler", 0.0)
    ours_check = best_of(3, lambda: [rules.allows(url) for url in urls]) / len(urls)
    blocked = sum(not rules.allows(url) for url in urls)
    protego_parse = best_of(2, lambda: Protego.parse(text))
    parser = Protego.parse(text)
    few = urls[:500]
    protego_check = best_of(1, lambda: [parser.can_fetch(url, "crawler") for url in few]) / 500
    agree = sum(rules.allows(u) == parser.can_fetch(u, "crawler") for u in few)
    print(f"robots.txt: {len(body) / 1024:.0f} KiB, {text.count(chr(10))} lines, ", end="")
    print(f"{len(rules.matcher or ())} distinct patterns in our group")
    print(f"URLs checked: {len(urls)} ({blocked} disallowed); Protego agrees on {agree}/500")
    print()
    print("| parser | parse (ms) | allows() per URL (us) |")
    print("|---|---:|---:|")
    print(f"| ours | {ours_parse * 1000:.1f} | {ours_check * 1e6:.1f} |")
    print(f"| Protego | {protego_parse * 1000:.1f} | {protego_check * 1e6:.1f} |")
    print()


def serve(port: int, hosts: list[str], pages: int, robots: str) -> None:
    plans = {host: HostPlan(pages=pages, robots=robots) for host in hosts}
    serve_until_terminated(make_site(plans), port)


def crawl(folder: Path, hosts: list[str], args: argparse.Namespace, robots: str) -> list[str]:
    """One crawl against a fresh site; its row of the table."""
    port = free_port()
    server = multiprocessing.Process(target=serve, args=(port, hosts, args.pages, robots))
    server.start()
    try:
        wait_for(port)
        resolve = ", ".join(f'"{h}" = "127.0.0.1"' for h in hosts)
        seeds = ", ".join(f'"http://{h}:{port}/p/0"' for h in hosts)
        config = folder / "config.toml"
        config.write_text(
            f"""[crawl]
seeds = [{seeds}]
concurrency = {args.concurrency}
[politeness]
delay = 0
per_host_concurrency = 1
[fetch]
resolve = {{ {resolve} }}
[storage]
path = "crawl.db"
""",
            encoding="utf-8",
        )
        started = time.monotonic()
        # `crawler crawl`, of the tree this script is in (PYTHONPATH beats the editable install)
        command = [sys.executable, "-m", "crawler", "crawl", str(config), "--quiet"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run(command, check=True, cwd=folder, env=env)
        seconds = time.monotonic() - started
    finally:
        server.terminate()
        server.join(10)
    with sqlite3.connect(folder / "crawl.db") as db:
        p99, lag_max, pages = db.execute(
            "SELECT lag_p99_ms, lag_max_ms, pages FROM runs ORDER BY id DESC LIMIT 1"
        ).fetchone()
        stored = db.execute("SELECT count(*) FROM pages WHERE url LIKE '%/p/%'").fetchone()[0]
        parsed = db.execute("SELECT count(*) FROM hosts WHERE robots_status LIKE 'ok%'")
        robots_ok = parsed.fetchone()[0]
    size = len(robots.encode())
    label = f"{size / 1024:.0f} KiB" if size > 1024 else f"{size} B"
    row = [label, f"{p99:.1f}", f"{lag_max:.1f}", f"{pages} ({stored})", f"{robots_ok}"]
    return [*row, f"{seconds:.2f}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=40)
    parser.add_argument("--pages", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--no-crawl", action="store_true", help="parser and matcher only")
    args = parser.parse_args()
    micro()
    if args.no_crawl:
        return 0
    hosts = [f"h{n}.robots.test" for n in range(args.hosts)]
    rows = []
    for robots in (robots_txt(), TINY):
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(crawl(Path(tmp), hosts, args, robots))
    print(f"crawl: {args.hosts} hosts x {args.pages} pages, delay 0, concurrency ", end="")
    print(f"{args.concurrency}")
    print()
    print("| robots.txt | lag p99 (ms) | lag max (ms) | pages (stored) | robots ok | wall (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    expected = args.hosts * args.pages
    ok = all(row[3:5] == [f"{expected} ({expected})", str(args.hosts)] for row in rows)
    if not ok:
        print(f"expected {expected} pages and {args.hosts} parsed robots.txt in each run")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
