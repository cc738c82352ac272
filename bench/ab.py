"""An interleaved A/B of crawler builds: CPU per page, tree peak RSS, wall and loop lag.

    .venv/bin/python bench/ab.py [--site pgdocs|django|multihost] [--rounds 5] [--text]
        NAME=CRAWLER NAME=CRAWLER ...

Each CRAWLER is an executable that behaves like `crawler` (a venv's `bin/crawler`, or a
wrapper such as `#!/bin/sh` + `PYTHONPATH=/path/to/a/worktree exec .venv/bin/python -m
crawler "$@"`). Each crawl runs in a folder of its own: `python -m` puts the working
directory first on sys.path, before PYTHONPATH, so a wrapper run from a checkout's folder
(and the helpers it starts) would import that checkout's crawler, not the worktree's. Every
round runs each variant once, in turn, on the same nginx, with the config `make bench` gives
its crawler (bench/perf.py), a fresh database each time; CPU is the whole process tree's (GNU
time, helpers included), divided by the pages the crawl stored. At the end: each variant's
median and best. This machine's speed drifts by a third within a day: compare variants of one
run, never figures of two.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gensite import write_multihost
from nginx import Nginx, server
from perf import DOC_SITES, Bench, crawler_config, lag_ms, measure, quiet_env
from truth import Truth


@dataclass(frozen=True)
class Sample:
    cpu_ms: float  # CPU a page
    rss_mb: float
    wall: float
    pages: int
    lag_p99_ms: float | None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", choices=[*DOC_SITES, "multihost"], default="pgdocs")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--text", action="store_true", help="store_text = true")
    parser.add_argument("variants", nargs="+", metavar="NAME=CRAWLER")
    args = parser.parse_args(argv)
    variants = [tuple(v.split("=", 1)) for v in args.variants]
    if any(len(v) != 2 or not Path(v[1]).exists() for v in variants):
        parser.error("each variant is NAME=CRAWLER, an executable that exists")
    with tempfile.TemporaryDirectory(prefix="ab-") as folder:
        work = Path(folder)
        os.chmod(work, 0o755)  # nginx's worker reads the sites under it
        samples = run(args.site, args.rounds, args.text, dict(variants), work)
    for name, taken in samples.items():
        cpu = [s.cpu_ms for s in taken]
        print(
            f"{name}: CPU {statistics.median(cpu):.2f} ms a page median, {min(cpu):.2f} best;"
            f" tree RSS {statistics.median(s.rss_mb for s in taken):.0f} MB median"
        )
    return 0


def run(
    site: str, rounds: int, text: bool, variants: dict[str, str], work: Path
) -> dict[str, list[Sample]]:
    if site == "multihost":
        generated = write_multihost(work / "sites", hosts=64, pages=300)
        bench = Bench(site, site, generated.seeds()[:1], generated.hosts, Truth(), work)
        servers = [server("", generated.port, work / "sites", per_address=True)]
        probe = ("127.0.1.1", generated.port)
    else:
        docs = DOC_SITES[site]
        seeds = [f"http://{docs.address}:{docs.port}/index.html"]
        bench = Bench(site, site, seeds, [docs.address], Truth(), work)
        servers = [server(docs.address, docs.port, docs.root)]
        probe = (docs.address, docs.port)
    samples: dict[str, list[Sample]] = {name: [] for name in variants}
    with Nginx(work / "nginx", servers, probe=probe):
        for round_no in range(rounds):
            for name, crawler in variants.items():
                sample = crawl_once(crawler, bench, work / f"{name}-{round_no}", text)
                samples[name].append(sample)
                print(
                    f"round {round_no} {name}: {sample.cpu_ms:.2f} ms a page,"
                    f" {sample.pages} pages, tree {sample.rss_mb:.0f} MB, wall"
                    f" {sample.wall:.2f} s, lag p99 {sample.lag_p99_ms} ms",
                    flush=True,
                )
    return samples


def crawl_once(crawler: str, bench: Bench, folder: Path, text: bool) -> Sample:
    folder.mkdir()
    db = folder / "crawl.db"
    config = folder / "crawler.toml"
    config.write_text(crawler_config(bench, db, text=text))
    command = [crawler, "crawl", str(config), "--quiet"]
    code, wall, cpu, rss = measure(command, folder / "output.txt", quiet_env(), cwd=folder)
    if code != 0:
        raise SystemExit(f"{crawler} exited {code}: see {folder / 'output.txt'}")
    with sqlite3.connect(db) as conn:
        (pages,) = conn.execute("SELECT count(*) FROM pages").fetchone()
    return Sample(cpu * 1000 / pages, rss, wall, pages, lag_ms(db)[0])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
