"""The performance benchmark: the crawler, text off and on, against Scrapy, crawlee-python, a raw
aiohttp loop, the floor of an aiohttp and lexbor crawler, and wget, on local sites served by one
nginx on loopback (issues 6 and 22).

    make bench                  # all sites, 3 rounds, rewrites the table in bench/README.md
    .venv/bin/python bench/perf.py [--sites pgdocs,django,multihost,polite,million]
        [--rounds 3] [--peers crawler,crawler-text,scrapy,crawlee,raw,floor,wget]
        [--write-readme] [--keep]

Peers: `crawler` is ours with `store_text = false`, `crawler-text` ours with `store_text =
true`; Scrapy and crawlee-python run in venvs of their own (bench/peers/); `raw` fetches the
ground truth's URLs and drops the bodies, `floor` also reads each HTML page's links with lexbor
(bench/peers/raw_loop.py): what no crawler on aiohttp and lexbor can spend less than.

Sites (one nginx, one worker process, so the other core is the crawler's):
- pgdocs: the PostgreSQL 15 HTML docs (apt package postgresql-doc-15) on 127.0.0.1;
- django: Django's HTML docs (apt package python-django-doc), the big-page corpus (691 pages,
  42 KB on average, 159 of them 50 KB or more), on 127.0.0.2 (its links to 127.0.0.1:8000
  are another host's, as they are on docs.djangoproject.com);
- multihost: 64 hosts, 127.0.1.1-127.0.1.64, 300 pages each (bench/gensite.py, fixed seed);
- polite: the multihost site again, crawler only, with delay 0.05 and one request per host at
  a time: the bound is hosts / delay = 1,280 pages/s;
- million: every page links to 300 new URLs; the crawl stops at 340 pages (100,000 URLs
  queued) and at 3,400 (1,000,000), crawler only: peak RSS must stay flat.

Every run is a subprocess measured from outside: wall time; CPU (user+sys) from GNU time, which
includes the child processes it waited for (the crawl's text helper and parse process); peak
RSS of the whole process tree, the sum of VmRSS over every process under GNU time, sampled
every 20 ms (bench/tree_rss.py), or GNU time's largest single process if that is larger (a
peak between two samples). Pages come from nginx's access log (each peer sends its own
User-Agent), checked against the ground truth computed from the files (bench/truth.py):
requests are compared, as nginx logs them. Event-loop lag comes from the crawler's `runs`
table. The peers of a site run one after the other in each round (interleaved), and the table
shows the median of the rounds; the targets are in bench/verdicts.py.

Exit status: 0 when every target held, 1 when one did not, 2 when the benchmark could not run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from gensite import Site, write_million, write_multihost
from nginx import BenchError, Nginx, Request, read_log, server
from peers import PEERS, crawlee_python, scrapy_python
from tree_rss import TreeRSS
from truth import Truth, ground_truth
from verdicts import MILLION_STEPS, POLITE_DELAY, Run, SiteRuns, million_label, report

REPO = Path(__file__).resolve().parents[1]
PYTHON = REPO / ".venv" / "bin" / "python"
DOCS = Path("/usr/share/doc/postgresql-doc-15/html")
DOCS_PORT = 8482
DJANGO_DOCS = Path("/usr/share/doc/python-django-doc/html")
DJANGO_PORT = 8483


@dataclass(frozen=True)
class DocSite:
    """A folder of static HTML docs from a Debian package, served on address:port."""

    root: Path
    port: int
    package: str
    title: str
    address: str = "127.0.0.1"


DOC_SITES = {
    "pgdocs": DocSite(DOCS, DOCS_PORT, "postgresql-doc-15", "PostgreSQL 15 docs"),
    # Not 127.0.0.1: the docs link to http://127.0.0.1:8000/ (a development server), which
    # would be the same host as the site's (ports aside), and the host's back-off after its
    # refused connections would pace the whole crawl (SPEC: errors back a host's delay off).
    # Crawling docs.djangoproject.com, those links are another host; so they are here.
    "django": DocSite(
        DJANGO_DOCS, DJANGO_PORT, "python-django-doc", "Django 3.2 docs (big pages)", "127.0.0.2"
    ),
}
TIME = Path("/usr/bin/time")
README = Path(__file__).resolve().parent / "README.md"
TABLE_START, TABLE_END = "<!-- perf table: start -->", "<!-- perf table: end -->"
AGENTS = {
    "crawler": "crawler/0.1 (+bench)",
    "crawler-text": "crawler/0.1 (+bench, text)",
    "scrapy": "scrapy-peer/2.19",
    "crawlee": "crawlee-peer/1.11",
    "raw": "raw-aiohttp-loop",
    "floor": "floor-aiohttp-lexbor",
    "wget": "wget-peer",
}
CONCURRENCY = 16
SCRAPY_VERSION = "import scrapy; print(scrapy.__version__)"
CRAWLEE_VERSION = "import importlib.metadata as m; print(m.version('crawlee'))"


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


def measure(
    cmd: list[str], out: Path, env: dict[str, str], cwd: Path | None = None
) -> tuple[int, float, float, float]:
    """Run `cmd` under GNU time (in `cwd`, if given); its exit code, wall seconds, CPU seconds
    (user+sys, waited-for children included) and the peak RSS of its whole process tree in MB.

    Not wait4(2) from here: Linux keeps the peak RSS of a process across exec, so a child
    forked from this process (which holds the ground truth, 300 MB for the million-URL site)
    would report our peak, not its own. `time` is small, and forks the command itself.
    The tree's peak is sampled (`TreeRSS` over every process under `time`); CPU is the larger of
    GNU time's and the sum of what each process of the tree was last seen to use, which differ
    only if a helper was never waited for."""
    if not TIME.exists():
        raise BenchError(f"{TIME} not found: apt-get install -y time (make bench-deps)")
    report = out.with_suffix(".time")
    started = time.monotonic()
    timed = [str(TIME), "-f", "%x %U %S %M", "-o", str(report), *cmd]
    with (
        out.open("wb") as log,
        subprocess.Popen(timed, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd) as proc,
        TreeRSS(proc.pid, crawls_only=False) as tree,
    ):
        proc.wait()
    wall = time.monotonic() - started
    code, user, system, rss_kb = report.read_text().split()[-4:]
    cpu = max(float(user) + float(system), tree.tree_cpu)
    return int(code), wall, cpu, max(int(rss_kb), tree.peak_kb) / 1024


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


def crawler_config(bench: Bench, db: Path, *, text: bool = False, **crawl: object) -> str:
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
skip_extensions = []  # every link, as every peer fetches: Django's docs link two SVG images
{extra}
[politeness]
user_agent = "{AGENTS["crawler-text" if text else "crawler"]}"
delay = {delay}
per_host_concurrency = {per_host}

[storage]
path = "{db}"
store_text = {"true" if text else "false"}  # false is like for like: no peer extracts text
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
    if peer == "crawlee":
        return [str(crawlee_python()), str(PEERS / "crawlee_peer.py"), str(job)]
    if peer == "raw":
        return [str(PYTHON), str(PEERS / "raw_loop.py"), str(job)]
    if peer == "floor":
        return [str(PYTHON), str(PEERS / "raw_loop.py"), str(job), "--parse"]
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
    if peer in ("crawler", "crawler-text"):
        conf = work / "crawler.toml"
        conf.write_text(crawler_config(bench, db, text=peer == "crawler-text", **crawl))
        cmd = [str(REPO / ".venv" / "bin" / "crawler"), "crawl", str(conf), "--quiet"]
    else:
        cmd = peer_command(peer, bench, work)
    offset = nginx.access_log.stat().st_size if nginx.access_log.exists() else 0
    code, wall, cpu, rss = measure(cmd, work / "output.txt", env)
    logged, _ = read_log(nginx.access_log, offset)
    mine = [r for r in logged if r.agent == AGENTS[peer] and r.path != "/robots.txt"]
    seen = Counter(r.key for r in mine)
    expected = bench.truth.requests()
    p99, worst = lag_ms(db)
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


def docs_bench(name: str, tmp: Path) -> Bench:
    """A documentation corpus, crawled from its index.html. Its truth counts requests: an image
    linked with `<a href>` is one request, whether or not a peer keeps it."""
    docs = DOC_SITES[name]
    if not (docs.root / "index.html").is_file():
        raise BenchError(
            f"{docs.root} not found: apt-get install -y {docs.package} (make bench-deps)"
        )
    seeds = [f"http://{docs.address}:{docs.port}/index.html"]

    def root_of(host: str, port: int) -> Path | None:
        return docs.root if (host, port) == (docs.address, docs.port) else None

    truth = ground_truth(seeds, root_of, {docs.address}, user_agent=AGENTS["crawler"])
    requests = sum(truth.requests().values())
    title = f"{docs.title}, {requests:,} pages, 1 host"
    return set_up(name, title, seeds, [docs.address], truth, tmp)


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
        f"Scrapy {version([str(scrapy_python()), '-c', SCRAPY_VERSION])}; "
        f"crawlee {version([str(crawlee_python()), '-c', CRAWLEE_VERSION])}"
    )


# -------------------------------------------------------------------------------------- main


def quiet_env() -> dict[str, str]:
    """The environment peers run in: bytecode caching on, as a user's Python has it (this
    sandbox sets PYTHONDONTWRITEBYTECODE, which would charge each run for compiling)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def warm_up(env: dict[str, str], peers: list[str]) -> None:
    """Compile each Python peer's modules once, so no measured run pays for it (and build the
    peers' venvs if missing)."""
    compile_all = [str(PYTHON), "-m", "compileall", "-q", str(REPO / "crawler")]
    subprocess.run(compile_all, env=env, check=True, stdout=subprocess.DEVNULL)
    if "scrapy" in peers:
        code = "import scrapy.crawler, scrapy.spiders, scrapy.linkextractors"
        subprocess.run([str(scrapy_python()), "-c", code], env=env, check=True)
    if "crawlee" in peers:
        code = "import crawlee.crawlers, crawlee.http_clients, crawlee.storage_clients"
        subprocess.run([str(crawlee_python()), "-c", code], env=env, check=True)


