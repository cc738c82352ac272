"""The performance benchmark: the crawler against Scrapy, a raw aiohttp loop and wget, on local
sites served by one nginx on loopback (issue 6).

    make bench                  # all sites, 3 rounds, rewrites the table in bench/README.md
    .venv/bin/python bench/perf.py [--sites pgdocs,multihost,polite,million] [--rounds 3]
        [--peers crawler,scrapy,raw,wget] [--write-readme] [--keep]

Sites (one nginx, one worker process, so the other core is the crawler's):
- pgdocs: the PostgreSQL 15 HTML docs (apt package postgresql-doc-15) on 127.0.0.1;
- multihost: 64 hosts, 127.0.1.1-127.0.1.64, 300 pages each (bench/gensite.py, fixed seed);
- polite: the multihost site again, crawler only, with delay 0.05 and one request per host at
  a time: the bound is hosts / delay = 1,280 pages/s;
- million: every page links to 300 new URLs; the crawl stops at 340 pages (100,000 URLs
  queued) and at 3,400 (1,000,000), crawler only: peak RSS must stay flat.

Every run is a subprocess measured from outside: wall time, CPU (user+sys, with its child
processes) and peak RSS from wait4(2); pages from nginx's access log (each peer sends its own
User-Agent), checked against the ground truth computed from the files (bench/truth.py);
event-loop lag from the crawler's `runs` table. The peers of a site run one after the other
in each round (interleaved), and the table shows the median of the rounds.

Exit status: 0 when every target held, 1 when one did not, 2 when the benchmark could not run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gensite import Site, write_million, write_multihost
from nginx import BenchError, Nginx, Request, read_log, server
from peers import PEERS, scrapy_python
from truth import Truth, ground_truth

REPO = Path(__file__).resolve().parents[1]
PYTHON = REPO / ".venv" / "bin" / "python"
DOCS = Path("/usr/share/doc/postgresql-doc-15/html")
DOCS_PORT = 8482
TIME = Path("/usr/bin/time")
README = Path(__file__).resolve().parent / "README.md"
TABLE_START, TABLE_END = "<!-- perf table: start -->", "<!-- perf table: end -->"
AGENTS = {
    "crawler": "crawler/0.1 (+bench)",
    "scrapy": "scrapy-peer/2.19",
    "raw": "raw-aiohttp-loop",
    "wget": "wget-peer",
}
CONCURRENCY = 16
POLITE_DELAY = 0.05
MILLION_STEPS = (340, 3_400)
SCRAPY_VERSION = (
    "import scrapy; print(scrapy.__version__)"  # pages fetched: 100,000 and 1,000,000 URLs queued
)


@dataclass
class Run:
    """What one peer did in one round."""

    pages: int  # requests for pages (robots.txt aside), from nginx's log
    distinct: int
    missing: int  # ground-truth pages never requested
    extra: int  # requested, not in the ground truth
    wall: float
    cpu: float
    rss_mb: float
    exit: int
    min_gap_ms: float | None  # smallest start-to-start gap between two requests to one host
    lag_p99_ms: float | None = None
    lag_max_ms: float | None = None
    paced: float | None = None  # polite run: pages/s while every host had work, / the bound

    @property
    def twice(self) -> int:
        return self.pages - self.distinct

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / max(self.pages, 1)

    @property
    def rate(self) -> float:
        return self.pages / self.wall if self.wall else 0.0


@dataclass
class SiteRuns:
    name: str
    title: str
    runs: dict[str, list[Run]] = field(default_factory=lambda: defaultdict(list))

    def median(self, peer: str, value: Callable[[Run], float | None]) -> float | None:
        values = [v for v in (value(r) for r in self.runs[peer]) if v is not None]
        return statistics.median(values) if values else None


@dataclass(frozen=True)
class Bench:
    """A site set up for runs: seeds, hosts, ground truth, the URL list for the raw loop."""

    name: str
    title: str
    seeds: list[str]
    hosts: list[str]
    truth: Truth
    tmp: Path


# ------------------------------------------------------------------------------- measuring


def measure(cmd: list[str], out: Path, env: dict[str, str]) -> tuple[int, float, float, float]:
    """Run `cmd` under GNU time; its exit code, wall seconds, CPU seconds (user+sys, waited-for
    children included) and peak RSS in MB.

    Not wait4(2) from here: Linux keeps the peak RSS of a process across exec, so a child
    forked from this process (which holds the ground truth, 300 MB for the million-URL site)
    would report our peak, not its own. `time` is small, and forks the command itself."""
    if not TIME.exists():
        raise BenchError(f"{TIME} not found: apt-get install -y time (make bench-deps)")
    report = out.with_suffix(".time")
    started = time.monotonic()
    with out.open("wb") as log:
        timed = [str(TIME), "-f", "%x %U %S %M", "-o", str(report), *cmd]
        subprocess.run(timed, stdout=log, stderr=subprocess.STDOUT, env=env, check=False)
    wall = time.monotonic() - started
    code, user, system, rss_kb = report.read_text().split()[-4:]
    return int(code), wall, float(user) + float(system), int(rss_kb) / 1024


def starts_by_host(requests: list[Request]) -> dict[str, list[float]]:
    """Each host's request start times, in order."""
    by_host: dict[str, list[float]] = defaultdict(list)
    for request in requests:
        by_host[request.host].append(request.start)
    return {host: sorted(starts) for host, starts in by_host.items()}


