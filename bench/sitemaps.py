"""MkDocs' own documentation (Debian's mkdocs-doc, which ships sitemap.xml and sitemap.xml.gz)
served by nginx on loopback, crawled without and with sitemaps.

    apt-get install -y nginx mkdocs-doc time      (make bench-deps)
    .venv/bin/python bench/sitemaps.py [--port 8092] [--keep]

The package's sitemaps name the pages at https://www.mkdocs.org/; the bench copies the docs
into a temp dir and rewrites those URLs to the local server's (`http://mkdocs.test:PORT/`) in
sitemap.xml and a freshly gzipped sitemap.xml.gz, and adds a robots.txt whose `Sitemap:` line
names the .gz. Then two crawls from the home page, each into a new database:
`robots_sitemaps = false` (links only) and the default (robots.txt's sitemap too). It reports
pages, the URLs found only through the sitemap, the `sitemaps` rows, entries with a lastmod,
and wall time. Exit 1 unless the sitemap crawl read the sitemap and found every page the
links-only crawl found.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import subprocess
import sys
import time
from pathlib import Path

from nginx import BenchError, Nginx, server
from pgdocs import DEFAULT_CRAWLER, in_temp_dir, query

DOCS = Path("/usr/share/doc/mkdocs/html")
HOST = "mkdocs.test"
PUBLISHED = "https://www.mkdocs.org/"


def prepare(site: Path, port: int) -> None:
    """The docs, with their sitemaps pointing here and a robots.txt naming the gzipped one."""
    shutil.copytree(DOCS, site, symlinks=False)
    here = f"http://{HOST}:{port}/"
    xml = (DOCS / "sitemap.xml").read_text().replace(PUBLISHED, here)
    (site / "sitemap.xml").write_text(xml)
    (site / "sitemap.xml.gz").write_bytes(gzip.compress(xml.encode()))
    (site / "robots.txt").write_text(f"User-agent: *\nSitemap: {here}sitemap.xml.gz\n")


def conf_text(seed: str, db: Path, robots_sitemaps: bool) -> str:
    return f"""\
# Written by bench/sitemaps.py: our own nginx on loopback, no delay.
[crawl]
seeds = ["{seed}"]
concurrency = 8
robots_sitemaps = {"true" if robots_sitemaps else "false"}

[politeness]
delay = 0
per_host_concurrency = 8

[fetch]
resolve = {{ "{HOST}" = "127.0.0.1" }}

[storage]
path = "{db}"
"""


def crawl(crawler: Path, tmp: Path, seed: str, name: str, sitemaps: bool) -> tuple[Path, float]:
    db, conf = tmp / f"{name}.db", tmp / f"{name}.toml"
    conf.write_text(conf_text(seed, db, sitemaps))
    started = time.monotonic()
    done = subprocess.run(
        [str(crawler), "crawl", str(conf), "--quiet"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"crawler crawl exited {done.returncode}: {done.stderr[-2000:]}")
    return db, time.monotonic() - started


def bench(args: argparse.Namespace, tmp: Path) -> int:
    if not (DOCS / "sitemap.xml").is_file():
        raise BenchError(f"{DOCS}/sitemap.xml not found: apt-get install -y mkdocs-doc")
    site = tmp / "site"
    prepare(site, args.port)
    for path in [tmp, *site.rglob("*"), site]:  # nginx's workers are not root
        path.chmod(0o755 if path.is_dir() else 0o644)
    seed = f"http://{HOST}:{args.port}/index.html"
    with Nginx(tmp / "nginx", [server("127.0.0.1", args.port, site)], ("127.0.0.1", args.port)):
        plain, plain_s = crawl(args.crawler, tmp, seed, "links", sitemaps=False)
        mapped, mapped_s = crawl(args.crawler, tmp, seed, "sitemaps", sitemaps=True)
    pages = {}
    for name, db in (("links only", plain), ("with sitemaps", mapped)):
        pages[name] = {row["url"] for row in query(args.crawler, db, "SELECT url FROM pages")}
    read = query(args.crawler, mapped, "SELECT url, kind, entries, left_out FROM sitemaps")
    (dated,) = query(
        args.crawler, mapped, "SELECT count(*) AS n FROM urls WHERE lastmod IS NOT NULL"
    )
    only = sorted(pages["with sitemaps"] - pages["links only"])
    print("| crawl | pages | wall s |")
    print("|---|---:|---:|")
    print(f"| links only | {len(pages['links only'])} | {plain_s:.2f} |")
    print(f"| with sitemaps | {len(pages['with sitemaps'])} | {mapped_s:.2f} |")
    print(f"\nsitemaps read: {[(r['url'], r['kind'], r['entries'], r['left_out']) for r in read]}")
    print(f"URLs with a lastmod: {dated['n']}")
    print(f"fetched only with sitemaps ({len(only)}): {only}")
    ok = bool(read) and pages["links only"] <= pages["with sitemaps"]
    print(
        ("PASS" if ok else "FAIL") + ": the sitemap was read, no page of the links-only crawl lost"
    )
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8092)
    parser.add_argument("--crawler", type=Path, default=DEFAULT_CRAWLER)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args(argv)
    return in_temp_dir("sitemaps", lambda tmp: bench(args, tmp), args.keep)


if __name__ == "__main__":
    sys.exit(main())