def run_sites(args: argparse.Namespace, tmp: Path) -> list[SiteRuns]:
    sites_dir = tmp / "sites"
    started = time.monotonic()
    generated = write_multihost(sites_dir, hosts=64, pages=300)
    million = write_million(sites_dir, fanout=300, pages=4_000) if "million" in args.sites else None
    print(f"sites generated in {time.monotonic() - started:.1f} s", file=sys.stderr)
    servers = [server("", generated.port, sites_dir, per_address=True)]
    for name, docs in DOC_SITES.items():
        if name in args.sites:
            servers.append(server(docs.address, docs.port, docs.root))
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
    if name in DOC_SITES:
        bench = docs_bench(name, tmp)
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


def write_readme(table: str, argv: list[str]) -> None:
    stamp = time.strftime("%Y-%m-%d")
    command = " ".join(["bench/perf.py", *argv])
    rewrite_section(TABLE_START, TABLE_END, f"Latest run, {stamp}: `{command}`\n\n{table}")


def rewrite_section(start: str, end: str, body: str) -> None:
    """Replace what bench/README.md holds between the markers `start` and `end` with `body`."""
    text = README.read_text()
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    README.write_text(f"{head}{start}\n{body}\n{end}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", default="pgdocs,django,multihost,polite,million")
    parser.add_argument("--peers", default="crawler,crawler-text,scrapy,crawlee,raw,floor,wget")
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
        write_readme(table, sys.argv[1:] if argv is None else argv)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