def min_gap_ms(requests: list[Request]) -> float | None:
    starts = starts_by_host(requests).values()
    gaps = [b - a for one in starts for a, b in itertools.pairwise(one)]
    return 1000 * min(gaps) if gaps else None


def paced_fraction(requests: list[Request], delay: float) -> float | None:
    """Pages/s while every host still had work (from the last host's first request to the
    first host's last), as a fraction of the bound hosts / delay."""
    by_host = starts_by_host(requests)
    if not by_host:
        return None
    begin = max(starts[0] for starts in by_host.values())
    end = min(starts[-1] for starts in by_host.values())
    if end <= begin:
        return None
    inside = sum(1 for r in requests if begin <= r.start <= end)
    return inside / (end - begin) / (len(by_host) / delay)


def lag_ms(db: Path) -> tuple[float | None, float | None]:
    if not db.exists():
        return None, None
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT lag_p99_ms, lag_max_ms FROM runs ORDER BY id DESC").fetchone()
    return (row[0], row[1]) if row else (None, None)


# ------------------------------------------------------------------------------------- peers


def crawler_config(bench: Bench, db: Path, **crawl: object) -> str:
    delay = crawl.pop("delay", 0)
    per_host = crawl.pop("per_host_concurrency", CONCURRENCY)
    concurrency = crawl.pop("concurrency", CONCURRENCY)
    extra = "".join(f"{key} = {value}\n" for key, value in crawl.items())
    return f"""\
# Written by bench/perf.py: our own nginx on loopback, so no delay and no per-host limit.
[crawl]
seeds = {json.dumps(bench.seeds)}
allowed_domains = {json.dumps(bench.hosts)}
concurrency = {concurrency}
{extra}
[politeness]
user_agent = "{AGENTS["crawler"]}"
delay = {delay}
per_host_concurrency = {per_host}

[storage]
path = "{db}"
store_text = false  # like for like: no peer extracts text (its cost: bench/pgdocs.py)
"""


def peer_command(peer: str, bench: Bench, work: Path) -> list[str]:
    job = work / "job.json"
    job.write_text(
        json.dumps(
            {
                "seeds": bench.seeds,
                "allowed_hosts": bench.hosts,
                "concurrency": CONCURRENCY,
                "obey_robots": True,
                "out": str(work / "out"),
                "urls_file": str(bench.tmp / f"{bench.name}-urls.txt"),
                "user_agent": AGENTS[peer],
            }
        )
    )
    if peer == "scrapy":
        return [str(scrapy_python()), str(PEERS / "scrapy_peer.py"), str(job)]
    if peer == "raw":
        return [str(PYTHON), str(PEERS / "raw_loop.py"), str(job)]
    printed = subprocess.run(
        [str(PYTHON), str(PEERS / "wget_peer.py"), str(job), "--print"],
        capture_output=True,
        text=True,
        check=True,
    )
    argv: list[str] = json.loads(printed.stdout)
    return argv


def run_peer(
    peer: str, bench: Bench, nginx: Nginx, round_no: int, env: dict[str, str], **crawl: object
) -> Run:
    work = Path(tempfile.mkdtemp(prefix=f"{bench.name}-{peer}-{round_no}-", dir=bench.tmp))
    db = work / "crawl.db"
    if peer == "crawler":
        conf = work / "crawler.toml"
        conf.write_text(crawler_config(bench, db, **crawl))
        cmd = [str(REPO / ".venv" / "bin" / "crawler"), "crawl", str(conf), "--quiet"]
    else:
        cmd = peer_command(peer, bench, work)
    offset = nginx.access_log.stat().st_size if nginx.access_log.exists() else 0
    code, wall, cpu, rss = measure(cmd, work / "output.txt", env)
    logged, _ = read_log(nginx.access_log, offset)
    mine = [r for r in logged if r.agent == AGENTS[peer] and r.path != "/robots.txt"]
    seen = Counter(r.key for r in mine)
    expected = bench.truth.requests()
    p99, worst = lag_ms(db) if peer == "crawler" else (None, None)
    delay = float(str(crawl.get("delay", 0)))
    return Run(
        pages=len(mine),
        distinct=len(seen),
        missing=len(expected.keys() - seen.keys()),
        extra=len(seen.keys() - expected.keys()),
        wall=wall,
        cpu=cpu,
        rss_mb=rss,
        exit=code,
        min_gap_ms=min_gap_ms(mine),
        lag_p99_ms=p99,
        lag_max_ms=worst,
        paced=paced_fraction(mine, delay) if delay else None,
    )


# ------------------------------------------------------------------------------------ sites


def set_up(
    name: str, title: str, seeds: list[str], hosts: list[str], truth: Truth, tmp: Path
) -> Bench:
    urls = [url for url, status in truth.pages.items() if status]
    (tmp / f"{name}-urls.txt").write_text("".join(f"{url}\n" for url in urls))
    return Bench(name, title, seeds, hosts, truth, tmp)


def pgdocs_bench(tmp: Path) -> Bench:
    if not (DOCS / "index.html").is_file():
        raise BenchError(
            f"{DOCS} not found: apt-get install -y postgresql-doc-15 (make bench-deps)"
        )
    seeds = [f"http://127.0.0.1:{DOCS_PORT}/index.html"]

    def root_of(host: str, port: int) -> Path | None:
        return DOCS if (host, port) == ("127.0.0.1", DOCS_PORT) else None

    truth = ground_truth(seeds, root_of, {"127.0.0.1"}, user_agent=AGENTS["crawler"])
    title = f"PostgreSQL 15 docs, {len(truth.pages):,} pages, 1 host"
    return set_up("pgdocs", title, seeds, ["127.0.0.1"], truth, tmp)


def million_bench(site: Site, tmp: Path) -> Bench:
    """The million-URL site's truth from its known shape (computing it from the files takes
    two minutes): /p/<j>.html for j up to pages x fanout, of which /p/0 ... exist."""
    host, files = site.hosts[0], sum(1 for _ in (site.root / site.hosts[0] / "p").iterdir())
    truth = Truth()
    truth.pages[f"http://{host}:{site.port}/"] = 200
    for j in range(files * 300 + 1):
        truth.pages[f"http://{host}:{site.port}/p/{j}.html"] = 200 if j < files else 404
    title = "million-URL site: 4,000 pages, each linking to 300 new URLs"
    return Bench("million", title, site.seeds(), site.hosts, truth, tmp)


def site_bench(name: str, site: Site, tmp: Path, title: str) -> Bench:
    # One seed: the hosts link to each other. wget starts its recursion over for each seed it
    # is given (re-reading every page saved so far), which would make it quadratic.
    seeds = site.seeds()[:1]
    truth = ground_truth(seeds, site.root_of, set(site.hosts), user_agent=AGENTS["crawler"])
    return set_up(name, title.format(pages=len(truth.pages)), seeds, site.hosts, truth, tmp)


# ------------------------------------------------------------------------------------ report


def fmt(value: float | None, spec: str = ".0f") -> str:
    return "-" if value is None else format(value, spec)


COLUMNS: list[tuple[str, Callable[[Run], float | None], str]] = [
    ("pages", lambda r: r.pages, ".0f"),
    ("missing", lambda r: r.missing, ".0f"),
    ("extra", lambda r: r.extra, ".0f"),
    ("twice", lambda r: r.twice, ".0f"),
    ("wall s", lambda r: r.wall, ".2f"),
    ("CPU s", lambda r: r.cpu, ".2f"),
    ("CPU ms/page", lambda r: r.cpu_ms, ".2f"),
    ("pages/s", lambda r: r.rate, ".0f"),
    ("peak RSS MB", lambda r: r.rss_mb, ".0f"),
    ("min gap ms", lambda r: r.min_gap_ms, ".1f"),
    ("lag p99 ms", lambda r: r.lag_p99_ms, ".1f"),
    ("lag max ms", lambda r: r.lag_max_ms, ".1f"),
]


def site_table(site: SiteRuns) -> list[str]:
    rounds = max(len(runs) for runs in site.runs.values())
    lines = [
        f"**{site.title}** (median of {rounds} rounds)",
        "",
        "| peer | " + " | ".join(name for name, _, _ in COLUMNS) + " |",
        "|---|" + "---:|" * len(COLUMNS),
    ]
    for peer in site.runs:
        cells = [fmt(site.median(peer, value), spec) for _, value, spec in COLUMNS]
        lines.append(f"| {peer} | " + " | ".join(cells) + " |")
    return lines


def verdicts(site: SiteRuns) -> list[tuple[str, bool]]:
    """The issue's targets that this site's runs can check, and whether each held."""
    m = site.median
    checks: list[tuple[str, bool]] = []
    if site.name == "million":
        return million_verdicts(site)
    crawler = site.runs["crawler"]
    if not crawler:
        return checks
    exact = all(r.missing == 0 and r.extra == 0 and r.twice == 0 for r in crawler)
    checks.append(("same pages as the ground truth, none twice, in every round", exact))
    checks.append(
        (
            "event-loop lag p99 <= 20 ms in every round",
            all((r.lag_p99_ms or 0) <= 20 for r in crawler),
        )
    )
    cpu_ms = m("crawler", lambda r: r.cpu_ms) or 0.0
    rate = m("crawler", lambda r: r.rate) or 0.0
    if site.runs.get("scrapy"):
        scrapy_ms = m("scrapy", lambda r: r.cpu_ms) or 0.0
        checks.append(
            (
                f"CPU/page <= 1/10 of Scrapy's ({scrapy_ms / max(cpu_ms, 1e-9):.1f}x less)",
                cpu_ms * 10 <= scrapy_ms,
            )
        )
    if site.runs.get("raw"):
        raw = m("raw", lambda r: r.rate) or 0.0
        checks.append(
            (f"pages/s >= 50% of the raw aiohttp loop's ({100 * rate / raw:.0f}%)", rate >= raw / 2)
        )
    if site.runs.get("wget") and site.name == "multihost":
        wget = m("wget", lambda r: r.rate) or 0.0
        checks.append((f"pages/s >= wget's ({rate / wget:.1f}x)", rate >= wget))
    if site.name in ("pgdocs", "multihost"):
        rss = max(r.rss_mb for r in crawler)
        checks.append((f"peak RSS <= 100 MB ({rss:.0f})", rss <= 100))
    if site.name == "polite":
        paced = m("crawler", lambda r: r.paced) or 0.0
        gap = min(r.min_gap_ms or 0 for r in crawler)
        checks.append(
            (
                f">= 80% of the politeness bound while hosts have work ({100 * paced:.0f}%)",
                paced >= 0.8,
            )
        )
        # nginx logs times in whole milliseconds: a start time is known to +-1 ms, a gap to +-2.
        floor = 1000 * POLITE_DELAY - 2
        checks.append((f"no gap below the delay ({gap:.1f} ms, logged to the ms)", gap >= floor))
    return checks


def million_verdicts(site: SiteRuns) -> list[tuple[str, bool]]:
    small, large = (site.runs[million_label(pages)] for pages in MILLION_STEPS)
    if not small or not large:
        return []
    every = small + large
    low, high = max(r.rss_mb for r in small), max(r.rss_mb for r in large)
    return [
        (
            "the first pages of a breadth-first crawl, none twice",
            all(r.extra == 0 and r.twice == 0 for r in every),
        ),
        (
            "event-loop lag p99 <= 20 ms in every round",
            all((r.lag_p99_ms or 0) <= 20 for r in every),
        ),
        (f"peak RSS <= 150 MB with 1,000,000 URLs queued ({high:.0f})", high <= 150),
        (
            f"flat: 10x the queued URLs, peak RSS {low:.0f} -> {high:.0f} MB (<= +20%)",
            high <= low * 1.2,
        ),
    ]


def million_label(pages: int) -> str:
    return f"crawler, {pages * 300:,} queued"


def environment() -> str:
    def version(cmd: list[str]) -> str:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        except OSError:
            return "missing"
        return (
            (done.stdout or done.stderr).strip().splitlines()[0]
            if (done.stdout or done.stderr)
            else "?"
        )

    commit = version(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, commit {commit}; "
        f"{version(['nginx', '-v'])}; {version(['wget', '--version'])}; "
        f"Scrapy {version([str(scrapy_python()), '-c', SCRAPY_VERSION])}"
    )


# -------------------------------------------------------------------------------------- main


def quiet_env() -> dict[str, str]:
    """The environment peers run in: bytecode caching on, as a user's Python has it (this
    sandbox sets PYTHONDONTWRITEBYTECODE, which would charge each run for compiling)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def warm_up(env: dict[str, str], peers: list[str]) -> None:
    """Compile each Python peer's modules once, so no measured run pays for it."""
    subprocess.run(
        [str(PYTHON), "-c", "import crawler.cli, crawler.engine.crawl, aiohttp"],
        env=env,
        check=True,
    )
    if "scrapy" in peers:
        code = "import scrapy.crawler, scrapy.spiders, scrapy.linkextractors"
        subprocess.run([str(scrapy_python()), "-c", code], env=env, check=True)


def run_sites(args: argparse.Namespace, tmp: Path) -> list[SiteRuns]:
    sites_dir = tmp / "sites"
    started = time.monotonic()
    generated = write_multihost(sites_dir, hosts=64, pages=300)
    million = write_million(sites_dir, fanout=300, pages=4_000) if "million" in args.sites else None
    print(f"sites generated in {time.monotonic() - started:.1f} s", file=sys.stderr)
    servers = [server("", generated.port, sites_dir, per_address=True)]
    if "pgdocs" in args.sites:
        servers.append(server("127.0.0.1", DOCS_PORT, DOCS))
    env = quiet_env()
    warm_up(env, args.peers)
    results = []
    with Nginx(tmp / "nginx", servers, probe=("127.0.1.1", generated.port)) as nginx:
        for name in args.sites:
            started = time.monotonic()
            results.append(run_site(name, args, tmp, nginx, env, generated, million))
            print(f"{name} done in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return results


_MULTIHOST: dict[Path, Bench] = {}


def multihost_bench(site: Site, tmp: Path) -> Bench:
    """The multihost site's truth, computed once (it takes half a minute) for both its sites."""
    if site.root not in _MULTIHOST:
        _MULTIHOST[site.root] = site_bench("multihost", site, tmp, "64 hosts, {pages:,} URLs")
    return _MULTIHOST[site.root]


def run_site(
    name: str,
    args: argparse.Namespace,
    tmp: Path,
    nginx: Nginx,
    env: dict[str, str],
    generated: Site,
    million: Site | None,
) -> SiteRuns:
    if name == "pgdocs":
        bench = pgdocs_bench(tmp)
    elif name == "million":
        assert million is not None
        bench = million_bench(million, tmp)
    else:
        bench = multihost_bench(generated, tmp)
    if name == "polite":
        title = (
            f"64 hosts, delay {POLITE_DELAY}, per_host_concurrency 1, concurrency 128:"
            f" bound {64 / POLITE_DELAY:,.0f} pages/s"
        )
    else:
        title = bench.title
    site = SiteRuns(name, title)
    for round_no in range(args.rounds):
        if name == "polite":
            run = run_peer(
                "crawler",
                bench,
                nginx,
                round_no,
                env,
                delay=POLITE_DELAY,
                per_host_concurrency=1,
                concurrency=128,
            )
            site.runs["crawler"].append(run)
        elif name == "million":
            for pages in MILLION_STEPS:
                label = million_label(pages)
                run = run_peer("crawler", bench, nginx, round_no, env, max_pages=pages)
                site.runs[label].append(run)
        else:
            for peer in args.peers:
                site.runs[peer].append(run_peer(peer, bench, nginx, round_no, env))
        print(f"  {name} round {round_no + 1}/{args.rounds}", file=sys.stderr)
    return site


def report(results: list[SiteRuns], env_line: str) -> tuple[str, bool]:
    lines = [f"Machine: {env_line}.", ""]
    ok = True
    for site in results:
        lines += site_table(site)
        lines.append("")
        for text, held in verdicts(site):
            ok = ok and held
            lines.append(f"- {'PASS' if held else 'FAIL'}: {text}")
        lines.append("")
    return "\n".join(lines), ok


def write_readme(table: str) -> None:
    stamp = time.strftime("%Y-%m-%d")
    rewrite_section(TABLE_START, TABLE_END, f"Latest run, {stamp}: `make bench`\n\n{table}")


def rewrite_section(start: str, end: str, body: str) -> None:
    """Replace what bench/README.md holds between the markers `start` and `end` with `body`."""
    text = README.read_text()
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    README.write_text(f"{head}{start}\n{body}\n{end}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", default="pgdocs,multihost,polite,million")
    parser.add_argument("--peers", default="crawler,scrapy,raw,wget")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--write-readme", action="store_true", help="rewrite the table in bench/README.md"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args(argv)
    args.sites = args.sites.split(",")
    args.peers = args.peers.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="perf-bench-"))
    os.chmod(tmp, 0o755)  # nginx workers run as nobody when started by root
    try:
        results = run_sites(args, tmp)
        table, ok = report(results, environment())
    except BenchError as exc:
        print(f"perf: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            subprocess.run(["rm", "-rf", str(tmp)], check=False)
    print(table)
    if args.write_readme:
        write_readme(table)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
